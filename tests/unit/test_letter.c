/* Unit tests of letter files, Markdown, and the five templates against their seed letters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <csv.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/markdown.h"
#include "roster/parts.h"

static const char *srcdir(void)
{
	const char *s = getenv("SRCDIR");
	return s && *s ? s : ".";
}

/* ---- a small CSV reader for original.csv (test only; the roster module does this) ---- */

struct csv_state {
	json_t *header; /* array of names */
	json_t *rows;   /* array of objects */
	json_t *cur;    /* array of the current record's fields */
};

static json_t *csv_value(const char *s)
{
	/* As the roster module: yes/no/true/false are booleans. */
	if (str_ieq(s, "yes") || str_ieq(s, "true"))
		return json_true();
	if (str_ieq(s, "no") || str_ieq(s, "false"))
		return json_false();
	return json_string(s);
}

static void csv_field(void *s, size_t len, void *data)
{
	struct csv_state *st = data;
	char *v = xstrndup(s ? s : "", len);

	json_array_append_new(st->cur, json_string(v));
	free(v);
}

static void csv_record(int c, void *data)
{
	struct csv_state *st = data;

	(void)c;
	if (!st->header) {
		st->header = st->cur;
	} else {
		json_t *o = json_object();
		for (size_t i = 0; i < json_array_size(st->header); i++) {
			const char *k = json_string_value(json_array_get(st->header, i));
			json_t *v = json_array_get(st->cur, i);
			json_object_set_new(o, k, csv_value(v ? json_string_value(v) : ""));
		}
		json_array_append_new(st->rows, o);
		json_decref(st->cur);
	}
	st->cur = json_array();
}

/* The rows of a CSV file as JSON objects; NULL when unreadable. */
static json_t *read_csv(const char *path)
{
	struct csv_parser p;
	struct csv_state st = {NULL, json_array(), json_array()};
	char *data = NULL;
	size_t len = 0;

	if (read_file(path, &data, &len) != 0) {
		json_decref(st.rows);
		json_decref(st.cur);
		return NULL;
	}
	assert_int_equal(csv_init(&p, CSV_STRICT | CSV_APPEND_NULL), 0);
	assert_int_equal(csv_parse(&p, data, len, csv_field, csv_record, &st), len);
	csv_fini(&p, csv_field, csv_record, &st);
	csv_free(&p);
	free(data);
	json_decref(st.header);
	json_decref(st.cur);
	return st.rows;
}

/* The sending date of the contexts below: the seed's date in test_seed(). */
static const char *ctx_date = "2023-11-17";

/* Campaign params, then the roster row on top (docs/design.md, "The pipeline": one context per
 * mission), then the letter parts roster_context() adds and the campaign merge adds. */
static json_t *context(const char *params_path, const char *csv_path, size_t row)
{
	json_error_t jerr;
	json_t *ctx = json_load_file(params_path, 0, &jerr);
	json_t *rows = read_csv(csv_path);

	if (!ctx)
		fail_msg("%s:%d: %s", params_path, jerr.line, jerr.text);
	assert_non_null(rows);
	assert_true(json_array_size(rows) > row);
	json_object_update(ctx, json_array_get(rows, row));
	json_decref(rows);
	{
		const char *lang = json_string_value(json_object_get(ctx, "language"));
		const char *key = json_string_value(json_object_get(ctx, "iso3"));
		parts_add(ctx, lang ? lang : "en", ctx_date, key ? key : "XXX");
	}
	json_object_set_new(ctx, "campaign", json_string("test"));
	return ctx;
}

static struct letter *load_template(const char *id)
{
	char *path = xasprintf("%s/templates/%s", srcdir(), id);
	char *layout = xasprintf("%s/templates/_layout", srcdir());
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL;
	int rc = letter_load(path, layout, &l, &d);

	if (rc != EX_OK)
		diags_print(&d, stderr);
	assert_int_equal(rc, EX_OK);
	diags_free(&d);
	free(path);
	free(layout);
	return l;
}

static json_t *template_context(const char *id)
{
	char *pj = xasprintf("%s/templates/%s/original.json", srcdir(), id);
	char *pc = xasprintf("%s/templates/%s/original.csv", srcdir(), id);
	json_t *ctx = context(pj, pc, 0);

	free(pj);
	free(pc);
	return ctx;
}

/* Renders and asserts success, printing the problems otherwise. */
static void render_ok(struct letter *l, const char *lang, json_t *ctx, struct letter_out *out)
{
	struct diags d = DIAGS_INIT;
	int rc = letter_render(l, lang, ctx, out, &d);

	if (rc != EX_OK)
		diags_print(&d, stderr);
	assert_int_equal(rc, EX_OK);
	assert_int_equal(d.errors, 0);
	diags_free(&d);
}

/* ---- the seed test ---- */

/*
 * The allowed differences between a seed and its template's rendering, and nothing else:
 * the letter parts the seed lacks (reference and inside address; the date line of the
 * undated 002) are taken out of the rendering, and the listed corrections of the seed's own
 * slips are made in the seed; then the words must be the same, in order. Before that, the
 * whole rendering and the seed as it is must match at >= 0.95 word-sequence similarity.
 * templates/README.md lists the same differences.
 */
struct seed {
	const char *template;
	const char *file;
	const char *date; /* the sending date: the seed's own */
	int undated;      /* the seed has no date line */
	/* Text in the seed that is not the letter's (scan artefacts), removed before comparing. */
	const char *artefacts[2];
	/* Corrections of the seed's slips: {as in the seed, as the template has it}. */
	const char *corrections[3][2];
};

static const struct seed seeds[] = {
    {"amendment-alert",
     "000_bcbb0d66050dafc6.txt",
     "2014-06-23",
     0,
     {NULL},
     {{"and its 2500 global NGO members calls", "and its 2500 global NGO members call"}}},
    {"asp-session",
     "001_daff8836c24be952.txt",
     "2023-11-17",
     0,
     {NULL},
     {{"Assembly of State Parties", "Assembly of States Parties"}}},
    {"joint-letter", "002_d1f86763ec81459c.txt", "2020-04-01", 1, {NULL}, {{NULL, NULL}}},
    {"security-council",
     "003_2cefc1941807e155.txt",
     "2014-05-22",
     0,
     /* the text extraction describes the handwritten signature */
     {"A handwritten signature in black ink that reads \"William R. Pace\". The signature "
      "is written in a cursive, flowing style.",
      NULL},
     {{NULL, NULL}}},
    {"review-conference",
     "004_6f2720748feaff1f.txt",
     "2010-05-21",
     0,
     {NULL},
     {{"Assembly of State Parties", "Assembly of States Parties"},
      /* the date line in the house form (day month year) */
      {"May 21, 2010", "21 May 2010"}}},
};

static void remove_all(char *s, const char *what)
{
	size_t n = strlen(what);
	char *p;

	while ((p = strstr(s, what)))
		memmove(p, p + n, strlen(p + n) + 1);
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;

	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

static size_t count_single_stars(const char *s)
{
	size_t n = 0;

	for (size_t i = 0; s[i]; i++)
		if (s[i] == '*' && s[i + 1] != '*' && (i == 0 || s[i - 1] != '*'))
			n++;
	return n;
}

/* s with every occurrence of from replaced by to; a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
	struct buf b = BUF_INIT;
	const char *p;

	while ((p = strstr(s, from))) {
		buf_add(&b, s, (size_t)(p - s));
		buf_adds(&b, to);
		s = p + strlen(from);
	}
	buf_adds(&b, s);
	return buf_detach(&b);
}

/* Word-sequence similarity of two space-separated strings: 2 * LCS / (words of a + of b). */
static double word_similarity(const char *a, const char *b)
{
	char *sa = xstrdup(a), *sb = xstrdup(b), *save;
	const char **wa = NULL, **wb = NULL;
	size_t na = 0, nb = 0;
	size_t *prev, *cur;
	double r;

	for (char *t = strtok_r(sa, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		wa = xreallocarray(wa, na + 1, sizeof *wa);
		wa[na++] = t;
	}
	for (char *t = strtok_r(sb, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		wb = xreallocarray(wb, nb + 1, sizeof *wb);
		wb[nb++] = t;
	}
	prev = xcalloc(nb + 1, sizeof *prev);
	cur = xcalloc(nb + 1, sizeof *cur);
	for (size_t i = 1; i <= na; i++) {
		size_t *t;
		for (size_t j = 1; j <= nb; j++)
			cur[j] = !strcmp(wa[i - 1], wb[j - 1])
			             ? prev[j - 1] + 1
			             : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
		t = prev;
		prev = cur;
		cur = t;
	}
	r = na + nb ? 2.0 * (double)prev[nb] / (double)(na + nb) : 1.0;
	free(prev);
	free(cur);
	free(wa);
	free(wb);
	free(sa);
	free(sb);
	return r;
}

/* Fails showing the first word where a and b differ, with some context. */
static void compare_words(const char *name, const char *want, const char *got)
{
	size_t i = 0, word = 0;

	while (want[i] && want[i] == got[i]) {
		if (want[i] == ' ')
			word++;
		i++;
	}
	if (!want[i] && !got[i])
		return;
	{
		size_t from = i > 60 ? i - 60 : 0;
		fail_msg("%s: differs at word %zu:\n  seed:     ...%.120s\n  rendered: ...%.120s",
		         name, word, want + from, got + from);
	}
}

static void test_seed(void **state)
{
	const struct seed *s = *state;
	char *seed_path = xasprintf("%s/tests/data/seeds/%s", srcdir(), s->file);
	struct letter *l = load_template(s->template);
	json_t *ctx = template_context(s->template);
	struct letter_out out;
	char *seed = NULL, *want, *got;
	size_t len;

	assert_int_equal(read_file(seed_path, &seed, &len), 0);
	for (size_t i = 0; i < 2 && s->artefacts[i]; i++) {
		assert_non_null(strstr(seed, s->artefacts[i])); /* the exception is still needed */
		remove_all(seed, s->artefacts[i]);
	}
	ctx_date = s->date;
	json_decref(ctx);
	ctx = template_context(s->template);
	render_ok(l, "en", ctx, &out);
	assert_false(out.fell_back);
	want = markdown_to_plain(seed);
	got = markdown_to_plain(out.text);
	{
		double sim = word_similarity(want, got);
		if (sim < 0.95)
			fail_msg("%s: word-sequence similarity %.3f < 0.95", s->template, sim);
	}
	free(want);
	free(got);
	/* The letter parts the seed lacks: reference, inside address (and 002's date line). */
	{
		char *ref =
		    xasprintf("%s %s/test/%s", json_string_value(json_object_get(ctx, "ref_label")),
		              strcmp(s->template, "review-conference") ? "CICC" : "ICRtoP",
		              json_string_value(json_object_get(ctx, "iso3")));
		size_t i;
		json_t *line;

		assert_non_null(strstr(out.text, ref)); /* the parts are there to be taken out */
		remove_all(out.text, ref);
		free(ref);
		json_array_foreach(json_object_get(ctx, "inside_address"), i, line)
		{
			const char *v = json_string_value(json_object_get(line, "line"));
			assert_non_null(strstr(out.text, v));
			remove_all(out.text, v);
		}
		if (s->undated) {
			const char *date = json_string_value(json_object_get(ctx, "letter_date"));
			assert_non_null(strstr(out.text, date));
			remove_all(out.text, date);
		}
	}
	for (size_t i = 0; i < 3 && s->corrections[i][0]; i++) {
		char *fixed;
		assert_non_null(strstr(seed, s->corrections[i][0])); /* the slip is in the seed */
		fixed = replace_all(seed, s->corrections[i][0], s->corrections[i][1]);
		free(seed);
		seed = fixed;
	}
	want = markdown_to_plain(seed);
	got = markdown_to_plain(out.text);
	compare_words(s->template, want, got);
	ctx_date = "2023-11-17";
	/* The HTML part carries exactly the seed's emphasis. */
	assert_int_equal(count(out.html, "<strong>"), count(seed, "**") / 2);
	assert_int_equal(count(out.html, "<em>"), count_single_stars(seed) / 2);
	free(want);
	free(got);
	free(seed);
	letter_out_free(&out);
	json_decref(ctx);
	letter_free(l);
	free(seed_path);
}

/* ---- other languages, conditionals, fallback ---- */

static void test_translations(void **state)
{
	static const char *ids[] = {"asp-session", "joint-letter"};
	static const struct {
		const char *lang, *salutation, *expect;
	} langs[] = {
	    {"fr", "Excellence", "Excellence,"},
	    {"es", "Excelentísimo Señor Embajador", "Excelentísimo Señor Embajador:"},
	};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct letter *l = load_template(ids[i]);
		json_t *ctx = template_context(ids[i]);

		assert_true(letter_has_language(l, "fr"));
		assert_true(letter_has_language(l, "es"));
		for (size_t j = 0; j < 2; j++) {
			struct letter_out out;

			json_object_set_new(ctx, "language", json_string(langs[j].lang));
			json_object_set_new(ctx, "salutation", json_string(langs[j].salutation));
			parts_add(ctx, langs[j].lang, "2023-11-17", "KEN");
			render_ok(l, langs[j].lang, ctx, &out);
			assert_false(out.fell_back);
			assert_string_equal(out.language, langs[j].lang);
			assert_non_null(strstr(out.text, langs[j].expect));
			/* the closing names the addressee in the formal register (the text part is
			 * wrapped: compare words) */
			{
				char *words = markdown_to_plain(out.text);
				assert_non_null(
				    strstr(words, j == 0 ? "agréer, Excellence,"
				                         : "Vuestra Excelencia las seguridades"));
				free(words);
			}
			assert_non_null(strstr(out.html, "<li>"));
			letter_out_free(&out);
		}
		json_decref(ctx);
		letter_free(l);
	}
}

static void test_conditional_renumbers(void **state)
{
	struct letter *l = load_template("joint-letter");
	json_t *ctx = template_context("joint-letter");
	struct letter_out out;

	(void)state;
	render_ok(l, "en", ctx, &out);
	assert_non_null(strstr(out.text, "\n6. Ratifying, if not previously done, the Agreement"));
	assert_non_null(strstr(out.text, "\n8. Signing"));
	letter_out_free(&out);

	json_object_set_new(ctx, "apic_party", json_true());
	render_ok(l, "en", ctx, &out);
	assert_null(strstr(out.text, "Ratifying"));
	assert_non_null(strstr(out.text, "\n6. Domesticating, if not previously done"));
	assert_non_null(strstr(out.text, "\n7. Signing"));
	assert_null(strstr(out.text, "\n8. "));
	assert_non_null(strstr(out.html, "<ol>"));
	assert_null(strstr(out.html, "APIC"));
	letter_out_free(&out);
	json_decref(ctx);
	letter_free(l);
}

static void test_fallback_and_metadata(void **state)
{
	struct letter *l = load_template("asp-session");
	json_t *ctx = template_context("asp-session");
	struct diags d = DIAGS_INIT;
	struct letter_out out;
	const char *const *v;
	size_t n;
	char *id = NULL;

	(void)state;
	v = letter_languages(l, &n);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "en");
	assert_string_equal(v[1], "es");
	assert_string_equal(v[2], "fr");
	v = letter_params(l, &n);
	assert_true(n > 6);
	assert_string_equal(v[0], "session");
	assert_int_equal(strlen(letter_hash(l)), 64);
	assert_int_equal(strspn(letter_hash(l), "0123456789abcdef"), 64);

	render_ok(l, "de", ctx, &out);
	assert_true(out.fell_back);
	assert_string_equal(out.language, "en");
	assert_string_equal(out.campaign, "asp22-priorities");
	assert_string_equal(out.subject,
	                    "22nd session of the Assembly of States Parties: priorities");
	assert_string_equal(out.title,
	                    "Priorities for the 22nd session of the Assembly of States Parties");
	assert_non_null(strstr(out.html, "<html>"));
	assert_non_null(strstr(out.html, "<strong>ASP General Debate"));
	letter_out_free(&out);

	/* A template's campaign needs its params: the id is only fixed after draft. */
	assert_int_equal(letter_campaign_id(l, &id, &d), EX_DATAERR);
	assert_null(id);
	assert_true(d.errors > 0);
	diags_free(&d);
	json_decref(ctx);
	letter_free(l);
}

/* ---- errors: each names the file and the line ---- */

static void expect_load_error(const char *name, long line, const char *words)
{
	char *path = xasprintf("%s/tests/data/letter/%s", srcdir(), name);
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL;
	int found = 0;

	assert_int_equal(letter_load(path, NULL, &l, &d), EX_DATAERR);
	assert_null(l);
	assert_true(d.errors > 0);
	for (size_t i = 0; i < d.n; i++) {
		char *s = diag_format(&d.v[i]);
		if (strstr(s, "en.md") && d.v[i].line == line && strstr(s, words))
			found = 1;
		free(s);
	}
	if (!found) {
		diags_print(&d, stderr);
		fail_msg("%s: no error at line %ld mentioning '%s'", name, line, words);
	}
	diags_free(&d);
	free(path);
}

static void test_unknown_header(void **state)
{
	(void)state;
	expect_load_error("bad-header", 3, "unknown header 'To'");
}

static void test_unclosed_section(void **state)
{
	(void)state;
	expect_load_error("unclosed", 6, "apic_party");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect_load_error("bad-utf8", 7, "UTF-8");
}

static struct letter *load_data(const char *name)
{
	char *path = xasprintf("%s/tests/data/letter/%s", srcdir(), name);
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL;
	int rc = letter_load(path, NULL, &l, &d);

	if (rc != EX_OK)
		diags_print(&d, stderr);
	assert_int_equal(rc, EX_OK);
	diags_free(&d);
	free(path);
	return l;
}

static int has_diag(const struct diags *d, long line, const char *w1, const char *w2)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = diag_format(&d->v[i]);
		int ok = d->v[i].line == line && strstr(s, "en.md") && strstr(s, w1) &&
		         (!w2 || strstr(s, w2));
		free(s);
		if (ok)
			return 1;
	}
	return 0;
}

static void test_missing_param(void **state)
{
	struct letter *l = load_data("missing-param");
	json_t *ctx = json_pack("{s:s}", "salutation", "Excellency");
	struct diags d = DIAGS_INIT;
	struct letter_out out;

	(void)state;
	assert_int_equal(letter_render(l, "en", ctx, &out, &d), EX_DATAERR);
	assert_null(out.text);
	/* all of them, each with file and line */
	if (!has_diag(&d, 1, "state", NULL) || !has_diag(&d, 6, "topic", NULL) ||
	    !has_diag(&d, 8, "topic", NULL) || !has_diag(&d, 8, "other", NULL)) {
		diags_print(&d, stderr);
		fail_msg("missing names not all reported with their lines");
	}
	diags_free(&d);
	json_decref(ctx);
	letter_free(l);
}

static void test_missing_partial(void **state)
{
	struct letter *l = load_data("missing-partial");
	json_t *ctx = json_pack("{s:s}", "salutation", "Excellency");
	struct diags d = DIAGS_INIT;
	struct letter_out out;
	int found = 0;

	(void)state;
	assert_int_equal(letter_render(l, "en", ctx, &out, &d), EX_DATAERR);
	for (size_t i = 0; i < d.n; i++) {
		char *s = diag_format(&d.v[i]);
		found |= strstr(s, "nosuchpartial") != NULL;
		free(s);
	}
	if (!found) {
		diags_print(&d, stderr);
		fail_msg("the missing partial is not named");
	}
	diags_free(&d);
	json_decref(ctx);
	letter_free(l);
}

static void test_single_file_and_escaping(void **state)
{
	struct letter *l = load_data("single.md");
	json_t *ctx = json_pack("{s:s,s:s,s:s,s:s}", "state", "Côte d'Ivoire", "salutation",
	                        "Excellence", "raw", "**gras**", "escaped", "*pas gras*");
	struct letter_out out;
	const char *const *v;
	size_t n;

	(void)state;
	v = letter_languages(l, &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "fr");
	render_ok(l, "fr", ctx, &out);
	assert_string_equal(out.subject, "Lettre à Côte d'Ivoire");
	assert_non_null(strstr(out.html, "<strong>gras</strong>"));
	assert_null(strstr(out.html, "<em>pas gras</em>"));
	assert_non_null(strstr(out.html, "pas gras"));
	letter_out_free(&out);
	json_decref(ctx);
	letter_free(l);
}

/* ---- draft: fill params, keep roster fields, flatten the layout ---- */

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/test_letter-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_draft_round_trip(void **state)
{
	static const char *ids[] = {"asp-session", "joint-letter", "review-conference"};
	(void)state;

	for (size_t t = 0; t < 3; t++) {
		struct letter *l = load_template(ids[t]), *drafted = NULL;
		json_t *ctx = template_context(ids[t]);
		char *pj = xasprintf("%s/templates/%s/original.json", srcdir(), ids[t]);
		json_t *params = json_load_file(pj, 0, NULL);
		char *dir = make_tmpdir(), *id = NULL, *src = NULL, *p;
		struct diags d = DIAGS_INIT;
		size_t n, len;

		assert_non_null(params);
		assert_int_equal(letter_draft(l, params, dir, &d), EX_OK);
		assert_int_equal(letter_load(dir, NULL, &drafted, &d), EX_OK);
		assert_int_equal(d.errors, 0);
		letter_params(drafted, &n);
		assert_int_equal(n, 0); /* the Params header is dropped */
		letter_languages(drafted, &n);
		letter_languages(l, &len);
		assert_int_equal(n, len);
		assert_int_equal(letter_campaign_id(drafted, &id, &d), EX_OK);
		p = xasprintf("%s/en.md", dir);
		assert_int_equal(read_file(p, &src, &len), 0);
		assert_null(strstr(src, "{{<"));                /* flattened */
		assert_non_null(strstr(src, "{{salutation}}")); /* roster fields stay open */
		free(src);
		free(p);
		for (size_t i = 0; i < n; i++) {
			const char *lang = letter_languages(l, &len)[i];
			struct letter_out a, b;

			json_object_set_new(ctx, "language", json_string(lang));
			render_ok(l, lang, ctx, &a);
			render_ok(drafted, lang, ctx, &b);
			assert_string_equal(a.text, b.text);
			assert_string_equal(a.subject, b.subject);
			assert_string_equal(a.campaign, id);
			letter_out_free(&a);
			letter_out_free(&b);
		}
		free(id);
		diags_free(&d);
		letter_free(drafted);
		letter_free(l);
		json_decref(params);
		json_decref(ctx);
		free(pj);
		rm_rf(dir);
		free(dir);
	}
}

static void test_draft_missing_params_and_attachments(void **state)
{
	struct letter *l = load_template("asp-session"), *att = load_data("attach");
	json_t *params = json_pack("{s:s}", "session", "24");
	char *dir = make_tmpdir(), *p, *src = NULL;
	struct diags d = DIAGS_INIT;
	struct letter_out out;
	size_t n, len;
	json_t *ctx;

	(void)state;
	letter_params(l, &n);
	assert_int_equal(letter_draft(l, params, dir, &d), EX_DATAERR);
	assert_int_equal(d.errors, n - 1); /* every missing one, not only the first */
	diags_free(&d);
	p = xasprintf("%s/en.md", dir);
	assert_int_not_equal(access(p, F_OK), 0); /* nothing written */
	free(p);

	json_object_set_new(params, "year", json_string("2025"));
	assert_int_equal(letter_draft(att, params, dir, &d), EX_OK);
	p = xasprintf("%s/report.txt", dir);
	assert_int_equal(access(p, R_OK), 0);
	free(p);
	p = xasprintf("%s/en.md", dir);
	assert_int_equal(read_file(p, &src, &len), 0);
	assert_non_null(strstr(src, "Campaign: attach-2025\n"));
	assert_non_null(strstr(src, "Attachment: report.txt\n"));
	assert_null(strstr(src, "Params:"));
	free(src);
	free(p);
	letter_free(att);
	att = NULL;
	assert_int_equal(letter_load(dir, NULL, &att, &d), EX_OK);
	ctx = json_pack("{s:s,s:s,s:s}", "state", "Kenya", "salutation", "Excellency", "cc", "");
	render_ok(att, "en", ctx, &out);
	assert_int_equal(out.nattachments, 1);
	assert_non_null(strstr(out.attachments[0], dir));
	assert_string_equal(out.subject, "Report for Kenya");
	assert_string_equal(out.cc, "");
	letter_out_free(&out);
	json_decref(ctx);
	diags_free(&d);
	letter_free(att);
	letter_free(l);
	json_decref(params);
	rm_rf(dir);
	free(dir);
}

/* ---- input limits ---- */

static char *write_in(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return p;
}

static int has_msg(const struct diags *d, const char *text)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, text))
			return 1;
	diags_print(d, stderr);
	return 0;
}

/* A letter file over 1 MiB (sparse), or that is not a regular file, is refused unread. */
static void test_letter_size_limit(void **state)
{
	char *dir = make_tmpdir(), *p;
	struct letter *l = NULL;
	struct diags d = DIAGS_INIT;

	(void)state;
	{
		struct buf b = BUF_INIT;

		buf_adds(&b, "Subject: s\nCampaign: c\n\n");
		while (b.len < 1024 * 1024 - 1)
			buf_adds(&b, b.len % 64 ? "a" : "\n");
		buf_addc(&b, '\n'); /* at the limit: fine */
		p = write_in(dir, "en.md", b.data);
		buf_free(&b);
	}
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	letter_free(l);
	assert_int_equal(truncate(p, 1024 * 1024 + 1), 0);
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_DATAERR);
	assert_null(l);
	assert_true(has_msg(&d, "over the 1048576 byte limit (1 MiB)"));
	diags_free(&d);
	free(p);
	p = xasprintf("%s/fr.md", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(letter_load(p, NULL, &l, &d), EX_DATAERR);
	assert_true(has_msg(&d, "is not a regular file"));
	diags_free(&d);
	free(p);
	rm_rf(dir);
	free(dir);
}

/* At most 20 Attachment headers, 25 MB in all (sparse files), regular files only. */
static void test_attachment_limits(void **state)
{
	char *dir = make_tmpdir(), *p, *a;
	struct buf b = BUF_INIT;
	struct letter *l = NULL;
	struct letter_out out;
	struct diags d = DIAGS_INIT;
	json_t *ctx = json_object();

	(void)state;
	buf_adds(&b, "Subject: s\nCampaign: c\n");
	for (int i = 0; i < 21; i++)
		buf_adds(&b, "Attachment: a.pdf\n");
	buf_adds(&b, "\nBody.\n");
	p = write_in(dir, "en.md", b.data);
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_DATAERR);
	assert_true(has_msg(&d, "more than 20 attachments"));
	assert_int_equal(d.errors, 1);
	diags_free(&d);
	free(p);

	a = write_in(dir, "a.pdf", "%PDF");
	assert_int_equal(truncate(a, 13 * 1000 * 1000), 0);
	p = write_in(dir, "en.md", "Subject: s\nCampaign: c\nAttachment: a.pdf\n\nBody.\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	assert_int_equal(letter_render(l, "en", ctx, &out, &d), EX_OK);
	letter_out_free(&out);
	letter_free(l);
	free(p);
	p = write_in(dir, "en.md",
	             "Subject: s\nCampaign: c\nAttachment: a.pdf\nAttachment: a.pdf\n\nBody.\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	assert_int_equal(letter_render(l, "en", ctx, &out, &d), EX_DATAERR);
	assert_true(has_msg(&d, "total 26000000 bytes, over the 25000000 byte limit"));
	letter_free(l);
	diags_free(&d);
	free(p);

	p = write_in(dir, "en.md", "Subject: s\nCampaign: c\nAttachment: sub\n\nBody.\n");
	free(a);
	a = xasprintf("%s/sub", dir);
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	assert_int_equal(letter_render(l, "en", ctx, &out, &d), EX_DATAERR);
	assert_true(has_msg(&d, "is not a regular file"));
	letter_free(l);
	diags_free(&d);
	free(p);
	free(a);
	buf_free(&b);
	json_decref(ctx);
	rm_rf(dir);
	free(dir);
}

/* draft: a param holding a line break must not write an extra header line into the appeal. */
static void test_draft_param_line_break(void **state)
{
	char *dir = make_tmpdir(), *out = xasprintf("%s/out", dir), *p;
	struct letter *l = NULL;
	struct diags d = DIAGS_INIT;
	json_t *params = json_pack("{s:s}", "session", "24\nBcc: spy@example.org");

	(void)state;
	assert_int_equal(mkdir(out, 0700), 0);
	p = write_in(dir, "en.md",
	             "Subject: ASP {{session}}\nCampaign: asp\nParams: session\n\nB\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	assert_int_equal(letter_draft(l, params, out, &d), EX_DATAERR);
	assert_true(has_msg(&d, "Subject renders with a line break"));
	letter_free(l);
	diags_free(&d);
	json_decref(params);
	free(p);
	free(out);
	rm_rf(dir);
	free(dir);
}

/* ---- hostile letters (issue 14, point 8) ---- */

/* The first problem's line, or -1 when d has none. */
static long first_line(const struct diags *d)
{
	return d->n ? d->v[0].line : -1;
}

/*
 * An Attachment must stay inside the letter's folder: an absolute path or a ".." is refused
 * at load (file and line named), a symlink leading out when the letter is rendered or
 * drafted; one staying inside is fine, and so is a rendered value that stays inside.
 */
static void test_attachment_confined(void **state)
{
	char *dir = make_tmpdir(), *outside = make_tmpdir(), *p, *secret, *link, *out;
	struct letter *l = NULL;
	struct letter_out lo;
	struct diags d = DIAGS_INIT;
	json_t *ctx = json_object(), *params = json_object();

	(void)state;
	secret = write_in(outside, "secret.txt", "SECRET\n");
	out = xasprintf("%s/out", outside);
	assert_int_equal(mkdir(out, 0700), 0);

	p = write_in(dir, "en.md", "Subject: s\nCampaign: c\nAttachment: /etc/shadow\n\nB\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_DATAERR);
	assert_null(l);
	assert_true(has_msg(&d, "Attachment '/etc/shadow' refused: an absolute path"));
	assert_int_equal(first_line(&d), 3);
	diags_free(&d);
	free(p);
	p = write_in(dir, "en.md",
	             "Subject: s\nCampaign: c\nCc: a@b.example\nAttachment: a/../../etc/passwd\n"
	             "\nB\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_DATAERR);
	assert_true(has_msg(&d, "a '..' component"));
	assert_int_equal(first_line(&d), 4);
	diags_free(&d);
	free(p);

	/* A symlink out, at the last component and at a folder on the way. */
	link = xasprintf("%s/annex.txt", dir);
	assert_int_equal(symlink(secret, link), 0);
	free(link);
	link = xasprintf("%s/docs", dir);
	assert_int_equal(symlink(outside, link), 0);
	free(link);
	static const char *const outs[] = {"annex.txt", "docs/secret.txt"};
	for (size_t i = 0; i < 2; i++) {
		char *text = xasprintf("Subject: s\nCampaign: c\nAttachment: %s\n\nB\n", outs[i]);

		p = write_in(dir, "en.md", text);
		assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
		assert_int_equal(letter_render(l, "en", ctx, &lo, &d), EX_DATAERR);
		assert_true(has_msg(&d, "outside the letter's folder"));
		assert_int_equal(first_line(&d), 3);
		assert_int_equal(lo.nattachments, 0); /* left empty */
		diags_free(&d);
		assert_int_equal(letter_draft(l, params, out, &d), EX_DATAERR);
		assert_true(has_msg(&d, "outside the letter's folder"));
		diags_free(&d);
		letter_free(l);
		free(text);
		free(p);
	}
	p = xasprintf("%s/en.md", out);
	assert_int_not_equal(access(p, F_OK), 0); /* draft wrote nothing */
	free(p);

	/* Inside (through a symlink that stays inside, and rendered): fine. */
	free(write_in(dir, "real.txt", "REAL\n"));
	link = xasprintf("%s/inside.txt", dir);
	assert_int_equal(symlink("real.txt", link), 0);
	free(link);
	p = write_in(dir, "en.md", "Subject: s\nCampaign: c\nAttachment: {{file}}\n\nB\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	json_object_set_new(ctx, "file", json_string("inside.txt"));
	assert_int_equal(letter_render(l, "en", ctx, &lo, &d), EX_OK);
	assert_int_equal(lo.nattachments, 1);
	assert_string_equal(lo.attachment_rel[0], "inside.txt");
	assert_string_equal(lo.attachment_dir, dir);
	letter_out_free(&lo);
	json_object_set_new(ctx, "file", json_string("../secret.txt"));
	assert_int_equal(letter_render(l, "en", ctx, &lo, &d), EX_DATAERR);
	assert_true(has_msg(&d, "Attachment '../secret.txt' refused: a '..' component"));
	diags_free(&d);
	json_object_set_new(ctx, "file", json_string(secret));
	assert_int_equal(letter_render(l, "en", ctx, &lo, &d), EX_DATAERR);
	assert_true(has_msg(&d, "an absolute path"));
	diags_free(&d);
	letter_free(l);
	free(p);

	json_decref(ctx);
	json_decref(params);
	free(secret);
	free(out);
	rm_rf(dir);
	rm_rf(outside);
	free(dir);
	free(outside);
}

/* Bcc, in any case, is refused at load with its line and why; Cc is fine. */
static void test_bcc_refused(void **state)
{
	char *dir = make_tmpdir(), *p;
	struct letter *l = NULL;
	struct diags d = DIAGS_INIT;

	(void)state;
	p = write_in(dir, "en.md",
	             "Subject: s\nCampaign: c\nCc: ok@coalition.example\nBCC: spy@evil.example\n"
	             "\nB\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_DATAERR);
	assert_null(l);
	assert_int_equal(d.errors, 1);
	assert_int_equal(first_line(&d), 4);
	assert_true(has_msg(&d, "a hidden recipient is not allowed in a letter to a mission"));
	diags_free(&d);
	free(p);
	p = write_in(dir, "en.md", "Subject: s\nCampaign: c\nCc: ok@coalition.example\n\nB\n");
	assert_int_equal(letter_load(dir, NULL, &l, &d), EX_OK);
	letter_free(l);
	free(p);
	rm_rf(dir);
	free(dir);
}

/*
 * letter_draft() never writes through a symlink: one planted at dir/en.md or at an
 * attachment's name is replaced (its target untouched); dir itself a symlink is refused.
 * Copies keep the source's read and write bits; nothing is left behind on failure.
 */
static void test_draft_no_symlink_follow(void **state)
{
	char *tpl = make_tmpdir(), *outside = make_tmpdir(), *out = make_tmpdir();
	char *secret, *p, *link, *src = NULL;
	struct letter *l = NULL;
	struct diags d = DIAGS_INIT;
	json_t *params = json_object();
	struct stat st;
	size_t len;
	mode_t old = umask(022);

	(void)state;
	secret = write_in(outside, "secret.txt", "SECRET\n");
	free(write_in(tpl, "en.md", "Subject: s\nCampaign: c\nAttachment: annex.txt\n\nB\n"));
	p = write_in(tpl, "annex.txt", "ANNEX\n");
	assert_int_equal(chmod(p, 0600), 0);
	free(p);
	assert_int_equal(letter_load(tpl, NULL, &l, &d), EX_OK);

	link = xasprintf("%s/en.md", out);
	assert_int_equal(symlink(secret, link), 0);
	free(link);
	link = xasprintf("%s/annex.txt", out);
	assert_int_equal(symlink(secret, link), 0);
	assert_int_equal(letter_draft(l, params, out, &d), EX_OK);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600); /* as its source, not 0644 */
	free(link);
	assert_int_equal(read_file(secret, &src, &len), 0);
	assert_string_equal(src, "SECRET\n");
	free(src);
	p = xasprintf("%s/en.md", out);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	free(p);

	/* dir a symlink (with or without a trailing slash): refused, nothing written. */
	link = xasprintf("%s/link", outside);
	assert_int_equal(symlink(out, link), 0);
	rm_rf(out);
	assert_int_equal(mkdir(out, 0700), 0);
	assert_int_equal(letter_draft(l, params, link, &d), EX_CANTCREAT);
	assert_true(has_msg(&d, "does not write through a symlink"));
	diags_free(&d);
	p = xasprintf("%s/", link);
	assert_int_equal(letter_draft(l, params, p, &d), EX_CANTCREAT);
	diags_free(&d);
	free(p);
	free(link);
	p = xasprintf("rmdir '%s'", out); /* fails unless out is still empty */
	assert_int_equal(system(p), 0);
	free(p);

	umask(old);
	letter_free(l);
	json_decref(params);
	free(secret);
	rm_rf(tpl);
	rm_rf(outside);
	free(tpl);
	free(outside);
	free(out);
}

static void test_markdown(void **state)
{
	char *s;

	(void)state;
	s = markdown_to_plain("# Title\n\n- **bold** and _it_\n2. two\\.\n\n  spaced   out \n");
	assert_string_equal(s, "Title bold and it two. spaced out");
	free(s);
	s = markdown_renumber("Intro\n\n1. a\n1. b\n\n1. c\n   more\n\nPara 1. x\n\n3. d\n1. e\n");
	assert_string_equal(s, "Intro\n\n1. a\n2. b\n\n3. c\n   more\n\nPara 1. x\n\n3. d\n4. e\n");
	free(s);
	s = "<script>x</script>\n\n[a](javascript:alert(1)) \"q\" -- 'x'";
	s = markdown_to_html(s, strlen(s));
	assert_null(strstr(s, "<script>"));
	assert_null(strstr(s, "javascript:"));
	if (!strstr(s, "&quot;q&quot; -- 'x'"))
		fail_msg("%s", s);
	free(s);
}

/*
 * "test_letter --render LETTER LAYOUT PARAMS.json ROSTER.csv LANG" prints the rendered text
 * part (for tests/integration/draft.sh); LAYOUT may be "-".
 */
static int render_mode(char **argv)
{
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL;
	struct letter_out out;
	json_t *ctx;
	int rc;

	rc = letter_load(argv[2], strcmp(argv[3], "-") ? argv[3] : NULL, &l, &d);
	if (rc != EX_OK) {
		diags_print(&d, stderr);
		return rc;
	}
	ctx = context(argv[4], argv[5], 0);
	rc = letter_render(l, argv[6], ctx, &out, &d);
	if (rc == EX_OK) {
		printf("Subject: %s\nCampaign: %s\n\n%s", out.subject, out.campaign, out.text);
		letter_out_free(&out);
	}
	diags_print(&d, stderr);
	diags_free(&d);
	json_decref(ctx);
	letter_free(l);
	return rc;
}

int main(int argc, char **argv)
{
	struct CMUnitTest tests[48];
	size_t n = 0;

	if (argc == 7 && !strcmp(argv[1], "--render"))
		return render_mode(argv);
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct CMUnitTest t = {seeds[i].template, test_seed, NULL, NULL, (void *)&seeds[i]};
		tests[n++] = t;
	}
	{
		const struct CMUnitTest rest[] = {
		    cmocka_unit_test(test_translations),
		    cmocka_unit_test(test_conditional_renumbers),
		    cmocka_unit_test(test_fallback_and_metadata),
		    cmocka_unit_test(test_unknown_header),
		    cmocka_unit_test(test_unclosed_section),
		    cmocka_unit_test(test_invalid_utf8),
		    cmocka_unit_test(test_missing_param),
		    cmocka_unit_test(test_missing_partial),
		    cmocka_unit_test(test_single_file_and_escaping),
		    cmocka_unit_test(test_draft_round_trip),
		    cmocka_unit_test(test_draft_missing_params_and_attachments),
		    cmocka_unit_test(test_markdown),
		    cmocka_unit_test(test_letter_size_limit),
		    cmocka_unit_test(test_attachment_limits),
		    cmocka_unit_test(test_draft_param_line_break),
		    cmocka_unit_test(test_attachment_confined),
		    cmocka_unit_test(test_bcc_refused),
		    cmocka_unit_test(test_draft_no_symlink_follow),
		};
		for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
			tests[n++] = rest[i];
	}
	return _cmocka_run_group_tests("letter", tests, n, NULL, NULL);
}
