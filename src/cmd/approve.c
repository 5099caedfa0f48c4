/* demarche approve: show a batch and what changed, then sign it into the ledger. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/escape.h"
#include "base/sign.h"
#include "base/strutil.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "campaign/approval.h"
#include "campaign/batch.h"
#include "campaign/message.h"
#include "campaign/plan.h"
#include "cmd/cmd.h"

const char usage_approve[] =
    "usage: demarche approve APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                        [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "                        [--not-received CAMPAIGN] [--date YYYY-MM-DD] [--key-file FILE]\n"
    "                        [--yes]\n"
    "\n"
    "Renders and composes every selected mission's message exactly as send would, shows the\n"
    "batch (campaign, languages, missions per language, the letters' date) and what changed\n"
    "since the last approved batch of this campaign, asks, and records an approval signed\n"
    "with your key (Ed25519) in the ledger's hash chain. With [approval] required = N, send\n"
    "sends only a batch that N approvers other than the sender approved exactly: any change\n"
    "to the appeal, a roster row, a fact, the letterhead, the sender or the letters' date\n"
    "needs a new approval. Your public key must be in [approval] approvers\n"
    "(demarche keygen makes a key pair).\n"
    "\n" MERGE_OPTIONS_USAGE
    "  --not-received CAMP  only missions with no delivered message of campaign CAMP (as\n"
    "                     send --not-received: give send the same)\n"
    "  --date YYYY-MM-DD  the day the letters are dated and sent (default today)\n"
    "  --key-file FILE    your secret key (default [approval] key, else\n"
    "                     ~/.config/demarche/approval.key); a sealed key's passphrase comes\n"
    "                     from DEMARCHE_KEY_PASSPHRASE or [approval] passphrase_command\n"
    "  --yes              do not ask (needed when not on a terminal)\n"
    "\n"
    "Exit: 0 approved; 64 usage (or not on a terminal without --yes); 65 bad input; 66 the\n"
    "appeal, the roster or the key cannot be read; 78 configuration (no approvers, a key that\n"
    "is not among them, a sealed key without its passphrase).\n";

struct approve_args {
	struct merge_opts mo;
	const char *key_file, *not_received;
	int yes;
};

static int parse_args(int argc, char **argv, struct approve_args *a)
{
	static const struct option opts[] = {MERGE_LONG_OPTIONS,
	                                     {"date", required_argument, NULL, 'D'},
	                                     {"key-file", required_argument, NULL, 'K'},
	                                     {"not-received", required_argument, NULL, 'N'},
	                                     {"yes", no_argument, NULL, 'y'},
	                                     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (merge_option(&a->mo, c, optarg))
			continue;
		switch (c) {
		case 'D':
			a->mo.ro.date = optarg;
			break;
		case 'K':
			a->key_file = optarg;
			break;
		case 'N':
			a->not_received = optarg;
			break;
		case 'y':
			a->yes = 1;
			break;
		default:
			fputs(usage_approve, stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc || !a->mo.ro.path) {
		fputs(usage_approve, stderr);
		return EX_USAGE;
	}
	if (!a->yes && !(term_isatty(stdin) && term_isatty(stderr))) {
		fprintf(stderr, "demarche approve: not on a terminal: add --yes to approve without "
		                "asking\n");
		return EX_USAGE;
	}
	a->mo.appeal = argv[optind];
	return EX_OK;
}

static void print_batch(const struct merge *m, const struct batch *b)
{
	const struct roster_stats *s = roster_stats(m->roster);
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);
	struct buf o = BUF_INIT;

	buf_adds(&o, "campaign ");
	esc_term(&o, m->campaign);
	buf_adds(&o, ": appeal ");
	esc_term(&o, letter_path(m->letter));
	buf_adds(&o, ", languages");
	for (size_t i = 0; i < nlang; i++)
		buf_addf(&o, " %s", langs[i]);
	buf_adds(&o, "\nroster ");
	esc_term(&o, roster_path(m->roster));
	buf_addf(&o, ": %zu missions selected:", b->missions);
	for (size_t i = 0; i < s->nlangs; i++)
		if (s->by_lang[i])
			buf_addf(&o, " %s %zu", s->langs[i], s->by_lang[i]);
	buf_addf(&o, "\nletters dated %s\nbatch %s\n", b->date, b->hash);
	fputs(o.data, stdout);
	buf_free(&o);
}

/* What changed since the last approved batch of the campaign, or that this one is approved. */
static void print_changes(const struct approval_tally *t, const struct batch *b)
{
	struct buf o = BUF_INIT;

	if (!t->last_seq) {
		buf_adds(&o, "no approved batch of this campaign yet\n");
	} else if (!strcmp(t->last_batch, b->hash)) {
		buf_adds(&o, "this batch is already approved by ");
		esc_term(&o, t->names.len ? t->names.data : t->last_by);
		buf_addc(&o, '\n');
	} else {
		buf_adds(&o, "since the last approved batch (by ");
		esc_term(&o, t->last_by);
		buf_adds(&o, ", ");
		esc_term(&o, t->last_time ? t->last_time : "?");
		buf_adds(&o, "):\n");
		if (!batch_diff(t->last_components, t->last_date, b, 20, &o))
			buf_adds(&o, "  nothing that can be named (the same parts)\n");
	}
	fputs(o.data, stdout);
	buf_free(&o);
}

int cmd_approve(int argc, char **argv, struct app *app)
{
	struct approve_args a = {0};
	struct approvers ap = {0};
	struct approval_tally t = {0};
	struct sign_key *key = NULL;
	struct ledger *l = NULL;
	struct merge *m = NULL;
	struct message_run mr;
	struct plan p = {0};
	struct plan_not_received nr = {0};
	struct batch b = {0};
	const struct approver *me;
	char pub[SIGN_PUBLIC_B64], *err = NULL;
	int rc, mr_init = 0;

	if ((rc = parse_args(argc, argv, &a)) != EX_OK || (rc = app_config(app)) != EX_OK)
		goto out;
	if ((rc = approvers_parse(&app->cfg, &ap, &err)) != EX_OK)
		goto fail;
	if (!ap.n) {
		rc = error_set(
		    &err, EX_CONFIG,
		    "no [approval] approvers in the configuration: add NAME:PUBLICKEY for "
		    "each approver (demarche keygen prints it)");
		goto fail;
	}
	if ((rc = approval_key_load(&app->cfg, a.key_file, &key, &err)) != EX_OK)
		goto fail;
	sign_key_public(key, pub);
	if (!(me = approvers_find(&ap, pub))) {
		rc = error_set(&err, EX_CONFIG,
		               "your key %s is not in [approval] approvers: add NAME:%s there", pub,
		               pub);
		goto fail;
	}
	if ((rc = ledger_open(app_store_path(app), LEDGER_CREATE | LEDGER_CHECK, &l, &err)))
		goto fail;
	if (a.not_received) {
		nr.ledger = l;
		nr.campaign = a.not_received;
		plan_not_received(&a.mo.ro, &nr);
	}
	/* The messages exactly as send composes them (campaign/batch.h). */
	if ((rc = merge_open(&a.mo, "approve", &m)) != EX_OK)
		goto out;
	rc = message_run_init(&mr, &app->cfg, m, &err);
	mr_init = 1;
	if (rc == EX_OK)
		rc = plan_compose(&p, m, &mr, time(NULL), "approve", &err);
	if (rc == EX_OK && nr.error)
		rc = error_set(&err, EX_IOERR, "the ledger could not answer --not-received");
	if (rc == EX_OK)
		rc = batch_compute(&b, &app->cfg, &a.mo, m, &mr, &p, &err);
	if (rc == EX_OK)
		rc = approval_tally(l, &ap, NULL, m->campaign, &b, &t, &err);
	if (rc != EX_OK)
		goto fail;

	print_batch(m, &b);
	print_changes(&t, &b);
	{
		char *n = esc_term_dup(me->name);

		char *sender = approval_sender(&app->cfg);

		printf("approving as %s (key %s)\n", n, pub);
		if (str_ieq(sender, me->name))
			printf("note: %s is the sender here ([sender] operator, else the login "
			       "name): this approval will not count for a send by %s\n",
			       n, n);
		free(sender);
		free(n);
	}
	fflush(stdout);
	if (!a.yes && !term_confirm("Type 'approve' to sign this batch, anything else to stop: ",
	                            "approve")) {
		fprintf(stderr, "demarche approve: nothing approved\n");
		goto out;
	}
	/* The approval is an event of the campaign (campaign/approval.h). */
	if ((rc = approval_record(l, m, &b, key, me->name, &err)) != EX_OK)
		goto fail;
	{
		char *c = esc_term_dup(m->campaign), *n = esc_term_dup(me->name);

		printf("approved: batch %.16s of campaign %s by %s (%zu mission%s, letters dated "
		       "%s)\n",
		       b.hash, c, n, b.missions, b.missions == 1 ? "" : "s", b.date);
		free(c);
		free(n);
	}
	goto out;
fail:
	if (err)
		fprintf(stderr, "demarche approve: %s\n", err);
out:
	batch_free(&b);
	approval_tally_free(&t);
	plan_free(&p);
	if (mr_init)
		message_run_free(&mr);
	merge_free(m);
	ledger_close(l);
	sign_key_free(key);
	approvers_free(&ap);
	merge_opts_free(&a.mo);
	free(err);
	return rc;
}
