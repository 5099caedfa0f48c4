/* Markdown (CommonMark) to HTML with libcmark, for the text/html part of a letter. */
#ifndef DEMARCHE_MARKDOWN_H
#define DEMARCHE_MARKDOWN_H

#include <stddef.h>

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
