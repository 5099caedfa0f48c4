/*
 * Unit tests for src/campaign/engine (with plan and a real SQLite ledger) through a fake
 * transport: 'sending' is committed before a message is handed out, each address's own
 * outcome reaches its delivery, deferred messages are retried within the run, --limit and
 * the daily cap stop where they should (counting what other senders send meanwhile), and the stop flag finishes what is in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "campaign/engine.h"
#include "campaign/plan.h"
#include "ledger/ledger.h"

#define HASH "1111111111111111111111111111111111111111111111111111111111111111"

/* The fake transport: answers each message from a script, checking the ledger first. */
struct fake {
	struct ledger *l;
	int calls;                    /* messages handed out */
	enum transport_state *script; /* the outcome of call i (past the end: sent) */
	int nscript;
	int refuse_second; /* the second address of each message is refused (550) */
	int stop_after;    /* set the stop flag after this many calls (0: never) */
	volatile sig_atomic_t *stop;
	int not_sending; /* a message was handed out before its 'sending' was committed */
};

static int count_state(struct ledger *l, const char *state);

static int fake_run(struct transport *t, transport_next_fn next, transport_done_fn done, void *u,
                    volatile sig_atomic_t *stop, char **errstr)
{
	struct fake *f = (struct fake *)t;

	(void)errstr;
	for (;;) {
		struct transport_msg m = {0};
		struct transport_result r = {0};
		struct transport_rcpt rr[8];
		long wait_ms = 0;
		int n;

		if (stop && *stop)
			return EX_TEMPFAIL;
		n = next(u, &m, &wait_ms);
		if (n == 0)
			return EX_OK;
		if (n < 0) {
			usleep((useconds_t)(wait_ms > 0 ? wait_ms : 1) * 1000);
			continue;
		}
		/* Durable before it leaves: the ledger already says 'sending' for it. */
		if (count_state(f->l, "sending") < (int)m.nrcpt)
			f->not_sending = 1;
		r.state = f->calls < f->nscript ? f->script[f->calls] : TX_SENT;
		r.code = r.state == TX_SENT ? 250 : r.state == TX_DEFERRED ? 451 : 554;
		r.reply = r.state == TX_SENT ? "250 ok" : "4xx/5xx no";
		for (size_t i = 0; i < m.nrcpt && i < 8; i++) {
			rr[i].state = r.state;
			rr[i].code = r.code;
			rr[i].reply = r.reply;
			if (f->refuse_second && i == 1) {
				rr[i].state = TX_FAILED;
				rr[i].code = 550;
				rr[i].reply = "550 5.1.1 no such user";
			}
		}
		r.rcpt = rr;
		f->calls++;
		if (f->stop_after && f->calls >= f->stop_after)
			*f->stop = 1;
		done(u, &m, &r);
	}
}

struct state_count {
	const char *state;
	int n;
};

static int count_row(const struct ledger_row *row, void *ctx)
{
	struct state_count *c = ctx;

	if (!strcmp(ledger_state_name(row->state), c->state))
		c->n++;
	return 0;
}

static int count_state(struct ledger *l, const char *state)
{
	struct state_count c = {state, 0};
	char *err = NULL;

	assert_int_equal(ledger_deliveries(l, "camp", count_row, &c, &err), EX_OK);
	return c.n;
}

struct env {
	char dir[64], *path;
	struct ledger *l;
	struct plan p;
	struct fake f;
	struct engine_opts o;
	volatile sig_atomic_t stop;
};

/* n missions of two addresses each, planned against a fresh ledger. */
static void env_setup(struct env *e, int n)
{
	char *err = NULL;

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/test_engine-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	e->path = xasprintf("%s/ledger.db", e->dir);
	assert_int_equal(ledger_open(e->path, LEDGER_CREATE, &e->l, &err), EX_OK);
	assert_int_equal(ledger_campaign_begin(e->l, "camp", "T", "S", HASH, 0, &err), EX_OK);
	for (int i = 0; i < n; i++) {
		char key[16], id[64], a0[64], a1[64];
		const char *rcpt[2] = {a0, a1};

		snprintf(key, sizeof(key), "K%02d", i);
		snprintf(id, sizeof(id), "<camp.%s@x.example>", key);
		snprintf(a0, sizeof(a0), "main%02d@m.example", i);
		snprintf(a1, sizeof(a1), "cc%02d@m.example", i);
		assert_int_equal(
		    plan_add(&e->p, key, id, rcpt, 2, "Subject: x\r\n\r\nbody\r\n", 21, &err),
		    EX_OK);
	}
	assert_int_equal(plan_deliveries(&e->p, e->l, "camp", 0, "fake", &err), EX_OK);
	assert_int_equal((int)e->p.n, n);
	e->f.l = e->l;
	e->f.stop = &e->stop;
	e->o.ledger = e->l;
	e->o.campaign = "camp";
	e->o.account = "fake";
	e->o.t = (struct transport *)&e->f;
	e->o.run = fake_run;
	e->o.max_attempts = 1;
	e->o.from = "s@x.example";
	e->o.stop = &e->stop;
}

static void env_free(struct env *e)
{
	char *cmd = xasprintf("rm -rf '%s'", e->dir);

	plan_free(&e->p);
	ledger_close(e->l);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(e->path);
}

static void test_sent_each_address(void **state)
{
	struct env e;
	struct engine_stats st;
	char *err = NULL;
	size_t c[MS__COUNT];

	(void)state;
	env_setup(&e, 5);
	e.f.refuse_second = 1;
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_OK);
	assert_int_equal(e.f.not_sending, 0);
	assert_int_equal((int)st.started, 5);
	assert_int_equal((int)st.sent, 5);
	assert_int_equal((int)st.rcpt_failed, 5);
	assert_int_equal(count_state(e.l, "sent"), 5);
	assert_int_equal(count_state(e.l, "failed"), 5);
	assert_int_equal(count_state(e.l, "sending"), 0);
	plan_count(&e.p, c);
	assert_int_equal((int)c[MS_FAILED], 5); /* a refused address is the mission's failure */
	env_free(&e);
}

static void test_deferred_retried(void **state)
{
	struct env e;
	struct engine_stats st;
	enum transport_state script[] = {TX_DEFERRED, TX_SENT, TX_SENT};
	char *err = NULL;

	(void)state;
	env_setup(&e, 2);
	e.f.script = script;
	e.f.nscript = 3;
	e.o.max_attempts = 2;
	e.o.retry_after = 0;
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_OK);
	assert_int_equal(e.f.calls, 3);
	assert_int_equal((int)st.started, 2); /* a retry is not one more message */
	assert_int_equal((int)st.sent, 2);
	assert_int_equal(count_state(e.l, "sent"), 4);
	env_free(&e);
}

static void test_deferred_left(void **state)
{
	struct env e;
	struct engine_stats st;
	enum transport_state script[] = {TX_DEFERRED, TX_UNKNOWN};
	char *err = NULL;
	size_t c[MS__COUNT];

	(void)state;
	env_setup(&e, 3);
	e.f.script = script;
	e.f.nscript = 2;
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_OK);
	assert_int_equal((int)st.deferred, 1);
	assert_int_equal((int)st.unknown, 1);
	assert_int_equal((int)st.sent, 1);
	plan_count(&e.p, c);
	assert_int_equal((int)c[MS_DEFERRED], 1);
	assert_int_equal((int)c[MS_UNKNOWN], 1);
	assert_int_equal((int)c[MS_SENT], 1);
	env_free(&e);
}

static void test_limit_and_cap(void **state)
{
	struct env e;
	struct engine_stats st;
	char *err = NULL;
	size_t c[MS__COUNT];
	struct pace pc;

	(void)state;
	env_setup(&e, 6);
	e.o.limit = 2;
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_OK);
	assert_int_equal(e.f.calls, 2);
	plan_count(&e.p, c);
	assert_int_equal((int)c[MS_NOT_STARTED], 4);
	env_free(&e);

	env_setup(&e, 6);
	assert_int_equal(pace_setup(&pc, e.l, "fake", NULL, 5, &err), EX_OK);
	e.o.pace = &pc; /* two missions of two addresses fit, the third does not */
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_OK);
	assert_int_equal(e.f.calls, 2);
	assert_true(st.capped);
	assert_int_equal(count_state(e.l, "pending"), 8);
	pace_free(&pc);
	env_free(&e);
}

/* Another sender of the account (a team ledger) sent mission m since this run started. */
static void others_sent(struct env *e, size_t m)
{
	struct ledger_outcome o = {0};
	char *err = NULL;

	o.via = "fake";
	for (size_t i = 0; i < e->p.m[m].n; i++) {
		assert_int_equal(
		    ledger_transition(e->l, e->p.m[m].deliv[i], LS_SENDING, 0, &o, NULL, &err),
		    EX_OK);
		assert_int_equal(
		    ledger_transition(e->l, e->p.m[m].deliv[i], LS_SENT, 0, &o, NULL, &err), EX_OK);
	}
}

/* The cap and the rate count what the other senders sent during the run, not only before. */
static void test_cap_across_senders(void **state)
{
	struct env e;
	struct engine_stats st;
	struct pace pc;
	struct pace_own own = {0, 0};
	enum pace_verdict v;
	int64_t wait = 0;
	char *err = NULL;

	(void)state;
	env_setup(&e, 6);
	assert_int_equal(pace_setup(&pc, e.l, "fake", NULL, 5, &err), EX_OK);
	assert_int_equal((int)pc.cap_left, 5); /* nothing sent when the run began */
	others_sent(&e, 5);                    /* 2 recipients: room for one more message */
	e.o.pace = &pc;
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_OK);
	assert_int_equal(e.f.calls, 1);
	assert_true(st.capped);
	pace_free(&pc);
	env_free(&e);

	/* the rate's window counts messages, the others' and this run's own in flight */
	env_setup(&e, 6);
	assert_int_equal(pace_setup(&pc, e.l, "fake", "3/hour", 0, &err), EX_OK);
	others_sent(&e, 4);
	others_sent(&e, 5); /* two messages of two recipients each */
	assert_int_equal(pace_admit(&pc, e.l, &own, 2, &v, &wait, &err), EX_OK);
	assert_int_equal(v, PACE_GO);
	own.msgs = 1;
	own.rcpts = 2;
	assert_int_equal(pace_admit(&pc, e.l, &own, 2, &v, &wait, &err), EX_OK);
	assert_int_equal(v, PACE_WAIT);
	assert_int_equal((int)wait, 1200000); /* one interval of 3/hour */
	pace_free(&pc);
	env_free(&e);
}

static void test_stop(void **state)
{
	struct env e;
	struct engine_stats st;
	char *err = NULL;

	(void)state;
	env_setup(&e, 10);
	e.f.stop_after = 3;
	assert_int_equal(engine_run(&e.o, &e.p, &st, &err), EX_TEMPFAIL);
	free(err);
	assert_int_equal(e.f.calls, 3);
	assert_int_equal(count_state(e.l, "sent"), 6);
	assert_int_equal(count_state(e.l, "sending"), 0); /* the ledger is consistent */
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sent_each_address),  cmocka_unit_test(test_deferred_retried),
	    cmocka_unit_test(test_deferred_left),      cmocka_unit_test(test_limit_and_cap),
	    cmocka_unit_test(test_cap_across_senders), cmocka_unit_test(test_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
