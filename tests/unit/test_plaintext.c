/* Unit tests of the text/plain part rendered from cmark's tree (src/letter/plaintext.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "letter/plaintext.h"

static void expect(const char *md, const char *want)
{
	char *got = plaintext_from_markdown(md, strlen(md));

	if (strcmp(got, want))
		fail_msg("for:\n%s\nwant:\n%s\ngot:\n%s", md, want, got);
	free(got);
}

static void test_markers_dropped(void **state)
{
	(void)state;
	expect("The **centrality of victims** and *complementing* __courts__ _x_.\n",
	       "The centrality of victims and complementing courts x.\n");
	expect("# Heading\n\nText with a \\* star and `code`.\n",
	       "Heading\n\nText with a * star and code.\n");
	expect("See [the Statute](https://example.org/rs) and <https://example.org>.\n",
	       "See the Statute <https://example.org/rs> and https://example.org.\n");
	expect("Raw <b>html</b> dropped.\n\n<div>block</div>\n\nEnd.\n",
	       "Raw html dropped.\n\nEnd.\n");
}

static void test_lists(void **state)
{
	(void)state;
	/* "1." for every item, as the templates write conditional asks: numbered in sequence */
	expect("Asks:\n\n1. one\n1. two\n1. three\n", "Asks:\n\n1. one\n2. two\n3. three\n");
	expect("3. c\n4. d\n", "3. c\n4. d\n");
	expect("- a\n- b\n", "- a\n- b\n");
	/* a loose list keeps its empty lines; a second paragraph is indented under the text */
	expect("1. a\n\n   more\n\n2. b\n", "1. a\n\n   more\n\n2. b\n");
	/* a long item wraps under its text, not under its number */
	expect("10. aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo\n",
	       "10. aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm\n"
	       "    nnnn oooo\n");
}

static void test_lines_and_wrapping(void **state)
{
	char *got;
	const char *long_para =
	    "Recognizing the critical role of the ICC in the Rome Statute system, States Parties "
	    "should seize every opportunity, including but not limited to the ASP General Debate, "
	    "thematic plenary sessions and negotiations on resolutions, to reaffirm, inter alia:\n";

	(void)state;
	/* hard breaks (two trailing spaces): one line each, the spaces gone */
	expect("Melinda Reed  \nDirector  \nCICC Secretariat\n",
	       "Melinda Reed\nDirector\nCICC Secretariat\n");
	/* a signatory too long for one line continues indented by two */
	expect(
	    "ACAT  \nCivil Association Democracia Global - Movimiento por la Unión Sudamericana y "
	    "el Parlamento Mundial  \nWITNESS\n",
	    "ACAT\nCivil Association Democracia Global - Movimiento por la Unión\n"
	    "  Sudamericana y el Parlamento Mundial\nWITNESS\n");
	/* no empty line first, one empty line between blocks however many the source has */
	expect("\n\n\nRef. X\n\n\n\n\nDate\n", "Ref. X\n\nDate\n");
	expect("", "");
	got = plaintext_from_markdown(long_para, strlen(long_para));
	for (char *l = got; *l;) {
		size_t n = strcspn(l, "\n"), cols = 0;
		for (size_t i = 0; i < n; i++)
			cols += ((unsigned char)l[i] & 0xC0) != 0x80;
		assert_true(cols <= PLAINTEXT_WIDTH);
		assert_true(n > 0 && l[n - 1] != ' ');
		l += n + (l[n] == '\n');
	}
	assert_non_null(strstr(got, "Recognizing the critical role"));
	free(got);
	/* a word longer than the width is not broken */
	expect(
	    "short "
	    "https://example.org/a/very/long/path/that/goes/on/and/on/and/on/and/on/for/ever/x\n",
	    "short\nhttps://example.org/a/very/long/path/that/goes/on/and/on/and/on/and/on/for/"
	    "ever/x\n");
	/* UTF-8 counts as characters: 36 two-byte letters and a space fit on one line */
	expect("éééééééééééééééééé éééééééééééééééééé\n",
	       "éééééééééééééééééé éééééééééééééééééé\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_markers_dropped),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_lines_and_wrapping),
	};
	return cmocka_run_group_tests_name("plaintext", tests, NULL, NULL);
}
