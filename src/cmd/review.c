/*
 * demarche review: the campaign served to a browser on 127.0.0.1 (docs/design.md, "Review in
 * a browser"). Validates as check does, composes every selected mission as preview does,
 * keeps the pages' material in memory, and serves it until interrupted. Never sends.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/sign.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "campaign/approval.h"
#include "campaign/batch.h"
#include "campaign/merge.h"
#include "campaign/plan.h"
#include "campaign/message.h"
#include "cmd/audit.h"
#include "cmd/cmd.h"
#include "letter/parity.h"
#include "report/model.h"
#include "review/http.h"
#include "review/site.h"

const char usage_review[] =
    "usage: demarche review APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                       [--where COL=VAL]... [--only KEY,...] [--by COL] [--port N]\n"
    "                       [--allow-approve]\n"
    "\n"
    "Validates as check does, composes every selected mission's message as preview does, and\n"
    "serves the campaign to a browser on 127.0.0.1 until interrupted (Ctrl-C): the campaign\n"
    "(languages, missions per language and group, what send would do, check's warnings),\n"
    "each mission's message (headers decoded, the HTML part sandboxed, the text part) with\n"
    "next and previous, the languages side by side with the parity check's findings, and\n"
    "the audit report when the ledger exists, and with [approval] the batch send would send\n"
    "and the approvals of it that count, and the roster changes since the previous campaign\n"
    "(new and removed missions, changed addresses and names). It never sends and, unless\n"
    "--allow-approve, never writes the ledger.\n"
    "\n"
    "Prints one URL holding a random one-time token: the first visit opens a session (a\n"
    "cookie) and any request without it is refused (403). Only 127.0.0.1 is listened on;\n"
    "a Host other than 127.0.0.1:PORT or localhost:PORT is refused (421); a POST without\n"
    "the session's CSRF token is refused (403). The pages load nothing from elsewhere and\n"
    "run no script (Content-Security-Policy).\n"
    "\n" MERGE_OPTIONS_USAGE
    "  --by COL           group missions by this column (default un_regional_group when the\n"
    "                     roster or a join has it)\n"
    "  --port N           listen on this port (default: a free one)\n"
    "  --allow-approve    offer an Approve button under the batch hash: a POST carrying that\n"
    "                     hash records an approval exactly as demarche approve does, signed\n"
    "                     with [approval] key (a sealed key's passphrase from\n"
    "                     DEMARCHE_KEY_PASSPHRASE or [approval] passphrase_command, read at\n"
    "                     start, never in the browser); refused (409) when the batch is no\n"
    "                     longer the one send would send. Without it review is read-only.\n";

struct review {
	struct review_site site;
	struct message_run mr;
	time_t date;
	const char *by;
	size_t diag_seen; /* m->d's problems already copied to the page */
	/* the ledger, when it exists: what send would do, and the audit */
	struct ledger *l;
	struct rp_roster rr;
	struct rp_campaign camp;
	int have_camp;
	struct audit_opts audit;
	char *err;
	/* --allow-approve: what approving needs, from the start */
	struct app *app;
	const struct merge_opts *mo;
	struct merge *m;
	struct approvers ap;
	const struct approver *me;
	struct sign_key *key;
};

/* What send would do with key, from its main address's state in the ledger. */
static enum review_plan plan_of(const struct review *r, const char *key, const char **text)
{
	long i = r->have_camp ? rp_roster_find(&r->rr, key) : -1;
	int st = i >= 0 && (size_t)i < r->camp.nstatus ? r->camp.status[i].main_state : -1;

	switch (st) {
	case LS_SENT:
	case LS_REPLIED:
		*text = "skip: already sent";
		return REVIEW_SENT;
	case LS_BOUNCED:
		*text = "skip: bounced";
		return REVIEW_SENT;
	case LS_FAILED:
		*text = "hold: failed (--retry-failed)";
		return REVIEW_HELD;
	case LS_UNKNOWN:
	case LS_SENDING:
		*text = "hold: in doubt (--retry-unknown)";
		return REVIEW_HELD;
	case LS_STAGED: /* written to a local outbox only: a real send still sends it */
		*text = "send (staged in a local outbox)";
		return REVIEW_SEND;
	case LS_DEFERRED:
		*text = "send (deferred before)";
		return REVIEW_SEND;
	default:
		*text = "send";
		return REVIEW_SEND;
	}
}

/* The warnings the pass has found so far (m->d), onto the campaign page. */
static void copy_warnings(struct review *r, const struct merge *m)
{
	for (; r->diag_seen < m->d.n; r->diag_seen++) {
		char *s;

		if (m->d.v[r->diag_seen].level != DIAG_WARNING)
			continue;
		s = diag_format(&m->d.v[r->diag_seen]);
		review_site_warning(&r->site, s);
		free(s);
	}
}

static int add_row(void *user, struct merge *m, const struct roster_row *row,
                   const struct letter_out *lo)
{
	struct review *r = user;
	struct message msg = {0};
	const char *key = roster_key(row), *plan_text;
	enum review_plan plan = plan_of(r, key, &plan_text);
	json_t *ctx = roster_context(row);
	char *err = NULL;

	copy_warnings(r, m);
	if (message_build(&r->mr, key, ctx, lo, r->date, &msg, &err) != EX_OK) {
		diags_add(&m->d, DIAG_ERROR, roster_path(m->roster), roster_row_line(row), NULL,
		          "%s", err ? err : "the message does not compose");
		free(err);
		json_decref(ctx);
		return 0;
	}
	json_decref(ctx);
	review_site_add(&r->site, key, roster_get(row, "state"), lo->language,
	                r->by ? roster_get(row, r->by) : NULL, lo->subject, lo->text, lo->html,
	                msg.data.data, msg.data.len, plan, plan_text);
	message_free(&msg);
	return 0;
}

static int audit_page(void *user, struct buf *out, char **err)
{
	struct review *r = user;

	return audit_html_render(r->l, &r->audit, out, err);
}

static void parity(struct review *r, const struct merge *m)
{
	struct diags d = DIAGS_INIT;

	letter_parity(m->letter, DIAG_WARNING, &d);
	for (size_t i = 0; i < d.n; i++) {
		char *s = diag_format(&d.v[i]);

		review_site_parity(&r->site, s);
		review_site_warning(&r->site, s); /* check makes these errors */
		free(s);
	}
	diags_free(&d);
}

/*
 * The ledger, read-only, when it exists: the roster again as audit reads it, and this
 * campaign's deliveries folded per mission. Without a ledger every mission would be sent.
 */
static int open_ledger(struct review *r, struct app *app, const struct merge_opts *mo,
                       const char *campaign, int by_given)
{
	const char *path = app_store_path(app), *audit_by = r->by;
	struct diags d = DIAGS_INIT;
	struct stat st;
	int rc;

	if (stat(path, &st) != 0)
		return EX_OK;
	if ((rc = ledger_open(path, LEDGER_READONLY, &r->l, &r->err)))
		return rc;
	rc = rp_roster_read(&mo->ro, r->by, NULL, &r->rr, &d);
	if (rc == EX_USAGE && !by_given) {
		/* the default column (un_regional_group) is in no row: the audit has no groups */
		diags_free(&d);
		rp_roster_free(&r->rr);
		memset(&r->rr, 0, sizeof(r->rr));
		audit_by = NULL;
		rc = rp_roster_read(&mo->ro, NULL, NULL, &r->rr, &d);
	}
	diags_print(&d, stderr);
	diags_free(&d);
	if (rc)
		return rc;
	r->audit.roster = &r->rr;
	r->audit.by = audit_by;
	r->audit.campaign = NULL;
	if (rp_campaign_fold(r->l, campaign, NULL, &r->rr, &r->camp, &r->err) == EX_OK)
		r->have_camp = 1;
	else {
		free(r->err); /* a campaign not yet sent has no deliveries: all would go */
		r->err = NULL;
	}
	r->site.audit = audit_page;
	r->site.audit_user = r;
	return EX_OK;
}

/*
 * The approval section, when [approval] asks for approvals or lists approvers: the batch send
 * would send (campaign/batch.h: the messages composed once more, exactly as send does) and
 * what the ledger's approvals say of it, as send's gate counts them. Read-only: approving is
 * demarche approve's. A problem is shown as the section's note, not fatal to review.
 */
static void approval(struct review *r, struct app *app, const struct merge_opts *mo,
                     struct merge *m)
{
	struct approvers ap = {0};
	struct approval_tally t = {0};
	struct plan p = {0};
	struct batch b = {0};
	char *err = NULL, *sender = NULL;

	if (!app->cfg.approval.required && !app->cfg.approval.approvers)
		return;
	if (approvers_parse(&app->cfg, &ap, &err) == EX_OK &&
	    plan_compose(&p, m, &r->mr, r->date, "review", &err) == EX_OK &&
	    batch_compute(&b, &app->cfg, mo, m, &r->mr, &p, &err) == EX_OK) {
		sender = approval_sender(&app->cfg);
		if (r->l && approval_tally(r->l, &ap, sender, m->campaign, &b, &t, &err) != EX_OK) {
			buf_reset(&t.notes);
			buf_addf(&t.notes, "the ledger's approvals could not be read: %s",
			         err ? err : "?");
		}
		review_site_approval(&r->site, b.hash, b.date, b.missions,
		                     app->cfg.approval.required, t.counted, buf_str(&t.names),
		                     r->l ? buf_str(&t.notes) : "no ledger yet: no approval");
	} else {
		fprintf(stderr, "demarche review: no approval section: %s\n", err ? err : "?");
	}
	free(sender);
	free(err);
	batch_free(&b);
	approval_tally_free(&t);
	plan_free(&p);
	approvers_free(&ap);
}

/* The roster changes since the previous campaign, as check prints them (read-only). */
static void changes(struct review *r, const struct merge_opts *mo, struct merge *m)
{
	struct buf b = BUF_INIT;
	char *err = NULL;

	if (!r->l)
		return;
	if (plan_changes(r->l, m, mo->nonly || mo->nwheres, &b, &err) != EX_OK) {
		buf_reset(&b);
		buf_addf(&b, "the ledger could not say what changed: %s\n", err ? err : "?");
	}
	review_site_changes(&r->site, buf_str(&b));
	buf_free(&b);
	free(err);
}

/*
 * POST /approve (--allow-approve): the batch composed again as send would, compared with the
 * hash the page showed and the form carried, then recorded as demarche approve records it
 * (campaign/approval.h). The approval section is read again afterwards.
 */
static int approve_post(void *user, const char *hash, struct buf *msg)
{
	struct review *r = user;
	struct plan p = {0};
	struct batch b = {0};
	struct ledger *l = NULL;
	char *err = NULL;
	int status = 500;

	if (plan_compose(&p, r->m, &r->mr, time(NULL), "review", &err) != EX_OK ||
	    batch_compute(&b, &r->app->cfg, r->mo, r->m, &r->mr, &p, &err) != EX_OK) {
		buf_addf(msg, "the batch could not be composed: %s\n", err ? err : "?");
	} else if (strcmp(b.hash, hash)) {
		status = 409;
		buf_addf(msg,
		         "this page's batch is no longer the one send would send (now %s): "
		         "reload the campaign page\n",
		         b.hash);
	} else if (ledger_open(app_store_path(r->app), LEDGER_CREATE | LEDGER_CHECK, &l, &err) !=
	               EX_OK ||
	           approval_record(l, r->m, &b, r->key, r->me->name, &err) != EX_OK) {
		buf_addf(msg, "the approval was not recorded: %s\n", err ? err : "?");
	} else {
		status = 303;
		buf_addf(msg, "approved: batch %.16s\n", b.hash);
		fprintf(stderr, "demarche review: approved: batch %.16s of campaign %s by %s\n",
		        b.hash, r->m->campaign, r->me->name);
	}
	ledger_close(l);
	free(err);
	err = NULL;
	batch_free(&b);
	plan_free(&p);
	if (status == 303) {
		/* the ledger may be new: read it from now on (the approval section) */
		if (!r->l && ledger_open(app_store_path(r->app), LEDGER_READONLY, &r->l, &err))
			free(err);
		approval(r, r->app, r->mo, r->m);
	}
	return status;
}

/* --allow-approve: the key and who it is, read once at start (never from the browser). */
static int approve_init(struct review *r, struct app *app, const struct merge_opts *mo,
                        struct merge *m)
{
	char pub[SIGN_PUBLIC_B64], *sender;
	int rc;

	if ((rc = approvers_parse(&app->cfg, &r->ap, &r->err)) != EX_OK)
		return rc;
	if (!r->ap.n)
		return error_set(&r->err, EX_CONFIG,
		                 "--allow-approve: no [approval] approvers in the configuration");
	if ((rc = approval_key_load(&app->cfg, NULL, &r->key, &r->err)) != EX_OK)
		return rc;
	sign_key_public(r->key, pub);
	if (!(r->me = approvers_find(&r->ap, pub)))
		return error_set(&r->err, EX_CONFIG,
		                 "--allow-approve: your key %s is not in [approval] approvers",
		                 pub);
	r->app = app;
	r->mo = mo;
	r->m = m;
	r->site.approve = approve_post;
	r->site.approve_user = r;
	r->site.approver = r->me->name;
	sender = approval_sender(&app->cfg);
	r->site.approver_is_sender = str_ieq(sender, r->me->name);
	free(sender);
	return EX_OK;
}

static void plan_note(struct review *r)
{
	size_t k[3] = {0, 0, 0};

	for (size_t i = 0; i < r->site.n; i++)
		k[r->site.m[i].plan]++;
	r->site.plan_note = xasprintf(
	    "%s: send would send %zu message%s now; %zu mission%s already received it or "
	    "bounced (never sent again); %zu %s held back (failed or in doubt: only with "
	    "--retry-failed or --retry-unknown). Pace and daily cap apply at send time.",
	    r->l ? "From the ledger" : "No ledger yet", k[REVIEW_SEND],
	    k[REVIEW_SEND] == 1 ? "" : "s", k[REVIEW_SENT], k[REVIEW_SENT] == 1 ? "" : "s",
	    k[REVIEW_HELD], k[REVIEW_HELD] == 1 ? "is" : "are");
}

int cmd_review(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    MERGE_LONG_OPTIONS,
	    {"port", required_argument, NULL, 'P'},
	    {"by", required_argument, NULL, 'B'},
	    {"allow-approve", no_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct review r = {0};
	struct review_server *srv = NULL;
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	unsigned long port = 0;
	sigset_t set;
	int c, rc, sig, by_given = 0, allow_approve = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (merge_option(&mo, c, optarg))
			continue;
		if (c == 'P') {
			errno = 0;
			port = strtoul(optarg, &end, 10);
			if (!errno && !*end && port > 0 && port < 65536)
				continue;
			fprintf(stderr, "demarche review: --port wants 1 to 65535\n");
		} else if (c == 'A') {
			allow_approve = 1;
			continue;
		} else if (c == 'B') {
			r.by = optarg;
			by_given = 1;
			continue;
		}
		fputs(usage_review, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (optind + 1 != argc || !mo.ro.path) {
		fputs(usage_review, stderr);
		rc = EX_USAGE;
		goto out;
	}
	mo.appeal = argv[optind];
	r.date = epoch && *epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
	if ((rc = app_config(app)) != EX_OK)
		goto out;
	if ((rc = merge_open(&mo, "review", &m)) != EX_OK)
		goto out;
	if (!by_given)
		r.by = "un_regional_group"; /* dropped below when no mission has it */
	if ((rc = message_run_init(&r.mr, &app->cfg, m, &r.err)) != EX_OK)
		goto out;
	if ((rc = open_ledger(&r, app, &mo, m->campaign, by_given)) != EX_OK)
		goto out;
	r.site.campaign = m->campaign;
	r.site.appeal = letter_path(m->letter);
	r.site.roster = roster_path(m->roster);
	r.site.by = r.by;
	r.site.content_hash = r.mr.content_hash;
	if ((rc = review_site_init(&r.site, &r.err)) != EX_OK)
		goto out;
	if (allow_approve && (rc = approve_init(&r, app, &mo, m)) != EX_OK)
		goto out;
	parity(&r, m);
	if ((rc = merge_validate(m, "review", add_row, &r)) != EX_OK)
		goto out;
	{
		size_t nl;
		const char *const *langs = letter_languages(m->letter, &nl);

		for (size_t l = 0; l < nl; l++) {
			const char *subject = NULL;

			for (size_t i = 0; i < r.site.n && !subject; i++)
				if (!strcmp(r.site.m[i].lang, langs[l]))
					subject = r.site.m[i].subject;
			review_site_language(&r.site, langs[l], subject);
		}
	}
	if (!by_given) {
		size_t i;

		for (i = 0; i < r.site.n && !r.site.m[i].group; i++)
			;
		if (i == r.site.n)
			r.site.by = NULL;
	}
	approval(&r, app, &mo, m);
	changes(&r, &mo, m);
	plan_note(&r);
	/* Blocked before the server's thread starts, so it inherits the mask: the signals
	 * that end review are taken here, by sigwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((rc = review_server_start((unsigned)port, review_site_route, &r.site, &srv, &r.err)))
		goto out;
	fprintf(stderr,
	        "demarche review: %zu mission%s of campaign %s; %s. Open this URL (once; "
	        "Ctrl-C stops):\n",
	        r.site.n, r.site.n == 1 ? "" : "s", m->campaign,
	        r.site.approve ? "approving allowed" : "read-only");
	printf("%s\n", review_server_url(srv));
	fflush(stdout);
	sigwait(&set, &sig);
	fprintf(stderr, "demarche review: stopped (%lu request%s refused)\n",
	        review_server_refused(srv), review_server_refused(srv) == 1 ? "" : "s");
	rc = EX_OK;
out:
	if (rc != EX_OK && r.err)
		fprintf(stderr, "demarche review: %s\n", r.err);
	review_server_stop(srv);
	review_site_free(&r.site);
	rp_campaign_free(&r.camp);
	rp_roster_free(&r.rr);
	ledger_close(r.l);
	sign_key_free(r.key);
	approvers_free(&r.ap);
	message_run_free(&r.mr);
	free(r.err);
	merge_free(m);
	merge_opts_free(&mo);
	return rc;
}
