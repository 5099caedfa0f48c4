/* Showing untrusted text safely: on a terminal, in CSV cells, JSON strings and HTML. */
#ifndef DEMARCHE_ESCAPE_H
#define DEMARCHE_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/*
 * Text from a roster, the ledger, a server's reply or a received message may hold anything
 * but NUL: terminal escape sequences, BEL, bidirectional overrides that reorder what is
 * shown, invisible characters, bytes that are not UTF-8. These functions never let such a
 * character through raw. None of them can fail; a NULL s is taken as "" (nothing written).
 */

/*
 * 1 when code point cp must not reach a terminal raw: C0 controls, DEL, C1 controls, the
 * bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and the
 * invisible format characters (U+180E, U+200B-U+200D, U+2028, U+2029, U+2060-U+2065,
 * U+206A-U+206F, U+FEFF, U+FFF9-U+FFFB, the tags U+E0000-U+E007F).
 */
int esc_unsafe(uint32_t cp);

/*
 * Appends s to b for a terminal: TAB, LF and CR as \t \n \r, other C0 controls and DEL as
 * \xHH, a byte that is not part of well-formed UTF-8 as \xHH, the other unsafe code points
 * as \uHHHH (\UHHHHHHHH past U+FFFF), and a backslash as \\ so that the output reads back
 * unambiguously. Returns the display width of what it appended (one column per code point,
 * as SQLite's length() counts, so it agrees with the ledger's column widths on plain text).
 */
size_t esc_term(struct buf *b, const char *s);
/* The width esc_term() would return, without writing. */
size_t esc_term_width(const char *s);
/* esc_term() into a new string (caller frees); NULL s gives NULL. */
char *esc_term_dup(const char *s);

/*
 * Appends s to b as one CSV field (RFC 4180): quoted when it holds a comma, a double quote,
 * CR or LF, quotes doubled. A field starting with = + - @ TAB or CR, which a spreadsheet
 * would take as a formula, is neutralised as OWASP recommends: a single quote before it and
 * the whole field quoted. Otherwise every byte is kept (CSV is data for programs); with
 * visible set (the output is a terminal), the field is first escaped as by esc_term().
 */
void esc_csv(struct buf *b, const char *s, int visible);

/*
 * Appends s to b as a JSON string (RFC 8259), quotes included, that decodes to exactly s
 * when s is UTF-8: besides the escapes JSON requires (" \ and C0, as jansson writes them),
 * DEL, C1 and the other unsafe code points are written as \uHHHH (a surrogate pair past
 * U+FFFF), so a JSON report shown raw on a terminal is safe too. A byte that is not part of
 * well-formed UTF-8 cannot be carried by JSON: it is written as \uFFFD (U+FFFD REPLACEMENT
 * CHARACTER), one per byte, where jansson would refuse the whole string.
 */
void esc_json(struct buf *b, const char *s);

/*
 * esc_term() cut to at most max columns: when the escaped text is wider, its first max - 1
 * columns and "…" (U+2026, one column). An escape such as \x1b is never cut in two: the
 * cut falls before it. Returns the width appended (<= max). max 0 appends nothing.
 */
size_t esc_term_fit(struct buf *b, const char *s, size_t max);

/*
 * Appends s to b as HTML text or a quoted attribute value: first made visible as by
 * esc_term() (controls, bidi overrides, invisible characters and bytes that are not UTF-8
 * shown as \x1b, \u202e, \xff, so the result is valid UTF-8 and reads as it is), then
 * & < > " ' written as entities. Nothing in s can open a tag, an attribute or a script.
 */
void esc_html(struct buf *b, const char *s);
/* HTML's special characters only (& < > ", and ' when apos): no control or bidi escapes,
 * for text that is already known to be plain (a letter's title). */
void esc_html_chars(struct buf *b, const char *s, int apos);
/* esc_html() into a new string (caller frees); NULL s gives "". */
char *esc_html_dup(const char *s);

#endif
