/* demarche check: validate an appeal against a roster; sends nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "campaign/followup.h"
#include "campaign/merge.h"
#include "cmd/cmd.h"
#include "letter/mustache.h"
#include "letter/parity.h"

const char usage_check[] =
    "usage: demarche check APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                      [--where COL=VAL | COL!=VAL]... [--only KEY,...] [--date DATE]\n"
    "                      [--allow-divergent] [--fallback-language LANG]\n"
    "                      [--format text|json] [-q | -v] [--color=WHEN]\n"
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
    "  --allow-divergent  language versions that differ are a warning, not an error\n"
    "  --format FMT       text (the default) or json: one object on stdout with the summary\n"
    "                     and every problem (file, line, column, message); nothing on "
    "stderr\n" APP_OPTIONS_USAGE;

/* Per language file: missions rendered with it, and per fact column those with unknown. */
struct lang_count {
	char *lang;
	size_t total;
	size_t *unknown; /* parallel to the roster's fact columns */
};

struct unknowns {
	json_t *json; /* --format json: the sections' counts go here, not to stdout */
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
		if (!strcmp(name, s->u->facts[f]) && s->u->json)
			json_array_append_new(
			    s->u->json,
			    json_pack("{s:s?, s:I, s:s, s:I, s:I}", "file", s->file, "line",
			              (json_int_t)line, "section", name, "left_out",
			              (json_int_t)(s->lc ? s->lc->unknown[f] : 0), "of",
			              (json_int_t)(s->lc ? s->lc->total : 0)));
		else if (!strcmp(name, s->u->facts[f]))
			printf("%s:%ld: {{#%s}} leaves out %zu of the %zu missions given this "
			       "file: their %s is unknown\n",
			       s->file, line, name, s->lc ? s->lc->unknown[f] : 0,
			       s->lc ? s->lc->total : 0, name);
}

/* Called with each of the appeal's files compiled (NULL when it cannot be read again). */
typedef void (*template_fn)(void *user, const char *lang, const char *file,
                            const struct mustache_template *t);

/* The appeal's files, compiled again: the letter keeps its templates to itself. */
static void each_template(const struct merge *m, template_fn fn, void *user)
{
	const char *path = letter_path(m->letter);
	struct stat st;
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);
	int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);

	for (size_t i = 0; i < nlang; i++) {
		char *file = dir ? xasprintf("%s/%s.md", path, langs[i]) : xstrdup(path);
		struct mustache_template *t = NULL;
		char *src = NULL, *err = NULL;
		size_t len = 0;
		FILE *fp = fopen(file, "rb");

		if (fp) {
			src = xmalloc(1024 * 1024 + 1);
			len = fread(src, 1, 1024 * 1024, fp);
			fclose(fp);
			if (mustache_compile(src, len, file, 1, &t, &err) != EX_OK)
				t = NULL;
		}
		fn(user, langs[i], file, t);
		mustache_free(t);
		free(err);
		free(src);
		free(file);
	}
}

static void unknowns_file(void *user, const char *lang, const char *file,
                          const struct mustache_template *t)
{
	const struct unknowns *u = user;
	struct section_ctx s = {file, u, NULL};

	for (size_t k = 0; k < u->n; k++)
		if (!strcmp(u->v[k].lang, lang))
			s.lc = &u->v[k];
	if (t)
		mustache_sections(t, report_section, &s);
}

/*
 * For each positive section on a fact column in the appeal's files: how many missions it
 * leaves out because the fact is unknown (so the drafter sees what the data cannot
 * confirm).
 */
static void report_unknowns(const struct merge *m, const struct unknowns *u)
{
	each_template(m, unknowns_file, (void *)u);
}

/* The names the appeal's files look up (their first dotted part), each once. */
struct names {
	char **v;
	size_t n;
};

static void add_name(void *user, const char *name, long line)
{
	struct names *nm = user;
	size_t len = strcspn(name, ".");

	(void)line;
	for (size_t i = 0; i < nm->n; i++)
		if (strlen(nm->v[i]) == len && !strncasecmp(nm->v[i], name, len))
			return;
	nm->v = xreallocarray(nm->v, nm->n + 2, sizeof(*nm->v));
	nm->v[nm->n++] = xstrndup(name, len);
	nm->v[nm->n] = NULL;
}

static void names_file(void *user, const char *lang, const char *file,
                       const struct mustache_template *t)
{
	(void)lang;
	(void)file;
	if (t)
		mustache_names(t, add_name, user);
}

/*
 * A roster column that no letter, option or join uses is most likely a typo of one that
 * would be ('lang' for 'language': every mission would get English): a warning, with the
 * nearest name the code or the letter reads.
 */
static void warn_unused_columns(struct merge *m)
{
	struct names nm = {0};
	size_t ncols, nknown = 0;
	const char *const *cols = roster_header(m->roster, &ncols);
	const char *const *known = roster_known_columns();
	const char **cand;

	each_template(m, names_file, &nm);
	while (known[nknown])
		nknown++;
	cand = xcalloc(nm.n + nknown + 1, sizeof(*cand));
	for (size_t i = 0; i < nknown; i++)
		cand[i] = known[i];
	for (size_t i = 0; i < nm.n; i++)
		cand[nknown + i] = nm.v[i];
	for (size_t c = 0; c < ncols; c++) {
		const char *near;
		int used = roster_column_used(m->roster, cols[c]);

		for (size_t i = 0; i < nm.n && !used; i++)
			used = str_ieq(cols[c], nm.v[i]);
		if (used || !cols[c][0])
			continue;
		near = str_nearest(cols[c], cand, nm.n + nknown);
		diags_add(&m->d, DIAG_WARNING, roster_path(m->roster), 1, cols[c],
		          "no letter, option or join uses this column%s%s%s",
		          near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
	}
	free(cand);
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
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

/* The summary as JSON: what print_summary() and print_warnings() say. */
static json_t *summary_json(const struct merge *m, size_t warnings)
{
	const struct roster_stats *s = roster_stats(m->roster);
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);
	json_t *o = json_object(), *a = json_array(), *by = json_object();
	const char *as_of;
	long parties = 0;

	json_object_set_new(o, "appeal", json_string(letter_path(m->letter)));
	json_object_set_new(o, "campaign", json_string(m->campaign));
	for (size_t i = 0; i < nlang; i++)
		json_array_append_new(a, json_string(langs[i]));
	json_object_set_new(o, "languages", a);
	json_object_set_new(o, "roster", json_string(roster_path(m->roster)));
	json_object_set_new(o, "rows", json_integer((json_int_t)s->rows));
	json_object_set_new(o, "selected", json_integer((json_int_t)s->selected));
	json_object_set_new(o, "rendered", json_integer((json_int_t)m->rendered));
	for (size_t i = 0; i < s->nlangs; i++)
		if (s->by_lang[i])
			json_object_set_new(by, s->langs[i],
			                    json_integer((json_int_t)s->by_lang[i]));
	json_object_set_new(o, "by_language", by);
	as_of = roster_facts_as_of(m->roster, &parties);
	json_object_set_new(o, "sending_date", json_string(roster_date(m->roster)));
	if (as_of) {
		json_object_set_new(o, "facts_as_of", json_string(as_of));
		json_object_set_new(o, "states_parties", json_integer(parties));
	}
	json_object_set_new(o, "warnings", json_integer((json_int_t)warnings));
	return o;
}

/* --format json: each problem as printed, and its parts. */
static void problem_json(void *user, const struct diag *dg, const char *line)
{
	json_t *o = json_object();

	json_object_set_new(o, "level", json_string(dg->level == DIAG_ERROR ? "error" : "warning"));
	if (dg->file)
		json_object_set_new(o, "file", json_string(dg->file));
	if (dg->line > 0)
		json_object_set_new(o, "line", json_integer(dg->line));
	if (dg->column)
		json_object_set_new(o, "column", json_string(dg->column));
	/* the text as printed: escaped, so always valid UTF-8 */
	json_object_set_new(o, "message", json_string(line));
	json_array_append_new(user, o);
}

/* -v: the roster's columns, and which the letter or the code reads. */
static void print_verbose(const struct merge *m)
{
	size_t n;
	const char *const *cols = roster_header(m->roster, &n);
	struct buf b = BUF_INIT;

	buf_adds(&b, "roster columns:");
	for (size_t i = 0; i < n; i++) {
		buf_addc(&b, ' ');
		esc_term(&b, cols[i]);
	}
	puts(buf_str(&b));
	buf_free(&b);
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
	                                     APP_LONG_OPTIONS,
	                                     {"date", required_argument, NULL, 'D'},
	                                     {"allow-divergent", no_argument, NULL, 'A'},
	                                     {"format", required_argument, NULL, 'f'},
	                                     {NULL, 0, NULL, 0}};
	json_t *problems = NULL;
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct unknowns u = {0};
	size_t open_warnings = 0;
	int c, rc, allow_divergent = 0;
	struct followup *fu = NULL;
	char *err = NULL;

	while ((c = getopt_long(argc, argv, APP_SHORT_OPTIONS, opts, NULL)) != -1) {
		int took = app_option(app, c, optarg);

		if (took) {
			if (took > 0)
				continue;
			rc = EX_USAGE;
			goto out;
		}
		if (c == 'f' && (!strcmp(optarg, "json") || !strcmp(optarg, "text"))) {
			if (!strcmp(optarg, "json") && !problems)
				problems = json_array();
			continue;
		}
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
	mo.quiet = app->quiet;
	if (problems) { /* everything in the JSON on stdout */
		mo.silent = 1;
		mo.on_diag = problem_json;
		mo.diag_user = problems;
		u.json = json_array();
	}
	fu = followup_new_readonly(app_store_path(app), &mo.ro); /* a reminder's first letters */
	rc = merge_open(&mo, "check", &m);
	if (rc == EX_OK && (rc = followup_bind(fu, m, NULL, clock_real_ms() / 1000, &err)))
		fprintf(stderr, "demarche check: %s\n", err);
	if (rc == EX_OK) {
		u.facts = roster_fact_columns(m->roster, &u.nfacts);
		/* letters: translation parity (letter/parity.h), printed with the pass's problems */
		letter_parity(m->letter, allow_divergent ? DIAG_WARNING : DIAG_ERROR, &m->d);
		warn_unused_columns(m);
		open_warnings = m->d.warnings;
		rc = merge_validate(m, "check", count_row, &u);
	}
	if (problems) {
		json_t *o = rc == EX_OK
		                ? summary_json(m, roster_stats(m->roster)->warnings + open_warnings)
		                : json_object();
		char *text;

		if (rc == EX_OK && u.nfacts)
			report_unknowns(m, &u);
		json_object_set_new(o, "ok", json_boolean(rc == EX_OK));
		json_object_set_new(o, "exit", json_integer(rc));
		json_object_set(o, "problems", problems);
		json_object_set(o, "unknown_facts", u.json);
		text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
		puts(text);
		free(text);
		json_decref(o);
	} else if (rc == EX_OK && !app->quiet) {
		print_summary(m);
		if (u.nfacts)
			report_unknowns(m, &u);
		print_warnings(m, open_warnings);
		if (app->verbose)
			print_verbose(m);
	}
out:
	json_decref(problems);
	json_decref(u.json);
	for (size_t i = 0; i < u.n; i++) {
		free(u.v[i].lang);
		free(u.v[i].unknown);
	}
	free(u.v);
	merge_free(m);
	followup_free(fu);
	free(err);
	merge_opts_free(&mo);
	return rc;
}
