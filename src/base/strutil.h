/* Small string helpers shared by every module. */
#ifndef DEMARCHE_STRUTIL_H
#define DEMARCHE_STRUTIL_H

#include <stddef.h>

/* Edit distance (insertions, deletions, substitutions, adjacent swaps) between a and b. */
size_t str_distance(const char *a, const char *b);
/* 1 when s starts with prefix. */
int str_startswith(const char *s, const char *prefix);
/* ASCII case-insensitive equality. */
int str_ieq(const char *a, const char *b);
/* Reads a whole file into a new NUL-terminated buffer (*len without the NUL); returns 0, or
 * -1 with errno set. The caller frees *out. */
int read_file(const char *path, char **out, size_t *len);

#endif
