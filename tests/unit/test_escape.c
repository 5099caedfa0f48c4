/* Unit tests for src/base/escape: terminal, CSV, JSON and HTML output of hostile text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/escape.h"

static char *term(const char *s, size_t *width)
{
	struct buf b = BUF_INIT;
	size_t w = esc_term(&b, s);

	if (width)
		*width = w;
	assert_int_equal(w, esc_term_width(s)); /* the two never disagree */
	return buf_detach(&b);
}

static void expect_term(const char *in, const char *want)
{
	size_t w;
	char *got = term(in, &w);

	assert_string_equal(got, want);
	free(got);
}

static void test_term(void **state)
{
	char *s;
	size_t w;

	(void)state;
	expect_term("", "");
	expect_term("KEN", "KEN");
	expect_term("Côte d’Ivoire", "Côte d’Ivoire");
	/* C0, BEL, DEL, the whitespace controls, a backslash */
	expect_term("\033[2J\033]8;;http://x\a!", "\\x1b[2J\\x1b]8;;http://x\\x07!");
	expect_term("a\tb\nc\rd\x7f", "a\\tb\\nc\\rd\\x7f");
	expect_term("C:\\x1b", "C:\\\\x1b");
	/* C1 (CSI as one code point), bidi controls, invisible characters, tags */
	expect_term("\xc2\x9b"
	            "31m",
	            "\\u009b31m");
	expect_term("abc\xe2\x80\xae"
	            "gpj.exe",
	            "abc\\u202egpj.exe");
	expect_term("\xe2\x81\xa6x\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c",
	            "\\u2066x\\u2069\\u200f\\u061c");
	expect_term("a\xe2\x80\x8b"
	            "b\xef\xbb\xbf",
	            "a\\u200bb\\ufeff");
	expect_term("\xf3\xa0\x80\x81", "\\U000e0001");
	/* bytes that are not UTF-8: stray, overlong, surrogate, cut short */
	expect_term("\xff\xfe", "\\xff\\xfe");
	expect_term("\xc0\xaf", "\\xc0\\xaf");
	expect_term("\xed\xa0\x80", "\\xed\\xa0\\x80");
	expect_term("ok\xe2\x80", "ok\\xe2\\x80");
	/* widths: one column per code point, escapes as written */
	s = term("Côte", &w);
	assert_int_equal(w, 4);
	free(s);
	s = term("\033x\xe2\x80\xae", &w);
	assert_string_equal(s, "\\x1bx\\u202e");
	assert_int_equal(w, strlen(s));
	free(s);
	assert_null(esc_term_dup(NULL));
	s = esc_term_dup("\a");
	assert_string_equal(s, "\\x07");
	free(s);
	assert_int_equal(esc_term_width(NULL), 0);
}

static void expect_csv(const char *in, int visible, const char *want)
{
	struct buf b = BUF_INIT;

	esc_csv(&b, in, visible);
	assert_string_equal(buf_str(&b), want);
	buf_free(&b);
}

static void test_csv(void **state)
{
	(void)state;
	expect_csv("KEN", 0, "KEN");
	expect_csv("", 0, "");
	expect_csv("a,b", 0, "\"a,b\"");
	expect_csv("say \"hi\"", 0, "\"say \"\"hi\"\"\"");
	expect_csv("two\r\nlines", 0, "\"two\r\nlines\"");
	/* OWASP: formula starters neutralised, quoted */
	expect_csv("=HYPERLINK(\"http://evil\",\"x\")", 0,
	           "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\"");
	expect_csv("+1", 0, "\"'+1\"");
	expect_csv("-2+3", 0, "\"'-2+3\"");
	expect_csv("@SUM(A1)", 0, "\"'@SUM(A1)\"");
	expect_csv("\t=1", 0, "\"'\t=1\"");
	expect_csv("\r=1", 0, "\"'\r=1\"");
	expect_csv("a=1", 0, "a=1"); /* only the first character counts */
	/* exact otherwise: control and bidi characters kept for programs */
	expect_csv("\033[2J\xe2\x80\xae", 0, "\033[2J\xe2\x80\xae");
	/* on a terminal: escaped first, then quoted on the escaped text */
	expect_csv("\033[2J\xe2\x80\xae", 1, "\\x1b[2J\\u202e");
	expect_csv("=1\a", 1, "\"'=1\\x07\"");
	expect_csv("\t1", 1, "\\t1"); /* escaped, no longer a TAB */
	expect_csv(NULL, 0, "");
}

/* s as esc_json() writes it; checks that jansson reads it back as want (NULL: as s). */
static void expect_json(const char *in, const char *want_text, const char *want_value)
{
	struct buf b = BUF_INIT;
	json_error_t jerr;
	json_t *v;

	esc_json(&b, in);
	assert_string_equal(buf_str(&b), want_text);
	v = json_loads(buf_str(&b), JSON_DECODE_ANY, &jerr);
	assert_non_null(v);
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), want_value ? want_value : in);
	json_decref(v);
	buf_free(&b);
}

static void test_json(void **state)
{
	json_t *v;
	char *d;

	(void)state;
	expect_json("KEN", "\"KEN\"", NULL);
	expect_json("Côte d’Ivoire", "\"Côte d’Ivoire\"", NULL);
	expect_json("q\"b\\", "\"q\\\"b\\\\\"", NULL);
	/* exact: every control, bidi and invisible character round-trips */
	expect_json("\033[2J\a\t\n\x7f", "\"\\u001B[2J\\u0007\\t\\n\\u007F\"", NULL);
	expect_json("\xc2\x9b\xe2\x80\xae!", "\"\\u009B\\u202E!\"", NULL);
	expect_json("\xf3\xa0\x80\x81", "\"\\uDB40\\uDC01\"", NULL);
	expect_json("=HYPERLINK(1)", "\"=HYPERLINK(1)\"", NULL);
	/* not UTF-8: U+FFFD per byte, never null */
	expect_json("550 \xff\xfe ok", "\"550 \\uFFFD\\uFFFD ok\"",
	            "550 \xef\xbf\xbd\xef\xbf\xbd ok");
	expect_json(NULL, "\"\"", "");
	/* C0 written exactly as jansson writes it */
	v = json_string("\033x\001");
	d = json_dumps(v, JSON_ENCODE_ANY);
	{
		struct buf b = BUF_INIT;

		esc_json(&b, "\033x\001");
		assert_string_equal(buf_str(&b), d);
		buf_free(&b);
	}
	free(d);
	json_decref(v);
}

static void test_unsafe(void **state)
{
	(void)state;
	assert_true(esc_unsafe(0));
	assert_true(esc_unsafe(0x1b));
	assert_true(esc_unsafe(0x7f));
	assert_true(esc_unsafe(0x85));
	assert_true(esc_unsafe(0x202e));
	assert_true(esc_unsafe(0x2066));
	assert_true(esc_unsafe(0x200e));
	assert_true(esc_unsafe(0x061c));
	assert_false(esc_unsafe(' '));
	assert_false(esc_unsafe(0xa0));
	assert_false(esc_unsafe(0xe9));
	assert_false(esc_unsafe(0x2019));
	assert_false(esc_unsafe(0x4e2d));
}

static void expect_fit(const char *in, size_t max, const char *want, size_t want_w)
{
	struct buf b = BUF_INIT;
	size_t w = esc_term_fit(&b, in, max);

	assert_string_equal(buf_str(&b), want);
	assert_int_equal(w, want_w);
	buf_free(&b);
}

static void test_fit(void **state)
{
	(void)state;
	expect_fit("250 2.0.0 Ok", 20, "250 2.0.0 Ok", 12);
	expect_fit("250 2.0.0 Ok", 12, "250 2.0.0 Ok", 12);
	expect_fit("250 2.0.0 Ok", 8, "250 2.0\xe2\x80\xa6", 8);
	/* an escape is never cut in two: \x1b (4 columns) does not fit in 3 */
	expect_fit("ab\033cd", 5, "ab\xe2\x80\xa6", 3);
	expect_fit("ab\033cd", 7, "ab\\x1b\xe2\x80\xa6", 7);
	/* one column per code point */
	expect_fit("C\xc3\xb4te d\xe2\x80\x99Ivoire", 6, "C\xc3\xb4te \xe2\x80\xa6", 6);
	expect_fit("abc", 1, "\xe2\x80\xa6", 1);
	expect_fit("abc", 0, "", 0);
	expect_fit(NULL, 5, "", 0);
}

static void test_html(void **state)
{
	struct buf b = BUF_INIT;
	char *s;

	(void)state;
	esc_html(&b, "<script>alert('x')</script> & \"=HYPERLINK(\"");
	assert_string_equal(buf_str(&b), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
	                                 "&quot;=HYPERLINK(&quot;");
	buf_reset(&b);
	/* controls, bidi overrides and bytes that are not UTF-8 are made visible */
	esc_html(&b, "a\033[2J\xe2\x80\xae\xff\xc3\xa9");
	assert_string_equal(buf_str(&b), "a\\x1b[2J\\u202e\\xff\xc3\xa9");
	buf_free(&b);
	s = esc_html_dup(NULL);
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_term),
	    cmocka_unit_test(test_csv),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_unsafe),
	    cmocka_unit_test(test_fit),
	    cmocka_unit_test(test_html),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
