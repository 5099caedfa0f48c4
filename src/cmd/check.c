/* demarche check: validate an appeal against a roster; sends nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "campaign/merge.h"
#include "cmd/cmd.h"
#include "cmd/send.h"
#include "letter/mustache.h"
#include "letter/parity.h"

const char usage_check[] =
    "usage: demarche check APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                      [--where COL=VAL | COL!=VAL]... [--only KEY,...] [--date DATE]\n"
    "                      [--allow-divergent]\n"
    "\n"
    "Validates every row and renders the appeal for each selected mission; sends nothing.\n"
    "Prints a summary and exits 0, or lists every problem and exits 65.\n"
    "With a facts table joined (recipients/states-parties.csv): a row whose state is not a\n"
    "State Party on the sending date is an error unless the appeal says 'Audience: any';\n"
    "facts more than 180 days old are a warning; and for each {{#X}} on a fact column X\n"
    "the summary says how many missions it leaves out because X is unknown.\n"
    "The language versions must say the same things: the same numbers of numbered and\n"
    "bulleted asks, paragraphs and headings, the same links and names in the body; a\n"
    "difference is an error naming both files (\"en.md has 8 bulleted asks, fr.md has 7\").\n"
    "\n" MERGE_OPTIONS_USAGE "  --date YYYY-MM-DD  the sending date (default today)\n"
    "  --allow-divergent  language versions that differ are a warning, not an error\n";

/* Per language file: missions rendered with it, and per fact column those with unknown. */
struct lang_count {
	char *lang;
	size_t total;
	size_t *unknown; /* parallel to the roster's fact columns */
};

struct unknowns {
	const char *const *facts;
	size_t nfacts;
	struct lang_count *v;
	size_t n;
};

static int count_row(void *user, struct merge *m, const struct roster_row *row,
                     const struct letter_out *lo)
{
	struct unknowns *u = user;
	struct lang_count *lc = NULL;

	(void)m;
	for (size_t i = 0; i < u->n && !lc; i++)
		if (!strcmp(u->v[i].lang, lo->language))
			lc = &u->v[i];
	if (!lc) {
		u->v = xreallocarray(u->v, u->n + 1, sizeof(*u->v));
		lc = &u->v[u->n++];
		lc->lang = xstrdup(lo->language);
		lc->total = 0;
		lc->unknown = xcalloc(u->nfacts + 1, sizeof(*lc->unknown));
	}
	lc->total++;
	for (size_t f = 0; f < u->nfacts; f++) {
		const char *v = roster_get(row, u->facts[f]);
		if (v && !strcasecmp(v, "unknown"))
			lc->unknown[f]++;
	}
	return 0;
}

struct section_ctx {
	const char *file;
	const struct unknowns *u;
	const struct lang_count *lc;
};

static void report_section(void *user, const char *name, long line, int inverted)
{
	const struct section_ctx *s = user;

	if (inverted)
		return;
	for (size_t f = 0; f < s->u->nfacts; f++)
		if (!strcmp(name, s->u->facts[f]))
			printf("%s:%ld: {{#%s}} leaves out %zu of the %zu missions given this "
			       "file: their %s is unknown\n",
			       s->file, line, name, s->lc ? s->lc->unknown[f] : 0,
			       s->lc ? s->lc->total : 0, name);
}

/*
 * For each positive section on a fact column in the appeal's files: how many missions it
 * leaves out because the fact is unknown (so the drafter sees what the data cannot
 * confirm). The files are read again: the letter keeps its templates to itself.
 */
static void report_unknowns(const struct merge *m, const struct unknowns *u)
{
	const char *path = letter_path(m->letter);
	struct stat st;
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);
	int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);

	for (size_t i = 0; i < nlang; i++) {
		char *file = dir ? xasprintf("%s/%s.md", path, langs[i]) : xstrdup(path);
		struct section_ctx s = {file, u, NULL};
		struct mustache_template *t = NULL;
		char *src = NULL, *err = NULL;
		size_t len = 0;
		FILE *fp = fopen(file, "rb");

		for (size_t k = 0; k < u->n; k++)
			if (!strcmp(u->v[k].lang, langs[i]))
				s.lc = &u->v[k];
		if (fp) {
			src = xmalloc(1024 * 1024 + 1);
			len = fread(src, 1, 1024 * 1024, fp);
			fclose(fp);
			if (mustache_compile(src, len, file, 1, &t, &err) == EX_OK)
				mustache_sections(t, report_section, &s);
		}
		mustache_free(t);
		free(err);
		free(src);
		free(file);
	}
}

static void print_summary(const struct merge *m)
{
	const struct roster_stats *s = roster_stats(m->roster);
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);
	const char *as_of;
	long parties = 0;

	printf("appeal %s: campaign %s, languages", letter_path(m->letter), m->campaign);
	for (size_t i = 0; i < nlang; i++)
		printf(" %s", langs[i]);
	printf("\nroster %s: %zu rows, %zu selected, %zu missions rendered\n",
	       roster_path(m->roster), s->rows, s->selected, m->rendered);
	printf("by language:");
	for (size_t i = 0; i < s->nlangs; i++)
		if (s->by_lang[i])
			printf(" %s %zu", s->langs[i], s->by_lang[i]);
	printf("\n");
	as_of = roster_facts_as_of(m->roster, &parties);
	if (as_of)
		printf("sending date %s: %ld States Parties (facts as of %s)%s\n",
		       roster_date(m->roster), parties, as_of,
		       letter_audience_any(m->letter) ? "; Audience: any" : "");
}

/* open_warnings: those found when the roster was opened (facts grown old). */
static void print_warnings(const struct merge *m, size_t open_warnings)
{
	/* The roster counts every warning of its pass, the letter's fallbacks among them. */
	size_t n = roster_stats(m->roster)->warnings + open_warnings;

	printf("%zu warning%s\n", n, n == 1 ? "" : "s");
}

int cmd_check(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {MERGE_LONG_OPTIONS,
	                                     {"date", required_argument, NULL, 'D'},
	                                     {"allow-divergent", no_argument, NULL, 'A'},
	                                     {NULL, 0, NULL, 0}};
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct unknowns u = {0};
	size_t open_warnings = 0;
	int c, rc, allow_divergent = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'D') {
			mo.ro.date = optarg;
			continue;
		}
		if (c == 'A') {
			allow_divergent = 1;
			continue;
		}
		if (!merge_option(&mo, c, optarg)) {
			fputs(usage_check, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (optind + 1 != argc || !mo.ro.path) {
		fputs(usage_check, stderr);
		rc = EX_USAGE;
		goto out;
	}
	mo.appeal = argv[optind];
	rc = merge_open(&mo, "check", &m);
	if (rc == EX_OK) {
		u.facts = roster_fact_columns(m->roster, &u.nfacts);
		/* letters: translation parity (letter/parity.h), printed with the pass's problems */
		letter_parity(m->letter, allow_divergent ? DIAG_WARNING : DIAG_ERROR, &m->d);
		open_warnings = m->d.warnings;
		rc = merge_validate(m, "check", count_row, &u);
	}
	if (rc == EX_OK) {
		print_summary(m);
		if (u.nfacts)
			report_unknowns(m, &u);
		print_warnings(m, open_warnings);
		/* issue 18: what changed since the ledger's last campaign (send's plan says it too) */
		print_changes(stdout, NULL, app_store_path(app), m, mo.nonly || mo.nwheres);
	}
out:
	for (size_t i = 0; i < u.n; i++) {
		free(u.v[i].lang);
		free(u.v[i].unknown);
	}
	free(u.v);
	merge_free(m);
	merge_opts_free(&mo);
	return rc;
}
