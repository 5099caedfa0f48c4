/* Terminal output: is this a terminal, colour, an updating progress line, a yes/no prompt. */
#include "base/term.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int status_written;

int term_isatty(FILE *fp)
{
	return isatty(fileno(fp));
}

int term_colour(FILE *fp)
{
	const char *term = getenv("TERM");

	if (!term_isatty(fp) || getenv("NO_COLOR"))
		return 0;
	return !(term && !strcmp(term, "dumb"));
}

void term_status(FILE *fp, const char *fmt, ...)
{
	va_list ap;

	fputs("\r\033[K", fp);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fflush(fp);
	status_written = 1;
}

void term_status_done(FILE *fp)
{
	if (status_written)
		fputc('\n', fp);
	status_written = 0;
}

int term_confirm(const char *prompt, const char *expected)
{
	char line[256];
	FILE *tty = fopen("/dev/tty", "r+");
	int ok = 0;

	if (!tty)
		return 0;
	fputs(prompt, tty);
	fflush(tty);
	if (fgets(line, sizeof(line), tty)) {
		line[strcspn(line, "\r\n")] = '\0';
		ok = !strcmp(line, expected);
	}
	fclose(tty);
	return ok;
}
