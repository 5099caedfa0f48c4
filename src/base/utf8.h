/* UTF-8 well-formedness (RFC 3629 section 4), one implementation for every reader. */
#ifndef DEMARCHE_UTF8_H
#define DEMARCHE_UTF8_H

#include <stddef.h>

/*
 * Length of the well-formed sequence at s (n > 0 bytes available): 1 to 4, or 0 when s does
 * not start one (a stray continuation byte, an overlong form, a UTF-16 surrogate, a value
 * past U+10FFFF, or a sequence cut short). Can't fail.
 */
size_t utf8_seq(const char *s, size_t n);
/* The offset of the first byte that does not start a well-formed sequence, or n. */
size_t utf8_scan(const char *s, size_t n);
/* 1 when the n bytes at s are all UTF-8 (NUL counts as ASCII). */
int utf8_valid(const char *s, size_t n);

#endif
