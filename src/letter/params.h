/* draft's params files: a commented skeleton (draft --print-params), read back by --params. */
#ifndef DEMARCHE_PARAMS_H
#define DEMARCHE_PARAMS_H

#include <jansson.h>
#include <stdio.h>

#include "letter/letter.h"

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
