/* Where demarche's data (templates/, recipients/) is found, wherever it was built or installed. */
#ifndef DEMARCHE_DATADIR_H
#define DEMARCHE_DATADIR_H

#include <stddef.h>

/*
 * The data folders that exist, in the order they are searched (docs/design.md, "Finding
 * the data"): BIN/../share/demarche (an installed prefix, wherever it was moved), then
 * DEMARCHE_DATADIR (compiled in from the install prefix), then the source tree: the first
 * folder above the binary holding templates/_layout (a build directory inside the tree),
 * then DEMARCHE_SOURCE_DIR (compiled in: the tree a build directory elsewhere was made
 * from). Environment variables (DEMARCHE_TEMPLATES, DEMARCHE_RECIPIENTS) are the callers'
 * and override all of these. Returns the count; the caller frees each string and *dirs.
 */
size_t datadir_list(char ***dirs);

#endif
