/*
 * Unit tests of the translation parity check (src/letter/parity.c): the shipped templates
 * pass; an appeal whose fr.md lost an ask, a variable or a link fails, naming both files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/parity.h"

static const char *srcdir(void)
{
	const char *s = getenv("SRCDIR");
	return s && *s ? s : ".";
}

static struct letter *load(const char *path)
{
	char *layout = xasprintf("%s/templates/_layout", srcdir());
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL;

	if (letter_load(path, layout, &l, &d) != EX_OK)
		diags_print(&d, stderr);
	assert_non_null(l);
	diags_free(&d);
	free(layout);
	return l;
}

static void test_shipped_templates_pass(void **state)
{
	static const char *ids[] = {"asp-session", "joint-letter", "amendment-alert",
	                            "security-council", "review-conference"};

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char *path = xasprintf("%s/templates/%s", srcdir(), ids[i]);
		struct letter *l = load(path);
		struct diags d = DIAGS_INIT;
		size_t n = letter_parity(l, DIAG_ERROR, &d);
		if (n)
			diags_print(&d, stderr);
		assert_int_equal(n, 0);
		assert_int_equal(d.errors, 0);
		diags_free(&d);
		letter_free(l);
		free(path);
	}
}

/* A copy of asp-session in a new folder with fr.md changed by edit (from -> to). */
static char *copy_with(const char *from, const char *to)
{
	char tmpl[] = "/tmp/test_parity_XXXXXX";
	char *dir = xstrdup(mkdtemp(tmpl));
	static const char *langs[] = {"en", "fr", "es"};

	for (size_t i = 0; i < 3; i++) {
		char *src = xasprintf("%s/templates/asp-session/%s.md", srcdir(), langs[i]);
		char *dst = xasprintf("%s/%s.md", dir, langs[i]);
		char *text = NULL, *p;
		size_t len;
		FILE *f;
		assert_int_equal(read_file(src, &text, &len), 0);
		f = fopen(dst, "w");
		assert_non_null(f);
		if (i == 1 && (p = strstr(text, from))) {
			fwrite(text, 1, (size_t)(p - text), f);
			fputs(to, f);
			fputs(p + strlen(from), f);
		} else {
			assert_true(i != 1); /* the edit must apply */
			fputs(text, f);
		}
		fclose(f);
		free(text);
		free(src);
		free(dst);
	}
	return dir;
}

static void remove_copy(char *dir)
{
	static const char *langs[] = {"en", "fr", "es"};

	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s.md", dir, langs[i]);
		unlink(p);
		free(p);
	}
	rmdir(dir);
	free(dir);
}

/* Runs the check on asp-session with fr.md edited; expects exactly want problems, the first
 * saying msg, at level. */
static void expect(const char *from, const char *to, enum diag_level level, size_t want,
                   const char *msg)
{
	char *dir = copy_with(from, to);
	struct letter *l = load(dir);
	struct diags d = DIAGS_INIT;
	size_t n = letter_parity(l, level, &d);

	if (n != want)
		diags_print(&d, stderr);
	assert_int_equal(n, want);
	assert_int_equal(level == DIAG_ERROR ? d.errors : d.warnings, want);
	assert_true(d.n >= 1);
	assert_string_equal(d.v[0].msg, msg);
	assert_non_null(strstr(d.v[0].file, "/fr.md"));
	diags_free(&d);
	letter_free(l);
	remove_copy(dir);
}

static void test_lost_ask_fails(void **state)
{
	(void)state;
	/* the French version lost its seventh ask (cooperation) */
	expect("- L'engagement en faveur d'une **coopération solide**", "Et l'engagement en faveur",
	       DIAG_ERROR, 1, "en.md has 8 bulleted asks, fr.md has 7");
	/* --allow-divergent: the same, as a warning */
	expect("- L'engagement en faveur d'une **coopération solide**", "Et l'engagement en faveur",
	       DIAG_WARNING, 1, "en.md has 8 bulleted asks, fr.md has 7");
}

static void test_lost_variable_and_link(void **state)
{
	(void)state;
	expect("{{venue_fr}}", "au Siège", DIAG_ERROR, 1,
	       "en.md uses the name 'venue', fr.md does not");
	expect("**Accord sur les privilèges et immunités de la CPI (APIC)**",
	       "[Accord sur les privilèges et immunités de la CPI](https://example.org/apic)",
	       DIAG_ERROR, 1, "fr.md uses the link 'https://example.org/apic', en.md does not");
	/* a lost paragraph */
	expect("\n\n{{anniversary_fr}} après son adoption",
	       "\n{{anniversary_fr}} après son adoption", DIAG_ERROR, 1,
	       "en.md has 5 paragraphs, fr.md has 4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shipped_templates_pass),
	    cmocka_unit_test(test_lost_ask_fails),
	    cmocka_unit_test(test_lost_variable_and_link),
	};
	return cmocka_run_group_tests_name("parity", tests, NULL, NULL);
}
