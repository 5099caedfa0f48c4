/* demarche letter: one mission's letter as a PDF on letterhead. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "campaign/document.h"
#include "campaign/merge.h"
#include "cmd/cmd.h"

const char usage_letter[] =
    "usage: demarche letter APPEAL --to ROSTER.csv --only KEY [--key COL] [--join FILE[:COL]]...\n"
    "                       [--where COL=VAL]... [--date YYYY-MM-DD] -o FILE.pdf\n"
    "\n"
    "Validates as check does, then renders the one selected mission's letter as a PDF on the\n"
    "letterhead of the [letterhead] configuration (organisation, address, logo, footer,\n"
    "signature images, paper, margins, font; see demarche(1)). -o - writes it to standard\n"
    "output. The PDF's dates are the sending date's day (--date, else SOURCE_DATE_EPOCH, else\n"
    "today), so the same letter renders to the same bytes. Exactly one mission must be\n"
    "selected (--only KEY): the key names a mission, --key the roster's key column.\n"
    "\n" MERGE_OPTIONS_USAGE "  --date YYYY-MM-DD  the sending date (default today)\n"
    "  -o, --out FILE     the PDF to write (replaced atomically)\n";

struct letter_cmd {
	struct document_run dr;
	time_t date;
	struct buf pdf;
	size_t selected;
	char *err;
};

static int render_one(void *user, struct merge *m, const struct roster_row *row,
                      const struct letter_out *lo)
{
	struct letter_cmd *lc = user;
	json_t *ctx;
	int rc;

	if (lc->selected++)
		return EX_OK; /* counted: more than one is refused below */
	ctx = roster_context(row);
	rc = document_render(&lc->dr, m->campaign, roster_key(row), ctx, lo, lc->date, &lc->pdf,
	                     &lc->err);
	json_decref(ctx);
	return rc;
}

/* YYYY-MM-DD as the time_t of that day's midnight UTC; -1 when it is not a date. */
static time_t parse_day(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%d", &tm);

	return end && !*end ? timegm(&tm) : (time_t)-1;
}

int cmd_letter(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    MERGE_LONG_OPTIONS,
	    {"out", required_argument, NULL, 'O'},
	    {"date", required_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct letter_cmd lc = {0};
	struct diags d = {0};
	const char *out = NULL, *epoch = getenv("SOURCE_DATE_EPOCH");
	int c, rc, li = -1;

	lc.date = epoch && *epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
	/* -o is short for --out; --only's own value is 'o' too: told apart by the long index. */
	while ((c = getopt_long(argc, argv, "o:", opts, &li)) != -1) {
		if (c == 'o' && li < 0)
			c = 'O';
		li = -1;
		if (merge_option(&mo, c, optarg))
			continue;
		if (c == 'O') {
			out = optarg;
			continue;
		}
		if (c == 'D') {
			mo.ro.date = optarg;
			lc.date = parse_day(optarg);
			if (lc.date != (time_t)-1)
				continue;
			fprintf(stderr, "demarche letter: --date '%s' is not YYYY-MM-DD\n", optarg);
		}
		fputs(usage_letter, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (optind + 1 != argc || !mo.ro.path || !out) {
		fputs(usage_letter, stderr);
		rc = EX_USAGE;
		goto out;
	}
	mo.appeal = argv[optind];
	rc = app_config(app);
	if (rc != EX_OK)
		goto out;
	rc = merge_open(&mo, "letter", &m);
	if (rc != EX_OK)
		goto out;
	rc = document_run_init(&lc.dr, &app->cfg, NULL, app->cfg.sender.name, &d, &lc.err);
	if (rc != EX_OK)
		goto out;
	rc = merge_validate(m, "letter", NULL, NULL);
	if (rc != EX_OK)
		goto out;
	rc = merge_each(m, render_one, &lc);
	if (rc != EX_OK)
		goto out;
	if (lc.selected != 1) {
		fprintf(stderr,
		        "demarche letter: %zu missions selected; name one with --only KEY\n",
		        lc.selected);
		rc = EX_USAGE;
		goto out;
	}
	if (!strcmp(out, "-"))
		rc = write_all(STDOUT_FILENO, lc.pdf.data, lc.pdf.len) ? EX_IOERR : EX_OK;
	else
		rc = file_write_atomic(out, lc.pdf.data, lc.pdf.len, 0644, 0, &lc.err);
	if (rc == EX_IOERR && !lc.err)
		lc.err = xasprintf("cannot write the PDF: %s", strerror(errno));
out:
	if (rc != EX_OK && lc.err)
		fprintf(stderr, "demarche letter: %s\n", lc.err);
	diags_print(&d, stderr);
	diags_free(&d);
	free(lc.err);
	buf_free(&lc.pdf);
	document_run_free(&lc.dr);
	merge_free(m);
	merge_opts_free(&mo);
	return rc;
}
