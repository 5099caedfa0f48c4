/* demarche send: one message per mission through SMTP or into a Maildir, into the ledger. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/secret.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "campaign/merge.h"
#include "campaign/message.h"
#include "campaign/sentcopy.h"
#include "roster/address.h"
#include "ledger/ledger.h"
#include "transport/ratelimit.h"
#include "transport/transport.h"

const char usage_send[] =
    "usage: demarche send APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                     [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "                     [--not-received CAMPAIGN] [--via URL] [--rate N/minute|N/hour]\n"
    "                     [--concurrency N] [--limit N] [--test-to ADDR] [--retry-unknown]\n"
    "                     [--retry-failed] [--amend] [--yes]\n"
    "\n"
    "Validates everything first (nothing is sent if anything is wrong: exit 65), then sends\n"
    "one message per mission and records each step in the ledger. A rerun of the same\n"
    "campaign skips what was sent, retries what was deferred, and leaves failed and in-doubt\n"
    "(unknown) missions alone unless asked.\n"
    "\n" MERGE_OPTIONS_USAGE
    "  --via URL              smtp://HOST[:PORT], smtps://HOST[:PORT] or maildir:DIR\n"
    "                         (default: [smtp] url, else maildir:./outbox)\n"
    "  --not-received CAMP    only missions with no delivered message of campaign CAMP\n"
    "  --rate N/minute        pace the sending (also N/hour; default [smtp] rate)\n"
    "  --concurrency N        connections at once (default [smtp] concurrency, 1)\n"
    "  --limit N              send at most N messages in this run\n"
    "  --test-to ADDR         send every selected message to ADDR instead, Subject [TEST];\n"
    "                         recorded as test events, not as deliveries\n"
    "  --retry-unknown        send again to missions in doubt (unknown)\n"
    "  --retry-failed         send again to missions that failed permanently\n"
    "  --amend                the appeal changed since this campaign was first sent: go on\n"
    "  --yes                  do not ask (needed when not on a terminal)\n"
    "\n"
    "Exit: 0 all sent; 65 bad input, nothing sent; 69 some failed permanently; 75 some\n"
    "deferred, in doubt, or left for later (rate cap, interrupted): run again later.\n";

/*
 * One mission this run sends: its composed message and the deliveries (one per address) it
 * goes to. Missions are planned in one pass over the roster and sent in windows of
 * WINDOW in a second, so memory does not grow with the roster.
 */
struct job {
	char *key;
	int64_t *deliv;
	char **addr;
	size_t n;
	int attempts;       /* in this run */
	int64_t not_before; /* ms: a deferred message waits for its backoff */
	struct message msg;
	const char **rcpt;
	int done;
};

#define WINDOW 256

struct run {
	struct merge *m;
	struct ledger *ledger;
	struct message_run mr;
	struct ratelimit *rl;
	struct sentcopy *sc; /* copies to the IMAP Sent folder, when [imap] is configured */
	struct transport *t;
	const char *via;
	char *account; /* via, with the user: what rate windows count */
	unsigned retry_flags;
	int test;
	int max_attempts, retry_after;
	time_t date;

	struct job *jobs;
	size_t njobs, next_job;
	/* queue of deferred jobs waiting for a retry within the run */
	size_t *retry;
	size_t nretry;

	size_t to_send; /* missions this run sends, from the planning pass */
	int tx_rc;      /* what the transport said when it stopped a window */
	size_t already_sent, skipped_failed, skipped_unknown, left;
	size_t sent, deferred, failed, unknown, started;
	int progress;
	int64_t t0;
	/*
	 * Group commit: outcomes wait here and are committed in the same transaction as the
	 * next message's 'sending' (or alone when no message starts), so a message costs one
	 * commit, not two per address. What a crash loses is at most the outcomes of the
	 * messages in flight: they stay 'sending' and the next run marks them in doubt.
	 */
	struct outcome {
		struct job *j;
		enum ledger_state to;
		int code;
		char *reply, *detail;
	} * pend;
	size_t npend;
	long cap_left; /* recipients the daily cap still allows; -1: no cap */
	int capped;
	int fatal; /* a ledger error: stop */
	char *err;
};

static volatile sig_atomic_t stop;

static int address_is_bad(const char *s)
{
	return address_check(s, strlen(s), 0) != NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	if (stop < 2)
		stop++;
}

static const struct option send_options[] = {
    MERGE_LONG_OPTIONS,
    {"not-received", required_argument, NULL, 'N'},
    {"via", required_argument, NULL, 'v'},
    {"rate", required_argument, NULL, 'r'},
    {"concurrency", required_argument, NULL, 'c'},
    {"limit", required_argument, NULL, 'l'},
    {"test-to", required_argument, NULL, 'T'},
    {"retry-unknown", no_argument, NULL, 'U'},
    {"retry-failed", no_argument, NULL, 'F'},
    {"amend", no_argument, NULL, 'A'},
    {"yes", no_argument, NULL, 'y'},
    {NULL, 0, NULL, 0},
};

static int parse_count(const char *opt, const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 1000000) {
		fprintf(stderr, "demarche send: %s wants a whole number from 1, not '%s'\n", opt,
		        s);
		return EX_USAGE;
	}
	*out = (int)v;
	return EX_OK;
}

/* --not-received: leave out the missions that already received that campaign. */
struct not_received {
	struct ledger *ledger;
	const char *campaign;
	int error;
};

static int mark_missing(const char *key, void *ctx)
{
	(void)key;
	*(int *)ctx = 1;
	return 0;
}

static int exclude_received(void *user, const char *key)
{
	struct not_received *nr = user;
	int missing = 0;
	char *err = NULL;

	if (ledger_missing(nr->ledger, nr->campaign, &key, 1, mark_missing, &missing, &err) !=
	    EX_OK) {
		nr->error = 1;
		free(err);
		return 0;
	}
	return !missing;
}

/* A mission's addresses: what message_build puts in the envelope. */
/*
 * Composes the mission's message and finds (or makes, as pending) its deliveries, keeping
 * those this run sends: pending and deferred ones; failed and unknown only when asked. A
 * delivery left in 'sending' by a killed run is in doubt: it becomes unknown first. Sent,
 * bounced and replied ones are never sent again. planning: count what is skipped.
 */
static int job_make(struct run *r, const struct roster_row *row, const struct letter_out *lo,
                    struct job *j, int planning)
{
	json_t *ctx = roster_context(row);
	int sent = 0, failed = 0, unknown = 0, rc;
	size_t keep = 0;

	memset(j, 0, sizeof(*j));
	j->key = xstrdup(roster_key(row));
	rc = message_build(&r->mr, j->key, ctx, lo, r->date, &j->msg, &r->err);
	json_decref(ctx);
	if (rc != EX_OK)
		return rc;
	j->addr = j->msg.rcpt;
	j->n = j->msg.nrcpt;
	j->msg.rcpt = NULL;
	j->msg.nrcpt = 0;
	j->deliv = xcalloc(j->n ? j->n : 1, sizeof(int64_t));
	if (r->test)
		return EX_OK;
	for (size_t i = 0; i < j->n; i++) {
		struct ledger_delivery d;
		struct ledger_outcome o = {0};
		int take = 0;

		/* The Message-ID is stable across runs: it is kept with each delivery. */
		rc = ledger_delivery_get(r->ledger, r->m->campaign, j->key, j->addr[i],
		                         j->msg.message_id, &d, &r->err);
		if (rc != EX_OK)
			return rc;
		if (d.state == LS_SENDING) {
			o.via = r->account;
			o.detail = "found in state sending: an earlier run stopped while this "
			           "message was being handed over; it may or may not have left";
			rc = ledger_transition(r->ledger, d.id, LS_UNKNOWN, 0, &o, &d, &r->err);
			if (rc != EX_OK)
				return rc;
		}
		switch (d.state) {
		case LS_PENDING:
		case LS_DEFERRED:
			take = 1;
			break;
		case LS_FAILED:
			take = (r->retry_flags & LEDGER_RETRY_FAILED) != 0;
			failed += !take;
			break;
		case LS_UNKNOWN:
			take = (r->retry_flags & LEDGER_RETRY_UNKNOWN) != 0;
			unknown += !take;
			break;
		default:
			sent++;
			break;
		}
		if (take) {
			char *addr = j->addr[i];

			j->addr[i] = NULL;
			j->addr[keep] = addr;
			j->deliv[keep] = d.id;
			keep++;
		} else {
			free(j->addr[i]);
			j->addr[i] = NULL;
		}
	}
	j->n = keep;
	if (keep == 0) {
		j->done = 1;
		if (planning && failed)
			r->skipped_failed++;
		else if (planning && unknown)
			r->skipped_unknown++;
		else if (planning && sent)
			r->already_sent++;
	}
	return EX_OK;
}

static void job_free(struct job *j)
{
	free(j->key);
	free(j->deliv);
	for (size_t i = 0; i < j->n; i++)
		free(j->addr[i]);
	free(j->addr);
	free(j->rcpt);
	message_free(&j->msg);
	memset(j, 0, sizeof(*j));
}

/* The planning pass: deliveries made, stale ones resolved, counts kept; nothing else. */
static int plan_row(void *user, struct merge *m, const struct roster_row *row,
                    const struct letter_out *lo)
{
	struct run *r = user;
	struct job j;
	int rc;

	(void)m;
	rc = job_make(r, row, lo, &j, 1);
	if (rc == EX_OK && !j.done)
		r->to_send++;
	job_free(&j);
	return rc;
}

static void progress(struct run *r)
{
	double secs = (double)(ratelimit_now() - r->t0) / 1000.0;
	size_t done = r->sent + r->deferred + r->failed + r->unknown;
	size_t total = r->left && r->left < r->to_send ? r->left : r->to_send;
	double rate = secs > 0 ? (double)done / secs : 0;

	if (!r->progress)
		return;
	term_status(stderr, "%zu/%zu  %.1f msg/s  ETA %.0fs  sent %zu deferred %zu failed %zu",
	            done, total, rate, rate > 0 ? (double)(total - done) / rate : 0.0, r->sent,
	            r->deferred, r->failed);
}

/* The next job ready to go, or -1 with *wait_ms. Deferred retries come first when due. */
static long pick(struct run *r, int64_t now, long *wait_ms)
{
	int64_t soonest = -1;

	for (size_t i = 0; i < r->nretry; i++) {
		struct job *j = &r->jobs[r->retry[i]];
		if (j->not_before <= now) {
			size_t idx = r->retry[i];
			memmove(&r->retry[i], &r->retry[i + 1],
			        (r->nretry - i - 1) * sizeof(size_t));
			r->nretry--;
			return (long)idx;
		}
		if (soonest < 0 || j->not_before < soonest)
			soonest = j->not_before;
	}
	while (r->next_job < r->njobs && r->jobs[r->next_job].done)
		r->next_job++;
	if (r->next_job < r->njobs)
		return (long)r->next_job++;
	if (soonest >= 0) {
		*wait_ms = (long)(soonest - now);
		return -1;
	}
	return -2; /* nothing left */
}

/*
 * One transaction: the outcomes waiting in r->pend, then (when start is not NULL) start's
 * deliveries to 'sending'. Committed before the function returns: nothing of start leaves
 * before. Returns EX_OK or the ledger's code (then r->fatal is set).
 */
static int commit_step(struct run *r, struct job *start)
{
	struct ledger_outcome o = {0};
	int rc;

	if (!r->npend && !start)
		return EX_OK;
	rc = ledger_batch_begin(r->ledger, &r->err);
	for (size_t i = 0; i < r->npend && rc == EX_OK; i++) {
		struct outcome *oc = &r->pend[i];

		o.code = oc->code;
		o.reply = oc->reply;
		o.via = r->account;
		o.detail = oc->detail;
		for (size_t k = 0; k < oc->j->n && rc == EX_OK; k++)
			rc = ledger_transition(r->ledger, oc->j->deliv[k], oc->to, 0, &o, NULL,
			                       &r->err);
	}
	memset(&o, 0, sizeof(o));
	o.via = r->account;
	for (size_t k = 0; start && k < start->n && rc == EX_OK; k++)
		rc = ledger_transition(r->ledger, start->deliv[k], LS_SENDING, r->retry_flags, &o,
		                       NULL, &r->err);
	if (rc == EX_OK)
		rc = ledger_batch_end(r->ledger, 1, &r->err);
	else
		ledger_batch_end(r->ledger, 0, NULL);
	for (size_t i = 0; i < r->npend; i++) {
		free(r->pend[i].reply);
		free(r->pend[i].detail);
	}
	r->npend = 0;
	if (rc != EX_OK && !r->fatal) {
		r->fatal = rc;
		fprintf(stderr, "demarche send: %s\n", r->err);
	}
	return rc;
}

static int next_msg_pick(struct run *r, struct transport_msg *tm, long *wait_ms)
{
	int64_t now = ratelimit_now();
	int64_t wait;
	struct job *j;
	long idx;

	if (stop || r->fatal)
		return 0;
	if (r->left && r->started >= r->left) /* --limit or the daily cap */
		return 0;
	wait = ratelimit_wait_ms(r->rl, now);
	if (wait < 0)
		return 0;
	idx = pick(r, now, wait_ms);
	if (idx == -2)
		return 0;
	if (idx == -1)
		return -1;
	if (wait > 0) {
		/* not yet: put it back where it was */
		if (r->jobs[idx].not_before > 0 || r->jobs[idx].attempts > 0) {
			r->retry = xreallocarray(r->retry, r->nretry + 1, sizeof(size_t));
			memmove(&r->retry[1], &r->retry[0], r->nretry * sizeof(size_t));
			r->retry[0] = (size_t)idx;
			r->nretry++;
		} else {
			r->next_job = (size_t)idx;
		}
		*wait_ms = (long)wait;
		return -1;
	}
	j = &r->jobs[idx];
	if (r->cap_left >= 0 && (long)(r->test ? 1 : j->n) > r->cap_left) {
		r->capped = 1; /* left for tomorrow, as it was */
		if (j->attempts > 0) {
			r->retry = xreallocarray(r->retry, r->nretry + 1, sizeof(size_t));
			r->retry[r->nretry++] = (size_t)idx;
		}
		return 0;
	}
	if (r->cap_left >= 0)
		r->cap_left -= (long)(r->test ? 1 : j->n);
	/* 'sending' is committed, with the outcomes waiting, before any byte of it leaves. */
	if (!r->test && commit_step(r, j) != EX_OK)
		return 0;
	ratelimit_note(r->rl, now);
	j->attempts++;
	free(j->rcpt);
	j->rcpt = xcalloc(j->n ? j->n : 1, sizeof(char *));
	for (size_t i = 0; i < j->n; i++)
		j->rcpt[i] = r->test ? r->mr.test_to : j->addr[i];
	tm->user = j;
	tm->from = r->mr.from_addr;
	tm->rcpt = j->rcpt;
	tm->nrcpt = r->test ? 1 : j->n;
	tm->data = j->msg.data.data;
	tm->len = j->msg.data.len;
	tm->id = j->msg.message_id;
	r->started++;
	return 1;
}

static int next_msg(void *u, struct transport_msg *tm, long *wait_ms)
{
	struct run *r = u;
	int rc = next_msg_pick(r, tm, wait_ms);

	/* No message starts now: the outcomes waiting are committed on their own. */
	if (rc != 1)
		commit_step(r, NULL);
	return rc;
}

static enum ledger_state to_ledger(enum transport_state s)
{
	switch (s) {
	case TX_SENT:
		return LS_SENT;
	case TX_DEFERRED:
		return LS_DEFERRED;
	case TX_FAILED:
		return LS_FAILED;
	default:
		return LS_UNKNOWN;
	}
}

/*
 * The copy in the Sent folder: a failed APPEND never changes the delivery; the copy is kept
 * in the ledger and appended by the next run or by `bounces`.
 */
static void sent_copy(struct run *r, struct job *j)
{
	char *err = NULL;
	int rc = sentcopy_append(r->sc, r->ledger, r->m->campaign, j->deliv, j->n, j->msg.data.data,
	                         j->msg.data.len, &err);

	if (rc == EX_TEMPFAIL && sentcopy_kept(r->sc) == 1)
		fprintf(stderr, "demarche send: %s\n", err);
	else if (rc != EX_OK && rc != EX_TEMPFAIL && !r->fatal) {
		r->fatal = rc;
		fprintf(stderr, "demarche send: %s\n", err);
	}
	free(err);
}

static void done_msg(void *u, const struct transport_msg *tm, const struct transport_result *res)
{
	struct run *r = u;
	struct job *j = tm->user;
	struct ledger_outcome o = {0};

	o.code = res->code;
	o.reply = res->reply;
	o.via = r->account;
	o.detail = res->error;
	if (r->test) {
		char *detail = xasprintf("test of campaign %s for %s to %s, %s: %s%s%s",
		                         r->m->campaign, j->key, r->mr.test_to, j->msg.message_id,
		                         transport_state_name(res->state), res->error ? ": " : "",
		                         res->error ? res->error : "");
		o.detail = detail;
		if (ledger_record(r->ledger, "test", NULL, 0, &o, &r->err) != EX_OK)
			r->fatal = EX_IOERR;
		free(detail);
	} else {
		struct outcome *oc;

		r->pend = xreallocarray(r->pend, r->npend + 1, sizeof(*r->pend));
		oc = &r->pend[r->npend++];
		oc->j = j;
		oc->to = to_ledger(res->state);
		oc->code = res->code;
		oc->reply = res->reply ? xstrdup(res->reply) : NULL;
		oc->detail = res->error ? xstrdup(res->error) : NULL;
	}
	if (!r->test && res->state == TX_SENT && r->sc)
		sent_copy(r, j);
	switch (res->state) {
	case TX_SENT:
		r->sent++;
		j->done = 1;
		break;
	case TX_DEFERRED:
		/* Retried within the run with exponential backoff, then left for the next run. */
		if (!r->test && j->attempts < r->max_attempts && !stop) {
			int64_t backoff = (int64_t)r->retry_after * 1000 << (j->attempts - 1);

			j->not_before = ratelimit_now() + backoff;
			r->retry = xreallocarray(r->retry, r->nretry + 1, sizeof(size_t));
			r->retry[r->nretry++] = (size_t)(j - r->jobs);
			if (r->left)
				r->left++; /* a retry is not one more message against --limit */
		} else {
			r->deferred++;
			j->done = 1;
		}
		break;
	case TX_FAILED:
		r->failed++;
		j->done = 1;
		break;
	default:
		r->unknown++;
		j->done = 1;
		break;
	}
	if (!r->progress && (res->state != TX_SENT || res->error))
		fprintf(stderr, "demarche send: %s: %s%s%s%s\n", j->key,
		        transport_state_name(res->state), res->reply ? ": " : "",
		        res->reply ? res->reply : "", res->error ? res->error : "");
	progress(r);
}

/* Sends the missions of the window; returns the transport's code (r->tx_rc too). */
static int run_window(struct run *r)
{
	int rc;

	r->next_job = 0;
	r->nretry = 0;
	rc = transport_run(r->t, next_msg, done_msg, r, &stop, &r->err);
	if (commit_step(r, NULL) != EX_OK && rc == EX_OK)
		rc = r->fatal;
	for (size_t i = 0; i < r->njobs; i++)
		job_free(&r->jobs[i]);
	r->njobs = 0;
	if (rc != EX_OK && !r->tx_rc)
		r->tx_rc = rc;
	return rc;
}

#define SEND_STOP (-1000) /* from send_row: stop the pass, nothing is wrong */

static int finished(const struct run *r)
{
	return stop || r->fatal || r->tx_rc || r->capped || (r->left && r->started >= r->left);
}

/* The sending pass: missions gather in a window, which is sent when full. */
static int send_row(void *user, struct merge *m, const struct roster_row *row,
                    const struct letter_out *lo)
{
	struct run *r = user;
	struct job *j;
	int rc;

	(void)m;
	if (finished(r))
		return SEND_STOP;
	if (!r->jobs)
		r->jobs = xcalloc(WINDOW, sizeof(*r->jobs));
	j = &r->jobs[r->njobs];
	rc = job_make(r, row, lo, j, 0);
	if (rc != EX_OK || j->done) {
		job_free(j);
		return rc;
	}
	if (++r->njobs == WINDOW && run_window(r) != EX_OK)
		return SEND_STOP;
	return finished(r) ? SEND_STOP : EX_OK;
}

struct untouched {
	const char *id;
	int untouched;
};

static int campaign_counts(const struct ledger_campaign *c, void *ctx)
{
	struct untouched *u = ctx;

	if (!strcmp(c->id, u->id))
		u->untouched = c->counts[LS_PENDING] == c->total;
	return 0;
}

/* 1 when the campaign exists and none of its deliveries ever went further than pending. */
static int campaign_untouched(struct ledger *l, const char *id)
{
	struct untouched u = {id, 0};
	char *err = NULL;

	if (ledger_campaigns(l, campaign_counts, &u, &err) != EX_OK)
		u.untouched = 0;
	free(err);
	return u.untouched;
}

/* The account rate windows and daily caps count: the URL (never a password) and user. */
static char *account_id(const char *via, const char *user)
{
	if (user && *user)
		return xasprintf("%s;user=%s", via, user);
	return xstrdup(via);
}

static void print_plan(struct run *r, size_t to_send, const char *rate, int concurrency)
{
	const char *title = letter_header_source(r->m->letter, "en", "Title");

	fprintf(stderr, "campaign:   %s%s%s\n", r->m->campaign, title ? " - " : "",
	        title ? title : "");
	fprintf(stderr, "appeal:     %s (sha256 %.16s...)\n", letter_path(r->m->letter),
	        letter_hash(r->m->letter));
	fprintf(stderr, "transport:  %s (concurrency %d)\n", r->via, concurrency);
	fprintf(stderr, "sender:     %s <%s>%s\n", r->mr.from_name, r->mr.from_addr,
	        r->mr.example_sender ? " (example: set [sender] address)" : "");
	if (r->test)
		fprintf(stderr, "test:       every message goes to %s, Subject [TEST]\n",
		        r->mr.test_to);
	fprintf(stderr,
	        "missions:   %zu to send, %zu already sent, %zu failed and %zu in doubt "
	        "left alone\n",
	        to_send, r->already_sent, r->skipped_failed, r->skipped_unknown);
	if (rate && *rate) {
		long count = 0;
		int64_t per = 0;

		if (ratelimit_parse(rate, &count, &per, NULL) == EX_OK && count > 0)
			fprintf(stderr, "rate:       %s, about %.0f s for all\n", rate,
			        (double)to_send * (double)per / (double)count / 1000.0);
	} else {
		fprintf(stderr, "rate:       no limit\n");
	}
}

int cmd_send(int argc, char **argv, struct app *app)
{
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct run r = {0};
	struct transport_opts to = {0};
	struct not_received nr = {0};
	const char *not_received = NULL, *rate = NULL;
	char *password = NULL, *oauth = NULL;
	int concurrency = 0, limit = 0, yes = 0, amend = 0;
	size_t to_send = 0;
	int c, rc;
	struct sigaction sa, old_int, old_term;

	while ((c = getopt_long(argc, argv, "", send_options, NULL)) != -1) {
		if (merge_option(&mo, c, optarg))
			continue;
		rc = EX_OK;
		switch (c) {
		case 'N':
			not_received = optarg;
			break;
		case 'v':
			r.via = optarg;
			break;
		case 'r':
			rate = optarg;
			break;
		case 'c':
			rc = parse_count("--concurrency", optarg, &concurrency);
			break;
		case 'l':
			rc = parse_count("--limit", optarg, &limit);
			break;
		case 'T':
			r.mr.test_to = optarg;
			break;
		case 'U':
			r.retry_flags |= LEDGER_RETRY_UNKNOWN;
			break;
		case 'F':
			r.retry_flags |= LEDGER_RETRY_FAILED;
			break;
		case 'A':
			amend = 1;
			break;
		case 'y':
			yes = 1;
			break;
		default:
			rc = EX_USAGE;
			fputs(usage_send, stderr);
		}
		if (rc != EX_OK)
			goto out;
	}
	if (optind + 1 != argc || !mo.ro.path) {
		fputs(usage_send, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (!yes && !(term_isatty(stdin) && term_isatty(stderr))) {
		fprintf(stderr,
		        "demarche send: not on a terminal: add --yes to send without asking\n");
		rc = EX_USAGE;
		goto out;
	}
	mo.appeal = argv[optind];
	rc = app_config(app);
	if (rc != EX_OK)
		goto out;
	if (!r.via)
		r.via = app->cfg.smtp.url && *app->cfg.smtp.url ? app->cfg.smtp.url
		                                                : "maildir:./outbox";
	if (!rate)
		rate = app->cfg.smtp.rate;
	if (!concurrency)
		concurrency = app->cfg.smtp.concurrency > 0 ? app->cfg.smtp.concurrency : 1;
	r.max_attempts = app->cfg.smtp.max_attempts > 0 ? app->cfg.smtp.max_attempts : 1;
	r.retry_after = app->cfg.smtp.retry_after;
	r.test = r.mr.test_to != NULL;
	r.account = account_id(r.via, app->cfg.smtp.user);
	r.date = time(NULL);

	rc = ledger_open(app_store_path(app), LEDGER_CREATE | LEDGER_EXCLUSIVE | LEDGER_CHECK,
	                 &r.ledger, &r.err);
	if (rc != EX_OK)
		goto fail;
	if (!r.test) {
		r.sc = sentcopy_open(&app->cfg, &r.err);
		if (!r.sc && r.err) {
			rc = EX_CONFIG;
			goto fail;
		}
		if (r.sc) {
			char *err = NULL;

			/* Copies a previous run could not append go first. */
			if (sentcopy_retry(r.sc, r.ledger, NULL, NULL, &err) != EX_OK)
				fprintf(stderr, "demarche send: %s\n", err);
			free(err);
		}
	}
	if (not_received) {
		nr.ledger = r.ledger;
		nr.campaign = not_received;
		mo.ro.exclude = exclude_received;
		mo.ro.exclude_user = &nr;
	}

	/* 1. Validate everything: nothing leaves unless every mission's message composes. */
	rc = merge_open(&mo, "send", &m);
	if (rc != EX_OK)
		goto out;
	r.m = m;
	{
		const char *test_to = r.mr.test_to;

		rc = message_run_init(&r.mr, &app->cfg, m, &r.err);
		r.mr.test_to = test_to;
	}
	if (rc != EX_OK)
		goto fail;
	if (r.mr.example_sender && strncmp(r.via, "maildir:", 8) != 0) {
		rc = error_set(&r.err, EX_CONFIG,
		               "set [sender] name and address in demarche.ini before sending "
		               "through %s",
		               r.via);
		goto fail;
	}
	if (r.test && address_is_bad(r.mr.test_to)) {
		rc = error_set(&r.err, EX_USAGE, "--test-to '%s' is not an address", r.mr.test_to);
		goto fail;
	}
	{
		struct message_check mc = {&r.mr, r.date, NULL};

		rc = merge_validate(m, "send", message_check_row, &mc);
		free(mc.err);
	}
	if (nr.error)
		rc = error_set(&r.err, EX_IOERR, "the ledger could not answer --not-received");
	if (rc != EX_OK)
		goto fail;

	/* 2. The campaign and its deliveries, each mission's state decides what is sent. */
	if (!r.test) {
		/* An appeal may still change while nothing of its campaign has left. */
		if (!amend && campaign_untouched(r.ledger, m->campaign))
			amend = 1;
		rc = ledger_campaign_begin(r.ledger, m->campaign,
		                           letter_header_source(m->letter, "en", "Title"),
		                           letter_header_source(m->letter, "en", "Subject"),
		                           letter_hash(m->letter), amend, &r.err);
		if (rc != EX_OK)
			goto fail;
		rc = ledger_batch_begin(r.ledger, &r.err);
		if (rc != EX_OK)
			goto fail;
	}
	rc = merge_each(m, plan_row, &r);
	if (!r.test) {
		int rc2 = ledger_batch_end(r.ledger, rc == EX_OK, rc == EX_OK ? &r.err : NULL);
		if (rc == EX_OK)
			rc = rc2;
	}
	if (rc != EX_OK)
		goto fail;
	to_send = r.to_send;

	/* 3. Pace: the rate, and the daily cap counting what this account sent already. */
	r.rl = ratelimit_new();
	rc = ratelimit_set_rate(r.rl, rate, &r.err);
	if (rc != EX_OK)
		goto fail;
	if (rate && *rate) {
		/* The rate holds across runs too: what this account sent within the last
		 * period counts (two runs together stay under it). */
		long count = 0, sent = 0;
		int64_t per = 0, now = ratelimit_now();

		if (ratelimit_parse(rate, &count, &per, &r.err) == EX_OK) {
			rc = ledger_count_sent(r.ledger, r.account,
			                       time(NULL) - (time_t)(per / 1000), &sent, &r.err);
			if (rc != EX_OK)
				goto fail;
			ratelimit_add_cap(r.rl, count, per);
			for (long i = 0; i < sent && i < count; i++)
				ratelimit_note(r.rl, now - per + 1000);
		}
	}
	if (limit)
		r.left = (size_t)limit;
	r.cap_left = -1;
	if (app->cfg.smtp.daily_cap > 0) {
		/* daily_cap counts recipients, as providers do, over the last 24 hours of this
		 * account in the ledger (the lock keeps a second run from racing this one). */
		long count = 0;

		rc = ledger_count_sent(r.ledger, r.account, time(NULL) - 86400, &count, &r.err);
		if (rc != EX_OK)
			goto fail;
		r.cap_left = app->cfg.smtp.daily_cap > count ? app->cfg.smtp.daily_cap - count : 0;
		if (r.cap_left == 0) {
			printf(
			    "campaign %s: nothing sent: the daily cap (%d recipients) is reached: "
			    "%ld in the last 24 hours through %s; run again later\n",
			    m->campaign, app->cfg.smtp.daily_cap, count, r.via);
			rc = EX_TEMPFAIL;
			goto out;
		}
	}

	if (!yes) {
		print_plan(&r, r.left && r.left < to_send ? r.left : to_send, rate, concurrency);
		if (!term_confirm("Type 'send' to send, anything else to stop: ", "send")) {
			fprintf(stderr, "demarche send: nothing sent\n");
			rc = EX_OK;
			goto out;
		}
	}
	if (to_send == 0) {
		printf("campaign %s: nothing to send (%zu already sent, %zu failed and %zu in "
		       "doubt left alone)\n",
		       m->campaign, r.already_sent, r.skipped_failed, r.skipped_unknown);
		rc = r.skipped_failed ? EX_UNAVAILABLE : r.skipped_unknown ? EX_TEMPFAIL : EX_OK;
		goto out;
	}

	/* 4. Send. */
	if (app->cfg.smtp.user && *app->cfg.smtp.user) {
		if (app->cfg.smtp.password && *app->cfg.smtp.password)
			password = xstrdup(app->cfg.smtp.password);
		else
			rc = secret_get("DEMARCHE_SMTP_PASSWORD", app->cfg.smtp.password_command,
			                &password, &r.err);
		if (rc == EX_OK && app->cfg.smtp.oauth_token_command &&
		    *app->cfg.smtp.oauth_token_command)
			rc = secret_get(NULL, app->cfg.smtp.oauth_token_command, &oauth, &r.err);
		if (rc != EX_OK)
			goto fail;
	}
	to.url = r.via;
	to.user = app->cfg.smtp.user;
	to.password = password;
	to.oauth_token = oauth;
	to.tls = app->cfg.smtp.tls;
	to.ca_file = app->cfg.smtp.ca_file;
	to.timeout = app->cfg.smtp.timeout;
	to.concurrency = concurrency;
	to.helo = r.mr.domain;
	rc = transport_open(&to, &r.t, &r.err);
	if (rc != EX_OK)
		goto fail;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	r.progress = term_isatty(stderr);
	r.t0 = ratelimit_now();
	rc = merge_each(m, send_row, &r);
	if (rc == SEND_STOP)
		rc = EX_OK;
	if (rc == EX_OK && r.njobs)
		run_window(&r); /* the last one */
	if (rc == EX_OK)
		rc = r.tx_rc;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (r.progress)
		term_status_done(stderr);
	if (rc != EX_OK && r.err)
		fprintf(stderr, "demarche send: %s\n", r.err);
	if (r.fatal && rc == EX_OK)
		rc = r.fatal;

	{
		size_t ended = r.sent + r.deferred + r.failed + r.unknown;
		size_t not_started = r.to_send > ended ? r.to_send - ended : 0;

		if (r.test)
			printf(
			    "test of campaign %s to %s via %s: %zu sent, %zu deferred, %zu failed, "
			    "%zu in doubt (recorded as tests, not deliveries)\n",
			    m->campaign, r.mr.test_to, r.via, r.sent, r.deferred, r.failed,
			    r.unknown);
		else
			printf(
			    "campaign %s via %s: %zu sent, %zu deferred, %zu failed, %zu in doubt, "
			    "%zu not started; %zu already sent before\n",
			    m->campaign, r.via, r.sent, r.deferred, r.failed, r.unknown,
			    not_started, r.already_sent);
		if (stop)
			fprintf(stderr, "demarche send: interrupted; the ledger is consistent: run "
			                "again to go on\n");
		if (r.capped)
			fprintf(stderr,
			        "demarche send: the daily cap (%d recipients) is reached: run "
			        "again later for the rest\n",
			        app->cfg.smtp.daily_cap);
		if (rc == EX_OK) {
			if (r.failed)
				rc = EX_UNAVAILABLE;
			else if (r.deferred || r.unknown || not_started || stop || r.capped)
				rc = EX_TEMPFAIL;
		}
	}
	goto out;
fail:
	if (r.err)
		fprintf(stderr, "demarche send: %s\n", r.err);
out:
	transport_close(r.t);
	sentcopy_close(r.sc);
	secret_free(password);
	secret_free(oauth);
	for (size_t i = 0; i < r.njobs; i++)
		job_free(&r.jobs[i]);
	free(r.jobs);
	free(r.retry);
	free(r.pend);
	ratelimit_free(r.rl);
	message_run_free(&r.mr);
	ledger_close(r.ledger);
	free(r.account);
	free(r.err);
	merge_free(m);
	merge_opts_free(&mo);
	return rc;
}
