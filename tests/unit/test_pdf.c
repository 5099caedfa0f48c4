/* src/pdf: a letter renders to a PDF, the same bytes twice; the letterhead's settings are
 * checked (paper, margins, font, images) with errors naming the key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "pdf/pdf.h"

static const char letter[] =
    "Ref. CICC/test/KEN\n\nThe Hague, 20 November 2025\n\n"
    "Your Excellency,\n\nA paragraph with *emphasis* and **strength** "
    "and a [link](https://example.org).\n\n1. First ask;\n1. Second ask.\n\n"
    "- a bullet\n\n# A heading\n\nSincerely,\n\nJane Doe  \nDirector\n";

static void render(const struct pdf_style *st, struct buf *out)
{
	struct pdf_meta meta = {"Title", "Author",   "Subject",         "test, KEN, en",
	                        "en",    1763640000, "20 November 2025"};
	char *err = NULL;

	assert_int_equal(pdf_render(st, letter, strlen(letter), &meta, out, &err), EX_OK);
	assert_null(err);
}

static void test_render_twice(void **state)
{
	struct pdf_letterhead lh = {0};
	struct pdf_style *st = NULL;
	struct buf a = BUF_INIT, b = BUF_INIT;
	char *err = NULL;

	(void)state;
	lh.name = "Coalition";
	lh.address = "Street 1; City";
	lh.footer = "footer";
	assert_int_equal(pdf_style_new(&lh, &st, &err), EX_OK);
	render(st, &a);
	render(st, &b);
	assert_true(a.len > 1000);
	assert_memory_equal(a.data, "%PDF-1.5", 8);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_non_null(memmem(a.data, a.len, "/Title (Title)", 14));
	buf_free(&a);
	buf_free(&b);
	pdf_style_free(st);
}

static void expect_error(const struct pdf_letterhead *lh, int code, const char *what)
{
	struct pdf_style *st = NULL;
	char *err = NULL;

	assert_int_equal(pdf_style_new(lh, &st, &err), code);
	assert_null(st);
	assert_non_null(err);
	if (!strstr(err, what))
		fail_msg("'%s' does not name '%s'", err, what);
	free(err);
}

static void test_bad_settings(void **state)
{
	struct pdf_letterhead lh = {0};

	(void)state;
	lh.paper = "A5";
	expect_error(&lh, EX_CONFIG, "paper 'A5'");
	lh.paper = "Letter";
	lh.margins = "10 10";
	expect_error(&lh, EX_CONFIG, "margins '10 10'");
	lh.margins = "abc";
	expect_error(&lh, EX_CONFIG, "margins 'abc'");
	lh.margins = "20 20 20 20";
	lh.font = "No Such Font Family";
	expect_error(&lh, EX_CONFIG, "font 'No Such Font Family'");
	lh.font = NULL;
	lh.logo = "/nonexistent/logo.png";
	expect_error(&lh, EX_NOINPUT, "logo");
	{
		char path[] = "/tmp/demarche-test-pdf-XXXXXX";
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "not an image", 12), 12);
		close(fd);
		lh.logo = path;
		expect_error(&lh, EX_DATAERR, "neither .png nor .svg");
		unlink(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_twice),
	    cmocka_unit_test(test_bad_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
