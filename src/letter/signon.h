/*
 * Joint letters: the signatories from a sign-on CSV, and draft's params files (a commented
 * skeleton printed by draft --print-params, read back by draft --params).
 */
#ifndef DEMARCHE_SIGNON_H
#define DEMARCHE_SIGNON_H

#include <jansson.h>
#include <stdio.h>

#include "base/error.h"
#include "letter/letter.h"

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

/*
 * Writes to fp a params file for template l (id names it in the comments): a JSON object of
 * every param in Params order, each after a comment line saying which language files use
 * it, valued as in example (the template's original.json; may be NULL: values are then ""),
 * and comment lines ("//") on top saying how to use it. Can't fail (write errors show in fp).
 */
void params_skeleton(const struct letter *l, const char *id, json_t *example, FILE *fp);

/*
 * Reads a params file: JSON, where lines whose first non-blank characters are "//" are
 * comments (params_skeleton() writes them). Returns a new JSON value, or NULL with err
 * filled (line numbers are the file's own). errno is ENOENT when the file does not exist.
 */
json_t *params_load(const char *path, json_error_t *err);

#endif
