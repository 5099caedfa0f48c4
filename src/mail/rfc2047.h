/* RFC 2047 encoded words for Subject and display names (UTF-8, Q or B), and a decoder. */
#ifndef DEMARCHE_MAIL_RFC2047_H
#define DEMARCHE_MAIL_RFC2047_H

#include <stddef.h>

#include "base/utf8.h"

#define RFC2047_MAX_WORD 75 /* RFC 2047 section 2: an encoded word's length limit */
#define RFC5322_FOLD_COL 78 /* RFC 5322 section 2.1.1: the line length to fold at */

/*
 * Both encoders take a header value and return a new string the caller frees, or NULL when
 * the value is not valid UTF-8 or holds CR, LF or NUL (header injection: refuse, never
 * strip). Runs of spaces and tabs become one space and the ends are trimmed, because the
 * folding writer (ours or libetpan's) treats every whitespace run as one fold point.
 *
 * The result is a sequence of tokens separated by single spaces, each at most 76 characters
 * so that folding at any space (CRLF SP) keeps every line within 78 columns. Words that are
 * printable ASCII stay readable; each run of consecutive words that are not (non-ASCII,
 * control characters, "=?" that a decoder would misread, or longer than 76 characters)
 * becomes UTF-8 encoded words of at most 75 characters, each Q or B, whichever carries more
 * of the run, never splitting a UTF-8 character. col is the column where the value starts
 * (9 after "Subject: "): the first token is kept short enough to stay on that line (within
 * column 72, where libetpan 1.9.4 folds), encoded if it is a longer word.
 */

/* An unstructured value (RFC 2047 section 5(1)): Subject, X-Demarche-Campaign. */
char *rfc2047_encode_text(const char *s, size_t col);

/*
 * A display name as an RFC 5322 phrase (RFC 2047 section 5(3): Q encoding restricted to
 * letters, digits and !*+-/). An ASCII name of atoms stays as is; an ASCII name with
 * specials (".", ",", "(", ...) becomes one quoted-string when short enough to fit a line
 * (else its special words are encoded); with non-ASCII words, words holding specials are
 * encoded along with them, since an encoded word may not appear inside a quoted-string.
 * Returns "" for an empty or all-blank name.
 */
char *rfc2047_encode_phrase(const char *s, size_t col);

/*
 * Decodes a header value (for tests and diagnostics): unfolds CRLF WSP, decodes UTF-8 or
 * US-ASCII encoded words (Q or B), and drops whitespace between adjacent encoded words
 * (RFC 2047 section 6.2). With phrase set, quoted-strings are unquoted (a display name).
 * Returns a new UTF-8 string, or NULL when an encoded word is malformed, uses another
 * charset, or decodes to invalid UTF-8.
 */
char *rfc2047_decode(const char *s, int phrase);

#endif
