/* demarche send: options, the steps of a send in order, and the exit code. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/term.h"
#include "cmd/cmd.h"
#include "campaign/run.h"
#include "cmd/send.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/xalloc.h"
#include "campaign/schedule.h"

const char usage_send[] =
    "usage: demarche send APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                     [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "                     [--not-received CAMPAIGN] [--via URL] [--rate N/minute|N/hour]\n"
    "                     [--concurrency N] [--limit N] [--test-to ADDR] [--retry-unknown]\n"
    "                     [--retry-failed] [--amend] [--yes]\n"
    "                     [--window HH:MM-HH:MM] [--at YYYY-MM-DDTHH:MM [--local]]\n"
    "                     [--until-done [--until YYYY-MM-DD]]\n"
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
    "  --window 09:00-17:00   send each mission only inside these hours of its own time\n"
    "                         zone (roster column timezone, IANA names) on its working\n"
    "                         days (column weekend, default sat,sun; e.g. fri-sat)\n"
    "  --at TIME              send nothing before TIME (UTC; with --local, each mission's\n"
    "                         own local time)\n"
    "  --until-done           sleep until the next mission's time comes and go on, until\n"
    "                         every mission is sent; a rerun resumes (the ledger has it)\n"
    "  --until DATE           with --until-done: stop there (YYYY-MM-DD[THH:MM], UTC)\n"
    "\n"
    "Exit: 0 every selected mission sent; 64 usage; 65 bad input or a damaged ledger, nothing\n"
    "sent; 66 the appeal or the roster cannot be read; 69 some mission failed permanently\n"
    "(see demarche audit); 70 internal error; 73 the ledger or the spool cannot be created;\n"
    "74 the ledger or the spool cannot be written; 75 some mission deferred, in doubt or not\n"
    "yet started (rate or daily cap, --limit, stopped by Ctrl-C, SIGTERM or SIGHUP, another\n"
    "send holding the ledger): run again later; 77 not approved ([approval] required: see\n"
    "demarche approve; nothing recorded); 78 configuration (credentials, TLS, a\n"
    "password in a URL). The summary counts the campaign's selected missions, not only\n"
    "this run's messages.\n";

static volatile sig_atomic_t stop;

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
    {"window", required_argument, NULL, 'W'},
    {"at", required_argument, NULL, 'a'},
    {"local", no_argument, NULL, 'L'},
    {"until-done", no_argument, NULL, 'D'},
    {"until", required_argument, NULL, 'u'},
    {NULL, 0, NULL, 0},
};

struct send_args {
	struct merge_opts mo;
	const char *not_received, *rate, *via, *test_to;
	int concurrency, limit, yes, amend;
	unsigned retry_flags;
	struct schedule sc; /* the send calendar (campaign/schedule.h) */
	int until_done;
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

/* The send calendar's options. */
static int schedule_option(struct send_args *a, int c, const char *arg)
{
	char *err = NULL;
	int rc = EX_OK;

	if (c == 'W')
		rc = schedule_parse_window(&a->sc, arg, &err);
	else if (c == 'a')
		rc = schedule_parse_at(&a->sc, arg, &err);
	else if (c == 'u')
		rc = schedule_parse_until(&a->sc, arg, &err);
	else if (c == 'L')
		a->sc.local = 1;
	else
		a->until_done = 1;
	if (rc != EX_OK)
		fprintf(stderr, "demarche send: %s\n", err);
	free(err);
	return rc;
}

static int schedule_check_args(struct send_args *a)
{
	char *err = NULL;
	int rc = schedule_check(&a->sc, &err);

	if (rc == EX_OK && a->sc.until && !a->until_done)
		rc = error_set(&err, EX_USAGE, "--until goes with --until-done");
	if (rc == EX_OK && a->until_done && !schedule_active(&a->sc))
		rc = error_set(&err, EX_USAGE, "--until-done goes with --window or --at");
	if (rc == EX_OK && a->test_to && schedule_active(&a->sc))
		rc = error_set(&err, EX_USAGE, "--test-to sends now: no --window or --at");
	if (rc != EX_OK)
		fprintf(stderr, "demarche send: %s\n", err);
	free(err);
	return rc;
}

static int parse_args(int argc, char **argv, struct send_args *a)
{
	int c, rc = EX_OK;

	while (rc == EX_OK && (c = getopt_long(argc, argv, "", send_options, NULL)) != -1) {
		if (merge_option(&a->mo, c, optarg))
			continue;
		switch (c) {
		case 'N':
			a->not_received = optarg;
			break;
		case 'v':
			a->via = optarg;
			break;
		case 'r':
			a->rate = optarg;
			break;
		case 'c':
			rc = parse_count("--concurrency", optarg, &a->concurrency);
			break;
		case 'l':
			rc = parse_count("--limit", optarg, &a->limit);
			break;
		case 'T':
			a->test_to = optarg;
			break;
		case 'U':
			a->retry_flags |= LEDGER_RETRY_UNKNOWN;
			break;
		case 'F':
			a->retry_flags |= LEDGER_RETRY_FAILED;
			break;
		case 'A':
			a->amend = 1;
			break;
		case 'y':
			a->yes = 1;
			break;
		case 'W':
		case 'a':
		case 'L':
		case 'D':
		case 'u':
			rc = schedule_option(a, c, optarg);
			break;
		default:
			fputs(usage_send, stderr);
			return EX_USAGE;
		}
	}
	if (rc == EX_OK && (rc = schedule_check_args(a)) != EX_OK)
		return rc;
	if (rc == EX_OK && (optind + 1 != argc || !a->mo.ro.path)) {
		fputs(usage_send, stderr);
		rc = EX_USAGE;
	}
	if (rc == EX_OK && !a->yes && !(term_isatty(stdin) && term_isatty(stderr))) {
		fprintf(stderr,
		        "demarche send: not on a terminal: add --yes to send without asking\n");
		rc = EX_USAGE;
	}
	a->mo.appeal = rc == EX_OK ? argv[optind] : NULL;
	return rc;
}

/* What a pass of the send calendar left for later. */
struct waiting {
	size_t n;
	int64_t next; /* UTC seconds */
	char *key, *zone;
};

static void waiting_note(struct send_args *a, struct run *r, struct waiting *w)
{
	const char *key = NULL;
	char *err = NULL;

	if (schedule_waiting(&a->sc, r->ledger, r->m->campaign, &a->mo.ro, &w->n, &w->next, &key,
	                     &err) != EX_OK) {
		fprintf(stderr, "demarche send: %s\n", err);
		w->n = 0;
	}
	free(err);
	if (w->n && key) {
		w->key = xstrdup(key);
		for (size_t i = 0; i < a->sc.n; i++)
			if (a->sc.e[i].key == key && a->sc.e[i].zone)
				w->zone = xstrdup(a->sc.e[i].zone);
	}
}

/* One pass: the whole send as before, of the missions whose time has come. */
static int send_once(struct send_args *pa, struct app *app, struct waiting *w)
{
	struct send_args a = *pa;
	struct run_opts o = {0};
	struct run r = {0};
	struct send_view v = {0};
	struct engine_opts eo = {0};
	struct sigaction sa, old[3];
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	char *err = NULL;
	int rc, copies_rc;

	rc = EX_OK;
	o.cfg = &app->cfg;
	o.store = app_store_path(app);
	o.mo = &a.mo;
	o.via = a.via;
	o.rate = a.rate;
	o.test_to = a.test_to;
	o.not_received = a.not_received;
	o.concurrency = a.concurrency;
	o.limit = a.limit;
	o.amend = a.amend;
	o.retry_flags = a.retry_flags;
	rc = run_prepare(&r, &o, &err);
	if (rc != EX_OK)
		goto fail; /* bad input: every problem is printed already */
	v.m = r.m;
	v.mr = &r.mr;
	v.p = &r.p;
	v.via = r.acct->url;
	v.rate = r.rate;
	v.concurrency = r.concurrency;
	v.to_send = r.to_send;
	if (r.pace.cap_left == 0 && r.p.n) {
		printf(
		    "campaign %s: nothing sent: the daily cap (%d recipients) is reached: %ld in "
		    "the last 24 hours through %s; run again later\n",
		    r.m->campaign, app->cfg.smtp.daily_cap, r.pace.sent_today, v.via);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (!a.yes) {
		send_print_plan(&v);
		if (!term_confirm("Type 'send' to send, anything else to stop: ", "send")) {
			fprintf(stderr, "demarche send: nothing sent\n");
			goto out;
		}
		a.yes = 1; /* the send calendar's later passes do not ask again */
	}

	/* Ctrl-C, SIGTERM and SIGHUP stop alike: the messages in flight finish, then the
	 * summary (a second one abandons them: in doubt). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	v.progress = term_isatty(stderr);
	v.t0 = ratelimit_now();
	eo.stop = &stop;
	eo.report = send_print_outcome;
	eo.report_u = &v;
	rc = run_send(&r, &o, &eo, &v.st, &copies_rc, &err);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (v.progress)
		term_status_done(stderr);
	if (err)
		fprintf(stderr, "demarche send: %s\n", err);
	{
		int summary_rc = send_print_summary(&v, a.test_to != NULL, stop != 0);

		if (rc == EX_OK)
			rc = copies_rc != EX_OK ? copies_rc : summary_rc;
	}
	if (stop)
		fprintf(stderr, "demarche send: interrupted; the ledger is consistent: run again "
		                "to go on\n");
	if (v.st.capped)
		fprintf(stderr,
		        "demarche send: the daily cap (%d recipients) is reached: run again "
		        "later for the rest\n",
		        app->cfg.smtp.daily_cap);
	if (schedule_active(&a.sc) && r.ledger && r.m)
		waiting_note(&a, &r, w);
	goto out;
fail:
	if (err)
		fprintf(stderr, "demarche send: %s\n", err);
out:
	run_free(&r);
	free(err);
	pa->yes = a.yes;
	return rc;
}

int cmd_send(int argc, char **argv, struct app *app)
{
	struct send_args a = {0};
	int rc, failed = 0;

	rc = parse_args(argc, argv, &a);
	if (rc == EX_OK)
		rc = app_config(app);
	while (rc == EX_OK) {
		struct waiting w = {0};
		char when[96];

		if (schedule_active(&a.sc) &&
		    (rc = schedule_plan(&a.sc, &a.mo.ro, clock_real_ms() / 1000, "send")) != EX_OK)
			break;
		rc = send_once(&a, app, &w);
		failed |= rc == EX_UNAVAILABLE;
		if (w.n) {
			char *key = esc_term_dup(w.key); /* a roster value, for a terminal */

			schedule_format_local(w.zone, w.next, when, sizeof(when));
			printf("%zu missions wait for their time; the next: %s at %s\n", w.n, key,
			       when);
			free(key);
		}
		free(w.key);
		free(w.zone);
		if (!w.n || stop || (rc != EX_OK && rc != EX_TEMPFAIL && rc != EX_UNAVAILABLE))
			break;
		if (!a.until_done) {
			if (rc == EX_OK)
				rc = EX_TEMPFAIL; /* not started yet: run again (or --until-done) */
			break;
		}
		if (a.sc.until && w.next >= a.sc.until) {
			fprintf(stderr,
			        "demarche send: %zu missions left: the next time comes after "
			        "--until\n",
			        w.n);
			rc = EX_TEMPFAIL;
			break;
		}
		fflush(stdout);
		if (!clock_sleep_until(w.next * 1000, &stop)) {
			fprintf(stderr,
			        "demarche send: interrupted while waiting; run again to go on\n");
			rc = EX_TEMPFAIL;
			break;
		}
		rc = EX_OK;
	}
	schedule_free(&a.sc);
	merge_opts_free(&a.mo);
	return rc == EX_OK && failed ? EX_UNAVAILABLE : rc;
}
