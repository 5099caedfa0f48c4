/* demarche send: options, the steps of a send in order, and the exit code. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/stopsig.h"
#include "base/term.h"
#include "campaign/run.h"
#include "campaign/schedule.h"
#include "campaign/sendrun.h"
#include "cmd/cmd.h"
#include "cmd/send.h"

static volatile sig_atomic_t stop; /* Ctrl-C, SIGTERM, SIGHUP: base/stopsig.h */

static const struct option send_options[] = {
    MERGE_LONG_OPTIONS,
    {"not-received", required_argument, NULL, 'N'},
    {"via", required_argument, NULL, 'V'},
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
    {"dry-run", no_argument, NULL, 'n'},
    {"format", required_argument, NULL, 'f'},
    {"verbose", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

struct send_args {
	struct merge_opts mo;
	struct run_opts o; /* --via, --rate, --concurrency, --limit, --retry-*, ...; -v */
	int yes, dry, json;
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

static int parse_args(int argc, char **argv, struct send_args *a)
{
	char *err = NULL;
	int c, rc = EX_OK;

	while (rc == EX_OK && (c = getopt_long(argc, argv, "v", send_options, NULL)) != -1) {
		if (merge_option(&a->mo, c, optarg))
			continue;
		switch (c) {
		case 'N':
			a->o.not_received = optarg;
			break;
		case 'V':
			a->o.via = optarg;
			break;
		case 'n':
			a->dry = 1;
			break;
		case 'v':
			a->o.verbose = 1;
			break;
		case 'f':
			if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
				fprintf(stderr,
				        "demarche send: --format wants text or json, not '%s'\n",
				        optarg);
				rc = EX_USAGE;
			}
			a->json = !strcmp(optarg, "json");
			break;
		case 'r':
			a->o.rate = optarg;
			break;
		case 'c':
			rc = parse_count("--concurrency", optarg, &a->o.concurrency);
			break;
		case 'l':
			rc = parse_count("--limit", optarg, &a->o.limit);
			break;
		case 'T':
			a->o.test_to = optarg;
			break;
		case 'U':
			a->o.retry_flags |= LEDGER_RETRY_UNKNOWN;
			break;
		case 'F':
			a->o.retry_flags |= LEDGER_RETRY_FAILED;
			break;
		case 'A':
			a->o.amend = 1;
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
	if (rc == EX_OK &&
	    (rc = sendrun_check(&a->sc, a->until_done, a->o.test_to, &err)) != EX_OK) {
		fprintf(stderr, "demarche send: %s\n", err);
		free(err);
		return rc;
	}
	if (rc == EX_OK && (optind + 1 != argc || !a->mo.ro.path)) {
		fputs(usage_send, stderr);
		rc = EX_USAGE;
	}
	if (rc == EX_OK && !a->yes && !a->dry && !(term_isatty(stdin) && term_isatty(stderr))) {
		fprintf(stderr,
		        "demarche send: not on a terminal: add --yes to send without asking\n");
		rc = EX_USAGE;
	}
	a->mo.appeal = rc == EX_OK ? argv[optind] : NULL;
	return rc;
}

/* One pass: the whole send as before, of the missions whose time has come. */
static int send_once(struct send_args *pa, struct app *app, struct sendrun_wait *w)
{
	struct send_args a = *pa;
	struct run r = {0};
	struct send_view v = {0};
	struct engine_opts eo = {0};
	struct stopsig ss;
	int filtered = a.mo.nonly || a.mo.nwheres || a.o.not_received;
	char *err = NULL;
	int rc, copies_rc, summary_rc;

	a.o.cfg = &app->cfg;
	a.o.store = app_store_path(app);
	a.o.mo = &a.mo;
	a.o.verbose |= app->verbose; /* demarche -v send, or send -v */
	rc = a.dry ? run_dry(&r, &a.o, &err) : run_prepare(&r, &a.o, &err);
	if (rc != EX_OK)
		goto fail; /* bad input: every problem is printed already */
	send_view_init(&v, &r, a.json);
	if (a.dry) { /* the plan, what would go where, what changed since the last letter */
		send_print_plan(&v);
		rc = send_print_dry(&v);
		print_changes(stdout, r.ledger, NULL, r.m, filtered);
		goto out;
	}
	if (r.pace.cap_left == 0 && r.p.n) {
		send_print_capped(&v, app->cfg.smtp.daily_cap, r.pace.sent_today);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (!a.yes) {
		send_print_plan(&v);
		print_changes(stderr, r.ledger, NULL, r.m, filtered);
		if (!term_confirm("Type 'send' to send, anything else to stop: ", "send")) {
			fprintf(stderr, "demarche send: nothing sent\n");
			goto out;
		}
		a.yes = 1; /* the send calendar's later passes do not ask again */
	}

	/* Ctrl-C, SIGTERM and SIGHUP stop alike: the messages in flight finish, then the
	 * summary (a second one abandons them: in doubt). */
	stopsig_catch(&ss, &stop);
	v.progress = term_isatty(stderr);
	v.t0 = ratelimit_now();
	eo.stop = &stop;
	eo.report = send_print_outcome;
	eo.report_u = &v;
	rc = run_send(&r, &a.o, &eo, &v.st, &copies_rc, &err);
	stopsig_release(&ss);
	if (v.progress)
		term_status_done(stderr);
	if (err)
		fprintf(stderr, "demarche send: %s\n", err);
	summary_rc = send_print_summary(&v, a.o.test_to != NULL, stop != 0);
	if (rc == EX_OK)
		rc = copies_rc != EX_OK ? copies_rc : summary_rc;
	send_print_stopped(&v, stop != 0, app->cfg.smtp.daily_cap);
	free(err);
	err = NULL;
	if (schedule_active(&a.sc) && r.ledger && r.m &&
	    sendrun_waiting(&a.sc, &r, &a.mo.ro, w, &err) != EX_OK)
		goto fail;
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
	int rc, failed = 0, again = 1;

	rc = parse_args(argc, argv, &a);
	if (rc == EX_OK)
		rc = app_config(app);
	while (rc == EX_OK && again && (rc = sendrun_plan(&a.sc, &a.mo.ro, "send")) == EX_OK) {
		struct sendrun_wait w = {0};
		char *err = NULL;

		rc = send_once(&a, app, &w);
		failed |= rc == EX_UNAVAILABLE;
		send_print_waiting(&w);
		again = sendrun_again(&a.sc, a.until_done, stop != 0, &w, &rc, &err);
		if (err)
			fprintf(stderr, "demarche send: %s\n", err);
		free(err);
		if (again) {
			fflush(stdout);
			if (clock_sleep_until(w.next * 1000, &stop)) {
				rc = EX_OK;
			} else {
				fprintf(stderr, "demarche send: interrupted while waiting; run "
				                "again to go on\n");
				rc = EX_TEMPFAIL;
				again = 0;
			}
		}
		sendrun_wait_free(&w);
	}
	schedule_free(&a.sc);
	merge_opts_free(&a.mo);
	return rc == EX_OK && failed ? EX_UNAVAILABLE : rc;
}
