/* Streaming CSV reader: feeds libcsv one line at a time so every record knows its line. */
#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "base/xalloc.h"
#include "roster/csvread.h"

/* libcsv's parser state between records (libcsv.c names it ROW_NOT_BEGUN). */
#define CSVR_ROW_NOT_BEGUN 0
/* The entry buffer may exceed the cap by one growth block before we refuse it. */
#define CSVR_BLK 4096

struct reader {
	const char *path;
	csvr_fn fn;
	void *user;
	struct diags *d;
	long line;      /* line being fed */
	long rec_start; /* line on which the current record began */
	struct buf *fields;
	size_t *lens;
	size_t nfields, cap;
	char **names; /* header, lower-cased and trimmed */
	size_t nnames;
	size_t index;
	int bad;      /* current record already reported */
	int stopped;  /* fn's non-zero return */
	int over;     /* a limit was passed and reported: stop reading */
	int after_cr; /* the last piece fed ended with CR */
	size_t errors_before;
};

size_t csvr_max_rows = CSVR_ROWS_MAX;

/* libcsv grows its field buffer through this; refusing makes csv_parse stop with ENOMEM. */
static void *capped_realloc(void *p, size_t n)
{
	if (n > CSVR_FIELD_MAX + CSVR_BLK + 1)
		return NULL;
	return xrealloc(p, n);
}

static const char *colname(struct reader *r, size_t i, char *tmp, size_t tmpsz)
{
	if (i < r->nnames && r->names[i][0])
		return r->names[i];
	snprintf(tmp, tmpsz, "#%zu", i + 1);
	return tmp;
}

static void on_field(void *s, size_t len, void *data)
{
	struct reader *r = data;
	struct buf *b;

	if (r->over)
		return;
	if (r->nfields == CSVR_COLUMNS_MAX) {
		diags_add(r->d, DIAG_ERROR, r->path, r->rec_start, NULL,
		          "record has more than %d fields (not a roster?)", CSVR_COLUMNS_MAX);
		r->over = 1;
		return;
	}
	if (r->nfields == r->cap) {
		size_t ncap = r->cap ? 2 * r->cap : 16;
		r->fields = xreallocarray(r->fields, ncap, sizeof(*r->fields));
		r->lens = xreallocarray(r->lens, ncap, sizeof(*r->lens));
		for (size_t i = r->cap; i < ncap; i++)
			buf_init(&r->fields[i]);
		r->cap = ncap;
	}
	b = &r->fields[r->nfields];
	buf_reset(b);
	buf_add(b, s ? s : "", s ? len : 0);
	r->lens[r->nfields] = b->len;
	r->nfields++;
}

static void check_record(struct reader *r)
{
	char tmp[32];

	for (size_t i = 0; i < r->nfields; i++) {
		size_t off = utf8_scan(r->fields[i].data, r->lens[i]);

		if (off < r->lens[i]) {
			diags_add(
			    r->d, DIAG_ERROR, r->path, r->rec_start, colname(r, i, tmp, sizeof tmp),
			    "invalid UTF-8 (byte 0x%02X at byte %zu of the value); save the file "
			    "as UTF-8",
			    (unsigned char)r->fields[i].data[off], off + 1);
			r->bad = 1;
		}
	}
	if (r->index > 0 && r->nfields != r->nnames) {
		diags_add(r->d, DIAG_ERROR, r->path, r->rec_start, NULL,
		          "record has %zu fields, the header has %zu", r->nfields, r->nnames);
		r->bad = 1;
	}
}

static void take_header(struct reader *r)
{
	r->names = xcalloc(r->nfields, sizeof(*r->names));
	r->nnames = r->nfields;
	for (size_t i = 0; i < r->nfields; i++) {
		const char *s = buf_str(&r->fields[i]);
		size_t len = r->lens[i];
		while (len && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		r->names[i] = xstrndup(s, len);
		for (char *p = r->names[i]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
}

static void on_record(int c, void *data)
{
	struct reader *r = data;
	struct csvr_record rec;
	char **v;

	(void)c;
	if (r->stopped || r->over) {
		r->nfields = 0;
		return;
	}
	if (r->index > csvr_max_rows) {
		diags_add(r->d, DIAG_ERROR, r->path, r->rec_start, NULL,
		          "more than %zu rows: split the roster", csvr_max_rows);
		r->over = 1;
		r->nfields = 0;
		return;
	}
	r->bad = 0;
	check_record(r);
	if (r->index == 0)
		take_header(r);
	v = xcalloc(r->nfields + 1, sizeof(*v));
	for (size_t i = 0; i < r->nfields; i++)
		v[i] = r->fields[i].data ? r->fields[i].data : (char *)"";
	if (r->index == 0)
		for (size_t i = 0; i < r->nfields; i++)
			v[i] = r->names[i];
	rec.index = r->index;
	rec.line = r->rec_start;
	rec.n = r->nfields;
	rec.v = v;
	rec.len = r->lens;
	rec.bad = r->bad;
	r->stopped = r->fn(r->user, &rec);
	free(v);
	r->index++;
	r->nfields = 0;
}

static void parse_error(struct reader *r, struct csv_parser *p, int fini)
{
	char tmp[32];
	const char *col = colname(r, r->nfields, tmp, sizeof tmp);

	switch (csv_error(p)) {
	case CSV_ENOMEM:
	case CSV_ETOOBIG:
		diags_add(r->d, DIAG_ERROR, r->path, r->rec_start, col,
		          "field longer than %d bytes (an unclosed quote, or not a roster?)",
		          CSVR_FIELD_MAX);
		break;
	default:
		if (fini)
			diags_add(r->d, DIAG_ERROR, r->path, r->rec_start, col,
			          "quoted field not closed before the end of the file (RFC 4180 "
			          "section 2)");
		else
			diags_add(
			    r->d, DIAG_ERROR, r->path, r->rec_start, col,
			    "malformed quoting on line %ld: a quote inside an unquoted field, "
			    "or text after a closing quote (RFC 4180 section 2: write \"\" "
			    "for a quote inside a quoted field)",
			    r->line);
		break;
	}
}

/* The length of the first line of s[0..n): through its LF, CRLF or lone CR; else n. */
static size_t line_len(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			return i + 1;
		if (s[i] == '\r')
			return i + 1 < n && s[i + 1] == '\n' ? i + 2 : i + 1;
	}
	return n;
}

/* Feeds one piece of a line; returns 0, or -1 after a reported parse error. */
static int feed(struct reader *r, struct csv_parser *p, const char *s, size_t n, int *at_start)
{
	if (*at_start && p->pstate == CSVR_ROW_NOT_BEGUN)
		r->rec_start = r->line;
	*at_start = 0;
	if (csv_parse(p, s, n, on_field, on_record, r) != n) {
		parse_error(r, p, 0);
		return -1;
	}
	if (r->over)
		return -1;
	/* A field can pass the cap without libcsv's buffer growing past ours. */
	if (p->entry_pos > CSVR_FIELD_MAX) {
		char tmp[32];
		diags_add(r->d, DIAG_ERROR, r->path, r->rec_start,
		          colname(r, r->nfields, tmp, sizeof tmp), "field longer than %d bytes",
		          CSVR_FIELD_MAX);
		return -1;
	}
	/* A line ends at LF, CRLF or a lone CR (old Mac exports; libcsv ends records there
	 * too); the LF of a CRLF split between two reads is not a second line. */
	if (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
		if (!(n == 1 && s[0] == '\n' && r->after_cr))
			r->line++;
		*at_start = 1;
	}
	r->after_cr = n && s[n - 1] == '\r';
	return 0;
}

int csvr_read(const char *path, csvr_fn fn, void *user, struct diags *d)
{
	struct reader r = {0};
	struct csv_parser p;
	char *chunk = NULL;
	FILE *fp;
	int rc = EX_OK, first = 1, at_start = 1, in_comment = 0;
	size_t got, total = 0;
	struct stat st;

	r.path = path;
	r.fn = fn;
	r.user = user;
	r.d = d;
	r.line = 1;
	r.rec_start = 1;
	r.errors_before = d->errors;
	fp = fopen(path, "rb");
	if (!fp) {
		diags_add(d, DIAG_ERROR, path, 0, NULL, "cannot open: %s", strerror(errno));
		return EX_NOINPUT;
	}
	if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > CSVR_SIZE_MAX) {
		diags_add(d, DIAG_ERROR, path, 0, NULL,
		          "file of %lld bytes is over the %ld byte limit (1 GiB): split the roster",
		          (long long)st.st_size, CSVR_SIZE_MAX);
		fclose(fp);
		return EX_DATAERR;
	}
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
		fclose(fp);
		return EX_SOFTWARE;
	}
	csv_set_realloc_func(&p, capped_realloc);
	csv_set_blk_size(&p, CSVR_BLK);
	chunk = xmalloc(65536);
	while ((got = fread(chunk, 1, 65536, fp)) > 0) {
		const char *s = chunk;
		size_t n = got;

		/* Not a regular file (a pipe): the size is only known as it is read. */
		total += got;
		if (total > (size_t)CSVR_SIZE_MAX) {
			diags_add(d, DIAG_ERROR, path, 0, NULL,
			          "more than %ld bytes (1 GiB): split the roster", CSVR_SIZE_MAX);
			rc = EX_DATAERR;
			goto out;
		}

		if (first) {
			first = 0;
			if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
				s += 3;
				n -= 3;
			}
		}
		while (n && !r.stopped) {
			size_t len = line_len(s, n);
			/* Lines starting with '#' above the header are comments: a facts table
			 * dates itself there ("# as_of: 2026-12-02"). */
			if (r.index == 0 &&
			    (in_comment ||
			     (at_start && p.pstate == CSVR_ROW_NOT_BEGUN && *s == '#'))) {
				int eol = s[len - 1] == '\n' || s[len - 1] == '\r';
				if (eol && !(len == 1 && *s == '\n' && r.after_cr))
					r.line++;
				in_comment = !eol;
				at_start = eol;
				r.after_cr = s[len - 1] == '\r';
				s += len;
				n -= len;
				continue;
			}
			if (feed(&r, &p, s, len, &at_start) < 0) {
				rc = EX_DATAERR;
				goto out;
			}
			s += len;
			n -= len;
		}
		if (r.stopped)
			goto out;
	}
	if (ferror(fp)) {
		diags_add(d, DIAG_ERROR, path, 0, NULL, "read error: %s", strerror(errno));
		rc = EX_IOERR;
		goto out;
	}
	if (csv_fini(&p, on_field, on_record, &r) != 0) {
		parse_error(&r, &p, 1);
		rc = EX_DATAERR;
		goto out;
	}
	if (r.stopped || r.over)
		goto out;
	if (r.index == 0)
		diags_add(d, DIAG_ERROR, path, 0, NULL, "empty file: no header and no rows");
	else if (r.index == 1)
		diags_add(d, DIAG_ERROR, path, 0, NULL, "no rows after the header");
out:
	if (r.stopped)
		rc = r.stopped;
	else if (rc == EX_OK && d->errors > r.errors_before)
		rc = EX_DATAERR;
	csv_free(&p);
	fclose(fp);
	free(chunk);
	for (size_t i = 0; i < r.cap; i++)
		buf_free(&r.fields[i]);
	free(r.fields);
	free(r.lens);
	for (size_t i = 0; i < r.nnames; i++)
		free(r.names[i]);
	free(r.names);
	return rc;
}
