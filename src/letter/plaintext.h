/* The text/plain part of a letter, rendered from cmark's tree of its Markdown. */
#ifndef DEMARCHE_PLAINTEXT_H
#define DEMARCHE_PLAINTEXT_H

#include <stddef.h>

#define PLAINTEXT_WIDTH 72

/*
 * Plain text for md (len bytes, UTF-8), as a reader of a text mail expects it: emphasis and
 * headings without their markers, backslash escapes resolved, numbered lists numbered as
 * cmark numbers them in HTML (from the list's start, in sequence), bullets as "- ", one line
 * per hard line break (a list of signatories stays one name a line; a name too long for the
 * width continues on the next line indented by two), paragraphs wrapped at PLAINTEXT_WIDTH
 * characters (counted in UTF-8 characters) with list items' continuation lines indented
 * under their text,
 * blocks separated by one empty line, links as "text <url>" when the url is not the text,
 * raw HTML dropped (as the HTML part drops it). No trailing blanks on any line, no empty line
 * first, one newline at the end (nothing at all for an empty letter). A word longer than
 * the width gets its own line, unbroken. Returns a new string the caller frees; can't fail.
 */
char *plaintext_from_markdown(const char *md, size_t len);

/*
 * plaintext_from_markdown(md) and, in *html, markdown_to_html(md) (letter/markdown.h), from
 * one parse: a letter needs both parts. The caller frees both; can't fail.
 */
char *plaintext_and_html(const char *md, size_t len, char **html);

#endif
