/*
 * Letter parts from a roster row: the date line in each language's form, the inside address
 * and the salutation from the honorific and title, for templates/_layout.
 */
#ifndef DEMARCHE_PARTS_H
#define DEMARCHE_PARTS_H

#include <jansson.h>
#include <stddef.h>

/*
 * The date iso (YYYY-MM-DD) as written in a letter in lang: en "20 November 2025", fr
 * "20 novembre 2025" ("1er" for the first), es "20 de noviembre de 2025", pt "20 de novembro
 * de 2025"; other languages get en's form. Returns a new string the caller frees, or NULL when
 * iso is not a valid date.
 */
char *parts_date(const char *lang, const char *iso);

/*
 * 1 when the addressee is styled Excellency: the title names an ambassador, a minister (not a
 * minister-counsellor), a permanent representative or observer (not a deputy), a high
 * commissioner or a head of state or government; without a title, always (a roster of
 * missions without titles addresses heads of mission). A chargé d'affaires, a deputy or a
 * counsellor is never. Can't fail.
 */
int parts_excellency(const char *honorific, const char *title);

/*
 * The salutation, without its punctuation, for lang: "Your Excellency" / "Excellence" /
 * "Excelentísimo Señor" (as roster_salutation()) when parts_excellency(); otherwise from the
 * title's head (the title before " of ", " de ", ","...) and the honorific's gender: en "Dear
 * Mr. Secretary" / "Dear Madam Secretary" / "Dear Secretary"; fr "Monsieur le Secrétaire" /
 * "Madame la Secrétaire" / "Madame, Monsieur"; es "Señor Secretario" / "Señora Secretaria" /
 * "Señora, Señor". Returns a new string the caller frees; can't fail.
 */
char *parts_salutation(const char *lang, const char *honorific, const char *name,
                       const char *title);

/*
 * The inside address, one line each: honorific and name, title (left out when the name
 * already says it), mission, city. Empty or NULL fields are left out. Returns a new JSON
 * array of objects {"line": "..."} (the caller decrefs it); can't fail.
 */
json_t *parts_inside_address(const char *honorific, const char *name, const char *title,
                             const char *mission, const char *city);

/*
 * Adds to ctx (a roster context) what templates/_layout uses: key (the roster key's value),
 * letter_date (date, YYYY-MM-DD, in lang's form; left out when date is invalid),
 * ref_label ("Ref." / "Réf."), inside_address (see above, from the context's honorific, name,
 * title, mission and city),
 * excellency (boolean), and salutation when ctx has none. Can't fail.
 */
void parts_add(json_t *ctx, const char *lang, const char *date, const char *key);

/* 1 when s holds one of words (NULL-terminated) as a whole word, separated by blanks or
 * commas, ASCII case ignored (words may end in '.': "H.E."). Can't fail. */
int parts_has_word(const char *s, const char *const *words);

#endif
