/* The send engine: windows of messages through a transport, one ledger writer, retries. */
#include "campaign/engine.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "base/clock.h"
#include "base/error.h"
#include "campaign/account.h"
#include "base/xalloc.h"

#define WINDOW 256 /* messages loaded from the spool at once */

/* One message of the window: its record and the addresses still to send. */
struct job {
	struct plan_mission *pm;
	struct plan_record rec;
	const char **rcpt; /* n active addresses */
	int64_t *deliv;    /* their deliveries */
	size_t n;
	enum ledger_state *final; /* pm->n: each address's state at the end of this run */
	int attempts;
	int64_t not_before; /* monotonic ms: a deferred message waits for its backoff */
	int done;
	int claimed; /* commit_step() took it (another sender of a team ledger may have) */
	int intent;  /* gated: 1 its 'sending' committed, -1 held at the gate, 0 not yet asked */
};

/* An outcome waiting for the next commit. */
struct pend {
	int64_t deliv;
	enum ledger_state to;
	int code;
	char *reply, *detail;
};

/* A Sent copy waiting for its 'sent' to commit. */
struct pcopy {
	int64_t *deliv;
	size_t n;
	off_t off;
};

struct eng {
	const struct engine_opts *o;
	struct plan *p;
	struct engine_stats *st;
	struct job jobs[WINDOW];
	size_t njobs, next_job;
	size_t retry[WINDOW], nretry;
	struct pend *pend;
	size_t npend, apend;
	struct pcopy *copies;
	size_t ncopies;
	/* the rate and the daily cap (o->pace): what this run started or sent that the ledger
	 * does not show as sent yet; pend_*: in the outcomes waiting for the next commit */
	struct pace_own own;
	long pend_rcpts, pend_msgs;
	int fatal;
	char *err;
	/* The dot gate (transport_run_gated()): messages handed out whose 'sending' the next
	 * commit_step() makes durable, while they go out. */
	int gated;
	struct job **handed;
	size_t nhanded, ahanded;
};

static int stopping(const struct eng *e)
{
	return e->o->stop && *e->o->stop;
}

static void job_free(struct job *j)
{
	plan_record_free(&j->rec);
	free(j->rcpt);
	free(j->deliv);
	free(j->final);
	memset(j, 0, sizeof(*j));
}

static int job_load(struct eng *e, struct plan_mission *pm, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->pm = pm;
	if (plan_read(e->p, pm->off, 1, &j->rec, &e->err) != EX_OK)
		return EX_IOERR;
	j->n = pm->n;
	j->rcpt = xcalloc(j->n, sizeof(char *));
	j->deliv = xcalloc(j->n, sizeof(int64_t));
	j->final = xcalloc(j->n, sizeof(*j->final));
	for (size_t i = 0; i < j->n; i++) {
		j->rcpt[i] = e->o->test_to ? e->o->test_to : j->rec.rcpt[pm->idx[i]];
		j->deliv[i] = pm->deliv ? pm->deliv[i] : 0;
		j->final[i] = LS_PENDING;
	}
	return EX_OK;
}

/* A claim: on a team ledger another sender may have taken the mission since (lease.c). */
static int claim(struct eng *e, struct job *j)
{
	struct ledger_outcome o = {0};

	o.via = e->o->account;
	return ledger_claim(e->o->ledger, e->o->campaign, j->deliv, j->n, e->o->retry_flags, &o,
	                    &j->claimed, &e->err);
}

/* The messages handed out (gated) learn whether their 'sending' committed: rc. */
static void handed_settle(struct eng *e, int rc)
{
	for (size_t i = 0; i < e->nhanded; i++) {
		struct job *j = e->handed[i];

		if (rc != EX_OK)
			j->claimed = 1; /* not taken elsewhere: the commit failed */
		j->intent = rc == EX_OK && j->claimed ? 1 : -1;
	}
	e->nhanded = 0;
}

/*
 * One transaction: the outcomes waiting, then start's deliveries (when start is not NULL)
 * and those of the messages handed out through the dot gate to 'sending'. Committed before
 * the function returns: nothing of start leaves before, and no final dot of the others.
 * Then the Sent copies whose 'sent' just committed are queued.
 */
static int commit_step(struct eng *e, struct job *start)
{
	struct ledger_outcome o = {0};
	int rc;

	if (e->o->test_to)
		handed_settle(e, EX_OK); /* a test records no state */
	if ((!e->npend && !start && !e->nhanded) || e->o->test_to)
		return EX_OK;
	rc = ledger_batch_begin(e->o->ledger, &e->err);
	o.via = e->o->account;
	for (size_t i = 0; i < e->npend && rc == EX_OK; i++) {
		o.code = e->pend[i].code;
		o.reply = e->pend[i].reply;
		o.detail = e->pend[i].detail;
		rc = ledger_transition(e->o->ledger, e->pend[i].deliv, e->pend[i].to, 0, &o, NULL,
		                       &e->err);
	}
	if (start && rc == EX_OK)
		rc = claim(e, start);
	for (size_t i = 0; i < e->nhanded && rc == EX_OK; i++)
		rc = claim(e, e->handed[i]);
	if (rc == EX_OK)
		rc = ledger_batch_end(e->o->ledger, 1, &e->err);
	else
		ledger_batch_end(e->o->ledger, 0, NULL);
	for (size_t i = 0; i < e->npend; i++) {
		free(e->pend[i].reply);
		free(e->pend[i].detail);
	}
	e->npend = 0;
	if (rc == EX_OK) { /* the ledger counts those sent now */
		e->own.rcpts -= e->pend_rcpts;
		e->own.msgs -= e->pend_msgs;
	}
	e->pend_rcpts = e->pend_msgs = 0;
	handed_settle(e, rc);
	for (size_t i = 0; i < e->ncopies; i++) {
		if (rc == EX_OK && e->o->copies)
			copyq_push(e->o->copies, e->o->campaign, e->copies[i].deliv, e->copies[i].n,
			           e->copies[i].off);
		free(e->copies[i].deliv);
	}
	e->ncopies = 0;
	if (rc != EX_OK && !e->fatal)
		e->fatal = rc;
	return rc;
}

/* The next job ready to go, or -1 with *wait_ms, or -2 when none is left. */
static long pick(struct eng *e, int64_t now, long *wait_ms)
{
	int64_t soonest = -1;

	for (size_t i = 0; i < e->nretry; i++) {
		struct job *j = &e->jobs[e->retry[i]];
		if (j->not_before <= now) {
			size_t idx = e->retry[i];
			memmove(&e->retry[i], &e->retry[i + 1],
			        (e->nretry - i - 1) * sizeof(size_t));
			e->nretry--;
			return (long)idx;
		}
		if (soonest < 0 || j->not_before < soonest)
			soonest = j->not_before;
	}
	while (e->next_job < e->njobs && e->jobs[e->next_job].done)
		e->next_job++;
	if (e->next_job < e->njobs)
		return (long)e->next_job++;
	if (soonest >= 0) {
		*wait_ms = (long)(soonest - now);
		return -1;
	}
	return -2;
}

static void unpick(struct eng *e, long idx)
{
	struct job *j = &e->jobs[idx];

	if (j->attempts > 0) {
		memmove(&e->retry[1], &e->retry[0], e->nretry * sizeof(size_t));
		e->retry[0] = (size_t)idx;
		e->nretry++;
	} else {
		e->next_job = (size_t)idx;
	}
}

static int limit_reached(const struct eng *e)
{
	return e->o->limit && e->st->started >= e->o->limit;
}

/* A message of cost recipients starts (n 1) or is over or never went (n -1). */
static void own_add(struct eng *e, size_t cost, long n)
{
	e->own.rcpts += n * (long)cost;
	e->own.msgs += n;
}

/*
 * The shared windows (pace_admit()): 1 the message may start, 0 the daily cap is reached or
 * the ledger failed, -1 the rate's window is full for *wait_ms.
 */
static int admit(struct eng *e, size_t cost, long *wait_ms)
{
	enum pace_verdict v = PACE_GO;
	int64_t w = 0;
	int rc;

	if (!e->o->pace)
		return 1;
	rc = pace_admit(e->o->pace, e->o->ledger, &e->own, (long)cost, &v, &w, &e->err);
	if (rc != EX_OK) {
		if (!e->fatal)
			e->fatal = rc;
		return 0;
	}
	if (v == PACE_CAPPED) {
		e->st->capped = 1; /* left for tomorrow, as it was */
		return 0;
	}
	if (v == PACE_WAIT) {
		*wait_ms = (long)w;
		return -1;
	}
	return 1;
}

static int next_pick(struct eng *e, struct transport_msg *tm, long *wait_ms)
{
	int ok;
	int64_t wait = 0;
	struct job *j;
	long idx;
	size_t cost;

	if (stopping(e) || e->fatal || limit_reached(e))
		return 0;
	if (e->o->rl) {
		wait = ratelimit_wait_ms(e->o->rl, ratelimit_now());
		if (wait < 0)
			return 0;
	}
	idx = pick(e, clock_mono_ms(), wait_ms);
	if (idx == -2)
		return 0;
	if (idx == -1)
		return -1;
	if (wait > 0) {
		unpick(e, idx);
		*wait_ms = (long)wait;
		return -1;
	}
	j = &e->jobs[idx];
	cost = e->o->test_to ? 1 : j->n;
	if ((ok = admit(e, cost, wait_ms)) != 1) {
		if (ok < 0)
			unpick(e, idx);
		return ok;
	}
	own_add(e, cost, 1);
	j->claimed = 1;
	if (e->gated) {
		/* The dot gate: its 'sending' commits (commit_msg()) while it goes out. */
		j->intent = 0;
		if (e->nhanded == e->ahanded) {
			e->ahanded = e->ahanded ? 2 * e->ahanded : 8;
			e->handed = xreallocarray(e->handed, e->ahanded, sizeof(*e->handed));
		}
		e->handed[e->nhanded++] = j;
	} else if (commit_step(e, j) != EX_OK) {
		/* 'sending' is committed, with the outcomes waiting, before any byte leaves. */
		return 0;
	}
	if (!j->claimed) { /* another sender has it: not this run's, as if never planned */
		own_add(e, cost, -1);
		j->done = 1;
		j->pm->state = j->pm->rest;
		e->st->elsewhere++;
		*wait_ms = 0;
		return -1;
	}
	if (e->o->rl)
		ratelimit_note(e->o->rl, ratelimit_now());
	if (j->attempts++ == 0) /* a retry is not one more message against --limit */
		e->st->started++;
	tm->user = j;
	tm->from = e->o->from;
	tm->rcpt = j->rcpt;
	tm->nrcpt = e->o->test_to ? 1 : j->n;
	tm->data = j->rec.data;
	tm->len = j->rec.len;
	tm->id = j->rec.message_id;
	return 1;
}

static int next_msg(void *u, struct transport_msg *tm, long *wait_ms)
{
	struct eng *e = u;
	int rc = next_pick(e, tm, wait_ms);

	/* No message starts now: the outcomes waiting are committed on their own. */
	if (rc != 1)
		commit_step(e, NULL);
	return rc;
}

/*
 * The dot gate: the transport asks for each message handed out, before its final dot. The
 * first ask commits every handed-out message's 'sending' with the outcomes waiting (group
 * commit); the others are answered from memory.
 */
static int commit_msg(void *u, const struct transport_msg *tm)
{
	struct eng *e = u;
	struct job *j = tm->user;

	if (j->intent == 0)
		commit_step(e, NULL);
	return j->intent > 0;
}

/*
 * A message held at the gate (its commit failed, or another sender took it): no final dot
 * left, nothing was delivered, and the ledger never said 'sending': as if never started.
 */
static void held_msg(struct eng *e, struct job *j)
{
	own_add(e, e->o->test_to ? 1 : j->n, -1);
	if (--j->attempts == 0)
		e->st->started--;
	if (!j->claimed) {
		j->done = 1;
		j->pm->state = j->pm->rest;
		e->st->elsewhere++;
	}
}

static enum ledger_state to_ledger(const struct eng *e, enum transport_state s)
{
	switch (s) {
	case TX_SENT:
		return e->o->staging ? LS_STAGED : LS_SENT;
	case TX_DEFERRED:
		return LS_DEFERRED;
	case TX_FAILED:
		return LS_FAILED;
	default:
		return LS_UNKNOWN;
	}
}

static void add_pend(struct eng *e, int64_t deliv, enum ledger_state to, int code,
                     const char *reply, const char *detail)
{
	struct pend *pd;

	if (e->npend == e->apend) {
		e->apend = e->apend ? 2 * e->apend : 64;
		e->pend = xreallocarray(e->pend, e->apend, sizeof(*e->pend));
	}
	pd = &e->pend[e->npend++];
	pd->deliv = deliv;
	pd->to = to;
	pd->code = code;
	pd->reply = reply ? xstrdup(reply) : NULL;
	pd->detail = detail ? xstrdup(detail) : NULL;
}

static void record_test(struct eng *e, struct job *j, const struct transport_result *res)
{
	struct ledger_outcome o = {0};
	char *detail =
	    xasprintf("test of campaign %s for %s to %s, %s: %s%s%s", e->o->campaign, j->rec.key,
	              e->o->test_to, j->rec.message_id, transport_state_name(res->state),
	              res->error ? ": " : "", res->error ? res->error : "");

	o.code = res->code;
	o.reply = res->reply;
	o.via = e->o->account;
	o.detail = detail;
	if (ledger_record(e->o->ledger, "test", NULL, 0, &o, &e->err) != EX_OK && !e->fatal)
		e->fatal = EX_IOERR;
	free(detail);
}

/* The mission's state once this job is over. */
static void job_settle(struct job *j)
{
	enum mission_state s = j->pm->rest;

	for (size_t i = 0; i < j->pm->n; i++)
		s = mission_state_add(s, j->final[i]);
	j->pm->state = s;
	j->done = 1;
}

/*
 * Each address's own outcome: its RCPT answer when the server refused it, else the
 * message's. Sent and failed addresses are over; deferred ones stay for a retry.
 */
static void done_msg(void *u, const struct transport_msg *tm, const struct transport_result *res)
{
	struct eng *e = u;
	struct job *j = tm->user;
	struct pcopy pc = {0};
	size_t keep = 0, deferred = 0, nsent = 0;
	int retry;

	if (e->gated && j->intent < 0) {
		held_msg(e, j);
		return;
	}
	if (e->o->test_to) {
		record_test(e, j, res);
		for (size_t i = 0; i < j->n; i++)
			j->final[i] = to_ledger(e, res->state);
	} else {
		own_add(e, j->n, -1); /* over: what was sent counts once committed (pend_*) */
		pc.deliv = xcalloc(j->n, sizeof(int64_t));
		for (size_t i = 0; i < j->n; i++) {
			const struct transport_rcpt *rr = res->rcpt ? &res->rcpt[i] : NULL;
			enum transport_state s = rr ? rr->state : res->state;
			int code = rr ? rr->code : res->code;
			const char *reply = rr && rr->reply ? rr->reply : res->reply;

			add_pend(e, j->deliv[i], to_ledger(e, s), code, reply, res->error);
			if (s == TX_SENT && !e->o->staging)
				pc.deliv[pc.n++] = j->deliv[i];
			nsent += to_ledger(e, s) == LS_SENT;
			if (s == TX_FAILED && res->state == TX_SENT)
				e->st->rcpt_failed++;
			/* j->final is indexed like pm->idx: find this address's slot */
			for (size_t k = 0; k < j->pm->n; k++)
				if (j->pm->deliv[k] == j->deliv[i])
					j->final[k] = to_ledger(e, s);
			if (s == TX_DEFERRED) {
				j->rcpt[keep] = j->rcpt[i];
				j->deliv[keep] = j->deliv[i];
				keep++;
				deferred++;
			}
		}
		if (nsent) { /* counted against the caps until its commit */
			own_add(e, nsent, 1);
			e->pend_rcpts += (long)nsent;
			e->pend_msgs++;
		}
		if (pc.n && e->o->copies) {
			pc.off = j->pm->off;
			e->copies = xreallocarray(e->copies, e->ncopies + 1, sizeof(*e->copies));
			e->copies[e->ncopies++] = pc;
		} else {
			free(pc.deliv);
		}
		j->n = keep;
	}
	/* Deferred: retried within the run with exponential backoff, then left for the next. */
	retry = !e->o->test_to && deferred && j->attempts < e->o->max_attempts && !stopping(e);
	if (retry) {
		int64_t backoff = (int64_t)e->o->retry_after * 1000 << (j->attempts - 1);

		j->not_before = clock_mono_ms() + backoff;
		e->retry[e->nretry++] = (size_t)(j - e->jobs);
	} else {
		switch (res->state) {
		case TX_SENT:
			e->st->sent++;
			break;
		case TX_DEFERRED:
			e->st->deferred++;
			break;
		case TX_FAILED:
			e->st->failed++;
			break;
		default:
			e->st->unknown++;
			break;
		}
		job_settle(j);
	}
	if (e->o->report)
		e->o->report(e->o->report_u, j->rec.key, res, retry);
}

static int finished(const struct eng *e)
{
	return stopping(e) || e->fatal || e->st->tx_rc || e->st->capped || limit_reached(e);
}

/* Sends the missions of the window; returns the transport's code. */
static int run_window(struct eng *e)
{
	engine_run_fn run = e->o->run ? e->o->run : transport_run;
	int rc;

	e->next_job = 0;
	e->nretry = 0;
	if (e->gated)
		rc = transport_run_gated(e->o->t, next_msg, commit_msg, done_msg, e, e->o->stop,
		                         &e->err);
	else
		rc = run(e->o->t, next_msg, done_msg, e, e->o->stop, &e->err);
	/* A message the transport never asked about never got its final dot: no 'sending'. */
	e->nhanded = 0;
	if (commit_step(e, NULL) != EX_OK && rc == EX_OK)
		rc = e->fatal;
	for (size_t i = 0; i < e->njobs; i++) {
		struct job *j = &e->jobs[i];

		/* Stopped while it waited for a retry: deferred, as the ledger says. */
		if (!j->done && j->attempts > 0 && !e->o->test_to) {
			e->st->deferred++;
			job_settle(j);
		}
		job_free(j);
	}
	e->njobs = 0;
	if (rc != EX_OK && !e->st->tx_rc)
		e->st->tx_rc = rc;
	return rc;
}

int engine_run(const struct engine_opts *o, struct plan *p, struct engine_stats *st, char **errstr)
{
	struct eng *e = xcalloc(1, sizeof(*e));
	int rc = EX_OK;

	memset(st, 0, sizeof(*st));
	e->o = o;
	e->p = p;
	e->st = st;
	/* The dot gate where the transport keeps it; the tests' fake transports do not. */
	e->gated = !o->run && transport_gated(o->t);
	for (size_t i = 0; i < p->n && rc == EX_OK && !finished(e); i++) {
		rc = job_load(e, &p->m[i], &e->jobs[e->njobs]);
		if (rc != EX_OK)
			break;
		if (++e->njobs == WINDOW || i + 1 == p->n)
			rc = run_window(e);
	}
	if (rc == EX_OK && e->njobs)
		rc = run_window(e);
	for (size_t i = 0; i < e->njobs; i++)
		job_free(&e->jobs[i]);
	if (e->fatal && (rc == EX_OK || rc == EX_TEMPFAIL))
		rc = e->fatal;
	if (rc != EX_OK && e->err) {
		free(*errstr);
		*errstr = e->err;
		e->err = NULL;
	}
	free(e->err);
	free(e->pend);
	free(e->handed);
	free(e->copies);
	free(e);
	return rc;
}

/* The transport, with the secret looked up now: nothing is asked for before it is needed. */
int engine_transport_open(const struct config *cfg, struct account *acct, int concurrency,
                          const char *helo, int verbose, struct transport **t, char **err)
{
	struct transport_opts to = {0};
	int rc = account_secret(acct, err);

	to.url = acct->url;
	to.user = acct->user;
	to.password = acct->password;
	to.oauth_token = acct->oauth_token;
	to.tls = cfg->smtp.tls;
	to.ca_file = acct->ca_file;
	to.timeout = cfg->smtp.timeout;
	to.concurrency = concurrency;
	to.helo = helo;
	to.verbose = verbose;
	return rc == EX_OK ? transport_open(&to, t, err) : rc;
}
