/* demarche audit: what the ledger says, per mission, as a table, CSV, JSON, HTML or XLSX. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/strutil.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "cmd/audit.h"
#include "cmd/cmd.h"
#include "ledger/ledger.h"
#include "roster/roster.h"

const char usage_audit[] =
    "usage: demarche audit [CAMPAIGN] [--format table|csv|json] [--columns A,B,...] [--wide]\n"
    "       demarche audit [CAMPAIGN] --summary [--to ROSTER.csv [--by COL]]\n"
    "       demarche audit CAMPAIGN --missing --to ROSTER.csv [--by COL]\n"
    "       demarche audit --matrix --to ROSTER.csv [--by COL]\n"
    "       demarche audit [CAMPAIGN] --format html|xlsx -o FILE [--to ROSTER.csv [--by COL]]\n"
    "       demarche audit [CAMPAIGN] --approvals\n"
    "       demarche audit [CAMPAIGN] --format ics [-o FILE]   planned sends, reminder dates\n"
    "   roster options: [--key COL] [--join FILE[:COL]]... [--where COL=VAL]...\n"
    "\n"
    "Missions first: a mission is one roster key; it is received when its main address (the\n"
    "roster's email, the To of its message) was accepted (sent or replied), partial when only\n"
    "another of its addresses (a Cc) was, missing otherwise.\n"
    "Without CAMPAIGN (or with --summary): one line per campaign: missions received, partial\n"
    "and missing, then addresses by state (with --to: the roster's missions; without: the\n"
    "ledger's keys). With CAMPAIGN: one line per delivery (key, state, address, time,\n"
    "attempts, last reply, version: the appeal's hash it was made for, from its Message-ID,\n"
    "or 'earlier': made before an amend); exits 1 when any of them is not sent or replied.\n"
    "--missing: the roster's missions not received, each with its reason (never tried,\n"
    "deferred, failed, in doubt, bounced) and last server reply (exit 1 if any).\n"
    "--matrix: the roster's missions (state names) x the ledger's campaigns (or CAMPAIGN),\n"
    "each mission's state, and a total row of received/missions per campaign.\n"
    "--by COL: group by a roster or --join column (e.g. asp_regional_group): rows by group,\n"
    "per-group counts and a totals row. --columns A,B: these columns, in this order (also\n"
    "roster and --join columns with --to). --wide: every column, nothing cut; otherwise a\n"
    "table fits 100 columns (long values cut with ...). A long table on a terminal goes\n"
    "through $PAGER (default 'less -FRX'); --no-pager writes it directly.\n"
    "--format html: one self-contained report (no script, no external request) to\n"
    "-o/--output FILE or stdout, the hash chain verified first up to 200,000 deliveries\n"
    "(--no-verify: never);\n"
    "--format xlsx -o FILE: a spreadsheet (Summary, By group, Missing, Deliveries, Matrix),\n"
    "every value stored as text.\n"
    "--format ics [-o FILE]: an iCalendar file (RFC 5545) of the planned sends (the send\n"
    "calendar's, missions not yet reached) and the reminder dates (demarche followup)\n"
    "for the team's calendar.\n"
    "A table on a terminal is coloured unless NO_COLOR is set; CSV is RFC 4180 (CRLF).\n"
    "Values are treated as hostile: the table shows control, bidi and invisible characters\n"
    "and bytes that are not UTF-8 escaped (\\x1b, \\u202e, \\xff); a CSV cell starting with\n"
    "= + - @ TAB or CR gets a leading ' and quotes (cells are otherwise exact, escaped only\n"
    "on a terminal); JSON is exact, with each byte that is not UTF-8 as U+FFFD; HTML is\n"
    "escaped as the table is, then entity-encoded.\n"
    "--approvals: who approved which batch, when, for how many missions and letters of\n"
    "which date, and whether the signature verifies (BAD SIGNATURE: see demarche verify).\n"
    "An unknown CAMPAIGN exits 65; a missing ledger 66.\n";

/* --- the command --------------------------------------------------------------------- */

struct strv {
	const char **v;
	size_t n;
};

static void strv_push(struct strv *s, const char *x)
{
	s->v = xreallocarray(s->v, s->n + 2, sizeof(char *));
	s->v[s->n++] = x;
	s->v[s->n] = NULL;
}

struct nearest {
	const char *want;
	char *best;
	size_t d;
};

static int nearest_campaign(const struct ledger_campaign *c, void *ctx)
{
	struct nearest *n = ctx;
	size_t d = str_distance(n->want, c->id);

	if (str_startswith(c->id, n->want))
		d = 0;
	if (d <= 3 && d < n->d) {
		free(n->best);
		n->best = xstrdup(c->id);
		n->d = d;
	}
	return 0;
}

/* Each view's own columns: other --columns names are roster or --join columns. */
static const char *const deliveries_cols[] = {
    "key",        "state",      "address",        "time",    "attempts", "last_code",
    "last_reply", "message_id", "content_sha256", "version", NULL,
};
static const char *const missing_cols[] = {
    "key",           "state_party", "email",      "reason", "mission", "accepted",
    "address_state", "last_code",   "last_reply", "time",   NULL,
};
static const char *const matrix_cols[] = {"key", "state_party", NULL};

struct ids {
	char **v;
	size_t n;
};

static int keep_id(const struct ledger_campaign *c, void *ctx)
{
	struct ids *ids = ctx;

	ids->v = xreallocarray(ids->v, ids->n + 1, sizeof(char *));
	ids->v[ids->n++] = xstrdup(c->id);
	return 0;
}

/* The --columns names that are neither a view's column, a campaign nor the --by column. */
static char **roster_columns(const char *columns, const char *by, const char *const *builtin,
                             const struct ids *ids)
{
	char **v = NULL;
	size_t n = 0;

	for (const char *p = columns; p && *p;) {
		size_t len = strcspn(p, ","), k;
		int known = len == 0 || (by && strlen(by) == len && !strncasecmp(by, p, len));

		for (k = 0; !known && builtin && builtin[k]; k++)
			known = strlen(builtin[k]) == len && !strncasecmp(builtin[k], p, len);
		for (k = 0; !known && k < ids->n; k++)
			known = strlen(ids->v[k]) == len && !strncmp(ids->v[k], p, len);
		if (!known) {
			v = xreallocarray(v, n + 2, sizeof(char *));
			v[n++] = xstrndup(p, len);
			v[n] = NULL;
		}
		p += len + (p[len] == ',');
	}
	return v;
}

int cmd_audit(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"missing", no_argument, NULL, 'm'},
	    {"matrix", no_argument, NULL, 'x'},
	    {"to", required_argument, NULL, 't'},
	    {"key", required_argument, NULL, 'k'},
	    {"join", required_argument, NULL, 'j'},
	    {"where", required_argument, NULL, 'w'},
	    {"by", required_argument, NULL, 'b'},
	    {"columns", required_argument, NULL, 'c'},
	    {"wide", no_argument, NULL, 'W'},
	    {"summary", no_argument, NULL, 's'},
	    {"output", required_argument, NULL, 'o'},
	    {"no-pager", no_argument, NULL, 'P'},
	    {"no-verify", no_argument, NULL, 'V'},
	    {"approvals", no_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	struct roster_opts ro = {0};
	struct strv joins = {0}, wheres = {0};
	struct rp_roster roster = {0};
	struct audit_opts a = {0};
	struct ids ids = {0};
	struct ledger *l = NULL;
	char **extra = NULL;
	int missing = 0, matrix = 0, no_pager = 0, paged = 0, approvals = 0, c, rc;
	char *err = NULL;

	a.out.fmt = RP_TABLE;
	while ((c = getopt_long(argc, argv, "f:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "table"))
				a.out.fmt = RP_TABLE;
			else if (!strcmp(optarg, "csv"))
				a.out.fmt = RP_CSV;
			else if (!strcmp(optarg, "json"))
				a.out.fmt = RP_JSON;
			else if (!strcmp(optarg, "html"))
				a.out.fmt = RP_HTML;
			else if (!strcmp(optarg, "xlsx"))
				a.out.fmt = RP_XLSX;
			else if (!strcmp(optarg, "ics"))
				a.out.fmt = RP_ICS;
			else {
				char *shown = esc_term_dup(optarg);

				fprintf(stderr,
				        "demarche audit: unknown format '%s' (table, csv, json, "
				        "html, xlsx or ics)\n",
				        shown);
				free(shown);
				rc = EX_USAGE;
				goto out;
			}
			break;
		case 'm':
			missing = 1;
			break;
		case 'x':
			matrix = 1;
			break;
		case 't':
			ro.path = optarg;
			break;
		case 'k':
			ro.key = optarg;
			break;
		case 'j':
			strv_push(&joins, optarg);
			break;
		case 'w':
			strv_push(&wheres, optarg);
			break;
		case 'b':
			a.by = optarg;
			break;
		case 'c':
			a.out.columns = optarg;
			break;
		case 'W':
			a.out.wide = 1;
			break;
		case 's':
			a.summary = 1;
			break;
		case 'o':
			a.output = optarg;
			break;
		case 'P':
			no_pager = 1;
			break;
		case 'V':
			a.no_verify = 1;
			break;
		case 'A':
			approvals = 1;
			break;
		default:
			fputs(usage_audit, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (optind < argc)
		a.campaign = argv[optind++];
	if (optind < argc || missing + matrix + a.summary + approvals > 1 ||
	    (missing && !a.campaign)) {
		fputs(usage_audit, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if ((missing || matrix || a.by) && !ro.path) {
		fprintf(stderr, "demarche audit: --%s needs --to ROSTER.csv\n",
		        missing  ? "missing"
		        : matrix ? "matrix"
		                 : "by");
		rc = EX_USAGE;
		goto out;
	}
	if (!ro.path && (joins.n || wheres.n || ro.key)) {
		fputs("demarche audit: --key, --join and --where go with --to ROSTER.csv\n",
		      stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (a.out.fmt == RP_XLSX && !a.output) {
		fputs("demarche audit: --format xlsx needs -o FILE\n", stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (a.output && a.out.fmt != RP_HTML && a.out.fmt != RP_XLSX && a.out.fmt != RP_ICS) {
		fputs("demarche audit: -o goes with --format html or xlsx\n", stderr);
		rc = EX_USAGE;
		goto out;
	}
	if ((rc = app_config(app)))
		goto out;
	if ((rc = ledger_open(app_store_path(app), LEDGER_READONLY | LEDGER_CHECK, &l, &err)))
		goto out;
	if (a.campaign && ledger_campaign_exists(l, a.campaign) != 1) {
		struct nearest near = {a.campaign, NULL, (size_t)-1};

		ledger_campaigns(l, nearest_campaign, &near, NULL);
		rc = error_set(&err, EX_DATAERR, "no campaign '%s' in the ledger%s%s%s", a.campaign,
		               near.best ? " (did you mean '" : "", near.best ? near.best : "",
		               near.best ? "'?)" : "");
		free(near.best);
		goto out;
	}
	if (ro.path) {
		if ((rc = ledger_campaigns(l, keep_id, &ids, &err)))
			goto out;
		/* the summary has no roster columns: --columns there is checked as usual */
		if (missing || matrix || (a.campaign && !a.summary))
			extra = roster_columns(a.out.columns, a.by,
			                       missing  ? missing_cols
			                       : matrix ? matrix_cols
			                                : deliveries_cols,
			                       &ids);
		ro.joins = joins.v;
		ro.wheres = wheres.v;
		struct diags d = DIAGS_INIT;

		rc = rp_roster_read(&ro, a.by, (const char *const *)extra, &roster, &d);
		diags_print(&d, stderr);
		diags_free(&d);
		if (rc)
			goto out;
		a.roster = &roster;
	}
	a.tty = term_isatty(stdout);
	a.out.colour = a.out.fmt == RP_TABLE && term_colour(stdout);
	a.out.visible = a.out.fmt == RP_CSV && a.tty;
	/* like git: a table longer than the screen is paged (less -F quits when it fits) */
	if (a.out.fmt == RP_TABLE && !no_pager)
		paged = rp_pager_start();
	/* a million lines: write in large blocks */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (approvals)
		rc = audit_approvals(l, &a, &err);
	else if (a.out.fmt == RP_HTML)
		rc = audit_html(l, &a, &err);
	else if (a.out.fmt == RP_XLSX)
		rc = audit_xlsx(l, &a, &err);
	else if (a.out.fmt == RP_ICS)
		rc = audit_ics(l, &a, &err);
	else if (missing)
		rc = audit_missing(l, &a, &err);
	else if (matrix)
		rc = audit_matrix(l, &a, &err);
	else if (a.campaign && !a.summary)
		rc = audit_deliveries(l, &a, &err);
	else
		rc = audit_summary(l, &a, &err);
	if (fflush(rp_stdout()) != 0 && !rc && !paged)
		rc = error_set(&err, EX_IOERR, "writing the report failed");
	rp_pager_end();
out:
	if (rc > 1 && err) {
		/* it may quote the ledger's values: escaped like the table */
		char *shown = esc_term_dup(err);

		fprintf(stderr, "demarche audit: %s\n", shown);
		free(shown);
	}
	free(err);
	free(joins.v);
	free(wheres.v);
	rp_strv_free(extra);
	for (size_t i = 0; i < ids.n; i++)
		free(ids.v[i]);
	free(ids.v);
	rp_roster_free(&roster);
	ledger_close(l);
	return rc;
}
