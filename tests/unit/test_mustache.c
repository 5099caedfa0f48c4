/*
 * Mustache engine tests. With spec files (tests/data/mustache-spec/NAME.json) as arguments: runs
 * every test in them, printing "ok NAME" or "FAIL NAME: ..." for each; without: cmocka tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cmark.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "letter/mustache.h"

/* ---------------------------------------------------------------------------------------- */
/* Spec runner                                                                                */

/* Partials from a JSON object (name -> source); counts the loads to check compile-once. */
struct json_loader {
	json_t *obj;
	int loads;
};

static int load_json_partial(void *user, const char *name, char **src, size_t *len)
{
	struct json_loader *l = user;
	json_t *v = l->obj ? json_object_get(l->obj, name) : NULL;

	if (!json_is_string(v))
		return -1;
	l->loads++;
	*src = xstrndup(json_string_value(v), json_string_length(v));
	*len = json_string_length(v);
	return 0;
}

static void print_json_string(const char *label, const char *s)
{
	json_t *j = json_string(s);
	char *d = json_dumps(j, JSON_ENCODE_ANY);

	printf("  %s %s\n", label, d ? d : "(?)");
	free(d);
	json_decref(j);
}

static int run_spec(const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_DECODE_ANY, &jerr), *tests, *tc;
	size_t i;
	int failed = 0, total = 0;

	if (!doc) {
		fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
		return 1;
	}
	tests = json_object_get(doc, "tests");
	json_array_foreach(tests, i, tc)
	{
		const char *name = json_string_value(json_object_get(tc, "name"));
		json_t *tpl = json_object_get(tc, "template");
		const char *expected = json_string_value(json_object_get(tc, "expected"));
		struct json_loader loader = {json_object_get(tc, "partials"), 0};
		struct mustache_partials *partials =
		    mustache_partials_new(load_json_partial, &loader);
		struct mustache_template *t = NULL;
		struct diags diags = DIAGS_INIT;
		struct mustache_render_opts opts = {MUSTACHE_ESCAPE_HTML, 0, 0, partials, &diags};
		struct buf out = BUF_INIT;
		char *err = NULL;
		int rc;

		total++;
		rc = mustache_compile(json_string_value(tpl), json_string_length(tpl), name, 1, &t,
		                      &err);
		if (rc == EX_OK)
			rc = mustache_render(t, json_object_get(tc, "data"), &opts, &out);
		if (rc != EX_OK || strcmp(buf_str(&out), expected)) {
			failed++;
			printf("FAIL %s: rc %d%s%s\n", name, rc, err ? ": " : "", err ? err : "");
			print_json_string("expected", expected);
			print_json_string("got     ", buf_str(&out));
			for (size_t k = 0; k < diags.n; k++)
				printf("  diag %s\n", diags.v[k].msg);
		} else {
			printf("ok %s\n", name);
		}
		free(err);
		buf_free(&out);
		diags_free(&diags);
		mustache_free(t);
		mustache_partials_free(partials);
	}
	printf("%s: %d/%d passed\n", path, total - failed, total);
	json_decref(doc);
	return failed ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Unit tests                                                                                 */

/* Renders src (compiled as "t.md" from line 1) with ctx given as JSON text. */
static int render_str(const char *src, const char *ctx_json, enum mustache_escape esc, int strict,
                      struct mustache_partials *partials, struct diags *diags, char **out)
{
	struct mustache_template *t = NULL;
	struct mustache_render_opts opts = {esc, strict, 0, partials, diags};
	json_error_t jerr;
	json_t *ctx = json_loads(ctx_json, JSON_DECODE_ANY, &jerr);
	struct buf b = BUF_INIT;
	char *err = NULL;
	int rc;

	assert_non_null(ctx);
	rc = mustache_compile(src, strlen(src), "t.md", 1, &t, &err);
	assert_int_equal(rc, EX_OK);
	rc = mustache_render(t, ctx, &opts, &b);
	*out = buf_detach(&b);
	mustache_free(t);
	json_decref(ctx);
	free(err);
	return rc;
}

/* Renders one value into template src ("{{x}}" somewhere) with the given escape. */
static char *render_value(const char *src, const char *value, enum mustache_escape esc)
{
	json_t *ctx = json_pack("{s:s}", "x", value);
	struct mustache_template *t = NULL;
	struct mustache_render_opts opts = {esc, 1, 0, NULL, NULL};
	struct diags diags = DIAGS_INIT;
	struct buf b = BUF_INIT;
	char *err = NULL;

	opts.diags = &diags;
	assert_int_equal(mustache_compile(src, strlen(src), "t.md", 1, &t, &err), EX_OK);
	assert_int_equal(mustache_render(t, ctx, &opts, &b), EX_OK);
	mustache_free(t);
	json_decref(ctx);
	diags_free(&diags);
	return buf_detach(&b);
}

static void test_html_escape(void **state)
{
	char *s;

	(void)state;
	s = render_value("<p>{{x}}</p>{{{x}}}", "a & \" < > 'b'", MUSTACHE_ESCAPE_HTML);
	assert_string_equal(s, "<p>a &amp; &quot; &lt; &gt; 'b'</p>a & \" < > 'b'");
	free(s);
	s = render_value("{{x}}|{{&x}}", "<*a*>", MUSTACHE_ESCAPE_NONE);
	assert_string_equal(s, "<*a*>|<*a*>");
	free(s);
}

static void test_numbers(void **state)
{
	char *s;

	(void)state;
	assert_int_equal(render_str("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}}",
	                            "{\"a\": 1.210, \"b\": 2.0, \"c\": 85, \"d\": -0.5, \"e\": "
	                            "true, \"f\": 1e21, \"g\": 0.1}",
	                            MUSTACHE_ESCAPE_HTML, 0, NULL, NULL, &s),
	                 EX_OK);
	assert_string_equal(s, "1.21 2 85 -0.5 true 1e+21 0.1");
	free(s);
	/* a blank roster cell is falsy; 0 is a value */
	assert_int_equal(render_str("[{{#e}}E{{/e}}{{^e}}not e{{/e}}{{#z}}Z{{/z}}]",
	                            "{\"e\": \"\", \"z\": 0}", MUSTACHE_ESCAPE_HTML, 0, NULL, NULL,
	                            &s),
	                 EX_OK);
	assert_string_equal(s, "[not eZ]");
	free(s);
}

/* Values a letter may hold; markdown escaping must leave them as they are. */
static const char *ordinary[] = {
    "Côte d'Ivoire",
    "4 – 14 December 2023",
    "Permanent Mission of Kenya",
    "H.E. Mr. John Smith, Ambassador",
    "Smith & Co.",
    "24th session (The Hague, 4-14 December)",
    "first_name",
    "a < b",
    "Saint-Vincent-et-les-Grenadines",
    "100% of the 125 States Parties!",
    "São Tomé e Príncipe",
};

static void test_markdown_ordinary(void **state)
{
	static const char *tpl[] = {"Dear {{x}},\n", "{{x}}\n", "- {{x}}\n", "> {{x}}\n"};

	(void)state;
	for (size_t i = 0; i < sizeof(ordinary) / sizeof(*ordinary); i++) {
		for (size_t k = 0; k < sizeof(tpl) / sizeof(*tpl); k++) {
			char *s = render_value(tpl[k], ordinary[i], MUSTACHE_ESCAPE_MARKDOWN);
			if (!strstr(s, ordinary[i]))
				fail_msg("'%s' in '%s' became '%s'", ordinary[i], tpl[k], s);
			free(s);
		}
	}
}

/* HTML elements and markers that a value must never produce. */
static const char *forbidden[] = {
    "<em>",
    "<strong>",
    "<code>",
    "<a ",
    "<img",
    "<h1>",
    "<h2>",
    "<h3>",
    "<h4>",
    "<h5>",
    "<h6>",
    "<blockquote>",
    "<ul>",
    "<ol>",
    "<li>",
    "<hr",
    "<pre>",
    "<table",
    "raw HTML omitted",
    "<br",
    "&copy;",
    "©",
};

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The text of cmark's HTML: tags dropped, the five entities it writes decoded. */
static char *html_text(const char *html)
{
	struct buf b = BUF_INIT;
	static const char *ent[][2] = {
	    {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}};

	for (const char *p = html; *p;) {
		size_t k;
		if (*p == '<') {
			while (*p && *p != '>')
				p++;
			if (*p)
				p++;
			continue;
		}
		for (k = 0; k < 5; k++)
			if (!strncmp(p, ent[k][0], strlen(ent[k][0])))
				break;
		if (k < 5) {
			buf_adds(&b, ent[k][1]);
			p += strlen(ent[k][0]);
			continue;
		}
		buf_addc(&b, *p == '\n' ? ' ' : *p);
		p++;
	}
	return buf_detach(&b);
}

static void test_markdown_hostile(void **state)
{
	static const char *tpl[] = {
	    "Dear {{x}},\n",
	    "{{x}}\n",
	    "- {{x}}\n",
	    "> {{x}}\n",
	    "Para.\n\n{{x}}\n\nEnd.\n",
	    "1. {{x}}\n",
	    "# Title {{x}}\n",
	    "{{x}}{{x}}\n",
	};
	static const char *hostile[] = {
	    "*em*",
	    "**strong**",
	    "_em_",
	    "__strong__",
	    "`code`",
	    "``co`de``",
	    "[link](http://evil.example/)",
	    "![img](http://evil.example/x.png)",
	    "[ref]",
	    "[ref]: http://evil.example/\n\n[ref]",
	    "<http://evil.example/>",
	    "<evil@example.com>",
	    "<b>raw</b>",
	    "<script>alert(1)</script>",
	    "<!-- c -->",
	    "&copy; &#169; &#xa9;",
	    "# heading",
	    "###### h6",
	    "> quote",
	    "- item",
	    "+ item",
	    "* item",
	    "1. item",
	    "2) item",
	    "---",
	    "***",
	    "___",
	    "- - -",
	    "===",
	    "Title\n===",
	    "Title\n---",
	    "a\n\n    code block",
	    "a\n\n\tcode block",
	    "    code",
	    "```\ncode\n```",
	    "~~~\ncode\n~~~",
	    "| a | b |\n|---|---|\n| c | d |",
	    "line\n# heading",
	    "x\n> q\n- i\n1. i",
	    "foo*bar*baz",
	    "foo_bar_",
	    "*",
	    "\\*not*",
	    "a  \nb",
	    "a\\\nb",
	    "ends with \\",
	    "x #",
	    "#",
	    "<",
	    "a <b",
	    "&",
	    "AT&T",
	    "&copy",
	    "**",
	    "__init__",
	    "[x]",
	    "!",
	    "![",
	    "\r\n# h\r\n",
	    "  # h",
	};

	(void)state;
	for (size_t k = 0; k < sizeof(tpl) / sizeof(*tpl); k++) {
		char *plain = render_value(tpl[k], "X", MUSTACHE_ESCAPE_MARKDOWN);
		char *base = cmark_markdown_to_html(plain, strlen(plain), CMARK_OPT_SAFE);

		for (size_t i = 0; i < sizeof(hostile) / sizeof(*hostile); i++) {
			char *md = render_value(tpl[k], hostile[i], MUSTACHE_ESCAPE_MARKDOWN);
			char *html = cmark_markdown_to_html(md, strlen(md), CMARK_OPT_SAFE);

			for (size_t f = 0; f < sizeof(forbidden) / sizeof(*forbidden); f++)
				if (count(html, forbidden[f]) > count(base, forbidden[f]))
					fail_msg("'%s' in '%s' gives %s:\n%s", hostile[i], tpl[k],
					         forbidden[f], html);
			/* nothing of a one-line value is lost */
			if (!strpbrk(hostile[i], "\r\n") && hostile[i][0] != ' ') {
				char *text = html_text(html);
				if (!strstr(text, hostile[i]))
					fail_msg("'%s' in '%s' lost text: %s", hostile[i], tpl[k],
					         text);
				free(text);
			}
			free(html);
			free(md);
		}
		free(base);
		free(plain);
	}
}

static void test_markdown_contextual(void **state)
{
	char *s;

	(void)state;
	s = render_value("Ref. {{x}}\n", "1. # - > ok", MUSTACHE_ESCAPE_MARKDOWN);
	assert_string_equal(s, "Ref. 1. # - > ok\n");
	free(s);
	s = render_value("{{x}}\n", "1. # - > ok", MUSTACHE_ESCAPE_MARKDOWN);
	assert_string_equal(s, "1\\. # - > ok\n");
	free(s);
	s = render_value("{{x}}\n", "a\n  - b\n# c", MUSTACHE_ESCAPE_MARKDOWN);
	assert_string_equal(s, "a\n\\- b\n\\# c\n");
	free(s);
	{
		struct buf b = BUF_INIT;
		mustache_escape(&b, MUSTACHE_ESCAPE_MARKDOWN, "# *x* <y>", 9);
		assert_string_equal(b.data, "\\# \\*x\\* \\<y>");
		buf_free(&b);
	}
}

static void test_strict(void **state)
{
	const char *src = "Dear {{title}} {{name}},\n"
	                  "{{#apic}}x{{/apic}}{{^gone}}y{{/gone}}{{#list}}z{{/list}}\n"
	                  "{{missing.deep}}{{title.deep}}{{nul}}\n"
	                  "{{> nopartial}}\n";
	struct mustache_template *t = NULL;
	struct diags diags = DIAGS_INIT;
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_MARKDOWN, 1, 0, NULL, &diags};
	json_t *ctx = json_pack("{s:s,s:b,s:[],s:n}", "title", "H.E.", "apic", 0, "list", "nul");
	struct buf out = BUF_INIT;
	char *err = NULL;

	(void)state;
	assert_int_equal(mustache_compile(src, strlen(src), "en.md", 10, &t, &err), EX_OK);
	assert_int_equal(mustache_render(t, ctx, &opts, &out), EX_DATAERR);
	assert_int_equal(diags.n, 6);
	assert_string_equal(diags.v[0].file, "en.md");
	assert_int_equal(diags.v[0].line, 10);
	assert_string_equal(diags.v[0].msg, "missing variable 'name'");
	assert_int_equal(diags.v[1].line, 11);
	assert_string_equal(diags.v[1].msg, "missing section 'gone'");
	assert_int_equal(diags.v[2].line, 12);
	assert_string_equal(diags.v[2].msg, "missing variable 'missing.deep'");
	assert_string_equal(diags.v[3].msg, "missing variable 'title.deep'");
	assert_string_equal(diags.v[4].msg, "null variable 'nul'");
	assert_int_equal(diags.v[5].line, 13);
	assert_string_equal(diags.v[5].msg, "missing partial 'nopartial'");
	/* rendering went on to the end */
	assert_string_equal(buf_str(&out), "Dear H.E. ,\ny\n\n");
	buf_free(&out);
	diags_free(&diags);

	/* the same context without strict: spec behaviour, no problems */
	opts.strict = 0;
	assert_int_equal(mustache_render(t, ctx, &opts, &out), EX_OK);
	assert_int_equal(diags.n, 0);
	buf_free(&out);
	mustache_free(t);
	json_decref(ctx);
}

static void expect_compile_error(const char *src, size_t len, const char *msg)
{
	struct mustache_template *t = NULL;
	char *err = NULL;

	assert_int_equal(mustache_compile(src, len, "en.md", 10, &t, &err), EX_DATAERR);
	assert_null(t);
	assert_non_null(err);
	if (strcmp(err, msg))
		fail_msg("'%s': expected '%s', got '%s'", src, msg, err);
	free(err);
}

static void test_compile_errors(void **state)
{
	static const struct {
		const char *src, *msg;
	} cases[] = {
	    {"a\nb\n{{#x}}\nc\n", "en.md:12: unclosed section 'x'"},
	    {"a\n{{#x}}{{#y}}\n{{/y}}", "en.md:11: unclosed section 'x'"},
	    {"a\n\n{{/x}}", "en.md:12: closing tag 'x' without an opening tag"},
	    {"{{#a}}\n{{/b}}",
	     "en.md:11: closing tag 'b' does not match section 'a' opened on line 10"},
	    {"ok\n{{name", "en.md:11: unclosed tag '{{name'"},
	    {"ok\n{{{name}}", "en.md:11: unclosed tag '{{{name}}'"},
	    {"{{=<% =}}", "en.md:10: bad set-delimiter tag (want {{=OPEN CLOSE=}})"},
	    {"{{=<% %>=}}\n<%x", "en.md:11: unclosed tag '<%x'"},
	    {"x {{}}", "en.md:10: empty tag name"},
	    {"x\n{{first name}}", "en.md:11: bad tag name 'first name'"},
	    {"{{<p}}\n{{$b}}\n{{/p}}", "en.md:12: closing tag 'p' does not match section 'b' "
	                               "opened on line 11"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		expect_compile_error(cases[i].src, strlen(cases[i].src), cases[i].msg);
	expect_compile_error("ok\nC\xf4te\n", 9, "en.md:11: invalid UTF-8 (byte 0xf4)");
	expect_compile_error("ok\n\n\xc0\xaf", 5, "en.md:12: invalid UTF-8 (byte 0xc0)");
	expect_compile_error("\xed\xa0\x80", 3, "en.md:10: invalid UTF-8 (byte 0xed)");
}

static void test_compile_once(void **state)
{
	json_t *parts = json_pack("{s:s,s:s}", "sig", "{{who}}", "bad", "{{#x}}");
	struct json_loader loader = {parts, 0};
	struct mustache_partials *p = mustache_partials_new(load_json_partial, &loader);
	struct diags diags = DIAGS_INIT;
	char *s;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(render_str("{{>sig}} {{>sig}} {{>none}}{{>none}}",
		                            "{\"who\": \"Me\"}", MUSTACHE_ESCAPE_HTML, 0, p, &diags,
		                            &s),
		                 EX_OK);
		assert_string_equal(s, "Me Me ");
		free(s);
	}
	/* one load for sig, none counted for the missing one however often it is asked for */
	assert_int_equal(loader.loads, 1);
	/* a partial that does not compile is a problem in any mode, named with its line */
	assert_int_equal(render_str("{{>bad}}", "{}", MUSTACHE_ESCAPE_HTML, 0, p, &diags, &s),
	                 EX_DATAERR);
	free(s);
	assert_int_equal(diags.n, 1);
	assert_string_equal(diags.v[0].msg, "bad:1: unclosed section 'x'");
	diags_free(&diags);
	mustache_partials_free(p);
	json_decref(parts);
}

static void test_recursion_stops(void **state)
{
	json_t *parts = json_pack("{s:s}", "loop", "x{{>loop}}");
	struct json_loader loader = {parts, 0};
	struct mustache_partials *p = mustache_partials_new(load_json_partial, &loader);
	struct diags diags = DIAGS_INIT;
	char *s;

	(void)state;
	assert_int_equal(render_str("{{>loop}}", "{}", MUSTACHE_ESCAPE_HTML, 0, p, &diags, &s),
	                 EX_DATAERR);
	assert_non_null(strstr(diags.v[0].msg, "nested too deeply"));
	free(s);
	diags_free(&diags);
	mustache_partials_free(p);
	json_decref(parts);
}

/* Draft's two steps (params now, roster row later) give what one step gives. */
static const char residual_src[] =
    "{{! the campaign facts are params; the rest comes from the roster }}\n"
    "{{=<% %>=}}\n"
    "# <%session_ordinal%> session, <%venue%>\n"
    "<%={{ }}=%>\n"
    "\n"
    "{{salutation}},\n"
    "\n"
    "{{#apic_party}}\n"
    "We thank {{state}} for ratifying APIC before the {{session_ordinal}} session.\n"
    "{{/apic_party}}\n"
    "{{^apic_party}}\n"
    "1. We urge {{state}} to ratify APIC ({{{note}}}).\n"
    "{{/apic_party}}\n"
    "{{#signatories}}\n"
    "- {{name}}, {{org}} ({{state}})\n"
    "{{/signatories}}\n"
    "  {{> sig}}\n"
    "{{#mission.address}}At {{mission.address}}{{/mission.address}} {{&raw}} {{tricky}}\n";

static const char residual_params[] =
    "{\"session_ordinal\": \"24th\", \"venue\": \"The Hague\", \"note\": \"<i>n</i>\","
    " \"signatories\": [{\"name\": \"A. B.\", \"org\": \"CICC\"}],"
    " \"signer\": \"W. Pace\", \"tricky\": \"{{state}} {{{x}}}\"}";

static void test_residual(void **state)
{
	static const char *rows[] = {
	    "{\"salutation\": \"Excellency\", \"apic_party\": true, \"state\": \"Kenya\","
	    " \"mission\": {\"address\": \"New York\"}, \"raw\": \"*r*\"}",
	    "{\"salutation\": \"Excelentísimo Señor\", \"apic_party\": false, \"state\": "
	    "\"Perú\", \"mission\": {\"address\": \"\"}, \"raw\": \"\"}",
	};
	json_t *parts =
	    json_pack("{s:s}", "sig", "{{signer}}\n{{#state}}for {{state}}{{/state}}\n");
	struct json_loader loader = {parts, 0};
	struct mustache_partials *p = mustache_partials_new(load_json_partial, &loader);
	json_t *params = json_loads(residual_params, 0, NULL);
	struct mustache_template *t = NULL, *t2 = NULL;
	struct diags diags = DIAGS_INIT;
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_MARKDOWN, 1, 1, p, &diags};
	struct buf draft = BUF_INIT;
	char *err = NULL;

	(void)state;
	assert_int_equal(mustache_compile(residual_src, strlen(residual_src), "en.md", 1, &t, &err),
	                 EX_OK);
	assert_int_equal(mustache_render(t, params, &opts, &draft), EX_OK);
	assert_int_equal(diags.n, 0);
	/* params filled, roster fields open, comments and delimiters gone */
	assert_non_null(strstr(draft.data, "# 24th session, The Hague\n"));
	assert_non_null(strstr(draft.data, "{{salutation}},\n"));
	assert_non_null(strstr(draft.data, "{{#apic_party}}\nWe thank {{state}} for ratifying "
	                                   "APIC before the 24th session.\n{{/apic_party}}\n"));
	assert_non_null(strstr(draft.data, "- A. B., CICC ({{state}})\n"));
	assert_non_null(strstr(draft.data, "  W. Pace\n  {{#state}}for {{state}}{{/state}}\n"));
	assert_null(strstr(draft.data, "{{!"));
	assert_null(strstr(draft.data, "<%session"));
	assert_int_equal(mustache_compile(draft.data, draft.len, "draft.md", 1, &t2, &err), EX_OK);

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		json_t *ctx = json_deep_copy(params);
		json_t *row = json_loads(rows[i], 0, NULL);
		struct mustache_render_opts final = {MUSTACHE_ESCAPE_MARKDOWN, 1, 0, p, &diags};
		struct buf direct = BUF_INIT, twostep = BUF_INIT;

		assert_non_null(row);
		json_object_update(ctx, row);
		assert_int_equal(mustache_render(t, ctx, &final, &direct), EX_OK);
		assert_int_equal(mustache_render(t2, ctx, &final, &twostep), EX_OK);
		assert_string_equal(twostep.data, direct.data);
		/* a param that looks like a tag stays text */
		assert_non_null(strstr(direct.data, "{{state}} {{{x}}}"));
		buf_free(&direct);
		buf_free(&twostep);
		json_decref(row);
		json_decref(ctx);
	}
	assert_int_equal(diags.n, 0);
	mustache_free(t);
	mustache_free(t2);
	buf_free(&draft);
	json_decref(params);
	mustache_partials_free(p);
	json_decref(parts);
}

static int load_fuzz_partial(void *user, const char *name, char **src, size_t *len)
{
	const char *t = !strcmp(name, "pp")    ? "P{{r}}\n{{#rs}}\nq\n{{/rs}}\n{{p}}\n"
	                : !strcmp(name, "lay") ? "<\n  {{$b}}\n  d\n  {{/b}}\n{{#rl}}{{/rl}}>"
	                                       : NULL;

	(void)user;
	if (!t)
		return -1;
	*src = xstrdup(t);
	*len = strlen(t);
	return 0;
}

/* The residual property on random templates: params now + the rest later == all at once. */
static void test_residual_random(void **state)
{
	static const char *pieces[] = {
	    "{{p}}",
	    "{{{r}}}",
	    "{{#ps}}",
	    "{{^ps}}",
	    "{{#rs}}",
	    "{{^rs}}",
	    "{{#pl}}",
	    "{{#rl}}",
	    "{{r}}",
	    "{{!c}}",
	    "\n",
	    "  ",
	    "x ",
	    "{{pl.0}}",
	    "- ",
	    "1. ",
	    "# ",
	    "{{p.q}}",
	    "{{n}}",
	    "  {{>pp}}\n",
	    "{{>pp}}",
	    "{{=<% %>=}}",
	    "<%={{ }}=%>",
	    "{{w}}",
	    "{{{w}}}",
	    "\r\n",
	    "{{$b}}{{p}}{{/b}}",
	    "{{<lay}}{{$b}}\nB{{r}}\n{{/b}}{{/lay}}\n",
	    "/",
	};
	json_t *params = json_loads("{\"w\": \"{{r}} {{{x\", \"p\": \"P*\", \"ps\": true,"
	                            " \"pl\": [{\"n\": \"N1\"}, {\"n\": \"N2\"}]}",
	                            0, NULL);
	json_t *full = json_deep_copy(params);
	struct mustache_partials *pp = mustache_partials_new(load_fuzz_partial, NULL);
	struct mustache_render_opts ro = {MUSTACHE_ESCAPE_MARKDOWN, 0, 1, pp, NULL};
	struct mustache_render_opts fo = {MUSTACHE_ESCAPE_MARKDOWN, 0, 0, pp, NULL};
	uint32_t seed = 12345;
	int tried = 0;

	(void)state;
	json_object_update_new(
	    full, json_pack("{s:s,s:b,s:[{s:s},s]}", "r", "R#", "rs", 0, "rl", "r", "a", "b"));
	for (int it = 0; it < 3000; it++) {
		struct buf src = BUF_INIT, d = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
		struct mustache_template *t = NULL, *t2 = NULL;
		const char *open[32];
		size_t sp = 0;
		char *err = NULL;
		int n;

		seed = seed * 1103515245u + 12345u;
		n = (int)(seed >> 16) % 20 + 1;
		for (int i = 0; i < n; i++) {
			const char *pc;
			seed = seed * 1103515245u + 12345u;
			pc = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(*pieces))];
			if (!strcmp(pc, "/")) {
				if (sp)
					buf_addf(&src, "{{/%s}}", open[--sp]);
				continue;
			}
			if (strlen(pc) == 7 && (pc[2] == '#' || pc[2] == '^') && sp < 32)
				open[sp++] = pc[3] == 'p' ? (pc[4] == 's' ? "ps" : "pl")
				                          : (pc[4] == 's' ? "rs" : "rl");
			buf_adds(&src, pc);
		}
		while (sp)
			buf_addf(&src, "{{/%s}}", open[--sp]);
		if (mustache_compile(src.data, src.len, "t", 1, &t, &err) == EX_OK) {
			tried++;
			mustache_render(t, params, &ro, &d);
			if (mustache_compile(d.data, d.len, "d", 1, &t2, &err) != EX_OK)
				fail_msg("draft of '%s' does not compile: %s\n%s", src.data, err,
				         d.data);
			mustache_render(t, full, &fo, &a);
			mustache_render(t2, full, &fo, &b);
			if (strcmp(a.data, b.data))
				fail_msg("template:\n%s\ndraft:\n%s\ndirect:\n%s\ntwo steps:\n%s",
				         src.data, d.data, a.data, b.data);
		}
		free(err);
		mustache_free(t);
		mustache_free(t2);
		buf_free(&src);
		buf_free(&d);
		buf_free(&a);
		buf_free(&b);
	}
	assert_true(tried > 1000);
	mustache_partials_free(pp);
	json_decref(params);
	json_decref(full);
}

/* Parents and blocks in a letter layout, as letters use them. */
static void test_layout(void **state)
{
	json_t *parts = json_pack("{s:s}", "layout",
	                          "{{$date}}1 December{{/date}}\n\n{{$salutation}}Excellency,"
	                          "{{/salutation}}\n\n{{$body}}{{/body}}\n\n{{$closing}}Yours "
	                          "sincerely,{{/closing}}\n{{signer}}\n");
	struct json_loader loader = {parts, 0};
	struct mustache_partials *p = mustache_partials_new(load_json_partial, &loader);
	struct diags diags = DIAGS_INIT;
	char *s;

	(void)state;
	assert_int_equal(render_str("{{<layout}}\n{{$body}}\nWe write about {{topic}}.\n{{/body}}\n"
	                            "{{/layout}}\n",
	                            "{\"topic\": \"the ICC\", \"signer\": \"W. Pace\"}",
	                            MUSTACHE_ESCAPE_MARKDOWN, 1, p, &diags, &s),
	                 EX_OK);
	assert_string_equal(s, "1 December\n\nExcellency,\n\nWe write about the ICC.\n\n\nYours "
	                       "sincerely,\nW. Pace\n");
	free(s);
	mustache_partials_free(p);
	json_decref(parts);
}

/*
 * Found by tests/fuzz/fuzz_mustache: "{{ #b}}" is the variable "#b" (a sigil must follow the
 * delimiter), but residual mode wrote it back as "{{#b}}", an unclosed section, so draft
 * wrote an appeal that did not compile. Each sigil, written back and rendered later; and
 * names holding "}".
 */
static void test_residual_sigil_names(void **state)
{
	static const char src[] = "a{{ #b}}{{ ^c}}{{ /d}}{{ >e}}{{ =f}}{{ !g}}{{ &h}}{{ $i}}z";
	json_t *params = json_pack("{s:s}", "p", "1");
	json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "#b", "1", "^c", "2",
	                        "/d", "3", ">e", "4", "=f", "5", "!g", "6", "&h", "7", "$i", "8");
	struct mustache_template *t = NULL, *t2 = NULL;
	struct diags diags = DIAGS_INIT;
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_NONE, 0, 1, NULL, &diags};
	struct mustache_render_opts final = {MUSTACHE_ESCAPE_NONE, 1, 0, NULL, &diags};
	struct buf draft = BUF_INIT, out = BUF_INIT;
	char *err = NULL;

	(void)state;
	assert_int_equal(mustache_compile(src, strlen(src), "en.md", 1, &t, &err), EX_OK);
	assert_int_equal(mustache_render(t, params, &opts, &draft), EX_OK);
	if (mustache_compile(draft.data, draft.len, "draft.md", 1, &t2, &err) != EX_OK)
		fail_msg("draft [%s] does not compile: %s", draft.data, err);
	assert_int_equal(mustache_render(t2, row, &final, &out), EX_OK);
	assert_string_equal(out.data, "a12345678z");
	assert_int_equal(diags.n, 0);
	mustache_free(t);
	mustache_free(t2);
	t = t2 = NULL;
	buf_reset(&draft);
	buf_reset(&out);

	/* Names holding "}" ("{{} }}" is the variable "}") are written with other delimiters. */
	{
		static const char src2[] = "{{} }}|{{#s}x}}{{{r}%>}}}{{/s}x}}|{{=[ ]=}}[a}}%>]";
		json_t *row2 =
		    json_pack("{s:s, s:{s:s}, s:s}", "}", "1", "s}x", "r}%>", "2", "a}}%>", "3");

		assert_int_equal(mustache_compile(src2, strlen(src2), "en.md", 1, &t, &err), EX_OK);
		assert_int_equal(mustache_render(t, params, &opts, &draft), EX_OK);
		if (mustache_compile(draft.data, draft.len, "draft.md", 1, &t2, &err) != EX_OK)
			fail_msg("draft [%s] does not compile: %s", draft.data, err);
		assert_int_equal(mustache_render(t2, row2, &final, &out), EX_OK);
		assert_string_equal(out.data, "1|2|3");
		assert_int_equal(diags.n, 0);
		json_decref(row2);
	}

	/* Text or a value ending in "{" before a tag or a "{" (with other delimiters, "{|#s|"
	 * is "{" and a section): written as is, "{{{" or "{{" would read as a tag. */
	{
		static const char src3[] = "{{=| |=}}{|#s|x|/s|{|v|{|w|}";
		json_t *p3 = json_pack("{s:s, s:s}", "v", "{y}}", "w", "{");
		json_t *row3 = json_pack("{s:b}", "s", 1);

		mustache_free(t);
		mustache_free(t2);
		t = t2 = NULL;
		buf_reset(&draft);
		buf_reset(&out);
		assert_int_equal(mustache_compile(src3, strlen(src3), "en.md", 1, &t, &err), EX_OK);
		assert_int_equal(mustache_render(t, p3, &opts, &draft), EX_OK);
		if (mustache_compile(draft.data, draft.len, "draft.md", 1, &t2, &err) != EX_OK)
			fail_msg("draft [%s] does not compile: %s", draft.data, err);
		assert_int_equal(mustache_render(t2, row3, &final, &out), EX_OK);
		assert_string_equal(out.data, "{x{{y}}{{}");
		assert_int_equal(diags.n, 0);
		json_decref(p3);
		json_decref(row3);
	}
	mustache_free(t);
	mustache_free(t2);
	buf_free(&draft);
	buf_free(&out);
	json_decref(params);
	json_decref(row);
	free(err);
}

/*
 * Found by tests/fuzz/fuzz_mustache (a timeout): partials or blocks that use the next one
 * twice double the output at each of up to 100 levels. Rendering stops at 16 MiB with a
 * problem. Here 1 KiB doubled 15 times: 32 MiB.
 */
static void test_output_limit(void **state)
{
	json_t *parts = json_object();
	struct json_loader loader = {parts, 0};
	struct mustache_partials *p = mustache_partials_new(load_json_partial, &loader);
	struct mustache_template *t = NULL;
	struct diags diags = DIAGS_INIT;
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_NONE, 0, 0, p, &diags};
	struct buf out = BUF_INIT;
	char *err = NULL;

	(void)state;
	{
		char kib[1025];

		memset(kib, 'k', 1024);
		kib[1024] = '\0';
		json_object_set_new(parts, "p0", json_string(kib));
		for (int i = 1; i <= 15; i++) {
			char name[8], *src = xasprintf("{{>p%d}}{{>p%d}}", i - 1, i - 1);

			snprintf(name, sizeof name, "p%d", i);
			json_object_set_new(parts, name, json_string(src));
			free(src);
		}
	}
	assert_int_equal(mustache_compile("{{>p15}}", 8, "en.md", 1, &t, &err), EX_OK);
	assert_int_equal(mustache_render(t, NULL, &opts, &out), EX_DATAERR);
	assert_int_equal(diags.n, 1);
	assert_non_null(strstr(diags.v[0].msg, "rendered text over 16 MiB"));
	assert_true(out.len > 16 * 1024 * 1024 && out.len < 17 * 1024 * 1024);
	mustache_free(t);
	buf_free(&out);
	diags_free(&diags);
	mustache_partials_free(p);
	json_decref(parts);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_html_escape),          cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_markdown_ordinary),    cmocka_unit_test(test_markdown_hostile),
	    cmocka_unit_test(test_markdown_contextual),  cmocka_unit_test(test_strict),
	    cmocka_unit_test(test_compile_errors),       cmocka_unit_test(test_compile_once),
	    cmocka_unit_test(test_recursion_stops),      cmocka_unit_test(test_residual),
	    cmocka_unit_test(test_residual_random),      cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_residual_sigil_names), cmocka_unit_test(test_output_limit),
	};

	if (argc > 1) {
		int rc = 0;
		for (int i = 1; i < argc; i++)
			rc |= run_spec(argv[i]);
		return rc;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
