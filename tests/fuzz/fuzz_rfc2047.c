/*
 * libFuzzer target: RFC 2047 encode -> decode round trip. Input: one byte (bit 0: phrase or
 * text; the rest: the starting column), then the header value. Valid UTF-8 without CR/LF
 * must encode, decode back to the input with its blank runs made single spaces and its ends
 * trimmed, and keep every encoded word within 75 characters (RFC 2047 section 2) and every
 * token within 76, so that folding at any space keeps lines within 78 (RFC 5322 2.1.1).
 * Anything else must be refused. The decoder also gets the raw input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mail/rfc2047.h"

static void fail(const char *what, const char *in, const char *enc, const char *dec)
{
	fprintf(stderr, "rfc2047: %s\n  in:  [%s]\n  enc: [%s]\n  dec: [%s]\n", what, in,
	        enc ? enc : "(null)", dec ? dec : "(null)");
	abort();
}

/* Blank runs (space, tab) to one space, ends trimmed: what the encoders promise to keep. */
static char *normalise(const char *s)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, "");
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			if (b.len && b.data[b.len - 1] != ' ')
				buf_addc(&b, ' ');
			continue;
		}
		buf_addc(&b, *s);
	}
	if (b.len && b.data[b.len - 1] == ' ')
		buf_truncate(&b, b.len - 1);
	return buf_detach(&b);
}

static void check_lengths(const char *in, const char *enc, size_t col, int phrase)
{
	const char *t = enc;
	int first = 1;

	if (phrase && enc[0] == '"')
		return; /* one quoted-string, at most 72: libetpan gives it a line of its own */
	while (*t) {
		size_t n = strcspn(t, " ");

		if (n > 76)
			fail("token over 76 characters", in, enc, NULL);
		if (n >= 2 && t[0] == '=' && t[1] == '?' && n > RFC2047_MAX_WORD)
			fail("encoded word over 75 characters", in, enc, NULL);
		/* The first token stays on the header's first line (column 72 at most). */
		if (first && col <= 41 && col + 1 + n > 72)
			fail("first token passes column 72", in, enc, NULL);
		if (n == 0)
			fail("empty token (double space)", in, enc, NULL);
		first = 0;
		t += n;
		if (*t == ' ')
			t++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *enc, *dec, *want;
	size_t col;
	int phrase, valid;

	if (size < 1)
		return 0;
	phrase = data[0] & 1;
	col = data[0] >> 1; /* 0..127 */
	in = xstrndup((const char *)data + 1, size - 1);
	/* Only what a C string carries: the header value stops at a NUL. */
	valid = utf8_valid(in, strlen(in)) && !strpbrk(in, "\r\n");

	dec = rfc2047_decode(in, phrase); /* arbitrary input: must not crash */
	if (dec && !utf8_valid(dec, strlen(dec)))
		fail("decoder returned invalid UTF-8", in, NULL, dec);
	free(dec);

	enc = phrase ? rfc2047_encode_phrase(in, col) : rfc2047_encode_text(in, col);
	if (!valid) {
		if (enc)
			fail("invalid input was encoded", in, enc, NULL);
		free(in);
		return 0;
	}
	if (!enc)
		fail("valid input was refused", in, NULL, NULL);
	for (const char *c = enc; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7E)
			fail("not printable ASCII", in, enc, NULL); /* 7-bit headers only */
	check_lengths(in, enc, col, phrase);
	dec = rfc2047_decode(enc, phrase);
	want = normalise(in);
	if (!dec || strcmp(dec, want))
		fail("round trip differs", in, enc, dec);
	free(want);
	free(dec);
	free(enc);
	free(in);
	return 0;
}
