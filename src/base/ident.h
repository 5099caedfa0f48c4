/* A delivery's identity: keys and addresses compared the way roster validation compares them. */
#ifndef DEMARCHE_BASE_IDENT_H
#define DEMARCHE_BASE_IDENT_H

#include <stddef.h>

/*
 * The one normaliser of keys and addresses: ASCII case folding over the whole value (bytes
 * A-Z become a-z; every other byte, UTF-8 included, stays), exactly as the roster's
 * duplicate checks compare them (src/roster/pass.c hash_ci/strcasecmp). "ALB" and "alb",
 * "ken@missions.example" and "KEN@Missions.Example" are one identity. No trimming: the
 * roster already refuses values with surrounding blanks.
 */

/* The folded copy of s (caller frees); NULL when s is NULL. Never fails (xmalloc). */
char *ident_fold(const char *s);
/* Folds the n bytes of s into out (n bytes; out may be s). */
void ident_fold_n(char *out, const char *s, size_t n);
/* 1 when a and b are one identity (both non-NULL), 0 otherwise. */
int ident_equal(const char *a, const char *b);

#endif
