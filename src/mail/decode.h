/* Reading back a composed message: one text part, transfer-decoded (for preview). */
#ifndef DEMARCHE_MAIL_DECODE_H
#define DEMARCHE_MAIL_DECODE_H

#include <stddef.h>

/*
 * The first text/SUBTYPE part ("plain", "html") of the RFC 5322 message msg (len bytes),
 * its quoted-printable or base64 undone: a new NUL-terminated string (the caller frees it)
 * with *outlen its length. NULL when the message cannot be parsed or has no such part.
 */
char *mail_text_part(const char *msg, size_t len, const char *subtype, size_t *outlen);

#endif
