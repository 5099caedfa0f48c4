/*
 * Errors: a code plus an allocated message (msmtp style), and a list of located problems
 * (file, line or row, column) for validation that reports everything at once.
 *
 * Codes are sysexits(3) values throughout the program: EX_OK, EX_USAGE (64), EX_DATAERR
 * (65), EX_NOINPUT (66), EX_UNAVAILABLE (69), EX_SOFTWARE (70), EX_OSERR (71), EX_IOERR
 * (74), EX_TEMPFAIL (75), EX_CONFIG (78). Modules with codes of their own map them with one
 * function (e.g. transport_exitcode()).
 */
#ifndef DEMARCHE_ERROR_H
#define DEMARCHE_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <sysexits.h>

/*
 * Sets *errstr (when errstr is not NULL) to a newly allocated message the caller frees,
 * and returns code. Any previous *errstr is freed first. Can't fail.
 */
int error_set(char **errstr, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int error_vset(char **errstr, int code, const char *fmt, va_list ap);

/* A short name for an exit code ("usage", "data error", ...); static, never NULL. */
const char *exit_name(int code);

enum diag_level { DIAG_WARNING, DIAG_ERROR };

struct diag {
	enum diag_level level;
	char *file;   /* may be NULL */
	long line;    /* line or row number, 1-based; 0 when not known */
	char *column; /* column name (rosters) or NULL */
	char *msg;
};

struct diags {
	struct diag *v;
	size_t n, cap;
	size_t errors, warnings;
	size_t max; /* keep at most this many (0: no limit); the counts go on */
};

#define DIAGS_INIT                                                                                 \
	{                                                                                          \
		NULL, 0, 0, 0, 0, 0                                                                \
	}

/* Adds one problem; file and column may be NULL. Can't fail. */
void diags_add(struct diags *d, enum diag_level level, const char *file, long line,
               const char *column, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Prints each as "file:line: column 'c': error: msg" on its own line. */
void diags_print(const struct diags *d, FILE *fp);
/* Formats one diagnostic; the caller frees the result. */
char *diag_format(const struct diag *dg);
/* The same with "error" and "warning" coloured (ANSI) when colour is set. */
char *diag_format_colour(const struct diag *dg, int colour);
void diags_free(struct diags *d); /* safe on an empty list */

#endif
