/* demarche send: options, the steps of a send in order, and the exit code. */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "campaign/account.h"
#include "campaign/copyq.h"
#include "campaign/engine.h"
#include "campaign/pace.h"
#include "campaign/plan.h"
#include "campaign/sentcopy.h"
#include "cmd/cmd.h"
#include "cmd/send.h"
#include "roster/address.h"

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
    "Exit: 0 every selected mission sent; 64 usage; 65 bad input or a damaged ledger, nothing\n"
    "sent; 66 the appeal or the roster cannot be read; 69 some mission failed permanently\n"
    "(see demarche audit); 70 internal error; 73 the ledger or the spool cannot be created;\n"
    "74 the ledger or the spool cannot be written; 75 some mission deferred, in doubt or not\n"
    "yet started (rate or daily cap, --limit, stopped by Ctrl-C, SIGTERM or SIGHUP, another\n"
    "send holding the ledger): run again later; 78 configuration (credentials, TLS, a\n"
    "password in a URL). The summary counts the campaign's selected missions, not only\n"
    "this run's messages.\n";

/* One send at a time per ledger: a second run would race the first for the same missions. */
static int send_lock(const char *store, int *fd, char **err)
{
	char *path = xasprintf("%s.lock", store);
	int rc = EX_OK;

	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		rc = error_set(err, EX_CANTCREAT, "%s: cannot make the lock file", store);
	else if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
		rc = error_set(err, EX_TEMPFAIL, "%s: another demarche send is using this ledger",
		               store);
	free(path);
	return rc;
}

static void send_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

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
    {NULL, 0, NULL, 0},
};

struct send_args {
	struct merge_opts mo;
	const char *not_received, *rate, *via, *test_to;
	int concurrency, limit, yes, amend;
	unsigned retry_flags;
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
		default:
			fputs(usage_send, stderr);
			return EX_USAGE;
		}
	}
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

/* 1 when the campaign exists and none of its deliveries ever went further than pending. */
static int untouched(const struct ledger_campaign *c, void *ctx)
{
	if (!strcmp(c->id, *(const char **)ctx))
		*(const char **)ctx = c->counts[LS_PENDING] == c->total ? "" : NULL;
	return 0;
}

/* The campaign is recorded (an appeal may still change while nothing of it has left). */
static int begin_campaign(struct ledger *l, const struct merge *m, int amend, char **err)
{
	const char *probe = m->campaign;

	if (!amend && ledger_campaigns(l, untouched, &probe, err) == EX_OK && probe && !*probe)
		amend = 1;
	return ledger_campaign_begin(l, m->campaign, letter_header_source(m->letter, "en", "Title"),
	                             letter_header_source(m->letter, "en", "Subject"),
	                             letter_hash(m->letter), amend, err);
}

/* The transport, with the secret looked up now: nothing is asked for before it is needed. */
static int open_transport(struct app *app, struct account *acct, int concurrency, const char *helo,
                          struct transport **t, char **err)
{
	struct transport_opts to = {0};
	int rc = account_secret(acct, err);

	to.url = acct->url;
	to.user = acct->user;
	to.password = acct->password;
	to.oauth_token = acct->oauth_token;
	to.tls = app->cfg.smtp.tls;
	to.ca_file = acct->ca_file;
	to.timeout = app->cfg.smtp.timeout;
	to.concurrency = concurrency;
	to.helo = helo;
	return rc == EX_OK ? transport_open(&to, t, err) : rc;
}

int cmd_send(int argc, char **argv, struct app *app)
{
	struct send_args a = {0};
	struct send_view v = {0};
	struct merge *m = NULL;
	struct message_run mr = {0};
	struct plan p = {0};
	struct pace pace = {0};
	struct ledger *ledger = NULL;
	struct transport *t = NULL;
	struct sentcopy *sc = NULL;
	struct copyq *cq = NULL;
	struct engine_opts eo = {0};
	struct not_received nr = {0};
	struct sigaction sa, old[3];
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	struct account *acct = NULL;
	const char *account;
	char *err = NULL;
	const struct config *cfg = &app->cfg;
	time_t date = time(NULL);
	int rc, lockfd = -1;

	rc = parse_args(argc, argv, &a);
	if (rc == EX_OK)
		rc = app_config(app);
	if (rc != EX_OK)
		goto out;
	/* A URL with a password is refused here, before anything is written. */
	rc = account_resolve(ACCOUNT_SMTP, cfg, a.via, 0, &acct, &err);
	if (rc != EX_OK)
		goto fail;
	v.via = acct->url;
	account = acct->id;
	v.rate = a.rate ? a.rate : cfg->smtp.rate;
	v.concurrency = a.concurrency               ? a.concurrency
	                : cfg->smtp.concurrency > 0 ? cfg->smtp.concurrency
	                                            : 1;
	rc = send_lock(app_store_path(app), &lockfd, &err);
	if (rc == EX_OK)
		rc = ledger_open(app_store_path(app), LEDGER_CREATE, &ledger, &err);
	if (rc == EX_OK && !a.test_to && !(sc = sentcopy_open(cfg, &err)) && err)
		rc = EX_CONFIG;
	if (rc != EX_OK)
		goto fail;
	if (a.not_received) {
		nr.ledger = ledger;
		nr.campaign = a.not_received;
		a.mo.ro.exclude = exclude_received;
		a.mo.ro.exclude_user = &nr;
	}

	/* 1. Validate everything, composing each mission's message once into the spool. */
	rc = merge_open(&a.mo, "send", &m);
	if (rc != EX_OK)
		goto out;
	rc = message_run_init(&mr, cfg, m, &err);
	mr.test_to = a.test_to;
	if (rc == EX_OK && mr.example_sender && strncmp(v.via, "maildir:", 8) != 0)
		rc = error_set(&err, EX_CONFIG,
		               "set [sender] name and address in demarche.ini before sending "
		               "through %s",
		               v.via);
	if (rc == EX_OK && a.test_to && address_check(a.test_to, strlen(a.test_to), 0))
		rc = error_set(&err, EX_USAGE, "--test-to '%s' is not an address", a.test_to);
	if (rc == EX_OK)
		rc = plan_compose(&p, m, &mr, date, "send", &err);
	if (rc == EX_OK && nr.error)
		rc = error_set(&err, EX_IOERR, "the ledger could not answer --not-received");
	if (rc == EX_DATAERR && !err)
		goto out; /* every problem is printed */
	if (rc != EX_OK)
		goto fail;

	/* 2. The campaign and its deliveries: each mission's state decides what is sent. */
	if (a.test_to)
		plan_all(&p);
	else if ((rc = begin_campaign(ledger, m, a.amend, &err)) != EX_OK ||
	         (rc = plan_deliveries(&p, ledger, m->campaign, a.retry_flags, account, &err)) !=
	             EX_OK)
		goto fail;

	/* 3. Pace: the rate and the daily cap, counting what this account sent already. */
	rc = pace_setup(&pace, ledger, account, v.rate, cfg->smtp.daily_cap, &err);
	if (rc != EX_OK)
		goto fail;
	v.m = m;
	v.mr = &mr;
	v.p = &p;
	v.to_send = a.limit && (size_t)a.limit < p.n ? (size_t)a.limit : p.n;
	if (pace.cap_left == 0 && p.n) {
		printf(
		    "campaign %s: nothing sent: the daily cap (%d recipients) is reached: %ld in "
		    "the last 24 hours through %s; run again later\n",
		    m->campaign, cfg->smtp.daily_cap, pace.sent_today, v.via);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (!a.yes) {
		send_print_plan(&v);
		if (!term_confirm("Type 'send' to send, anything else to stop: ", "send")) {
			fprintf(stderr, "demarche send: nothing sent\n");
			goto out;
		}
	}

	/* 4. Send. */
	if (p.n) {
		rc = open_transport(app, acct, v.concurrency, mr.domain, &t, &err);
		if (rc == EX_OK && sc) {
			rc = copyq_start(sc, app_store_path(app), &p, &cq, &err);
			sc = NULL;
		}
		if (rc != EX_OK)
			goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	v.progress = term_isatty(stderr);
	v.t0 = ratelimit_now();
	eo.ledger = ledger;
	eo.campaign = m->campaign;
	eo.account = account;
	eo.t = t;
	eo.rl = pace.rl;
	eo.cap_left = pace.cap_left;
	eo.limit = (size_t)a.limit;
	eo.max_attempts = cfg->smtp.max_attempts > 0 ? cfg->smtp.max_attempts : 1;
	eo.retry_after = cfg->smtp.retry_after;
	eo.retry_flags = a.retry_flags;
	eo.from = mr.from_addr;
	eo.test_to = a.test_to;
	eo.copies = cq;
	eo.stop = &stop;
	eo.report = send_print_outcome;
	eo.report_u = &v;
	rc = p.n ? engine_run(&eo, &p, &v.st, &err) : EX_OK;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (v.progress)
		term_status_done(stderr);
	if (rc != EX_OK && err)
		fprintf(stderr, "demarche send: %s\n", err);
	{
		int rc2 = copyq_finish(cq, stop || rc != EX_OK, NULL, NULL, &err);
		int rc3 = send_print_summary(&v, a.test_to != NULL, stop != 0);

		cq = NULL;
		if (rc2 != EX_OK)
			fprintf(stderr, "demarche send: %s\n", err);
		if (rc == EX_OK)
			rc = rc2 != EX_OK ? rc2 : rc3;
	}
	if (stop)
		fprintf(stderr, "demarche send: interrupted; the ledger is consistent: run again "
		                "to go on\n");
	if (v.st.capped)
		fprintf(stderr,
		        "demarche send: the daily cap (%d recipients) is reached: run again "
		        "later for the rest\n",
		        cfg->smtp.daily_cap);
	goto out;
fail:
	if (err)
		fprintf(stderr, "demarche send: %s\n", err);
out:
	copyq_finish(cq, 1, NULL, NULL, NULL);
	transport_close(t);
	sentcopy_close(sc);
	pace_free(&pace);
	plan_free(&p);
	message_run_free(&mr);
	ledger_close(ledger);
	send_unlock(lockfd);
	account_free(acct);
	free(err);
	merge_free(m);
	merge_opts_free(&a.mo);
	return rc;
}
