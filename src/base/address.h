/* Mail address syntax: RFC 5322 addr-spec (section 3.4.1) and lists of them, as rosters hold. */
#ifndef DEMARCHE_ADDRESS_H
#define DEMARCHE_ADDRESS_H

#include <stddef.h>

/*
 * Checks that s[0..len) is exactly one addr-spec: a dot-atom or quoted-string local part,
 * '@', and a dot-atom or domain-literal domain; no display name, angle brackets, comments
 * or surrounding space; at most 64 octets before the '@', 255 after, 254 in all (RFC 5321
 * section 4.5.3.1). Bytes >= 0x80 are allowed only when smtputf8 is set (RFC 6531/6532;
 * the caller has already checked that the text is UTF-8). Returns NULL when valid, else a
 * static reason ("no '@'", ...). Can't fail.
 */
const char *address_check(const char *s, size_t len, int smtputf8);

/*
 * Splits a list of addresses separated by ';' or ',' (outside quoted strings and domain
 * literals), trims spaces and tabs around each item, skips empty items, and calls fn with
 * each item; stops when fn returns non-zero and returns that value, else 0.
 */
int address_split(const char *s, int (*fn)(void *user, const char *item, size_t len), void *user);

#endif
