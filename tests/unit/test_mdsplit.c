/*
 * Unit tests of markdown_splits_at() (src/letter/markdown.c): wherever it allows a cut, the
 * two halves rendered apart give what the whole gives (HTML, plain text, renumbering), as
 * campaign/message.c relies on when it renders a letter's common end once. And
 * plaintext_and_html() gives what its two halves do.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "letter/markdown.h"
#include "letter/plaintext.h"

static const char *const docs[] = {
    /* an inside address, a salutation, then the same text for everyone */
    "REF CICC/x/AFG\n\nThe Hague, 1 May 2024\n\nH.E. Someone  \nMission  \nNew York\n\n"
    "Your Excellency,\n\nI am honored to write to you on behalf of the Coalition, a long "
    "paragraph that wraps in the text part at seventy-two columns and gets soft breaks.\n\n"
    "- The **centrality of victims**;\n- a second ask\n\nSincere regards,\n\nMelinda Reed  \n"
    "Director\n",
    /* lists on both sides of a cut, loose and tight, ordered ones renumbered */
    "Dear A,\n\n1. one\n1. two\n\nConstant text.\n\n3. three\n3. four\n\n- x\n\n- y loose\n\n"
    "Closing *emph* and [a link](https://example.org).\n",
    "- item one\n- item two\n\nText after a list.\n\n- another\n\n  second paragraph\n\n"
    "Éléments non ASCII.\n\nEnd with blanks   \n",
    "1. one\n\n2. two loose\n\nAfter a loose list.\n\n5. five\n9. nine\n\nLast.\n",
    /* a list item's indented continuation after an empty line: no cut inside it */
    "- a\n\n    code in item\n\nText.\n\n> quote\n\nMore text.\n",
    "# Heading\n\nSetext\n======\n\nPara then\n---\n\n* star\n\n  indented\n\n"
    "Ending text with <https://example.org> and &amp; and \\* escape.\n\nLine  \nbreak\n",
    /* blocks that run past empty lines: no cut below them */
    "```\nfenced\n\nStill fenced.\n```\n\nAfter the fence.\n\nAnd more.\n",
    "<!-- comment\n\nInside the comment -->\n\nAfter the comment.\n\nMore.\n",
    "<pre>\n\nInside pre\n</pre>\n\nAfter pre.\n",
    /* a link reference definition anywhere: no cut at all */
    "See [ref].\n\nText.\n\n[ref]: https://example.org\n\nMore text.\n",
    "Text.\n\nSee [ref] here.\n\n[ref]: https://example.org\n",
    "",
    "One paragraph only.\n",
};

static char *cat(const char *a, const char *b, const char *sep)
{
	struct buf x = BUF_INIT;

	buf_adds(&x, a);
	if (sep && *a && *b)
		buf_adds(&x, sep);
	buf_adds(&x, b);
	return buf_detach(&x);
}

static void check_cut(const char *md, size_t len, size_t at)
{
	char *head = strndup(md, at), *tail = strndup(md + at, len - at);
	char *hw = markdown_to_html(md, len), *hh = markdown_to_html(head, at),
	     *ht = markdown_to_html(tail, len - at);
	char *tw = plaintext_from_markdown(md, len), *th = plaintext_from_markdown(head, at),
	     *tt = plaintext_from_markdown(tail, len - at);
	char *rw = markdown_renumber(md), *rh = markdown_renumber(head),
	     *rt = markdown_renumber(tail);
	char *h2 = cat(hh, ht, NULL), *t2 = cat(th, tt, "\n"), *r2 = cat(rh, rt, NULL);

	if (strcmp(hw, h2) || strcmp(tw, t2) || strcmp(rw, r2))
		fail_msg("cut at %zu of:\n%s\nhtml %d text %d renumber %d", at, md, !strcmp(hw, h2),
		         !strcmp(tw, t2), !strcmp(rw, r2));
	free(head), free(tail), free(hw), free(hh), free(ht), free(tw), free(th), free(tt);
	free(rw), free(rh), free(rt), free(h2), free(t2), free(r2);
}

static void test_cuts_render_as_whole(void **state)
{
	size_t cuts = 0;

	(void)state;
	for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		size_t len = strlen(docs[d]);

		for (size_t at = 0; at <= len; at++) {
			if (!markdown_splits_at(docs[d], len, at))
				continue;
			check_cut(docs[d], len, at);
			cuts++;
		}
	}
	assert_true(cuts >= 15);
}

static void test_no_cut(void **state)
{
	const char *fence = docs[6], *comment = docs[7], *ref = docs[9];

	(void)state;
	/* inside or below a fence or an HTML comment, never */
	assert_false(markdown_splits_at(fence, strlen(fence), strstr(fence, "Still") - fence));
	assert_false(markdown_splits_at(fence, strlen(fence), strstr(fence, "After") - fence));
	assert_false(
	    markdown_splits_at(comment, strlen(comment), strstr(comment, "Inside") - comment));
	for (size_t at = 0; at <= strlen(ref); at++)
		assert_false(markdown_splits_at(ref, strlen(ref), at));
	/* not before a list item, an indented line, a heading; not without an empty line */
	assert_false(markdown_splits_at("a\n\n- b\n", 7, 3));
	assert_false(markdown_splits_at("a\n\n  b\n", 7, 3));
	assert_false(markdown_splits_at("a\n\n# b\n", 7, 3));
	assert_false(markdown_splits_at("a\nb\n", 4, 2));
	assert_true(markdown_splits_at("a\n\nb\n", 5, 3));
}

static void test_both_from_one_parse(void **state)
{
	(void)state;
	for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		size_t len = strlen(docs[d]);
		char *html, *text = plaintext_and_html(docs[d], len, &html);
		char *t1 = plaintext_from_markdown(docs[d], len),
		     *h1 = markdown_to_html(docs[d], len);

		assert_string_equal(text, t1);
		assert_string_equal(html, h1);
		free(text), free(html), free(t1), free(h1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cuts_render_as_whole),
	    cmocka_unit_test(test_no_cut),
	    cmocka_unit_test(test_both_from_one_parse),
	};
	return cmocka_run_group_tests_name("mdsplit", tests, NULL, NULL);
}
