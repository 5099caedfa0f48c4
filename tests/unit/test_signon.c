/*
 * Unit tests of joint letters' sign-on sheets and params files (src/letter/signon.c): 120
 * rows with two duplicates give 118 signatories, sorted, the duplicates reported by row;
 * near-duplicates are reported and kept; the params skeleton reads back as the template's
 * params with the original letter's values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "roster/signon.h"
#include "letter/params.h"

static const char *srcdir(void)
{
	const char *s = getenv("SRCDIR");
	return s && *s ? s : ".";
}

static char *write_tmp(const char *text)
{
	char path[] = "/tmp/test_signon_XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return xstrdup(path);
}

/* The problems whose message holds what; row is the first one's row. */
static size_t with(const struct diags *d, const char *what, long *row)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, what)) {
			if (!n && row)
				*row = d->v[i].line;
			n++;
		}
	return n;
}

static void test_120_rows_two_duplicates(void **state)
{
	static const char *const words[] = {"Justice", "Rights",  "Peace",  "Law",
	                                    "Women",   "Youth",   "Truth",  "Action",
	                                    "Memory",  "Dignity", "Voices", "Hope"};
	static const char *const kinds[] = {
	    "Centre for",   "Coalition for", "Network for",    "Institute of", "Initiative for",
	    "Alliance for", "Forum for",     "Foundation for", "League for",   "Society for"};
	char buf[16384] = "organisation,country\n";
	struct diags d = DIAGS_INIT;
	json_t *orgs = NULL;
	char *path;
	long row = 0;
	size_t rows = 0;

	(void)state;
	/* 118 distinct names, each in its own country so that none is near another */
	for (size_t k = 0; k < 10 && rows < 118; k++)
		for (size_t w = 0; w < 12 && rows < 118; w++, rows++)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
			         "%s %s %s,Country %zu\n", kinds[k], words[w],
			         w % 2 ? "Now" : "International", rows);
	/* two duplicates: one with case and spacing changed, one with a leading "The" */
	strcat(buf, "coalition for  JUSTICE international,Country 12\n");
	strcat(buf, "The Centre for Peace International,Country 2\n");
	path = write_tmp(buf);
	assert_int_equal(signon_read(path, &orgs, &d), EX_OK);
	if (d.warnings != 2)
		diags_print(&d, stderr);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 2);
	assert_int_equal(json_array_size(orgs), 118);
	/* each duplicate named by its row (the header is line 1: data rows 2..121) */
	assert_int_equal(with(&d, "is a duplicate of row 14", &row), 1);
	assert_int_equal(row, 120);
	assert_int_equal(with(&d, "is a duplicate of row 4", &row), 1);
	assert_int_equal(row, 121);
	/* sorted as a reader looks names up; the first kept */
	for (size_t i = 1; i < json_array_size(orgs); i++)
		assert_true(strcasecmp(json_string_value(json_array_get(orgs, i - 1)),
		                       json_string_value(json_array_get(orgs, i))) < 0);
	assert_string_equal(json_string_value(json_array_get(orgs, 0)),
	                    "Alliance for Action Now (Country 67)");
	json_decref(orgs);
	diags_free(&d);
	unlink(path);
	free(path);
}

static void test_near_duplicates_and_errors(void **state)
{
	struct diags d = DIAGS_INIT;
	json_t *orgs = NULL;
	char *path;

	(void)state;
	path = write_tmp("organization,country\n"
	                 "École de la Paix,France\n"
	                 "Womens Initiatives for Gender Justice,\n"
	                 "Women's Initiative for Gender Justice,\n"
	                 "Civil Rights Defenders (CRD),\n"
	                 "Civil Rights Defenders,\n"
	                 "Ecole de la paix,France\n");
	assert_int_equal(signon_read(path, &orgs, &d), EX_OK);
	assert_int_equal(json_array_size(orgs), 5); /* the second École left out */
	assert_int_equal(with(&d, "is a duplicate of row 2", NULL), 1);
	assert_int_equal(with(&d, "one organisation twice? both kept", NULL), 2);
	assert_string_equal(json_string_value(json_array_get(orgs, 2)),
	                    "École de la Paix (France)");
	json_decref(orgs);
	diags_free(&d);
	unlink(path);
	free(path);

	path = write_tmp("name,country\nA,B\n");
	assert_int_equal(signon_read(path, &orgs, &d), EX_DATAERR);
	assert_null(orgs);
	assert_int_equal(with(&d, "missing column", NULL), 1);
	diags_free(&d);
	unlink(path);
	free(path);

	path = write_tmp("organisation,country\nA,X\n ,Y\n");
	assert_int_equal(signon_read(path, &orgs, &d), EX_DATAERR);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.v[0].line, 3);
	assert_string_equal(d.v[0].column, "organisation");
	diags_free(&d);
	unlink(path);
	free(path);
}

static void test_params_skeleton_round_trip(void **state)
{
	char *tpl = xasprintf("%s/templates/asp-session", srcdir());
	char *layout = xasprintf("%s/templates/_layout", srcdir());
	char *orig = xasprintf("%s/original.json", tpl);
	char path[] = "/tmp/test_signon_params_XXXXXX";
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL;
	json_t *example, *back;
	json_error_t err;
	size_t np;
	const char *const *params;
	FILE *f;
	int fd;

	(void)state;
	assert_int_equal(letter_load(tpl, layout, &l, &d), EX_OK);
	example = json_load_file(orig, 0, &err);
	assert_non_null(example);
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	assert_non_null(f);
	params_skeleton(l, "asp-session", example, f);
	fclose(f);
	back = params_load(path, &err);
	if (!back)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	params = letter_params(l, &np);
	assert_int_equal(json_object_size(back), np);
	for (size_t i = 0; i < np; i++)
		assert_true(json_equal(json_object_get(back, params[i]),
		                       json_object_get(example, params[i])));
	json_decref(back);
	/* a syntax error is reported at the file's own line, comments counted */
	f = fopen(path, "w");
	fputs("// one\n// two\n{\n  \"a\": 1,\n}\n", f);
	fclose(f);
	assert_null(params_load(path, &err));
	assert_int_equal(err.line, 5);
	unlink(path);
	assert_null(params_load(path, &err));
	json_decref(example);
	letter_free(l);
	diags_free(&d);
	free(tpl);
	free(layout);
	free(orig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_120_rows_two_duplicates),
	    cmocka_unit_test(test_near_duplicates_and_errors),
	    cmocka_unit_test(test_params_skeleton_round_trip),
	};
	return cmocka_run_group_tests_name("signon", tests, NULL, NULL);
}
