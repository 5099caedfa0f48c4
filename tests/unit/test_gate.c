/*
 * Unit tests for the dot gate (transport_run_gated(), docs/design.md "The send pipeline"),
 * against tests/integration/servers/faulty_smtp.py on loopback, which logs each message it
 * accepts (it accepts one only on its final dot):
 * - while commit() runs for a message, the server has not got it: its data waits for the
 *   gate; a message whose commit() answers 0 never reaches the server and is reported
 *   deferred, "held before its final dot"; the connection serves the next message;
 * - the engine over a real SMTP transport: when the ledger cannot commit a message's
 *   'sending', the message is not delivered and the run stops on the ledger's error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "campaign/engine.h"
#include "campaign/plan.h"
#include "ledger/ledger.h"
#include "transport/transport.h"

#define HASH "2222222222222222222222222222222222222222222222222222222222222222"

struct server {
	pid_t pid;
	int port;
	char dir[64];
	char *log;
};

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

/* The server running, stopped by each test's teardown when a failed assertion skipped
 * server_stop(). */
static pid_t live_pid;

/* faulty_smtp.py on a free port, logging to DIR/faulty.log. */
static void server_start(struct server *sv)
{
	const char *src = getenv("SRCDIR");
	char *script, *port;

	memset(sv, 0, sizeof(*sv));
	strcpy(sv->dir, "/tmp/test_gate-XXXXXX");
	assert_non_null(mkdtemp(sv->dir));
	sv->log = xasprintf("%s/faulty.log", sv->dir);
	sv->port = free_port();
	script = src && *src ? xasprintf("%s/tests/integration/servers/faulty_smtp.py", src)
	                     : xasprintf("%.*s/../integration/servers/faulty_smtp.py",
	                                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
	port = xasprintf("%d", sv->port);
	sv->pid = fork();
	assert_true(sv->pid >= 0);
	if (sv->pid == 0) {
		/* Debian's python3 has aiosmtpd; a python3 earlier in PATH may not. argv[0] is the
		 * whole path: from a bare "python3" Python finds its prefix by PATH (pyenv's). */
		execl("/usr/bin/python3", "/usr/bin/python3", script, "--port", port, "--log",
		      sv->log, (char *)NULL);
		_exit(127);
	}
	live_pid = sv->pid;
	for (int i = 0; i < 400 && !port_open(sv->port); i++)
		poll(NULL, 0, 25);
	assert_true(port_open(sv->port));
	free(script);
	free(port);
}

static void server_stop(struct server *sv)
{
	char *cmd = xasprintf("rm -rf '%s'", sv->dir);

	kill(sv->pid, SIGTERM);
	waitpid(sv->pid, NULL, 0);
	live_pid = 0;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(sv->log);
}

/* 1 when the server accepted a message for rcpt ("tx PORT rcpt,... BYTES"). */
static int server_got(const struct server *sv, const char *rcpt)
{
	char *text = NULL, *pat = xasprintf(" %s ", rcpt);
	size_t len;
	int got = read_file(sv->log, &text, &len) == 0 && strstr(text, pat);

	free(text);
	free(pat);
	return got;
}

/* ---- the transport's gate ---- */

#define NMSG 4

struct gated {
	const struct server *sv;
	struct transport_msg m[NMSG];
	char rcpt[NMSG][64], *data[NMSG];
	const char *rl[NMSG][1];
	size_t next;
	int committed[NMSG];  /* commit() calls per message */
	int early[NMSG];      /* the server had it while its commit() ran */
	int done_first[NMSG]; /* done() came before commit() */
	int state[NMSG], done[NMSG];
	char *error[NMSG];
};

static int g_next(void *u, struct transport_msg *m, long *wait_ms)
{
	struct gated *g = u;

	(void)wait_ms;
	if (g->next == NMSG)
		return 0;
	*m = g->m[g->next++];
	return 1;
}

/* Slow, like an fsync on a busy disk: the worker is at the gate meanwhile. Odd messages are
 * refused (a failed commit). */
static int g_commit(void *u, const struct transport_msg *m)
{
	struct gated *g = u;
	size_t i = (size_t)(uintptr_t)m->user;

	g->committed[i]++;
	poll(NULL, 0, 300);
	g->early[i] = server_got(g->sv, g->rcpt[i]);
	return i % 2 == 0;
}

static void g_done(void *u, const struct transport_msg *m, const struct transport_result *r)
{
	struct gated *g = u;
	size_t i = (size_t)(uintptr_t)m->user;

	g->done_first[i] = !g->committed[i];
	g->done[i]++;
	g->state[i] = r->state;
	g->error[i] = r->error ? xstrdup(r->error) : NULL;
}

static void test_transport_gate(void **state)
{
	struct server sv;
	struct transport_opts o = {0};
	struct transport *t = NULL, *md = NULL;
	struct gated g;
	char *err = NULL, *url, *mdurl;

	(void)state;
	server_start(&sv);
	memset(&g, 0, sizeof(g));
	g.sv = &sv;
	for (size_t i = 0; i < NMSG; i++) {
		snprintf(g.rcpt[i], sizeof(g.rcpt[i]), "mission%zu@example.org", i);
		g.rl[i][0] = g.rcpt[i];
		g.data[i] = xasprintf("From: a@coalition.example\r\nTo: %s\r\nSubject: %zu\r\n\r\n"
		                      "Your Excellency,\r\n.dot-stuffed\r\n",
		                      g.rcpt[i], i);
		g.m[i] = (struct transport_msg){(void *)(uintptr_t)i,
		                                "a@coalition.example",
		                                g.rl[i],
		                                1,
		                                g.data[i],
		                                strlen(g.data[i]),
		                                NULL};
	}
	url = xasprintf("smtp://127.0.0.1:%d", sv.port);
	o.url = url;
	o.timeout = 10;
	o.concurrency = 2;
	assert_int_equal(transport_open(&o, &t, &err), EX_OK);
	assert_true(transport_gated(t));
	assert_int_equal(transport_run_gated(t, g_next, g_commit, g_done, &g, NULL, &err), EX_OK);
	assert_true(transport_connections(t) >= 2); /* a held message costs its connection */
	transport_close(t);
	for (size_t i = 0; i < NMSG; i++) {
		assert_int_equal(g.committed[i], 1);
		assert_int_equal(g.done[i], 1);
		assert_false(g.done_first[i]);
		assert_false(g.early[i]); /* nothing is delivered before its commit */
		if (i % 2 == 0) {
			assert_int_equal(g.state[i], TX_SENT);
			assert_true(server_got(&sv, g.rcpt[i]));
		} else {
			assert_int_equal(g.state[i], TX_DEFERRED);
			assert_non_null(g.error[i]);
			assert_true(str_startswith(g.error[i], "held before its final dot"));
			assert_false(server_got(&sv, g.rcpt[i])); /* no final dot: no message */
		}
		free(g.error[i]);
		free(g.data[i]);
	}
	/* A maildir keeps no gate: its callers commit in next(). */
	mdurl = xasprintf("maildir:%s/md", sv.dir);
	o.url = mdurl;
	assert_int_equal(transport_open(&o, &md, &err), EX_OK);
	assert_false(transport_gated(md));
	assert_int_equal(transport_run_gated(md, g_next, g_commit, g_done, &g, NULL, &err),
	                 EX_SOFTWARE);
	free(err);
	transport_close(md);
	free(mdurl);
	free(url);
	server_stop(&sv);
}

/* ---- the engine: a commit that fails holds the message ---- */

struct count {
	const char *key;
	enum ledger_state st;
};

static int find_row(const struct ledger_row *row, void *ctx)
{
	struct count *c = ctx;

	if (!strcmp(row->key, c->key))
		c->st = row->state;
	return 0;
}

static enum ledger_state row_state(struct ledger *l, const char *key)
{
	struct count c = {key, LS_PENDING};
	char *err = NULL;

	assert_int_equal(ledger_deliveries(l, "camp", find_row, &c, &err), EX_OK);
	return c.st;
}

static void test_engine_commit_fails(void **state)
{
	struct server sv;
	struct transport_opts to = {0};
	struct engine_opts o = {0};
	struct engine_stats st;
	struct ledger_outcome lo = {0};
	struct ledger *l = NULL;
	struct plan p = {0};
	struct transport *t = NULL;
	char *err = NULL, *path, *url;
	int rc;

	(void)state;
	server_start(&sv);
	path = xasprintf("%s/ledger.db", sv.dir);
	assert_int_equal(ledger_open(path, LEDGER_CREATE, &l, &err), EX_OK);
	assert_int_equal(ledger_campaign_begin(l, "camp", "T", "S", HASH, 0, &err), EX_OK);
	for (int i = 0; i < 3; i++) {
		char key[8], id[64], addr[64], *data;
		const char *rcpt[1] = {addr};

		snprintf(key, sizeof(key), "K%d", i);
		snprintf(id, sizeof(id), "<camp.%s@x.example>", key);
		snprintf(addr, sizeof(addr), "mission%d@example.org", i);
		data = xasprintf("Subject: %d\r\n\r\nbody\r\n", i);
		assert_int_equal(plan_add(&p, key, id, rcpt, 1, data, strlen(data), &err), EX_OK);
		free(data);
	}
	assert_int_equal(plan_deliveries(&p, l, "camp", 0, "test", &err), EX_OK);
	assert_int_equal((int)p.n, 3);
	/* Behind the engine's back, K1 goes out another way: its 'sending' is now illegal
	 * (sent -> sending), so the commit that carries it fails. */
	lo.via = "elsewhere";
	assert_int_equal(ledger_transition(l, p.m[1].deliv[0], LS_SENDING, 0, &lo, NULL, &err),
	                 EX_OK);
	assert_int_equal(ledger_transition(l, p.m[1].deliv[0], LS_SENT, 0, &lo, NULL, &err), EX_OK);

	url = xasprintf("smtp://127.0.0.1:%d", sv.port);
	to.url = url;
	to.timeout = 10;
	to.concurrency = 1;
	assert_int_equal(transport_open(&to, &t, &err), EX_OK);
	o.ledger = l;
	o.campaign = "camp";
	o.account = "test";
	o.t = t; /* o.run NULL: the engine keeps the gate of the SMTP transport */
	o.max_attempts = 1;
	o.from = "s@x.example";
	rc = engine_run(&o, &p, &st, &err);
	assert_int_not_equal(rc, EX_OK);
	assert_non_null(err);
	print_message("engine stopped with %d: %s\n", rc, err);
	free(err);
	err = NULL;
	transport_close(t);
	assert_true(server_got(&sv, "mission0@example.org"));
	assert_false(server_got(&sv, "mission1@example.org")); /* held: no final dot */
	assert_false(server_got(&sv, "mission2@example.org")); /* the run stopped */
	assert_int_equal((int)st.sent, 1);
	/* K0's 'sent' went in the transaction that failed: in doubt for the next run, as when
	 * any commit fails */
	assert_true(row_state(l, "K0") == LS_SENDING || row_state(l, "K0") == LS_SENT);
	assert_int_equal((int)st.started, 1);          /* the held one was never started */
	assert_int_equal(row_state(l, "K1"), LS_SENT); /* as the other way left it */
	assert_int_equal(row_state(l, "K2"), LS_PENDING);
	plan_free(&p);
	ledger_close(l);
	free(path);
	free(url);
	server_stop(&sv);
}

static int stop_live(void **state)
{
	(void)state;
	if (live_pid > 0) {
		kill(live_pid, SIGTERM);
		waitpid(live_pid, NULL, 0);
		live_pid = 0;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_transport_gate, stop_live),
	    cmocka_unit_test_teardown(test_engine_commit_fails, stop_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
