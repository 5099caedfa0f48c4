/*
 * The letter as a document: a PDF on letterhead, laid out with pango (HarfBuzz shaping,
 * justified text without hyphenation) on cairo's PDF surface, from the same Markdown tree
 * (cmark) the text and HTML parts come from (docs/design.md, "The letter as a PDF").
 * Only src/pdf/ sees pango, cairo and librsvg.
 */
#ifndef DEMARCHE_PDF_H
#define DEMARCHE_PDF_H

#include <stddef.h>
#include <time.h>

#include "base/buf.h"

/* What [letterhead] says; every field may be NULL. Paths are opened as given. */
struct pdf_letterhead {
	const char *name;      /* the organisation, first line of the letterhead */
	const char *address;   /* address lines, separated by ';' or newlines */
	const char *logo;      /* a PNG or SVG file (by its name's ending) */
	const char *footer;    /* a line at the foot of every page */
	const char *paper;     /* "A4" (the default) or "Letter" */
	const char *margins;   /* millimetres: "25" (all four) or "TOP RIGHT BOTTOM LEFT" */
	const char *font;      /* a fontconfig family; default "Noto Serif" */
	const char *signature; /* a PNG or SVG image set above the signature block */
	/* Images per signatory: names[i]'s line in the signature block gets files[i] above it. */
	const char *const *sig_names;
	const char *const *sig_files;
	size_t nsigs;
};

/*
 * The letterhead resolved once for a run: paper, margins, fonts, the images read and
 * checked. Shared read-only by every thread that renders. Returns EX_OK with *out (free with
 * pdf_style_free()), EX_CONFIG (bad paper, margins or font), EX_NOINPUT (an image cannot be
 * read) or EX_DATAERR (an image is not a PNG or SVG), with *errstr naming the file or key.
 */
struct pdf_style;
int pdf_style_new(const struct pdf_letterhead *lh, struct pdf_style **out, char **errstr);
void pdf_style_free(struct pdf_style *st); /* NULL is fine */

/* One document's metadata. Every string may be NULL. */
struct pdf_meta {
	const char *title, *author, *subject, *keywords;
	const char *language;  /* shaping and line breaking (e.g. "fr") */
	time_t date;           /* CreationDate and ModDate (UTC): same letter, same bytes */
	const char *date_line; /* the letter's date: a paragraph near the top holding it is set
	                        * flush right */
};

/*
 * Renders the letter md (len bytes, UTF-8 Markdown) as a PDF appended to out: page 1 with
 * the letterhead, the body's blocks (headings, paragraphs justified, lists with hanging
 * indents, links as "text <url>"), no widow or orphan (a paragraph split across pages keeps
 * two lines on each side), the closing and the signature block (the last paragraph, in up to
 * four columns when long) together on one page, the footer on every page and "n/N" from
 * page 2. Deterministic: the same arguments give the same bytes. May be called from several
 * threads at once. Returns EX_OK, or EX_SOFTWARE with *errstr when cairo fails.
 */
int pdf_render(const struct pdf_style *st, const char *md, size_t len, const struct pdf_meta *meta,
               struct buf *out, char **errstr);

#endif
