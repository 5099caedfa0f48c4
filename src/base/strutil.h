/* Small string helpers shared by every module. */
#ifndef DEMARCHE_STRUTIL_H
#define DEMARCHE_STRUTIL_H

#include <stddef.h>

/* Edit distance (insertions, deletions, substitutions, adjacent swaps) between a and b. */
size_t str_distance(const char *a, const char *b);
/*
 * For "did you mean": the candidate (n strings, NULL ones skipped) nearest to name, within
 * an edit distance of 2 (1 for names of 3 characters or fewer), or of which name is a prefix of 3 or more characters ("lang" ->
 * "language"), or which is a prefix of name before a '-' or '_' ("es-ES" -> "es"); ties go to
 * the first. NULL when none is close; equal strings are not suggested. Can't fail.
 */
const char *str_nearest(const char *name, const char *const *cand, size_t n);
/* 1 when s starts with prefix. */
int str_startswith(const char *s, const char *prefix);
/* ASCII case-insensitive equality. */
int str_ieq(const char *a, const char *b);
/* Reads a whole file into a new NUL-terminated buffer (*len without the NUL); returns 0, or
 * -1 with errno set. The caller frees *out. */
int read_file(const char *path, char **out, size_t *len);

#endif
