/*
 * Unit tests for src/transport: SMTP against a real Postfix smtp-sink on loopback (delivery,
 * connection reuse, concurrency, every fault of the design's table) and against
 * tests/integration/servers/faulty_smtp.py (per-recipient refusals, 452, a slow final dot,
 * malformed replies), Maildir, the rate limiter.
 * "test_transport bench" measures messages/s instead (see bench()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "transport/ratelimit.h"
#include "transport/smtp_opts.h"
#include "transport/transport.h"

#include "outcome.h"

/* ---- a real smtp-sink on 127.0.0.1 ---- */

struct sink {
	pid_t pid;
	int port;
	char dir[64];   /* temp dir: dump/ (smtp-sink -d) and counters.txt (smtp-sink -c) */
	char *args[16]; /* the fault options of the current sink */
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

/* Starts smtp-sink with the given fault options (NULL-terminated), dumping to dir/dump. */
static void sink_start_args(struct sink *sk, int dump, char *const *faults)
{
	char *argv[32], *dumparg, *hostport, *counters;
	int n = 0, fd;

	hostport = xasprintf("127.0.0.1:%d", sk->port);
	dumparg = xasprintf("%s/dump/%%M.", sk->dir);
	counters = xasprintf("%s/counters.txt", sk->dir);
	argv[n++] = "smtp-sink";
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	argv[n++] = "-c";
	if (dump) {
		argv[n++] = "-d";
		argv[n++] = dumparg;
	}
	for (int i = 0; faults && faults[i]; i++)
		argv[n++] = faults[i];
	argv[n++] = hostport;
	argv[n++] = "256";
	argv[n] = NULL;
	sk->pid = fork();
	assert_true(sk->pid >= 0);
	if (sk->pid == 0) {
		fd = open(counters, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	free(dumparg);
	free(counters);
	free(hostport);
	for (int i = 0; i < 200 && !port_open(sk->port); i++)
		poll(NULL, 0, 25);
	assert_true(port_open(sk->port));
}

static void sink_stop(struct sink *sk)
{
	if (sk->pid > 0) {
		kill(sk->pid, SIGTERM);
		waitpid(sk->pid, NULL, 0);
		sk->pid = 0;
	}
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	struct sink *sk = xcalloc(1, sizeof(*sk));
	char *dump;

	strcpy(sk->dir, "/tmp/demarche-transport-XXXXXX");
	if (!mkdtemp(sk->dir))
		return -1;
	chmod(sk->dir, 0755);
	dump = xasprintf("%s/dump", sk->dir);
	mkdir(dump, 0777);
	chmod(dump, 0777); /* smtp-sink writes as nobody */
	free(dump);
	sk->port = free_port();
	*state = sk;
	return 0;
}

static int teardown(void **state)
{
	struct sink *sk = *state;

	sink_stop(sk);
	nftw(sk->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(sk);
	return 0;
}

static char *sink_url(const struct sink *sk)
{
	return xasprintf("smtp://127.0.0.1:%d", sk->port);
}

/* The dump files, each read whole; returns how many. */
static size_t sink_dumps(const struct sink *sk, char ***files)
{
	char *d = xasprintf("%s/dump", sk->dir);
	DIR *dir = opendir(d);
	struct dirent *e;
	size_t n = 0;

	*files = NULL;
	assert_non_null(dir);
	while ((e = readdir(dir))) {
		char *p, *text = NULL;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", d, e->d_name);
		if (read_file(p, &text, &len) < 0 && errno == ENOENT) {
			free(p); /* smtp-sink removed it (a session ended) since readdir() */
			continue;
		}
		assert_non_null(text);
		*files = xreallocarray(*files, n + 1, sizeof(**files));
		(*files)[n++] = text;
		free(p);
	}
	closedir(dir);
	free(d);
	return n;
}

static void free_dumps(char **files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

/* The last "quit=N" smtp-sink -c printed (sessions that ended with QUIT), waiting up to 2 s
 * for it to reach want. */
static long sink_quits(const struct sink *sk, long want)
{
	char *p = xasprintf("%s/counters.txt", sk->dir);
	long quits = -1;

	for (int i = 0; i < 80; i++) {
		char *text = NULL, *q, *last = NULL;
		size_t len;

		if (read_file(p, &text, &len) == 0) {
			for (q = strstr(text, "quit="); q; q = strstr(q + 1, "quit="))
				last = q;
			quits = last ? strtol(last + 5, NULL, 10) : 0;
		}
		free(text);
		if (quits >= want)
			break;
		poll(NULL, 0, 25);
	}
	free(p);
	return quits;
}

/* ---- messages and a caller that records outcomes ---- */

struct harness {
	size_t n, next;
	struct transport_msg *msgs;
	char **rcpt; /* storage behind msgs[i].rcpt */
	struct outcome *out;
	size_t ndone;
	long wait_ms;   /* answer -1 with this wait between messages (pacing) */
	int waiting;    /* next answer is -1 */
	size_t stop_at; /* set *stop when this many were handed out (0: never) */
	int stop_value;
	volatile sig_atomic_t stop;
	void (*on_done)(struct harness *h, size_t i);
	struct sink *sk;
};

/* Message i: 1 to 3 recipients, a Message-ID, and a body line starting with a dot. */
static void harness_init(struct harness *h, size_t n)
{
	memset(h, 0, sizeof(*h));
	h->n = n;
	h->msgs = xcalloc(n, sizeof(*h->msgs));
	h->out = xcalloc(n, sizeof(*h->out));
	h->rcpt = xcalloc(n * 3, sizeof(*h->rcpt));
	for (size_t i = 0; i < n; i++) {
		struct transport_msg *m = &h->msgs[i];
		struct buf b = BUF_INIT;

		m->nrcpt = i % 3 + 1;
		for (size_t j = 0; j < m->nrcpt; j++)
			h->rcpt[i * 3 + j] = xasprintf("mission%zu-%zu@example.org", i, j);
		m->rcpt = (const char *const *)&h->rcpt[i * 3];
		m->from = "appeals@coalition.example";
		m->id = xasprintf("<asp24.m%zu.abc@coalition.example>", i);
		buf_addf(&b,
		         "Message-ID: %s\r\nFrom: appeals@coalition.example\r\n"
		         "To: mission%zu-0@example.org\r\nSubject: appeal %zu\r\n\r\n"
		         "Your Excellency,\r\n.a line that curl must dot-stuff\r\n",
		         m->id, i, i);
		m->len = b.len;
		m->data = buf_detach(&b);
		m->user = &h->out[i];
	}
}

static void harness_free(struct harness *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free((char *)h->msgs[i].data);
		free((char *)h->msgs[i].id);
		outcome_free(&h->out[i]);
	}
	for (size_t i = 0; i < h->n * 3; i++)
		free(h->rcpt[i]);
	free(h->rcpt);
	free(h->msgs);
	free(h->out);
}

static int h_next(void *u, struct transport_msg *m, long *wait_ms)
{
	struct harness *h = u;

	if (h->next >= h->n)
		return 0;
	if (h->waiting) {
		h->waiting = 0;
		*wait_ms = h->wait_ms;
		return -1;
	}
	*m = h->msgs[h->next++];
	if (h->wait_ms)
		h->waiting = 1;
	if (h->stop_at && h->next == h->stop_at)
		h->stop = h->stop_value;
	return 1;
}

static void h_done(void *u, const struct transport_msg *m, const struct transport_result *r)
{
	struct harness *h = u;
	struct outcome *o = m->user;

	outcome_record(o, m, r);
	h->ndone++;
	if (h->on_done)
		h->on_done(h, (size_t)(o - h->out));
}

/* Opens a transport on opts, runs the harness through it; returns transport_run()'s code. */
static int run(const struct transport_opts *o, struct harness *h, long *connections, char **err)
{
	struct transport *t = NULL;
	int rc;

	rc = transport_open(o, &t, err);
	assert_int_equal(rc, EX_OK);
	rc = transport_run(t, h_next, h_done, h, &h->stop, err);
	if (connections)
		*connections = transport_connections(t);
	transport_close(t);
	return rc;
}

static void assert_all(const struct harness *h, enum transport_state st, int code,
                       const char *reply_prefix)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct outcome *o = &h->out[i];

		if (o->calls != 1 || o->state != st || o->code != code ||
		    (reply_prefix && (!o->reply || !str_startswith(o->reply, reply_prefix)))) {
			print_error(
			    "message %zu: calls %d state %s code %d reply '%s' error '%s'\n", i,
			    o->calls, transport_state_name(o->state), o->code,
			    o->reply ? o->reply : "(none)", o->error ? o->error : "(none)");
			fail();
		}
		/* No refusal at RCPT here: every recipient shares the message's outcome. */
		assert_int_equal(o->nrcpt, h->msgs[i].nrcpt);
		for (size_t j = 0; j < o->nrcpt; j++) {
			assert_int_equal(o->rcpt[j].state, st);
			assert_int_equal(o->rcpt[j].code, code);
			if (reply_prefix)
				assert_true(str_startswith(o->rcpt[j].reply, reply_prefix));
		}
	}
}

/* ---- SMTP against smtp-sink ---- */

static void deliver_all(void **state, int concurrency)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char **files, *err = NULL;
	long conns = 0;
	size_t n;

	sink_start_args(sk, 1, NULL);
	o.url = sink_url(sk);
	o.concurrency = concurrency;
	o.timeout = 10;
	o.helo = "coalition.example";
	harness_init(&h, 125);
	assert_int_equal(run(&o, &h, &conns, &err), EX_OK);
	assert_null(err);
	assert_int_equal(h.ndone, 125);
	assert_all(&h, TX_SENT, 250, "250 2.0.0 Ok");
	if (concurrency == 1) {
		/* One connection for all 125 (checked on both ends: curl's count, and the
		 * sink's count of sessions that ended in QUIT when we closed). */
		assert_int_equal(conns, 1);
		assert_int_equal(sink_quits(sk, 1), 1);
	} else {
		assert_in_range(conns, 2, concurrency);
		assert_int_equal(sink_quits(sk, conns), conns);
	}

	/* Each dump holds the envelope: the right RCPTs in order, and the message intact. */
	n = sink_dumps(sk, &files);
	assert_int_equal(n, 125);
	for (size_t i = 0; i < h.n; i++) {
		const struct transport_msg *m = &h.msgs[i];
		char *idline = xasprintf("Message-ID: %s\n", m->id);
		size_t found = 0;

		for (size_t f = 0; f < n; f++) {
			char *p = strstr(files[f], idline), *q = files[f];

			if (!p)
				continue;
			found++;
			assert_non_null(strstr(files[f], "X-Helo-Args: coalition.example\n"));
			assert_non_null(
			    strstr(files[f], "X-Mail-Args: <appeals@coalition.example>\n"));
			for (size_t j = 0; j < m->nrcpt; j++) {
				char *line = xasprintf("X-Rcpt-Args: <%s>\n", m->rcpt[j]);

				q = strstr(q, line);
				assert_non_null(q);
				free(line);
			}
			assert_null(strstr(q + 1, "X-Rcpt-Args:"));
			assert_non_null(strstr(p, "\n.a line that curl must dot-stuff\n"));
		}
		assert_int_equal(found, 1);
		free(idline);
	}
	free_dumps(files, n);
	harness_free(&h);
	free((char *)o.url);
}

static void test_smtp_125_one_connection(void **state)
{
	deliver_all(state, 1);
}

static void test_smtp_concurrency_4(void **state)
{
	deliver_all(state, 4);
}

/* Runs n messages against a sink with the given faults; checks each ends as expected. */
static void fault(void **state, char *const *faults, int timeout, size_t n, enum transport_state st,
                  int code, const char *reply_prefix)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL;

	sink_start_args(sk, 1, faults);
	o.url = sink_url(sk);
	o.timeout = timeout;
	harness_init(&h, n);
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	assert_null(err);
	assert_int_equal(h.ndone, n);
	assert_all(&h, st, code, reply_prefix);
	if (st != TX_SENT)
		for (size_t i = 0; i < n; i++)
			assert_true(h.out[i].error && *h.out[i].error);
	harness_free(&h);
	free((char *)o.url);
}

static void test_smtp_rcpt_450(void **state)
{
	char *f[] = {"-r", "RCPT", NULL};

	fault(state, f, 10, 3, TX_DEFERRED, 450, "450 4.3.0 Error: command failed");
}

static void test_smtp_rcpt_500(void **state)
{
	char *f[] = {"-f", "RCPT", NULL};

	fault(state, f, 10, 3, TX_FAILED, 500, "500 5.3.0 Error: command failed");
}

static void test_smtp_data_500(void **state)
{
	char *f[] = {"-f", "DATA", NULL};

	fault(state, f, 10, 2, TX_FAILED, 500, "500 ");
}

/* After the final dot: the server's words decide (RFC 5321 section 4.1.1.4). */
static void test_smtp_dot_450(void **state)
{
	char *f[] = {"-r", ".", NULL};

	fault(state, f, 10, 2, TX_DEFERRED, 450, "450 ");
}

static void test_smtp_dot_500(void **state)
{
	char *f[] = {"-f", ".", NULL};

	fault(state, f, 10, 2, TX_FAILED, 500, "500 ");
}

/* Dropped after the final dot, before any reply: in doubt (RFC 1047). */
static void test_smtp_dot_dropped(void **state)
{
	char *f[] = {"-q", ".", NULL};

	fault(state, f, 10, 2, TX_UNKNOWN, 0, NULL);
}

/* Too slow before DATA: the message never left. */
static void test_smtp_slow_before_data(void **state)
{
	char *f[] = {"-w", "3", NULL};

	fault(state, f, 1, 1, TX_DEFERRED, 0, NULL);
}

/* Too slow after the dot: in doubt. */
static void test_smtp_slow_after_dot(void **state)
{
	char *f[] = {"-W", ".:3", NULL};

	fault(state, f, 1, 1, TX_UNKNOWN, 0, NULL);
}

/* The sink restarts without faults after the first message (a one-shot 421). */
static void restart_clean(struct harness *h, size_t i)
{
	if (i != 0)
		return;
	sink_stop(h->sk);
	sink_start_args(h->sk, 1, NULL);
}

/* 421 on MAIL: deferred, and the same slot reconnects for the next message. */
static void test_smtp_421_reconnect(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *f[] = {"-Q", "MAIL", NULL}, **files;
	long conns = 0;

	sink_start_args(sk, 1, f);
	o.url = sink_url(sk);
	o.timeout = 10;
	harness_init(&h, 3);
	h.sk = sk;
	h.on_done = restart_clean;
	assert_int_equal(run(&o, &h, &conns, &err), EX_OK);
	assert_null(err);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	assert_int_equal(h.out[0].code, 421);
	assert_non_null(h.out[0].reply);
	assert_true(str_startswith(h.out[0].reply, "421 "));
	for (size_t i = 1; i < 3; i++) {
		assert_int_equal(h.out[i].state, TX_SENT);
		assert_int_equal(h.out[i].code, 250);
	}
	assert_int_equal(conns, 2);
	assert_int_equal(sink_dumps(sk, &files), 2);
	free_dumps(files, 2);
	harness_free(&h);
	free((char *)o.url);
}

/* Nobody listening: the first message is deferred and the run stops (EX_TEMPFAIL). */
static void test_smtp_unreachable(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL;

	o.url = sink_url(sk);
	o.timeout = 5;
	harness_init(&h, 5);
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_non_null(err);
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_int_equal(h.next, 1);
	assert_int_equal(h.ndone, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	/* A phrase that reads after "deferred: ", without curl's timing. */
	assert_true(str_startswith(h.out[0].error, "Failed to connect to 127.0.0.1 port "));
	assert_null(strstr(h.out[0].error, " ms"));
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* Told to log in, but the server offers no AUTH (smtp-sink -a): nothing goes out without
 * it, the run stops with EX_CONFIG. (AUTH that works is tested against Postfix.) */
static void test_smtp_auth_not_offered(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *f[] = {"-a", NULL}, **files;
	size_t n = 0;

	sink_start_args(sk, 1, f);
	o.url = sink_url(sk);
	o.user = "alice";
	o.password = "s3cr3t-pw";
	harness_init(&h, 3);
	assert_int_equal(run(&o, &h, NULL, &err), EX_CONFIG);
	assert_non_null(strstr(err, "no AUTH"));
	assert_int_equal(h.next, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	/* smtp-sink -d opens its capture file at MAIL and removes it when the session ends:
	 * give it a moment to notice that we hung up. */
	for (int i = 0; i < 80 && (n = sink_dumps(sk, &files)) > 0; i++) {
		free_dumps(files, n);
		poll(NULL, 0, 25);
	}
	assert_int_equal(n, 0);
	free(files);
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* A message with a bare LF is refused locally; the others go. */
static void test_smtp_bad_message(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, **files, *bad;
	const char *evil = "x@example.org>\r\nRCPT TO:<y@example.org";

	sink_start_args(sk, 1, NULL);
	o.url = sink_url(sk);
	harness_init(&h, 3);
	bad = xstrdup("Subject: x\r\n\r\nbare\nLF\r\n");
	free((char *)h.msgs[1].data);
	h.msgs[1].data = bad;
	h.msgs[1].len = strlen(bad);
	h.msgs[2].rcpt = &evil;
	h.msgs[2].nrcpt = 1;
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	assert_int_equal(h.out[0].state, TX_SENT);
	assert_int_equal(h.out[1].state, TX_FAILED);
	assert_non_null(strstr(h.out[1].error, "bare LF"));
	assert_int_equal(h.out[2].state, TX_FAILED);
	assert_int_equal(h.out[2].code, 0);
	assert_int_equal(sink_dumps(sk, &files), 1);
	free_dumps(files, 1);
	harness_free(&h);
	free((char *)o.url);
}

/* *stop = 1: no new message is asked for, the one in flight is finished. */
static void test_smtp_stop(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL;

	sink_start_args(sk, 0, NULL);
	o.url = sink_url(sk);
	harness_init(&h, 10);
	h.stop_at = 3;
	h.stop_value = 1;
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_string_equal(err, "interrupted");
	assert_int_equal(h.next, 3);
	assert_int_equal(h.ndone, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(h.out[i].state, TX_SENT);
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* *stop = 2 (a second SIGINT, say) while the server sits on DATA: the message is abandoned
 * at once and, having not left, deferred. (After the dot libcurl 7.88 waits for the reply
 * inside curl_multi_perform(), curl issue 8555, so there only the timeout ends the wait.) */
static volatile sig_atomic_t *alarm_stop;

static void on_alarm(int sig)
{
	(void)sig;
	*alarm_stop = 2;
}

static void test_smtp_stop_abandon(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *f[] = {"-w", "5", NULL};
	struct itimerval it = {.it_value = {.tv_usec = 500000}};
	int64_t t0;

	sink_start_args(sk, 0, f);
	o.url = sink_url(sk);
	o.timeout = 30;
	harness_init(&h, 1);
	alarm_stop = &h.stop;
	signal(SIGALRM, on_alarm);
	setitimer(ITIMER_REAL, &it, NULL);
	t0 = ratelimit_now();
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_in_range(ratelimit_now() - t0, 400, 2000);
	assert_int_equal(h.ndone, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	assert_string_equal(h.out[0].error, "interrupted");
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* next() answering -1: the transport waits as told before asking again. */
static void test_smtp_wait(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL;
	int64_t t0, el;

	sink_start_args(sk, 0, NULL);
	o.url = sink_url(sk);
	harness_init(&h, 4);
	h.wait_ms = 300;
	t0 = ratelimit_now();
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	el = ratelimit_now() - t0;
	assert_all(&h, TX_SENT, 250, "250 ");
	assert_in_range(el, 900, 3000);
	harness_free(&h);
	free((char *)o.url);
}

static void test_open_errors(void **state)
{
	struct {
		const char *url, *tls, *user, *password;
		int code;
	} cases[] = {
	    {"smtp://mail.example.org", "none", "u", "s3cr3t-pw",
	     EX_CONFIG}, /* AUTH in cleartext */
	    {"smtp://mail.example.org", "", "u", "s3cr3t-pw", EX_OK},
	    {"smtp://127.0.0.1:2525", "none", "u", "s3cr3t-pw", EX_OK}, /* loopback */
	    {"smtps://mail.example.org", "starttls", NULL, NULL, EX_CONFIG},
	    {"smtps://mail.example.org", "none", NULL, NULL, EX_CONFIG},
	    {"smtp://mail.example.org", "sometimes", NULL, NULL, EX_CONFIG},
	    {"smtp://u:p@mail.example.org", "", NULL, NULL, EX_CONFIG}, /* secret in URL */
	    {"smtp://mail.example.org/x?y", "", NULL, NULL, EX_CONFIG},
	    {"smtp://mail.example.org", "", "u", NULL, EX_CONFIG}, /* no password */
	    {"smtp://", "", NULL, NULL, EX_CONFIG},
	    {"http://mail.example.org", "", NULL, NULL, EX_CONFIG},
	    {"maildir:", "", NULL, NULL, EX_CONFIG},
	    {"maildir:/proc/demarche/outbox", "", NULL, NULL, EX_IOERR},
	    {"", "", NULL, NULL, EX_CONFIG},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct transport_opts o = {.url = cases[i].url,
		                           .tls = cases[i].tls,
		                           .user = cases[i].user,
		                           .password = cases[i].password};
		struct transport *t = NULL;
		char *err = NULL;
		int rc = transport_open(&o, &t, &err);

		if (rc != cases[i].code)
			print_error("case %zu (%s): %d, expected %d (%s)\n", i, cases[i].url, rc,
			            cases[i].code, err ? err : "");
		assert_int_equal(rc, cases[i].code);
		assert_true(rc == EX_OK ? t && !err : !t && err && *err);
		if (cases[i].password)
			assert_null(err && strstr(err, cases[i].password) ? err : NULL);
		transport_close(t);
		free(err);
	}
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(transport_host_is_loopback("127.0.0.1"));
	assert_true(transport_host_is_loopback("127.1.2.3"));
	assert_true(transport_host_is_loopback("localhost"));
	assert_true(transport_host_is_loopback("[::1]"));
	assert_true(transport_host_is_loopback("::ffff:127.0.0.1"));
	assert_false(transport_host_is_loopback("128.0.0.1"));
	assert_false(transport_host_is_loopback("localhost.example.org"));
	assert_false(transport_host_is_loopback("[::2]"));
	assert_false(transport_host_is_loopback("mail.example.org"));
	assert_int_equal(transport_exitcode(TX_SENT), EX_OK);
	assert_int_equal(transport_exitcode(TX_FAILED), EX_UNAVAILABLE);
	assert_int_equal(transport_exitcode(TX_UNKNOWN), EX_TEMPFAIL);
	assert_string_equal(transport_state_name(TX_DEFERRED), "deferred");
}

/* ---- against faulty_smtp.py (aiosmtpd): what smtp-sink cannot do ---- */

/* tests/integration/servers/faulty_smtp.py, from $SRCDIR (ctest) or this file's place. */
static char *faulty_script(void)
{
	const char *src = getenv("SRCDIR");

	if (src && *src)
		return xasprintf("%s/tests/integration/servers/faulty_smtp.py", src);
	return xasprintf("%.*s/../integration/servers/faulty_smtp.py",
	                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
}

/* Starts the faulty server with the given options (NULL-terminated) on sk->port; it logs
 * each accepted transaction to DIR/faulty.log ("tx PEERPORT rcpt,rcpt BYTES"). */
static void faulty_start(struct sink *sk, char *const *opts)
{
	char *argv[32], *script = faulty_script(), *port = xasprintf("%d", sk->port),
	                *log = xasprintf("%s/faulty.log", sk->dir);
	int n = 0;

	/* Debian's python3 has aiosmtpd; a python3 earlier in PATH may not. */
	argv[n++] = "/usr/bin/python3";
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--log";
	argv[n++] = log;
	for (int i = 0; opts && opts[i]; i++)
		argv[n++] = opts[i];
	argv[n] = NULL;
	sk->pid = fork();
	assert_true(sk->pid >= 0);
	if (sk->pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < 400 && !port_open(sk->port); i++)
		poll(NULL, 0, 25);
	assert_true(port_open(sk->port));
	free(script);
	free(port);
	free(log);
}

/* The transactions the faulty server accepted: lines "tx PEERPORT rcpt,rcpt BYTES". */
static size_t faulty_log(const struct sink *sk, char ***lines)
{
	char *p = xasprintf("%s/faulty.log", sk->dir), *text = NULL, *save = NULL;
	size_t len, n = 0;

	*lines = NULL;
	if (read_file(p, &text, &len) == 0)
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			*lines = xreallocarray(*lines, n + 1, sizeof(**lines));
			(*lines)[n++] = xstrdup(l);
		}
	free(text);
	free(p);
	return n;
}

/* The peer port of a log line ("tx 41234 ..."): which connection carried it. */
static long log_conn(const char *line)
{
	return strtol(line + 3, NULL, 10);
}

/* Gives message i of h the recipients rcpt (NULL-terminated, static strings). */
static void set_rcpt(struct harness *h, size_t i, const char *const *rcpt)
{
	size_t n = 0;

	while (rcpt[n])
		n++;
	h->msgs[i].rcpt = rcpt;
	h->msgs[i].nrcpt = n;
}

static void assert_rcpt(const struct outcome *o, size_t j, enum transport_state st, int code,
                        const char *reply_prefix)
{
	const struct outcome_rcpt *e = &o->rcpt[j];

	if (e->state != st || e->code != code ||
	    (reply_prefix && (!e->reply || !str_startswith(e->reply, reply_prefix)))) {
		print_error("recipient %zu: state %s code %d reply '%s'\n", j,
		            transport_state_name(e->state), e->code,
		            e->reply ? e->reply : "(none)");
		fail();
	}
}

/* A 550 for the Cc address: the main and other addresses get the letter, the Cc fails with
 * its own reply; all refused: failed, or deferred when one refusal was temporary. */
static void test_rcpt_refused_one(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, **lines, *f[] = {"--refuse-rcpt", "cc@", "--defer-rcpt", "busy@", NULL};
	static const char *const r0[] = {"main@ken.example", "cc@ken.example", "other@ken.example",
	                                 NULL};
	static const char *const r1[] = {"cc@alb.example", NULL};
	static const char *const r2[] = {"cc@afg.example", "busy@afg.example", NULL};
	size_t n;

	faulty_start(sk, f);
	o.url = sink_url(sk);
	o.timeout = 10;
	harness_init(&h, 3);
	set_rcpt(&h, 0, r0);
	set_rcpt(&h, 1, r1);
	set_rcpt(&h, 2, r2);
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	assert_null(err);

	assert_int_equal(h.out[0].state, TX_SENT);
	assert_int_equal(h.out[0].code, 250);
	assert_rcpt(&h.out[0], 0, TX_SENT, 250, "250 2.0.0 Ok: queued as Q1");
	assert_rcpt(&h.out[0], 1, TX_FAILED, 550, "550 5.1.1 <cc@ken.example>: Recipient");
	assert_rcpt(&h.out[0], 2, TX_SENT, 250, "250 2.0.0 Ok: queued as Q1");

	assert_int_equal(h.out[1].state, TX_FAILED);
	assert_int_equal(h.out[1].code, 550);
	assert_rcpt(&h.out[1], 0, TX_FAILED, 550, "550 5.1.1 <cc@alb.example>");

	assert_int_equal(h.out[2].state, TX_DEFERRED);
	assert_int_equal(h.out[2].code, 450);
	assert_true(str_startswith(h.out[2].reply, "450 4.2.1 <busy@afg.example>"));
	assert_rcpt(&h.out[2], 0, TX_FAILED, 550, "550 5.1.1 <cc@afg.example>");
	assert_rcpt(&h.out[2], 1, TX_DEFERRED, 450, "450 4.2.1 <busy@afg.example>");

	/* The server got one message, for the two accepted addresses. */
	n = faulty_log(sk, &lines);
	assert_int_equal(n, 1);
	assert_non_null(strstr(lines[0], " main@ken.example,other@ken.example "));
	free_dumps(lines, n);
	harness_free(&h);
	free((char *)o.url);
}

/* A server that takes one recipient per transaction (452 on the second RCPT): every
 * recipient gets the letter, in consecutive transactions on ONE connection. */
static void test_rcpt_452_one_per_transaction(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, **lines, *f[] = {"--max-rcpt", "1", NULL};
	long conns = 0;
	size_t n, total = 0;

	faulty_start(sk, f);
	o.url = sink_url(sk);
	o.timeout = 10;
	harness_init(&h, 3); /* 1, 2 and 3 recipients */
	assert_int_equal(run(&o, &h, &conns, &err), EX_OK);
	assert_null(err);
	assert_int_equal(conns, 1);
	for (size_t i = 0; i < h.n; i++) {
		assert_int_equal(h.out[i].state, TX_SENT);
		assert_int_equal(h.out[i].code, 250);
		assert_null(h.out[i].error);
		for (size_t j = 0; j < h.msgs[i].nrcpt; j++) {
			char *want = xasprintf("250 2.0.0 Ok: queued as Q%zu", ++total);

			/* Each recipient has the final reply of its own transaction. */
			assert_rcpt(&h.out[i], j, TX_SENT, 250, NULL);
			assert_string_equal(h.out[i].rcpt[j].reply, want);
			free(want);
		}
	}
	n = faulty_log(sk, &lines);
	assert_int_equal(n, total);
	for (size_t k = 0, t = 0; k < h.n; k++)
		for (size_t j = 0; j < h.msgs[k].nrcpt; j++, t++) {
			char *want = xasprintf(" %s ", h.msgs[k].rcpt[j]);

			assert_non_null(strstr(lines[t], want));
			assert_int_equal(log_conn(lines[t]), log_conn(lines[0]));
			free(want);
		}
	free_dumps(lines, n);
	harness_free(&h);
	free((char *)o.url);
}

/* *stop = 1 while a message is in its first of three transactions (452): no new message,
 * but that one is finished, every recipient delivered. */
static void test_rcpt_452_stop_finishes(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, **lines, *f[] = {"--max-rcpt", "1", "--dot-delay", "200", NULL};
	size_t n;

	faulty_start(sk, f);
	o.url = sink_url(sk);
	o.timeout = 10;
	harness_init(&h, 6);
	h.stop_at = 3; /* message 2 has 3 recipients */
	h.stop_value = 1;
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_string_equal(err, "interrupted");
	assert_int_equal(h.next, 3);
	assert_int_equal(h.ndone, 3);
	assert_int_equal(h.out[2].state, TX_SENT);
	for (size_t j = 0; j < 3; j++)
		assert_rcpt(&h.out[2], j, TX_SENT, 250, "250 2.0.0 Ok: queued as Q");
	n = faulty_log(sk, &lines);
	assert_int_equal(n, 1 + 2 + 3);
	free_dumps(lines, n);
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* Sends n messages at concurrency c; returns the milliseconds it took. */
static int64_t timed_run(struct sink *sk, int c, size_t n, long *conns)
{
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL;
	int64_t t0;

	o.url = sink_url(sk);
	o.timeout = 10;
	o.concurrency = c;
	harness_init(&h, n);
	t0 = ratelimit_now();
	assert_int_equal(run(&o, &h, conns, &err), EX_OK);
	t0 = ratelimit_now() - t0;
	assert_all(&h, TX_SENT, 250, "250 2.0.0 Ok: queued as Q");
	harness_free(&h);
	free((char *)o.url);
	return t0;
}

/* A server that answers the final dot after 100 ms: at concurrency 4 the waits overlap
 * (issue 15; libcurl's multi interface did not overlap them, curl issue 8555). */
static void test_concurrency_overlaps_slow_dot(void **state)
{
	struct sink *sk = *state;
	char *f[] = {"--dot-delay", "100", NULL};
	const size_t n = 20;
	const int64_t serial = (int64_t)n * 100; /* the least a serial run can take */
	int64_t t1, t4;
	long c1 = 0, c4 = 0;

	faulty_start(sk, f);
	t1 = timed_run(sk, 1, n, &c1);
	t4 = timed_run(sk, 4, n, &c4);
	print_message(
	    "slow dot, %zu messages: concurrency 1 %lld ms, 4 %lld ms (%ld connections)\n", n,
	    (long long)t1, (long long)t4, c4);
	assert_int_equal(c1, 1);
	assert_int_equal(c4, 4);
	assert_true(t1 >= serial);
	assert_true(t4 < serial * 6 / 10);
}

/* A reply line without a space after its code fails at once as a protocol error, and the
 * run stops; at the final dot it leaves the message in doubt. */
static void test_malformed_reply(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *f[] = {"--malformed", "rcpt", NULL};
	int64_t t0;

	faulty_start(sk, f);
	o.url = sink_url(sk);
	o.timeout = 20;
	harness_init(&h, 3);
	t0 = ratelimit_now();
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_true(ratelimit_now() - t0 < 3000);
	assert_non_null(strstr(err, "protocol error"));
	assert_non_null(strstr(err, "'250ok'"));
	assert_int_equal(h.next, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	assert_non_null(strstr(h.out[0].error, "protocol error"));
	free(err);
	err = NULL;
	harness_free(&h);

	sink_stop(sk);
	f[1] = "dot";
	faulty_start(sk, f);
	harness_init(&h, 1);
	t0 = ratelimit_now();
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_true(ratelimit_now() - t0 < 3000);
	assert_int_equal(h.out[0].state, TX_UNKNOWN);
	assert_int_equal(h.out[0].rcpt[0].state, TX_UNKNOWN);
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* A multi-line reply is kept on one line, continuation codes dropped. */
static void test_multiline_reply(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *f[] = {"--multiline-dot", NULL};
	struct buf b = BUF_INIT;

	faulty_start(sk, f);
	o.url = sink_url(sk);
	harness_init(&h, 1);
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	assert_string_equal(h.out[0].reply,
	                    "250 2.0.0 Ok: queued as Q1 by the faulty server have a nice day");
	assert_string_equal(h.out[0].rcpt[0].reply, h.out[0].reply);
	harness_free(&h);
	free((char *)o.url);

	/* Lines as curl hands them over: the enhanced code is dropped only when repeated. */
	struct buf line = BUF_INIT;
	const char *in[] = {"550-5.1.1 The account does not exist.\r\n", "550-5.1.1 Check it\r\n",
	                    "550 5.7.1 see https://example.org/x\r\n"};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(smtp_reply_add(&line, in[i], strlen(in[i])), i < 2 ? -1 : 550);
	smtp_reply_oneline(buf_str(&line), &b);
	assert_string_equal(buf_str(&b), "550 5.1.1 The account does not exist. Check it 5.7.1 "
	                                 "see https://example.org/x");
	buf_reset(&line);
	assert_int_equal(smtp_reply_add(&line, "250ok\r\n", 7), SMTP_REPLY_BAD);
	buf_reset(&line);
	assert_int_equal(smtp_reply_add(&line, "354\r\n", 5), 354);
	buf_reset(&line);
	assert_int_equal(smtp_reply_add(&line, "hello\r\n", 7), SMTP_REPLY_BAD);
	buf_free(&line);
	buf_free(&b);
}

/* smtps:// to a port that speaks plain SMTP: a clear word, not GnuTLS's. */
static void test_smtps_to_plain_port(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *want;

	sink_start_args(sk, 0, NULL);
	o.url = xasprintf("smtps://127.0.0.1:%d", sk->port);
	o.timeout = 10;
	harness_init(&h, 2);
	assert_int_equal(run(&o, &h, NULL, &err), EX_CONFIG);
	want = xasprintf("the server at 127.0.0.1:%d did not speak TLS: is the port for STARTTLS "
	                 "(smtp://)?",
	                 sk->port);
	assert_string_equal(err, want);
	assert_int_equal(h.ndone, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	assert_string_equal(h.out[0].error, want);
	free(want);
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* *stop = 2 while the server sits on the final dot: abandoned within about a second (no
 * longer up to the timeout), in doubt. */
static void test_stop_abandon_after_dot(void **state)
{
	struct sink *sk = *state;
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *f[] = {"--dot-delay", "8000", NULL};
	struct itimerval it = {.it_value = {.tv_usec = 500000}};
	int64_t t0;

	faulty_start(sk, f);
	o.url = sink_url(sk);
	o.timeout = 30;
	o.concurrency = 2;
	harness_init(&h, 2);
	alarm_stop = &h.stop;
	signal(SIGALRM, on_alarm);
	setitimer(ITIMER_REAL, &it, NULL);
	t0 = ratelimit_now();
	assert_int_equal(run(&o, &h, NULL, &err), EX_TEMPFAIL);
	assert_in_range(ratelimit_now() - t0, 400, 2500);
	assert_string_equal(err, "interrupted");
	assert_int_equal(h.ndone, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(h.out[i].state, TX_UNKNOWN);
		assert_string_equal(h.out[i].error, "interrupted");
	}
	free(err);
	harness_free(&h);
	free((char *)o.url);
}

/* ---- Maildir ---- */

static void test_maildir(void **state)
{
	struct sink *sk = *state; /* only its temp dir */
	struct transport_opts o = {0};
	struct harness h;
	char *err = NULL, *url = xasprintf("maildir:%s/out/box", sk->dir), *p;
	DIR *d;
	struct dirent *e;
	size_t nnew = 0;

	o.url = url;
	harness_init(&h, 20);
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	assert_int_equal(h.ndone, 20);
	for (size_t i = 0; i < h.n; i++) {
		char *text;
		size_t len;

		assert_int_equal(h.out[i].state, TX_SENT);
		assert_true(str_startswith(h.out[i].reply, "maildir: new/"));
		assert_non_null(strstr(h.out[i].reply, ".demarche"));
		p = xasprintf("%s/out/box/%s", sk->dir, h.out[i].reply + strlen("maildir: "));
		assert_int_equal(read_file(p, &text, &len), 0);
		assert_int_equal(len, h.msgs[i].len);
		assert_memory_equal(text, h.msgs[i].data, len);
		free(text);
		free(p);
	}
	p = xasprintf("%s/out/box/new", sk->dir);
	d = opendir(p);
	while ((e = readdir(d)))
		nnew += e->d_name[0] != '.';
	closedir(d);
	free(p);
	assert_int_equal(nnew, 20);
	p = xasprintf("%s/out/box/tmp", sk->dir);
	d = opendir(p);
	while ((e = readdir(d)))
		assert_true(e->d_name[0] == '.');
	closedir(d);
	free(p);
	p = xasprintf("%s/out/box/cur", sk->dir);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	harness_free(&h);

	/* A bad message is refused and nothing is written. */
	harness_init(&h, 1);
	free((char *)h.msgs[0].data);
	h.msgs[0].data = xstrdup("Subject: x\n\nLF only\n");
	h.msgs[0].len = strlen(h.msgs[0].data);
	assert_int_equal(run(&o, &h, NULL, &err), EX_OK);
	assert_int_equal(h.out[0].state, TX_FAILED);
	harness_free(&h);
	free(url);
}

/* ---- rate limiter (time injected) ---- */

static void test_ratelimit_parse(void **state)
{
	long n;
	int64_t per;
	char *err = NULL;

	(void)state;
	assert_int_equal(ratelimit_parse("600/minute", &n, &per, &err), EX_OK);
	assert_int_equal(n, 600);
	assert_int_equal(per, 60000);
	assert_int_equal(ratelimit_parse("30/hour", &n, &per, &err), EX_OK);
	assert_int_equal(per, 3600000);
	const char *bad[] = {"",       "600",        "600/min",          "0/minute", "-1/hour",
	                     "x/hour", "10/minute ", "99999999999/hour", "/hour"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ratelimit_parse(bad[i], &n, &per, &err), EX_USAGE);
		assert_non_null(strstr(err, "N/minute"));
	}
	free(err);
}

static void test_ratelimit_pacing(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	char *err = NULL;
	int64_t t = 1700000000000, starts[50];
	int n = 0;

	(void)state;
	assert_int_equal(ratelimit_wait_ms(rl, t), 0); /* no limit */
	assert_int_equal(ratelimit_set_rate(rl, "600/minute", &err), EX_OK);
	assert_int_equal(ratelimit_wait_ms(rl, t), 0);
	assert_true(ratelimit_take(rl, t));
	assert_int_equal(ratelimit_wait_ms(rl, t), 100);
	assert_false(ratelimit_take(rl, t + 99));
	assert_int_equal(ratelimit_wait_ms(rl, t + 40), 60);

	/* Simulate a caller that starts whenever allowed, polling every 7 ms: never two
	 * starts closer than 100 ms, no burst after an idle spell. */
	starts[n++] = t;
	for (int64_t now = t; n < 50; now += 7) {
		if (n == 20 && now < starts[19] + 2000)
			continue; /* idle 2 s */
		if (ratelimit_take(rl, now))
			starts[n++] = now;
	}
	for (int i = 1; i < n; i++)
		assert_true(starts[i] - starts[i - 1] >= 100);
	assert_true(starts[21] - starts[20] >= 100);
	assert_int_equal(ratelimit_set_rate(rl, "7/hour", &err), EX_OK);
	assert_int_equal(ratelimit_wait_ms(rl, starts[49]), 514286); /* 3600000/7 rounded up */
	assert_int_equal(ratelimit_set_rate(rl, "N/hour", &err), EX_USAGE);
	free(err);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

static void test_ratelimit_cap(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	const int64_t day = 86400000, t = 1700000000000;

	(void)state;
	ratelimit_add_cap(rl, 5, day);
	/* The ledger says 3 went out in the last day (given out of order), one of them older. */
	ratelimit_note(rl, t - 1000);
	ratelimit_note(rl, t - day - 5); /* outside the window */
	ratelimit_note(rl, t - 3000);
	ratelimit_note(rl, t - 2000);
	assert_true(ratelimit_take(rl, t));
	/* 4 in window + ... the 5th slot: t-day-5 is the oldest kept and already expired */
	assert_true(ratelimit_take(rl, t + 1));
	assert_false(ratelimit_take(rl, t + 2));
	/* Full: the oldest in the window (t - 3000) leaves at t - 3000 + day. */
	assert_int_equal(ratelimit_wait_ms(rl, t + 2), day - 3000 - 2);
	assert_true(ratelimit_take(rl, t - 3000 + day));
	assert_false(ratelimit_take(rl, t - 3000 + day));
	assert_int_equal(ratelimit_wait_ms(rl, t - 3000 + day), 1000);

	/* Pacing and cap together: the longer wait wins. */
	assert_int_equal(ratelimit_set_rate(rl, "1/hour", NULL), EX_OK);
	assert_int_equal(ratelimit_wait_ms(rl, t - 3000 + day), 3600000);

	/* A cap of 0 never lets anything through. */
	ratelimit_add_cap(rl, 0, day);
	assert_int_equal(ratelimit_wait_ms(rl, t + 10 * day), -1);
	assert_false(ratelimit_take(rl, t + 10 * day));
	ratelimit_free(rl);
}

/* ---- bench: messages/s to smtp-sink, 2,000 messages of 5 KB ---- */

static double bench_run(struct sink *sk, int concurrency, size_t n)
{
	struct transport_opts o = {0};
	struct harness h;
	struct buf body = BUF_INIT;
	char *err = NULL;
	int64_t t0;
	double secs;

	o.url = sink_url(sk);
	o.concurrency = concurrency;
	harness_init(&h, n);
	for (int i = 0; i < 64; i++)
		buf_adds(&body,
		         "Excellency, the coalition writes about the Rome Statute.......\r\n");
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;

		buf_add(&b, h.msgs[i].data, h.msgs[i].len);
		while (b.len + 64 + 2 <= 5000 - 2)
			buf_add(&b, body.data, 64); /* one line of body */
		while (b.len < 5000 - 2)
			buf_addc(&b, 'x');
		buf_adds(&b, "\r\n");
		free((char *)h.msgs[i].data);
		h.msgs[i].len = b.len;
		h.msgs[i].data = buf_detach(&b);
	}
	t0 = ratelimit_now();
	if (run(&o, &h, NULL, &err) != EX_OK)
		fprintf(stderr, "bench: %s\n", err ? err : "?");
	secs = (double)(ratelimit_now() - t0) / 1000.0;
	for (size_t i = 0; i < n; i++)
		if (h.out[i].state != TX_SENT)
			fprintf(stderr, "bench: message %zu not sent: %s %d %s %s\n", i,
			        transport_state_name(h.out[i].state), h.out[i].code,
			        h.out[i].reply ? h.out[i].reply : "",
			        h.out[i].error ? h.out[i].error : "");
	harness_free(&h);
	buf_free(&body);
	free((char *)o.url);
	free(err);
	return (double)n / secs;
}

/* Runs smtp-source -d (one connection per session, like ours) on the same sink; msgs/s. */
static double bench_source(const struct sink *sk, int sessions, size_t n)
{
	char s[16], m[16], hp[32];
	int64_t t0 = ratelimit_now();
	pid_t pid;
	int status;

	snprintf(s, sizeof(s), "%d", sessions);
	snprintf(m, sizeof(m), "%zu", n);
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", sk->port);
	pid = fork();
	if (pid == 0) {
		execlp("smtp-source", "smtp-source", "-d", "-s", s, "-m", m, "-l", "5000", hp,
		       (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "bench: smtp-source failed\n");
	return (double)n / ((double)(ratelimit_now() - t0) / 1000.0);
}

static int bench(void)
{
	void *st;
	struct sink *sk;

	setup(&st);
	sk = st;
	sink_start_args(sk, 0, NULL);
	for (int c = 1; c <= 4; c *= 4) {
		printf("concurrency %d: demarche transport %.0f messages/s, smtp-source -d -s %d "
		       "%.0f messages/s (2000 x 5 KB)\n",
		       c, bench_run(sk, c, 2000), c, bench_source(sk, c, 2000));
		fflush(stdout);
	}
	teardown(&st);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_loopback),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_ratelimit_parse),
	    cmocka_unit_test(test_ratelimit_pacing),
	    cmocka_unit_test(test_ratelimit_cap),
	    cmocka_unit_test_setup_teardown(test_maildir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_125_one_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_concurrency_4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_rcpt_450, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_rcpt_500, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_data_500, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_dot_450, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_dot_500, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_dot_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_slow_before_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_slow_after_dot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_421_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_unreachable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_auth_not_offered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_bad_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_stop_abandon, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtp_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rcpt_refused_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rcpt_452_one_per_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rcpt_452_stop_finishes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrency_overlaps_slow_dot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multiline_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smtps_to_plain_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_abandon_after_dot, setup, teardown),
	};

	if (argc > 1 && !strcmp(argv[1], "bench"))
		return bench();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
