/* Unit tests for the roster module: a corpus of bad rosters, good edge cases, addr-spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "base/address.h"
#include "roster/csvread.h"
#include "letter/letter.h"
#include "roster/roster.h"

static const char *datadir(void)
{
	const char *t = getenv("TESTDATA");
	return t ? t : "tests/data";
}

static char *data(const char *rel)
{
	return xasprintf("%s/roster/%s", datadir(), rel);
}

/* What one pass saw. */
struct seen {
	size_t n;
	long lines[16];
	char keys[16][32];
	json_t *ctx[16];
	int stop_after; /* 0: never */
};

static int collect(void *user, const struct roster_row *row)
{
	struct seen *s = user;

	if (s->n < 16) {
		s->lines[s->n] = roster_row_line(row);
		snprintf(s->keys[s->n], sizeof s->keys[0], "%s", roster_key(row));
		s->ctx[s->n] = roster_context(row);
	}
	s->n++;
	if (s->stop_after && (int)s->n == s->stop_after)
		return 42;
	return 0;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n && i < 16; i++)
		json_decref(s->ctx[i]);
	memset(s, 0, sizeof(*s));
}

/* Opens and reads one roster; returns the first non-OK code. */
static int run(struct roster_opts *o, struct diags *d, struct seen *s, struct roster **keep)
{
	struct roster *r = NULL;
	int rc = roster_open(o, &r, d);

	if (rc == EX_OK)
		rc = roster_each(r, collect, s, d);
	if (keep)
		*keep = r;
	else
		roster_free(r);
	return rc;
}

static void dump(const struct diags *d)
{
	diags_print(d, stderr);
}

struct bad_case {
	const char *file;  /* under roster/ */
	const char *join1; /* under roster/, or NULL */
	const char *join2;
	const char *where;
	const char *only;
	const char *diag_file; /* basename the problem must name; NULL: file */
	long row;              /* -1: any */
	const char *col;       /* NULL: no column */
	const char *reason;    /* substring of the message */
	const char *reason2;   /* a second substring, or NULL */
};

static const struct bad_case bad_cases[] = {
    {"bad/01-quote-in-unquoted-field.csv", 0, 0, 0, 0, 0, 3, "state", "malformed quoting", 0},
    {"bad/02-text-after-closing-quote.csv", 0, 0, 0, 0, 0, 3, "state", "malformed quoting", 0},
    {"bad/03-unclosed-quote.csv", 0, 0, 0, 0, 0, 3, "state", "not closed", 0},
    {"bad/04-bom-invalid-utf8.csv", 0, 0, 0, 0, 0, 2, "state", "invalid UTF-8", "0xF4"},
    {"bad/05-overlong-utf8.csv", 0, 0, 0, 0, 0, 2, "name", "invalid UTF-8", "0xC0"},
    {"bad/06-crlf-injection-name.csv", 0, 0, 0, 0, 0, 2, "name", "CR/LF injection", 0},
    {"bad/07-lf-injection-email.csv", 0, 0, 0, 0, 0, 2, "email", "CR/LF injection", 0},
    {"bad/08-nul-byte.csv", 0, 0, 0, 0, 0, 2, "state", "NUL byte", 0},
    {"bad/09-duplicate-key.csv", 0, 0, 0, 0, 0, 3, "iso3", "duplicate key 'KEN'", "row 2"},
    {"bad/10-duplicate-key-case.csv", 0, 0, 0, 0, 0, 3, "iso3", "duplicate key 'ken'", "row 2"},
    {"bad/11-duplicate-email.csv", 0, 0, 0, 0, 0, 3, "email", "duplicate address", "row 2"},
    {"bad/12-duplicate-cc-of-other-email.csv", 0, 0, 0, 0, 0, 3, "cc", "duplicate address",
     "row 2"},
    {"bad/13-display-name.csv", 0, 0, 0, 0, 0, 2, "email", "display name", 0},
    {"bad/14-no-at.csv", 0, 0, 0, 0, 0, 2, "email", "no '@'", 0},
    {"bad/15-two-ats.csv", 0, 0, 0, 0, 0, 2, "email", "more than one '@'", 0},
    {"bad/16-double-dot.csv", 0, 0, 0, 0, 0, 2, "email", "two dots in a row", 0},
    {"bad/17-local-ends-with-dot.csv", 0, 0, 0, 0, 0, 2, "email", "local part ends with a dot", 0},
    {"bad/18-space-in-address.csv", 0, 0, 0, 0, 0, 2, "email", "space inside the address", 0},
    {"bad/19-non-ascii-address.csv", 0, 0, 0, 0, 0, 2, "email", "non-ASCII", "SMTPUTF8"},
    {"bad/20-bad-cc-in-list.csv", 0, 0, 0, 0, 0, 2, "cc", "'ken-legal': no '@'", 0},
    {"bad/21-empty-email.csv", 0, 0, 0, 0, 0, 2, "email", "empty address", 0},
    {"bad/22-empty-key.csv", 0, 0, 0, 0, 0, 2, "iso3", "empty key", 0},
    {"bad/23-missing-email-column.csv", 0, 0, 0, 0, 0, 1, "email", "missing column", 0},
    {"bad/24-missing-key-column.csv", 0, 0, 0, 0, 0, 1, "iso3", "missing column", "--key"},
    {"bad/25-ragged-row.csv", 0, 0, 0, 0, 0, 3, NULL, "record has 7 fields, the header has 6", 0},
    {"bad/26-empty-file.csv", 0, 0, 0, 0, 0, 0, NULL, "empty file", 0},
    {"bad/27-header-only.csv", 0, 0, 0, 0, 0, 0, NULL, "no rows after the header", 0},
    {"bad/28-join-conflict-roster.csv", "tables/parties.csv", 0, 0, 0, 0, 2, "apic_party",
     "defined by both", "28-join-conflict-roster.csv and"},
    {"bad/29-comment-in-address.csv", 0, 0, 0, 0, 0, 2, "email", "comments", 0},
    {"bad/30-local-part-too-long.csv", 0, 0, 0, 0, 0, 2, "email", "longer than 64", "RFC 5321"},
    {"bad/31-two-addresses-in-email.csv", 0, 0, 0, 0, 0, 2, "email", "one address only", 0},
    {"bad/32-duplicate-column-name.csv", 0, 0, 0, 0, 0, 1, "email", "column named twice", 0},
    {"bad/33-cc-repeats-own-email.csv", 0, 0, 0, 0, 0, 2, "cc", "appears twice in this row", 0},
    {"bad/34-unclosed-domain-literal.csv", 0, 0, 0, 0, 0, 2, "email", "domain literal not closed",
     0},
    {"bad/35-domain-starts-with-dot.csv", 0, 0, 0, 0, 0, 2, "email", "domain starts with a dot", 0},
    /* Problems of the options, on a good roster. */
    {"good/roster.csv", "tables/parties.csv", "tables/apic.csv", 0, 0, "roster.csv", 2,
     "apic_party", "defined by both", "parties.csv and"},
    {"good/roster.csv", 0, 0, "continent=Africa", 0, "roster.csv", 0, "continent",
     "--where names a column", 0},
    {"good/roster.csv", 0, 0, 0, "KEN,XYZ", "roster.csv", 0, "iso3", "no row has the key 'XYZ'", 0},
    {"good/roster.csv", "tables/dup-values.csv", 0, 0, 0, "dup-values.csv", 4, "iso3",
     "also in row 2", 0},
    {"bad/24-missing-key-column.csv", "tables/apic.csv", 0, 0, 0, "24-missing-key-column.csv", 1,
     "iso3", "join column of", "apic.csv missing from the roster"},
    {"good/roster.csv", "tables/apic.csv:state", 0, 0, 0, "apic.csv", 1, "state",
     "join column missing from this table", 0},
};

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* 1 when d holds an error naming file, row, column and reason. */
static int has_error(const struct diags *d, const char *file, long row, const char *col,
                     const char *reason, const char *reason2)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag *g = &d->v[i];
		if (g->level != DIAG_ERROR || !g->file || strcmp(base(g->file), file))
			continue;
		if (row >= 0 && g->line != row)
			continue;
		if (col ? !g->column || strcmp(g->column, col) : g->column != NULL)
			continue;
		if (!strstr(g->msg, reason) || (reason2 && !strstr(g->msg, reason2)))
			continue;
		return 1;
	}
	return 0;
}

static void test_bad_corpus(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char *path = data(c->file), *j1 = c->join1 ? data(c->join1) : NULL;
		char *j2 = c->join2 ? data(c->join2) : NULL;
		const char *joins[3] = {j1, j2, NULL}, *wheres[2] = {c->where, NULL};
		const char *only[2] = {c->only, NULL};
		struct roster_opts o = {
		    .path = path, .joins = joins, .wheres = wheres, .only = only};
		struct diags d = DIAGS_INIT;
		struct seen s = {0};
		int rc = run(&o, &d, &s, NULL);
		int ok = has_error(&d, c->diag_file ? c->diag_file : base(c->file), c->row, c->col,
		                   c->reason, c->reason2);

		if (rc != EX_DATAERR || !ok) {
			fprintf(stderr,
			        "case %s: rc %d, expected %s row %ld column %s '%s'; got:\n",
			        c->file, rc, c->diag_file ? c->diag_file : base(c->file), c->row,
			        c->col ? c->col : "(none)", c->reason);
			dump(&d);
		}
		assert_int_equal(rc, EX_DATAERR);
		assert_true(ok);
		seen_free(&s);
		diags_free(&d);
		free(path);
		free(j1);
		free(j2);
	}
}

/* A field of 10 MB (made here, not shipped) stops the reading with a clear error. */
static void test_huge_field(void **state)
{
	char path[] = "/tmp/demarche-roster-huge-XXXXXX";
	int fd = mkstemp(path);
	FILE *fp;
	char *big = xmalloc(1 << 20);
	struct roster_opts o = {.path = path};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};
	int rc;

	(void)state;
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	memset(big, 'x', 1 << 20);
	fputs("iso3,state,email,cc,language,name\nKEN,Kenya,ken@missions.example,,en,\"", fp);
	for (int i = 0; i < 10; i++)
		fwrite(big, 1, 1 << 20, fp);
	fputs("\"\nUGA,Uganda,uga@missions.example,,en,B\n", fp);
	fclose(fp);
	rc = run(&o, &d, &s, NULL);
	if (!has_error(&d, base(path), 2, "name", "field longer than 65536 bytes", NULL))
		dump(&d);
	assert_int_equal(rc, EX_DATAERR);
	assert_true(has_error(&d, base(path), 2, "name", "field longer than 65536 bytes", NULL));
	assert_int_equal(s.n, 0);
	unlink(path);
	free(big);
	diags_free(&d);
}

/* Writes text to a new temp file; returns its path (the caller unlinks and frees it). */
static char *temp_csv(const char *text)
{
	char *path = xstrdup("/tmp/demarche-roster-limit-XXXXXX");
	int fd = mkstemp(path);
	FILE *fp = fdopen(fd, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* More rows than the limit (lowered here from CSVR_ROWS_MAX) stop with an error naming it. */
static void test_row_limit(void **state)
{
	char *path = temp_csv("iso3,state,email\nKEN,Kenya,ken@missions.example\n"
	                      "UGA,Uganda,uga@missions.example\nCIV,Ivory,civ@missions.example\n");
	struct roster_opts o = {.path = path};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(CSVR_ROWS_MAX, 1000000);
	csvr_max_rows = 3;
	assert_int_equal(run(&o, &d, &s, NULL), EX_OK);
	assert_int_equal(s.n, 3);
	seen_free(&s);
	diags_free(&d);
	csvr_max_rows = 2;
	assert_int_equal(run(&o, &d, &s, NULL), EX_DATAERR);
	if (!has_error(&d, base(path), 4, NULL, "more than 2 rows", NULL))
		dump(&d);
	assert_true(has_error(&d, base(path), 4, NULL, "more than 2 rows", NULL));
	csvr_max_rows = CSVR_ROWS_MAX;
	seen_free(&s);
	diags_free(&d);
	unlink(path);
	free(path);
}

/* A record of more than CSVR_COLUMNS_MAX fields stops the reading (memory per record). */
static void test_column_limit(void **state)
{
	struct buf b = BUF_INIT;
	struct diags d = DIAGS_INIT;
	struct seen s = {0};
	struct roster_opts o = {0};
	char *path;

	(void)state;
	buf_adds(&b, "iso3,state,email\nKEN,Kenya,ken@missions.example");
	for (int i = 0; i < CSVR_COLUMNS_MAX; i++)
		buf_addc(&b, ',');
	buf_adds(&b, "\nUGA,Uganda,uga@missions.example\n");
	path = temp_csv(b.data);
	o.path = path;
	assert_int_equal(run(&o, &d, &s, NULL), EX_DATAERR);
	assert_true(has_error(&d, base(path), 2, NULL, "more than 1024 fields", NULL));
	assert_int_equal(s.n, 0);
	diags_free(&d);
	buf_free(&b);
	unlink(path);
	free(path);
}

/* A file over CSVR_SIZE_MAX (sparse: no disk used) is refused before it is read. */
static void test_size_limit(void **state)
{
	char *path = temp_csv("iso3,state,email\nKEN,Kenya,ken@missions.example\n");
	struct roster_opts o = {.path = path};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(truncate(path, CSVR_SIZE_MAX + 1), 0);
	assert_int_equal(run(&o, &d, &s, NULL), EX_DATAERR);
	if (!has_error(&d, base(path), 0, NULL, "over the 1073741824 byte limit", NULL))
		dump(&d);
	assert_true(has_error(&d, base(path), 0, NULL, "over the 1073741824 byte limit", NULL));
	assert_int_equal(s.n, 0);
	diags_free(&d);
	unlink(path);
	free(path);
}

/*
 * Found by tests/fuzz/fuzz_roster: a lone CR ends a record (old Mac exports) but did not count
 * as a line, so every row of a CR-only file was "line 1".
 */
static void test_cr_line_ends(void **state)
{
	char *path = temp_csv("iso3,state,email\rKEN,Kenya,ken@missions.example\r\n"
	                      "CIV,Ivory,civ@missions.example\rUGA,Uganda,bad\r");
	struct roster_opts o = {.path = path};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(run(&o, &d, &s, NULL), EX_DATAERR);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.lines[0], 2);
	assert_int_equal(s.lines[1], 3);
	if (!has_error(&d, base(path), 4, "email", "", NULL))
		dump(&d);
	assert_true(has_error(&d, base(path), 4, "email", "", NULL));
	seen_free(&s);
	diags_free(&d);
	unlink(path);
	free(path);
}

static void test_missing_files(void **state)
{
	char *good = data("good/roster.csv");
	const char *joins[] = {"/nonexistent/table.csv", NULL};
	struct roster_opts o = {.path = "/nonexistent/roster.csv"};
	struct diags d = DIAGS_INIT;
	struct roster *r = NULL;

	(void)state;
	assert_int_equal(roster_open(&o, &r, &d), EX_NOINPUT);
	assert_null(r);
	assert_true(has_error(&d, "roster.csv", 0, NULL, "cannot open", NULL));
	o.path = good;
	o.joins = joins;
	assert_int_equal(roster_open(&o, &r, &d), EX_NOINPUT);
	assert_true(has_error(&d, "table.csv", 0, NULL, "cannot open", NULL));
	diags_free(&d);
	free(good);
}

static const char *str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Quoted newlines, lines of records after them, joins, booleans, derived salutations. */
static void test_good_roster(void **state)
{
	char *path = data("good/roster.csv"), *tab = data("tables/parties.csv");
	const char *joins[] = {tab, NULL};
	struct roster_opts o = {.path = path, .joins = joins};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};
	struct roster *r;
	const struct roster_stats *st;
	int rc;

	(void)state;
	rc = run(&o, &d, &s, &r);
	dump(&d);
	assert_int_equal(rc, EX_OK);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.lines[0], 2);
	assert_int_equal(s.lines[1], 3);
	assert_int_equal(s.lines[2], 5); /* after UGA's two-line postal address */
	assert_int_equal(s.lines[3], 6);
	assert_string_equal(s.keys[2], "CIV");
	/* KEN: unknown stays a string; en salutation; empty cells are left out. */
	assert_string_equal(str(s.ctx[0], "apic_party"), "unknown");
	assert_string_equal(str(s.ctx[0], "salutation"), "Your Excellency");
	assert_string_equal(str(s.ctx[0], "asp_regional_group"), "African States");
	assert_null(json_object_get(s.ctx[0], "postal_address"));
	assert_string_equal(str(s.ctx[0], "iso3"), "KEN");
	/* UGA: yes is a boolean, the quoted newline survives, no language means en. */
	assert_true(json_is_true(json_object_get(s.ctx[1], "apic_party")));
	assert_string_equal(str(s.ctx[1], "postal_address"), "866 UN Plaza\nNew York");
	assert_string_equal(str(s.ctx[1], "language"), "en");
	assert_null(json_object_get(s.ctx[1], "cc"));
	/* CIV: accents intact, FR matched as fr, no is false. */
	assert_string_equal(str(s.ctx[2], "state"), "Côte d'Ivoire");
	assert_string_equal(str(s.ctx[2], "state_name"), "Côte d'Ivoire");
	assert_string_equal(str(s.ctx[2], "language"), "fr");
	assert_string_equal(str(s.ctx[2], "salutation"), "Excellence");
	assert_true(json_is_false(json_object_get(s.ctx[2], "apic_party")));
	/* ESP: Sr. tells the Spanish salutation. */
	assert_string_equal(str(s.ctx[3], "salutation"), "Excelentísimo Señor");
	st = roster_stats(r);
	assert_int_equal(st->rows, 4);
	assert_int_equal(st->selected, 4);
	assert_int_equal(st->nlangs, 3);
	assert_string_equal(st->langs[0], "en");
	assert_int_equal(st->by_lang[0], 2);
	assert_int_equal(st->by_lang[1], 1);
	assert_int_equal(st->by_lang[2], 1);
	/* A second pass gives the same rows (validate, then work). */
	seen_free(&s);
	assert_int_equal(roster_each(r, collect, &s, &d), EX_OK);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.lines[3], 6);
	assert_int_equal(d.errors, 0);
	seen_free(&s);
	/* A callback's non-zero return stops the pass and comes back. */
	s.stop_after = 2;
	assert_int_equal(roster_each(r, collect, &s, &d), 42);
	assert_int_equal(s.n, 2);
	seen_free(&s);
	roster_free(r);
	diags_free(&d);
	free(path);
	free(tab);
}

/* BOM, CRLF, trimmed mixed-case header, quoted local part, domain literal, unknown lang. */
/* With the appeal's languages: a value it has no version in is an error naming them; with a
 * fallback, a warning and that language (issue 18). */
static void test_appeal_languages(void **state)
{
	static const char *const appeal[] = {"en", "es", "fr", NULL};
	char *path = data("good/bom-crlf.csv");
	struct roster_opts o = {.path = path, .languages = appeal};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(run(&o, &d, &s, NULL), EX_DATAERR);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.v[0].line, 3);
	assert_string_equal(d.v[0].column, "language");
	assert_non_null(strstr(d.v[0].msg, "no 'pt' version; it has en, es, fr"));
	assert_non_null(strstr(d.v[0].msg, "--fallback-language en"));
	seen_free(&s);
	diags_free(&d);

	o.fallback_language = "es";
	memset(&s, 0, sizeof(s));
	assert_int_equal(run(&o, &d, &s, NULL), EX_OK);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1);
	assert_non_null(strstr(d.v[0].msg, "using es (--fallback-language)"));
	assert_string_equal(str(s.ctx[1], "language"), "es");
	seen_free(&s);
	diags_free(&d);

	o.fallback_language = "de"; /* not one of the appeal's */
	memset(&s, 0, sizeof(s));
	assert_int_equal(run(&o, &d, &s, NULL), EX_USAGE);
	seen_free(&s);
	diags_free(&d);
	free(path);
}

static void test_bom_crlf(void **state)
{
	char *path = data("good/bom-crlf.csv");
	struct roster_opts o = {.path = path};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};
	int rc;

	(void)state;
	rc = run(&o, &d, &s, NULL);
	dump(&d);
	assert_int_equal(rc, EX_OK);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1);
	assert_int_equal(d.v[0].line, 3);
	assert_string_equal(d.v[0].column, "language");
	assert_non_null(strstr(d.v[0].msg, "unknown language 'pt'; using en"));
	assert_int_equal(s.n, 4);
	assert_int_equal(s.lines[0], 2);
	assert_int_equal(s.lines[3], 5);
	assert_string_equal(str(s.ctx[0], "state"), "Côte d'Ivoire");
	assert_string_equal(str(s.ctx[1], "state"), "São Tomé and Príncipe");
	assert_string_equal(str(s.ctx[1], "language"), "en");
	assert_string_equal(str(s.ctx[2], "state"), "Korea, Republic of");
	assert_string_equal(str(s.ctx[2], "email"), "\"kor ny\"@missions.example");
	assert_string_equal(str(s.ctx[3], "email"), "mex@[192.0.2.7]");
	assert_string_equal(str(s.ctx[3], "salutation"), "Excelentísima Señora");
	seen_free(&s);
	diags_free(&d);
	free(path);
}

static int exclude_ken(void *user, const char *key)
{
	(*(int *)user)++;
	return !strcmp(key, "KEN");
}

static size_t count_selected(const char *where1, const char *where2, const char *only, int excl)
{
	char *path = data("good/roster.csv"), *tab = data("tables/parties.csv");
	const char *joins[] = {tab, NULL}, *wheres[] = {where1, where2, NULL};
	const char *onlyv[] = {only, NULL};
	int calls = 0;
	struct roster_opts o = {.path = path, .joins = joins, .wheres = wheres, .only = onlyv};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};
	size_t n;

	if (excl) {
		o.exclude = exclude_ken;
		o.exclude_user = &calls;
	}
	assert_int_equal(run(&o, &d, &s, NULL), EX_OK);
	if (excl)
		assert_true(calls > 0);
	n = s.n;
	seen_free(&s);
	diags_free(&d);
	free(path);
	free(tab);
	return n;
}

static void test_filters(void **state)
{
	(void)state;
	assert_int_equal(count_selected(NULL, NULL, NULL, 0), 4);
	assert_int_equal(count_selected("language=fr", NULL, NULL, 0), 1);
	assert_int_equal(count_selected("language!=en", NULL, NULL, 0), 2);
	assert_int_equal(count_selected("asp_regional_group=African States", NULL, NULL, 0), 3);
	assert_int_equal(
	    count_selected("asp_regional_group=African States", "apic_party!=yes", NULL, 0), 2);
	assert_int_equal(count_selected(NULL, NULL, "civ, esp", 0), 2);
	assert_int_equal(count_selected("language=es", NULL, "civ,esp", 0), 1);
	assert_int_equal(count_selected(NULL, NULL, NULL, 1), 3);
}

/* A row whose join value is not in the table is a warning naming the row and the table. */
static void test_unmatched_join(void **state)
{
	char *path = data("good/roster.csv"), *tab = data("tables/apic.csv");
	const char *joins[] = {tab, NULL};
	struct roster_opts o = {.path = path, .joins = joins};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(run(&o, &d, &s, NULL), EX_OK);
	assert_int_equal(d.warnings, 3);
	assert_int_equal(d.v[0].line, 3);
	assert_string_equal(d.v[0].column, "iso3");
	assert_non_null(strstr(d.v[0].msg, "'UGA' is not in"));
	assert_non_null(strstr(d.v[0].msg, "apic.csv"));
	assert_true(json_is_false(json_object_get(s.ctx[0], "apic_party")));
	assert_null(json_object_get(s.ctx[1], "apic_party"));
	seen_free(&s);
	diags_free(&d);
	free(path);
	free(tab);
}

/* With SMTPUTF8 offered, a non-ASCII address is accepted. */
static void test_smtputf8(void **state)
{
	char *path = data("bad/19-non-ascii-address.csv");
	struct roster_opts o = {.path = path, .smtputf8 = 1};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(run(&o, &d, &s, NULL), EX_OK);
	assert_int_equal(s.n, 1);
	seen_free(&s);
	diags_free(&d);
	free(path);
}

/* --key email: a roster of member organisations identified by address. */
static void test_key_email(void **state)
{
	char *path = data("bad/24-missing-key-column.csv");
	struct roster_opts o = {.path = path, .key = "Email"};
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	assert_int_equal(run(&o, &d, &s, NULL), EX_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], "ken@missions.example");
	seen_free(&s);
	diags_free(&d);
	free(path);
}

static void test_salutations(void **state)
{
	(void)state;
	assert_string_equal(roster_salutation("en", "H.E.", "X"), "Your Excellency");
	assert_string_equal(roster_salutation("fr", "S.E. Mme", "X"), "Excellence");
	assert_string_equal(roster_salutation("es", "H.E. Mr.", "X"), "Excelentísimo Señor");
	assert_string_equal(roster_salutation("es", NULL, "Sra. López"), "Excelentísima Señora");
	assert_string_equal(roster_salutation("es", "H.E.", "María López"), "Excelencia");
	assert_null(roster_salutation("pt", "H.E.", "X"));
}

static void test_addr_spec(void **state)
{
	static const char *const valid[] = {
	    "ken@missions.example",
	    "ken.ny@missions.example",
	    "first.last+tag@sub.domain.example",
	    "!#$%&'*+-/=?^_`{|}~@x.example",
	    "\"ken ny\"@missions.example",
	    "\"a\\\"b\"@x.example",
	    "\"a@b\"@x.example",
	    "ken@[192.0.2.1]",
	    "ken@[IPv6:2001:db8::1]",
	    "k@localhost",
	    NULL,
	};
	static const struct {
		const char *a, *why;
	} invalid[] = {
	    {"", "empty address"},
	    {"ken", "no '@'"},
	    {"@missions.example", "empty local part"},
	    {"ken@", "empty domain"},
	    {"ken@@x.example", "more than one '@'"},
	    {"ken@x@y.example", "more than one '@'"},
	    {".ken@x.example", "local part starts with a dot"},
	    {"ken.@x.example", "local part ends with a dot"},
	    {"k..n@x.example", "two dots in a row"},
	    {"ken@x..example", "two dots in a row"},
	    {"ken@x.example.", "domain ends with a dot"},
	    {"ken@.x.example", "domain starts with a dot"},
	    {"Ken <ken@x.example>", "display name"},
	    {"<ken@x.example>", "angle brackets"},
	    {"ken ny@x.example", "space inside"},
	    {" ken@x.example", "space around"},
	    {"ken(c)@x.example", "comments"},
	    {"ken@x(c).example", "comments"},
	    {"k\"en\"@x.example", "misplaced quote"},
	    {"\"ken@x.example", "not closed"},
	    {"\"ken\"x@x.example", "text after the quoted local part"},
	    {"ken@[192.0.2.1", "domain literal not closed"},
	    {"ken@[1[2]", "character not allowed in the domain literal"},
	    {"ken@x,y.example", "character not allowed in the domain"},
	    {"k;n@x.example", "character not allowed in the local part"},
	    {"côte@x.example", "non-ASCII"},
	    {"ken@exämple.example", "non-ASCII"},
	    {"ken@x.example\r\nBcc: y@z", "line break"},
	};
	char longlocal[80], longaddr[300];

	(void)state;
	for (size_t i = 0; valid[i]; i++) {
		const char *why = address_check(valid[i], strlen(valid[i]), 0);
		if (why)
			fprintf(stderr, "'%s' refused: %s\n", valid[i], why);
		assert_null(why);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		const char *why = address_check(invalid[i].a, strlen(invalid[i].a), 0);
		if (!why || !strstr(why, invalid[i].why))
			fprintf(stderr, "'%s': got '%s', expected '%s'\n", invalid[i].a,
			        why ? why : "(valid)", invalid[i].why);
		assert_non_null(why);
		assert_non_null(strstr(why, invalid[i].why));
	}
	assert_null(address_check("côte@exämple.example", strlen("côte@exämple.example"), 1));
	memset(longlocal, 'a', 65);
	strcpy(longlocal + 65, "@x.example");
	assert_non_null(strstr(address_check(longlocal, strlen(longlocal), 0), "64 octets"));
	longlocal[64] = '\0';
	strcat(longlocal, "@x.example");
	assert_null(address_check(longlocal, strlen(longlocal), 0));
	/* 10 + 1 + 250 octets: each part within its limit, the whole too long. */
	memset(longaddr, 'b', sizeof longaddr);
	memset(longaddr, 'a', 10);
	longaddr[10] = '@';
	for (size_t i = 20; i < 261; i += 20)
		longaddr[i] = '.';
	longaddr[261] = '\0';
	assert_non_null(strstr(address_check(longaddr, strlen(longaddr), 0), "254 octets"));
}

struct split_out {
	char items[8][64];
	size_t n;
};

static int split_cb(void *user, const char *s, size_t len)
{
	struct split_out *o = user;
	snprintf(o->items[o->n++], 64, "%.*s", (int)len, s);
	return 0;
}

/* ---- facts tables: three-valued facts, dated membership ---- */

static char *temp_file(const char *suffix, const char *text)
{
	char *path = xasprintf("/tmp/demarche-facts-XXXXXX%s", suffix);
	int fd = mkstemps(path, (int)strlen(suffix));
	FILE *fp = fdopen(fd, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Four States Parties: APIC yes, no, unknown, and an empty cell (row 7 of the file). */
static const char facts_csv[] = "# as_of: 2026-12-02\n"
                                "# facts: apic_party\n"
                                "iso3,state,apic_party,status,instrument_date,withdrawal_"
                                "notified,withdrawal_effective\n"
                                "AAA,Alpha,yes,party,2001-01-01,,\n"
                                "BBB,Beta,no,party,,,\n"
                                "CCC,Gamma,unknown,party,,,\n"
                                "DDD,Delta,,party,,,\n";

static const char facts_roster[] = "iso3,email\n"
                                   "AAA,aaa@missions.example\n"
                                   "BBB,bbb@missions.example\n"
                                   "CCC,ccc@missions.example\n"
                                   "DDD,ddd@missions.example\n";

struct rendered {
	const struct letter *l;
	struct diags *d;
	size_t n;
	char keys[8][8];
	char *text[8];
};

static int render_row(void *user, const struct roster_row *row)
{
	struct rendered *r = user;
	struct letter_out lo = {0};
	json_t *ctx = roster_context(row);

	assert_true(r->n < 8);
	assert_int_equal(letter_render(r->l, NULL, ctx, &lo, r->d), EX_OK);
	snprintf(r->keys[r->n], sizeof r->keys[0], "%s", roster_key(row));
	r->text[r->n++] = xstrdup(lo.text);
	letter_out_free(&lo);
	json_decref(ctx);
	return 0;
}

/*
 * The issue's test: a letter over the four rows. The ask ({{^apic_party}}) appears exactly for
 * no and unknown, the thanks ({{#apic_party}}) exactly for yes, and the empty cell is an error
 * naming the facts file, its row and the column (and that row gets no letter).
 */
static void test_three_valued_facts(void **state)
{
	char *facts = temp_file(".csv", facts_csv);
	char *roster = temp_file(".csv", facts_roster);
	char *letter = temp_file(".md", "Campaign: facts-test\nSubject: facts\n\n"
	                                "{{#apic_party}}THANKS for ratifying{{/apic_party}}\n\n"
	                                "{{^apic_party}}ASK to ratify{{/apic_party}}\n\n"
	                                "status {{apic_party_status}}"
	                                "{{^apic_party_known}} UNCONFIRMED{{/apic_party_known}}\n\n"
	                                "of {{states_parties_count}} parties\n");
	const char *joins[] = {facts, NULL};
	struct roster_opts o = {.path = roster, .joins = joins, .date = "2026-12-02"};
	struct diags d = DIAGS_INIT;
	struct roster *r = NULL;
	struct letter *l = NULL;
	struct rendered out = {0};
	size_t nf;

	(void)state;
	assert_int_equal(letter_load(letter, NULL, &l, &d), EX_OK);
	assert_int_equal(roster_open(&o, &r, &d), EX_OK);
	assert_int_equal(roster_fact_columns(r, &nf)[0] != NULL, 1);
	assert_int_equal(nf, 1);
	assert_string_equal(roster_fact_columns(r, &nf)[0], "apic_party");
	out.l = l;
	out.d = &d;
	assert_int_equal(roster_each(r, render_row, &out, &d), EX_DATAERR);
	if (!has_error(&d, base(facts), 7, "apic_party", "empty cell in a fact column", NULL))
		dump(&d);
	assert_true(
	    has_error(&d, base(facts), 7, "apic_party", "empty cell in a fact column", "row 5 of"));
	assert_int_equal(d.errors, 1);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.keys[0], "AAA");
	assert_non_null(strstr(out.text[0], "THANKS"));
	assert_null(strstr(out.text[0], "ASK"));
	assert_non_null(strstr(out.text[0], "status yes\n"));
	assert_string_equal(out.keys[1], "BBB");
	assert_null(strstr(out.text[1], "THANKS"));
	assert_non_null(strstr(out.text[1], "ASK"));
	assert_non_null(strstr(out.text[1], "status no\n"));
	assert_string_equal(out.keys[2], "CCC");
	assert_null(strstr(out.text[2], "THANKS"));
	assert_non_null(strstr(out.text[2], "ASK"));
	assert_non_null(strstr(out.text[2], "status unknown UNCONFIRMED"));
	for (size_t i = 0; i < out.n; i++) {
		assert_non_null(strstr(out.text[i], "of 4 parties"));
		free(out.text[i]);
	}
	roster_free(r);
	letter_free(l);
	diags_free(&d);
	unlink(facts);
	unlink(roster);
	unlink(letter);
	free(facts);
	free(roster);
	free(letter);
}

/* Runs the roster joined with the facts on date; returns roster_each's code. */
static int run_dated(const char *roster, const char *facts, const char *date, int any,
                     struct diags *d, struct seen *s)
{
	const char *joins[] = {facts, NULL};
	struct roster_opts o = {.path = roster, .joins = joins, .date = date, .audience_any = any};

	return run(&o, d, s, NULL);
}

/* A state that left is refused from the day its withdrawal takes effect, unless the appeal's
 * audience is any; one not yet a party likewise; the count follows the date. */
static void test_dated_membership(void **state)
{
	char *facts =
	    temp_file(".csv", "# as_of: 2026-12-02\n"
	                      "# facts: apic_party\n"
	                      "iso3,apic_party,status,instrument_date,withdrawal_notified,"
	                      "withdrawal_effective\n"
	                      "HUN,yes,withdrawn,2001-11-30,2025-06-02,2026-06-02\n"
	                      "KEN,no,party,2005-03-15,,\n"
	                      "NEW,no,party,2026-10-01,,\n");
	char *roster = temp_file(".csv", "iso3,email\nHUN,hun@missions.example\n"
	                                 "KEN,ken@missions.example\n");
	char *newer = temp_file(".csv", "iso3,email\nNEW,new@missions.example\n");
	char *stale = temp_file(".csv", "# as_of: 2025-01-01\n# facts: apic_party\n"
	                                "iso3,apic_party\nKEN,no\n");
	char *bad = temp_file(".csv", "# as_of: 2026-12-02\n# facts: apic_party, nosuch\n"
	                              "iso3,apic_party,status,withdrawal_effective\n"
	                              "HUN,maybe,withdrawn,\nKEN,no,party,2026-01-01\n");
	struct diags d = DIAGS_INIT;
	struct seen s = {0};

	(void)state;
	/* The day before: still a party; 2 parties counted (HUN, KEN; NEW not yet). */
	assert_int_equal(run_dated(roster, facts, "2026-06-01", 0, &d, &s), EX_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(json_integer_value(json_object_get(s.ctx[0], "states_parties_count")), 2);
	seen_free(&s);
	diags_free(&d);
	/* The day it takes effect: the row is an error naming the date it left. */
	assert_int_equal(run_dated(roster, facts, "2026-06-02", 0, &d, &s), EX_DATAERR);
	assert_true(has_error(&d, base(roster), 2, "iso3",
	                      "not a State Party on the sending date "
	                      "2026-06-02",
	                      "took effect on 2026-06-02"));
	assert_int_equal(s.n, 1);
	seen_free(&s);
	diags_free(&d);
	/* Audience: any lets it through; the count is the parties on the date (KEN, NEW). */
	assert_int_equal(run_dated(roster, facts, "2026-12-02", 1, &d, &s), EX_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(json_integer_value(json_object_get(s.ctx[1], "states_parties_count")), 2);
	seen_free(&s);
	diags_free(&d);
	/* Not yet a party before its instrument. */
	assert_int_equal(run_dated(newer, facts, "2026-09-30", 0, &d, &s), EX_DATAERR);
	assert_true(has_error(&d, base(newer), 2, "iso3", "not yet a State Party", "2026-10-01"));
	seen_free(&s);
	diags_free(&d);
	/* Facts over 180 days old: a warning naming the as_of line. */
	assert_int_equal(run_dated(roster, stale, "2026-12-02", 0, &d, &s), EX_OK);
	assert_int_equal(d.warnings, 2); /* and HUN, missing from that table */
	assert_int_equal(d.v[0].level, DIAG_WARNING);
	assert_int_equal(d.v[0].line, 1);
	assert_string_equal(d.v[0].column, "as_of");
	assert_non_null(strstr(d.v[0].msg, "700 days before the sending date 2026-12-02"));
	seen_free(&s);
	diags_free(&d);
	/* A bad table: every problem named at open. */
	assert_int_equal(run_dated(roster, bad, "2026-12-02", 0, &d, &s), EX_DATAERR);
	assert_true(
	    has_error(&d, base(bad), 2, "nosuch", "names a column the table does not have", NULL));
	assert_true(has_error(&d, base(bad), 4, "status", "needs the withdrawal_effective", NULL));
	assert_true(has_error(&d, base(bad), 5, "status", "write 'withdrawn'", NULL));
	seen_free(&s);
	diags_free(&d);
	/* A bad sending date. */
	assert_int_equal(run_dated(roster, facts, "2026-02-30", 0, &d, &s), EX_USAGE);
	seen_free(&s);
	diags_free(&d);
	/* demarche facts: the counts on a date; the bad cell of the table named. */
	{
		char *txt = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&txt, &len);
		assert_int_equal(roster_facts_report(facts, "2026-12-02", mem, &d), EX_OK);
		fclose(mem);
		assert_non_null(strstr(txt, "States Parties             2\n"));
		assert_non_null(strstr(txt, "withdrawn                  1\n"));
		assert_non_null(
		    strstr(txt, "HUN (HUN): notified 2025-06-02, effective 2026-06-02"));
		assert_non_null(strstr(txt, "not yet a party            0\n"));
		free(txt);
		mem = open_memstream(&txt, &len);
		assert_int_equal(roster_facts_report(bad, NULL, mem, &d), EX_DATAERR);
		fclose(mem);
		assert_true(
		    has_error(&d, base(bad), 4, "apic_party", "not yes, no or unknown", NULL));
		free(txt);
		diags_free(&d);
	}
	unlink(facts);
	unlink(roster);
	unlink(newer);
	unlink(stale);
	unlink(bad);
	free(facts);
	free(roster);
	free(newer);
	free(stale);
	free(bad);
}

static void test_addr_split(void **state)
{
	struct split_out o = {0};

	(void)state;
	assert_int_equal(
	    address_split(" a@x.example; b@x.example,\"c,d\"@x.example ;; ", split_cb, &o), 0);
	assert_int_equal(o.n, 3);
	assert_string_equal(o.items[0], "a@x.example");
	assert_string_equal(o.items[1], "b@x.example");
	assert_string_equal(o.items[2], "\"c,d\"@x.example");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_corpus),       cmocka_unit_test(test_huge_field),
	    cmocka_unit_test(test_missing_files),    cmocka_unit_test(test_good_roster),
	    cmocka_unit_test(test_bom_crlf),         cmocka_unit_test(test_appeal_languages),
	    cmocka_unit_test(test_filters),          cmocka_unit_test(test_unmatched_join),
	    cmocka_unit_test(test_smtputf8),         cmocka_unit_test(test_key_email),
	    cmocka_unit_test(test_salutations),      cmocka_unit_test(test_addr_spec),
	    cmocka_unit_test(test_addr_split),       cmocka_unit_test(test_row_limit),
	    cmocka_unit_test(test_column_limit),     cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_cr_line_ends),     cmocka_unit_test(test_three_valued_facts),
	    cmocka_unit_test(test_dated_membership),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
