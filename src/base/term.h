/* Terminal output: is this a terminal, colour, an updating progress line, a yes/no prompt. */
#ifndef DEMARCHE_TERM_H
#define DEMARCHE_TERM_H

#include <stdio.h>

/* 1 when fp is a terminal. */
int term_isatty(FILE *fp);
/* 1 when colour may be used on fp: a terminal, NO_COLOR unset, TERM not "dumb". */
int term_colour(FILE *fp);
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
