/* Streaming CSV reader over libcsv: RFC 4180 records handed over one at a time, with lines. */
#ifndef DEMARCHE_CSVREAD_H
#define DEMARCHE_CSVREAD_H

#include <stddef.h>

#include "base/error.h"

/* The longest field accepted (bytes); a longer one stops the reading with an error. */
#define CSVR_FIELD_MAX (64 * 1024)
/*
 * More than these stop the reading with an error naming the limit: a spreadsheet export
 * is far smaller, and memory per record grows with its fields (up to CSVR_FIELD_MAX each).
 */
#define CSVR_COLUMNS_MAX 1024                  /* fields in one record */
#define CSVR_ROWS_MAX    1000000               /* data records (the header not counted) */
#define CSVR_SIZE_MAX    (1024L * 1024 * 1024) /* bytes in the file */

/* The row limit in force: CSVR_ROWS_MAX; tests lower it to reach it quickly. */
extern size_t csvr_max_rows;

/*
 * One record. Index 0 is the header, whose names are trimmed and lower-cased. Values are
 * NUL-terminated copies owned by the reader, valid only during the callback; len[i] is the
 * true length (a value may hold a NUL byte, which the caller should refuse). bad is set when
 * the reader has already reported a problem with this record (invalid UTF-8, wrong number
 * of fields); the values are then not to be trusted, only counted.
 */
struct csvr_record {
	size_t index; /* 0 for the header, then 1, 2, ... */
	long line;    /* 1-based line on which the record starts */
	size_t n;
	char **v;
	const size_t *len;
	int bad;
};

/* Return 0 to go on; any other value stops the reading and is returned by csvr_read(). */
typedef int (*csvr_fn)(void *user, const struct csvr_record *rec);

/*
 * Reads path (RFC 4180 with libcsv's strict mode: quoted fields may hold commas, quotes
 * and line breaks; CRLF or LF; a UTF-8 BOM is skipped; lines starting with '#' above the
 * header are comments, skipped but counted in line numbers) and calls fn for the header and
 * then each record, in order, holding only one record in memory. Problems go to d with
 * the file, the record's first line and the column name (from the header). Returns:
 * EX_OK; EX_NOINPUT (cannot open: also added to d); EX_IOERR (read error); EX_DATAERR
 * when d received errors (malformed quoting or an over-long field stop the reading;
 * invalid UTF-8 and ragged records do not: they are reported and passed with bad set;
 * an empty file or one with only a header is an error; so is a file past a limit above,
 * refused before reading when it is a regular file over CSVR_SIZE_MAX bytes); or fn's
 * non-zero return value.
 */
int csvr_read(const char *path, csvr_fn fn, void *user, struct diags *d);

#endif
