/* Markdown (CommonMark) to HTML with libcmark, for the text/html part of a letter. */
#ifndef DEMARCHE_MARKDOWN_H
#define DEMARCHE_MARKDOWN_H

#include <stddef.h>

#include "base/buf.h"

/*
 * The HTML fragment for md (len bytes, UTF-8). Safe mode: raw HTML and javascript:/data:
 * links from the source are dropped. Quotes and dashes are kept as written (no "smart"
 * punctuation). Returns a new string the caller frees; can't fail.
 */
char *markdown_to_html(const char *md, size_t len);

/*
 * A whole HTML document around markdown_to_html(md): doctype, UTF-8 meta, title (escaped;
 * may be NULL) and a sober inline style, suitable for a text/html mail part. The caller
 * frees the result; can't fail.
 */
char *markdown_html_document(const char *md, size_t len, const char *title);
/* What markdown_html_document() puts before the fragment and after it, appended to b. */
void markdown_html_open(struct buf *b, const char *title);
void markdown_html_close(struct buf *b);

/*
 * 1 when md (len bytes) reads as md[0..at) followed by md[at..len), each read alone: the
 * same blocks (markdown_to_html() and plaintext_from_markdown() give the two halves' results
 * one after the other, with one empty line between the texts when both have one), and
 * markdown_renumber() gives the two halves' results one after the other. So the part of a
 * letter that is the same for every mission can be rendered once. Conservative: at must
 * follow an empty line and start a line of text at the margin (a letter or a non-ASCII
 * character, so no other block can start there); the first half may hold no fenced code and
 * no raw HTML block start (they run past empty lines), and md no link reference definition
 * (its use may be in the other half). 0 otherwise. Can't fail.
 */
int markdown_splits_at(const char *md, size_t len, size_t at);

/*
 * md with the items of each top-level ordered list numbered in sequence from the list's
 * first number, as cmark numbers them in HTML, so that a list whose items are conditional
 * ("1." for every item, some left out for a mission) reads 1, 2, 3 in the text/plain part
 * too. Everything else is left as it is. The caller frees the result; can't fail.
 */
char *markdown_renumber(const char *md);

/*
 * Plain words of md for comparisons in tests: drops emphasis and heading markers (* _ #),
 * list markers at the start of a line ("- ", "* ", "+ ", "12. "), backslash escapes, and
 * collapses every run of whitespace into one space (no leading or trailing space). The
 * caller frees the result; can't fail.
 */
char *markdown_to_plain(const char *md);

#endif
