/* Quoted-printable and base64 body encoders (RFC 2045 section 6), written for speed. */
#include "mail/encode.h"

#include <string.h>

/*
 * We encode ourselves instead of handing raw text to libetpan 1.9.4: its quoted-printable
 * writer doubles a space before a line end ("a \n" becomes "a =20") and leaves whitespace at
 * the end of the text unencoded.
 */

static const char hex[] = "0123456789ABCDEF";

/* 1 when the octet may appear literally in a quoted-printable line (RFC 2045 6.7 (2)). */
static int qp_literal(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t';
}

/* Length of the UTF-8 sequence starting at s[i] (1 for ASCII or a stray byte). */
static size_t seq_len(const unsigned char *s, size_t i, size_t end)
{
	size_t k, n;

	if (s[i] < 0xC0)
		return 1;
	n = s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : 2;
	for (k = 1; k < n; k++)
		if (i + k >= end || (s[i + k] & 0xC0) != 0x80)
			return 1;
	return n;
}

/* Encodes one line (no line end) at o; returns the new end. */
static char *qp_line(char *o, const unsigned char *s, size_t n)
{
	/* RFC 2045 6.7 (5): encoded lines are at most 76 characters, "=" of a soft break
	 * included. */
	size_t col = 0, i = 0, k;
	/* "From " at a line start would be mangled by mbox writers. */
	int from = n >= 5 && memcmp(s, "From ", 5) == 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len, tl, r = 0;
		int last, lit;

		/* A run of literal octets goes out in one copy, cut where the line is full. */
		if (!(i == 0 && from))
			while (i + r < n && r <= 76 - col && qp_literal(s[i + r]))
				r++;
		if (r > 0 && i + r == n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			r--;
		if (r > 0) {
			size_t take = r;

			if (col + r > (i + r == n ? 76 : 75))
				take = col < 75 ? 75 - col : 0;
			memcpy(o, s + i, take);
			o += take;
			i += take;
			col += take;
			if (take < r) {
				memcpy(o, "=\r\n", 3);
				o += 3;
				col = 0;
			}
			continue;
		}
		len = c < 0x80 ? 1 : seq_len(s, i, n);
		last = i + len == n;

		/* 6.7 (3): no whitespace at a line end. */
		lit = len == 1 && qp_literal(c) && !((c == ' ' || c == '\t') && last) &&
		      !(i == 0 && from);
		tl = lit ? 1 : 3 * len;
		if (col + tl > (last ? 76 : 75)) {
			memcpy(o, "=\r\n", 3);
			o += 3;
			col = 0;
		}
		if (lit) {
			*o++ = (char)c;
		} else {
			for (k = 0; k < len; k++) {
				*o++ = '=';
				*o++ = hex[s[i + k] >> 4];
				*o++ = hex[s[i + k] & 15];
			}
		}
		col += tl;
		i += len;
	}
	return o;
}

void mail_qp_encode(struct buf *out, const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t start = 0;
	char *o;

	/* Worst case: every octet as =XX, a soft break per 25 octets, CRLF per LF. */
	buf_grow(out, n * 3 + n / 8 + 16);
	o = out->data + out->len;
	while (start < n) {
		const unsigned char *nl = memchr(s + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - s) : n, len = end - start;
		size_t run;

		if (nl && len > 0 && s[end - 1] == '\r')
			len--;
		/* Fast path: a short line with nothing to encode goes out as is. */
		for (run = 0; run < len && qp_literal(s[start + run]); run++)
			;
		if (run == len && len <= 76 &&
		    (len == 0 || (s[start + len - 1] != ' ' && s[start + len - 1] != '\t')) &&
		    !(len >= 5 && memcmp(s + start, "From ", 5) == 0)) {
			memcpy(o, s + start, len);
			o += len;
		} else {
			o = qp_line(o, s + start, len);
		}
		if (!nl) {
			/* A soft break: the part (and a one-part message) ends with CRLF, while
			 * the text decodes without a line end it did not have. */
			memcpy(o, "=\r\n", 3);
			o += 3;
			break;
		}
		memcpy(o, "\r\n", 2);
		o += 2;
		start = end + 1;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

void mail_base64_encode(struct buf *out, const void *data, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t i, col = 0, olen = (n + 2) / 3 * 4;
	char *o;

	buf_grow(out, olen + olen / 76 * 2 + 4);
	o = out->data + out->len;
	for (i = 0; i + 3 <= n; i += 3) {
		if (col == 76) {
			*o++ = '\r';
			*o++ = '\n';
			col = 0;
		}
		*o++ = tab[p[i] >> 2];
		*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = tab[p[i + 2] & 63];
		col += 4;
	}
	if (i < n) {
		unsigned a = p[i], b = i + 1 < n ? p[i + 1] : 0;

		if (col == 76) {
			*o++ = '\r';
			*o++ = '\n';
		}
		*o++ = tab[a >> 2];
		*o++ = tab[((a & 3) << 4) | (b >> 4)];
		*o++ = i + 1 < n ? tab[(b & 15) << 2] : '=';
		*o++ = '=';
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}
