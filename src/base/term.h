/* Terminal output: is this a terminal, colour, an updating progress line, a yes/no prompt. */
#ifndef DEMARCHE_TERM_H
#define DEMARCHE_TERM_H

#include <stdio.h>

/* 1 when fp is a terminal. */
int term_isatty(FILE *fp);
/*
 * 1 when colour may be used on fp. By default (auto): a terminal, NO_COLOR unset or empty
 * (https://no-color.org), TERM not "dumb". --color=always and --color=never
 * (term_set_colour()) override all of that.
 */
int term_colour(FILE *fp);
enum term_colour_mode { TERM_COLOUR_AUTO, TERM_COLOUR_ALWAYS, TERM_COLOUR_NEVER };
/* Sets the mode for the whole process (from --color=WHEN). */
void term_set_colour(enum term_colour_mode mode);
/* "auto", "always" or "never" (also "yes"/"no") as a mode; -1 for anything else. */
int term_colour_mode(const char *when);
/* Rewrites the current line of fp (a terminal) with the formatted text. */
void term_status(FILE *fp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends a status line (a newline if one was written). */
void term_status_done(FILE *fp);
/*
 * Asks on the terminal (reading /dev/tty) for the word expected; returns 1 when the user
 * typed it exactly, 0 otherwise (including end of input).
 */
int term_confirm(const char *prompt, const char *expected);

#endif
