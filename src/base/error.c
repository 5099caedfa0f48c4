/* Errors: a code plus an allocated message, and lists of located problems. */
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/escape.h"
#include "base/xalloc.h"

int error_vset(char **errstr, int code, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (!errstr)
		return code;
	buf_vaddf(&b, fmt, ap);
	free(*errstr);
	*errstr = buf_detach(&b);
	return code;
}

int error_set(char **errstr, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(errstr, code, fmt, ap);
	va_end(ap);
	return code;
}

const char *exit_name(int code)
{
	switch (code) {
	case EX_OK:
		return "ok";
	case EX_USAGE:
		return "usage error";
	case EX_DATAERR:
		return "bad input";
	case EX_NOINPUT:
		return "missing file";
	case EX_UNAVAILABLE:
		return "failed permanently";
	case EX_SOFTWARE:
		return "internal error";
	case EX_OSERR:
		return "system error";
	case EX_IOERR:
		return "input/output error";
	case EX_TEMPFAIL:
		return "temporary failure";
	case EX_CONFIG:
		return "configuration error";
	default:
		return "error";
	}
}

void diags_add(struct diags *d, enum diag_level level, const char *file, long line,
               const char *column, const char *fmt, ...)
{
	struct diag *dg;
	va_list ap;
	struct buf b = BUF_INIT;

	if (level == DIAG_ERROR)
		d->errors++;
	else
		d->warnings++;
	if (d->max && d->n >= d->max)
		return;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = xreallocarray(d->v, d->cap, sizeof(*d->v));
	}
	dg = &d->v[d->n++];
	dg->level = level;
	dg->file = file ? xstrdup(file) : NULL;
	dg->line = line;
	dg->column = column ? xstrdup(column) : NULL;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	dg->msg = buf_detach(&b);
}

char *diag_format(const struct diag *dg)
{
	return diag_format_colour(dg, 0);
}

char *diag_format_colour(const struct diag *dg, int colour)
{
	struct buf b = BUF_INIT;

	/* A problem often quotes a roster cell or a template line: hostile text, escaped for
	 * the terminal (controls, bidi overrides, bytes that are not UTF-8) as audit does. */
	if (dg->file) {
		esc_term(&b, dg->file);
		buf_addc(&b, ':');
	}
	if (dg->line > 0)
		buf_addf(&b, "%ld:", dg->line);
	if (b.len)
		buf_addc(&b, ' ');
	if (dg->column) {
		buf_adds(&b, "column '");
		esc_term(&b, dg->column);
		buf_adds(&b, "': ");
	}
	if (colour)
		buf_adds(&b, dg->level == DIAG_ERROR ? "\033[1;31merror\033[0m: "
		                                     : "\033[1;33mwarning\033[0m: ");
	else
		buf_addf(&b, "%s: ", dg->level == DIAG_ERROR ? "error" : "warning");
	esc_term(&b, dg->msg);
	return buf_detach(&b);
}

void diags_print(const struct diags *d, FILE *fp)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = diag_format(&d->v[i]);
		fprintf(fp, "%s\n", s);
		free(s);
	}
	if (d->max && d->errors + d->warnings > d->n)
		fprintf(fp, "(%zu more not shown)\n", d->errors + d->warnings - d->n);
}

void diags_free(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].column);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = d->errors = d->warnings = 0;
}
