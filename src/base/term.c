/* Terminal output: is this a terminal, colour, an updating progress line, a yes/no prompt. */
#include "base/term.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int status_written;
static enum term_colour_mode colour_mode;

int term_isatty(FILE *fp)
{
	return isatty(fileno(fp));
}

int term_colour(FILE *fp)
{
	const char *term = getenv("TERM"), *no = getenv("NO_COLOR");

	if (colour_mode != TERM_COLOUR_AUTO)
		return colour_mode == TERM_COLOUR_ALWAYS;
	if (!term_isatty(fp) || (no && *no))
		return 0;
	return !(term && !strcmp(term, "dumb"));
}

void term_set_colour(enum term_colour_mode mode)
{
	colour_mode = mode;
}

int term_colour_mode(const char *when)
{
	if (!when || !strcmp(when, "auto"))
		return TERM_COLOUR_AUTO;
	if (!strcmp(when, "always") || !strcmp(when, "yes"))
		return TERM_COLOUR_ALWAYS;
	if (!strcmp(when, "never") || !strcmp(when, "no"))
		return TERM_COLOUR_NEVER;
	return -1;
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
