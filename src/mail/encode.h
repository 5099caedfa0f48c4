/* Body transfer encodings for MIME parts: quoted-printable and base64 (RFC 2045 section 6). */
#ifndef DEMARCHE_MAIL_ENCODE_H
#define DEMARCHE_MAIL_ENCODE_H

#include <stddef.h>

#include "base/buf.h"

/*
 * Appends s[0..n) to out as quoted-printable text (RFC 2045 section 6.7). LF and CRLF end a
 * line and become CRLF; a lone CR is encoded. Output lines are at most 76 characters, soft
 * breaks never split a UTF-8 character, whitespace before a line end is encoded, and a line
 * starting "From " starts "=46rom " (mbox-safe). The output is 7-bit and holds no "=_", so a
 * boundary starting "=_" can never occur in it. Output always ends with CRLF: a last line
 * without LF ends with a soft break ("=" CRLF), so it decodes without a line end.
 * Can't fail.
 */
void mail_qp_encode(struct buf *out, const char *s, size_t n);

/*
 * Appends data[0..n) to out as base64 (RFC 2045 section 6.8) in CRLF-separated lines of 76
 * characters; the last line has no CRLF. Can't fail.
 */
void mail_base64_encode(struct buf *out, const void *data, size_t n);

#endif
