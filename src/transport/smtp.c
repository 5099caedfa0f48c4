/*
 * The SMTP transport (RFC 5321): N worker threads, each with its own session (a libcurl easy
 * handle and its connection, reused message after message), fed by the caller's thread.
 *
 * Why threads: libcurl's multi interface waits for the reply to the final dot blocking
 * inside curl_multi_perform() (curl issue 8555), so N transfers on one thread do not overlap
 * that wait, which is most of a message's time at a server that filters content. libcurl is
 * thread-safe as long as each handle stays on one thread at a time.
 *
 * One mutex guards the slots; a slot goes IDLE -> READY (the caller put a message in it) ->
 * BUSY (its worker sends it) -> FINISHED (the caller reports it with done()) -> IDLE. next(),
 * commit() and done() run on the caller's thread only, so the ledger keeps one writer.
 *
 * The dot gate (smtp_run_gated()): a slot's gate is CLOSED when its message is handed to the
 * worker; the worker sends MAIL, RCPT and DATA while the caller's thread runs commit() (the
 * ledger's fsync), and at the 354 waits for the gate before any of the data, so before the
 * final dot. The caller fills every free slot first and then calls commit() for each, so one
 * commit covers the intents of all the messages that start together (and the outcomes
 * waiting). A slot is reported only once its gate has been answered.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "transport/backend.h"
#include "transport/smtp_opts.h"
#include "transport/smtp_session.h"

#define SMTP_MAX_CONCURRENCY 64
#define POLL_MS              200 /* how often *stop is looked at, at most */

enum slot_state { SLOT_IDLE, SLOT_READY, SLOT_BUSY, SLOT_FINISHED };
enum gate { GATE_OPEN, GATE_CLOSED, GATE_SHUT }; /* SHUT: no final dot for this message */

struct smtp;

/* One connection slot: a worker thread, its session, and the message it carries. */
struct slot {
	struct smtp *s;
	pthread_t tid;
	int started;       /* the thread runs */
	pthread_cond_t cv; /* signalled when the slot becomes READY, its gate moves, or at quit */
	enum slot_state st;
	enum gate gate;
	struct smtp_session *ss;
	struct transport_msg msg;
	struct transport_result res;
	int fatal;
	const char *fatal_msg;
};

struct smtp {
	struct smtp_conf conf; /* URL, TLS and AUTH, checked */
	struct slot *slots;
	int nslots;
	pthread_mutex_t mu;
	pthread_cond_t done_cv; /* signalled when a slot is FINISHED */
	int quit;               /* the workers leave (end of a run) */
	int gated;              /* this run keeps the dot gate */
	atomic_int abort;       /* *stop reached 2: transfers in flight are abandoned */
};

/* The dot gate, on the worker's thread: waits until the caller's commit() has answered for
 * this slot's message. 0: the final dot may go; -1: not (shut, or abandoned on *stop >= 2). */
static int slot_gate(void *arg)
{
	struct slot *sl = arg;
	struct smtp *s = sl->s;
	int open;

	pthread_mutex_lock(&s->mu);
	while (sl->gate == GATE_CLOSED && !atomic_load(&s->abort))
		pthread_cond_wait(&sl->cv, &s->mu);
	open = sl->gate == GATE_OPEN;
	pthread_mutex_unlock(&s->mu);
	return open ? 0 : -1;
}

static void *worker(void *arg)
{
	struct slot *sl = arg;
	struct smtp *s = sl->s;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (sl->st != SLOT_READY && !s->quit)
			pthread_cond_wait(&sl->cv, &s->mu);
		if (sl->st != SLOT_READY)
			break;
		sl->st = SLOT_BUSY;
		pthread_mutex_unlock(&s->mu);
		smtp_session_send(sl->ss, &sl->msg, s->gated ? slot_gate : NULL, sl, &sl->res,
		                  &sl->fatal, &sl->fatal_msg);
		pthread_mutex_lock(&s->mu);
		sl->st = SLOT_FINISHED;
		pthread_cond_signal(&s->done_cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Stops and joins the workers of a run. */
static void workers_stop(struct smtp *s)
{
	pthread_mutex_lock(&s->mu);
	s->quit = 1;
	for (int i = 0; i < s->nslots; i++)
		pthread_cond_signal(&s->slots[i].cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].started) {
			pthread_join(s->slots[i].tid, NULL);
			s->slots[i].started = 0;
		}
}

/*
 * Starts one worker per slot, with signals blocked so that they reach the caller's thread
 * (whose handler sets *stop). Returns 0, or an errno value when not one thread started.
 */
static int workers_start(struct smtp *s)
{
	sigset_t all, old;
	int err = 0, n = 0;

	s->quit = 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < s->nslots; i++) {
		err = pthread_create(&s->slots[i].tid, NULL, worker, &s->slots[i]);
		s->slots[i].started = !err;
		n += !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return n ? 0 : err;
}

static void smtp_free(void *impl);

int smtp_open(const struct transport_opts *o, void **impl, char **errstr)
{
	struct smtp *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int rc;

	smtp_curl_init();
	pthread_mutex_init(&s->mu, NULL);
	/* Timed waits on the monotonic clock, as transport_now_ms() and the pace are. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = smtp_conf_init(&s->conf, o, errstr);
	if (rc != EX_OK)
		goto out;
	s->nslots = o->concurrency > 0 ? o->concurrency : 1;
	if (s->nslots > SMTP_MAX_CONCURRENCY)
		s->nslots = SMTP_MAX_CONCURRENCY;
	s->slots = xcalloc((size_t)s->nslots, sizeof(*s->slots));
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		sl->s = s;
		pthread_cond_init(&sl->cv, NULL);
		if (smtp_session_new(&s->conf, o, &s->abort, &sl->ss) < 0) {
			rc = error_set(errstr, EX_SOFTWARE,
			               "libcurl refused an SMTP option (built without %s?)",
			               s->conf.usessl != CURLUSESSL_NONE ? "TLS" : "SMTP");
			goto out;
		}
	}
	*impl = s;
	s = NULL;
	rc = EX_OK;
out:
	smtp_free(s);
	return rc;
}

/* Reports every finished message (mutex held; released around done()). Returns how many. */
static int report_finished(struct smtp *s, transport_done_fn done, void *u, int *fatal,
                           char **fatal_msg)
{
	int n = 0;

	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		if (sl->st != SLOT_FINISHED || sl->gate == GATE_CLOSED)
			continue;
		if (sl->fatal && !*fatal) {
			*fatal = sl->fatal;
			*fatal_msg = xstrdup(sl->fatal_msg);
		}
		pthread_mutex_unlock(&s->mu);
		done(u, &sl->msg, &sl->res);
		pthread_mutex_lock(&s->mu);
		sl->st = SLOT_IDLE;
		n++;
	}
	return n;
}

/* 1 when a message is finished and may be reported (mutex held). */
static int any_finished(const struct smtp *s)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].st == SLOT_FINISHED && s->slots[i].gate != GATE_CLOSED)
			return 1;
	return 0;
}

static struct slot *idle_slot(struct smtp *s)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].st == SLOT_IDLE && s->slots[i].started)
			return &s->slots[i];
	return NULL;
}

/* Waits on done_cv for at most ms milliseconds (mutex held). */
static void wait_ms(struct smtp *s, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&s->done_cv, &s->mu, &ts);
}

/* A message refused before it leaves (transport_msg_check()): failed, every recipient too. */
static void refuse(const struct transport_msg *m, const char *why, transport_done_fn done, void *u)
{
	struct transport_result r = {TX_FAILED, 0, NULL, why, NULL};
	struct transport_rcpt *rc = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(*rc));

	for (size_t i = 0; i < m->nrcpt; i++)
		rc[i].state = TX_FAILED;
	r.rcpt = rc;
	done(u, m, &r);
	free(rc);
}

/* Calls commit() for every slot whose gate is closed, and opens or shuts it (mutex held;
 * released around commit()). */
static void gates_commit(struct smtp *s, transport_commit_fn commit, void *u)
{
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		int go;

		if (sl->gate != GATE_CLOSED)
			continue;
		pthread_mutex_unlock(&s->mu);
		go = commit(u, &sl->msg); /* sl->msg is only written on this thread */
		pthread_mutex_lock(&s->mu);
		sl->gate = go ? GATE_OPEN : GATE_SHUT;
		pthread_cond_signal(&sl->cv);
	}
}

/* transport_run() when commit is NULL, transport_run_gated() otherwise. */
static int smtp_run_with(struct smtp *s, transport_next_fn next, transport_commit_fn commit,
                         transport_done_fn done, void *u, volatile sig_atomic_t *stop,
                         char **errstr)
{
	char *fatal_msg = NULL;
	int64_t ask_at = 0;
	int dry = 0, fatal = 0, busy = 0, rc = EX_OK, err;

	atomic_store(&s->abort, 0);
	s->gated = commit != NULL;
	err = workers_start(s);
	if (err)
		return error_set(errstr, EX_SOFTWARE, "cannot start the SMTP threads: %s",
		                 strerror(err));
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct slot *sl;
		int64_t now, w = POLL_MS;

		busy -= report_finished(s, done, u, &fatal, &fatal_msg);
		if (stop && *stop >= 2 && !atomic_load(&s->abort)) {
			atomic_store(&s->abort, 1);
			for (int i = 0; i < s->nslots; i++) /* workers waiting at a gate */
				pthread_cond_signal(&s->slots[i].cv);
		}
		/* Every free slot gets a message, then (gated) their intents commit together. */
		while (!dry && !fatal && !transport_stopping(stop) &&
		       transport_now_ms() >= ask_at && (sl = idle_slot(s))) {
			struct transport_msg m = {0};
			const char *why;
			long wait = 0;
			int n;

			pthread_mutex_unlock(&s->mu);
			n = next(u, &m, &wait);
			if (n > 0 && transport_msg_check(&m, &why) < 0) {
				if (commit) /* its 'sending' first, as when it would have left */
					commit(u, &m);
				refuse(&m, why, done, u);
				n = 2; /* asked and answered: ask again */
			}
			pthread_mutex_lock(&s->mu);
			if (n == 0)
				dry = 1;
			else if (n < 0)
				ask_at = transport_now_ms() + (wait > 0 ? wait : 1);
			else if (n == 1) {
				sl->msg = m;
				sl->gate = commit ? GATE_CLOSED : GATE_OPEN;
				sl->st = SLOT_READY;
				busy++;
				pthread_cond_signal(&sl->cv);
			}
		}
		if (commit)
			gates_commit(s, commit, u);
		if (busy == 0 && (dry || fatal || transport_stopping(stop)))
			break;
		/* Wait for an outcome, the pace, or a look at *stop. */
		now = transport_now_ms();
		if (!dry && !fatal && !transport_stopping(stop) && idle_slot(s) && ask_at - now < w)
			w = ask_at - now;
		/* A worker may have finished while the mutex was let go (next(), commit()): its
		 * signal found no one waiting. */
		if (w > 0 && !any_finished(s))
			wait_ms(s, w);
	}
	pthread_mutex_unlock(&s->mu);
	workers_stop(s);
	if (fatal)
		rc = error_set(errstr, fatal, "%s", fatal_msg);
	else if (transport_stopping(stop) && !dry)
		rc = error_set(errstr, EX_TEMPFAIL, "interrupted");
	free(fatal_msg);
	return rc;
}

static int smtp_run(void *impl, transport_next_fn next, transport_done_fn done, void *u,
                    volatile sig_atomic_t *stop, char **errstr)
{
	return smtp_run_with(impl, next, NULL, done, u, stop, errstr);
}

static int smtp_run_gated(void *impl, transport_next_fn next, transport_commit_fn commit,
                          transport_done_fn done, void *u, volatile sig_atomic_t *stop,
                          char **errstr)
{
	return smtp_run_with(impl, next, commit, done, u, stop, errstr);
}

static long smtp_connections(const void *impl)
{
	const struct smtp *s = impl;
	long n = 0;

	for (int i = 0; i < s->nslots; i++)
		n += smtp_session_connections(s->slots[i].ss);
	return n;
}

static void smtp_free(void *impl)
{
	struct smtp *s = impl;

	if (!s)
		return;
	for (int i = 0; i < s->nslots && s->slots; i++) {
		smtp_session_free(s->slots[i].ss);
		pthread_cond_destroy(&s->slots[i].cv);
	}
	free(s->slots);
	pthread_cond_destroy(&s->done_cv);
	pthread_mutex_destroy(&s->mu);
	smtp_conf_free(&s->conf);
	free(s);
}

const struct transport_ops smtp_ops = {
    .name = "smtp",
    .run = smtp_run,
    .connections = smtp_connections,
    .free = smtp_free,
    .staging = 0,
    .run_gated = smtp_run_gated,
};
