/* Translation parity: the language versions of an appeal or template say the same things. */
#ifndef DEMARCHE_PARITY_H
#define DEMARCHE_PARITY_H

#include "base/error.h"
#include "letter/letter.h"

/*
 * Compares each language file of l with the first (en when there is one), reading the files
 * again from letter_path(l). What is compared is the letter's body: the {{$body}} block when
 * the file has one (the layout's other blocks, salutation and signature, differ by language
 * by design), else the whole Markdown body. Items: numbered asks (ordered list items),
 * bulleted asks (bullet list items), paragraphs, headings, the links' targets, and the set of
 * Mustache names used (variables and sections), each name taken without the file's language
 * suffix (venue_fr in fr.md is venue) and without the names that carry the form of address
 * (excellency, salutation). Each difference goes to d at level, naming the other file and
 * both files and the item: "en.md has 8 bulleted asks, fr.md has 7". A letter of one
 * language has nothing to compare. Returns the number of differences; can't fail (a file
 * that cannot be read again is a difference).
 */
size_t letter_parity(const struct letter *l, enum diag_level level, struct diags *d);

#endif
