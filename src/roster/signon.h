/* Joint letters: the signatories from a sign-on CSV (draft --signatories). */
#ifndef DEMARCHE_SIGNON_H
#define DEMARCHE_SIGNON_H

#include <jansson.h>

#include "base/error.h"

/*
 * Reads a sign-on CSV at path: a header with an organisation column (organization is
 * accepted) and optionally country; one signatory a row. *out receives a new JSON array of
 * strings (the caller decrefs it), "Organisation" or "Organisation (Country)", sorted as a
 * reader looks a name up (case, accents, punctuation and a leading "The" ignored). A
 * duplicate (the same name and country so compared) is a warning naming both rows, and only
 * the first is kept; a near-duplicate (names one or two edits apart, or the same once a
 * parenthesised acronym is dropped) is a warning naming both rows, both kept. An empty
 * organisation cell or a missing organisation column is an error (file, row, column).
 * Returns EX_OK, EX_NOINPUT (cannot open), or EX_DATAERR (*out NULL); all problems in d.
 */
int signon_read(const char *path, json_t **out, struct diags *d);

#endif
