/* RFC 2047 encoded words: an encoder for header text and phrases, and a strict decoder. */
#include "mail/rfc2047.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"

#define EW_OVERHEAD 12 /* "=?UTF-8?Q?" and "?=" */
#define MAX_TOKEN   76 /* a token after "CRLF SP" still ends by column 78 */
#define MAX_QUOTED  72 /* a quoted display name libetpan puts on a line of its own */
/*
 * libetpan 1.9.4's header writer folds before a word that would pass column 72 (not 78),
 * even the first one, leaving "Subject: " alone on its line and a leading space in the
 * value; so the first token is kept within column 72.
 */
#define FIRST_LINE 72

/* RFC 5322 section 3.2.3 atext. */
static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Characters a Q-encoded word may carry literally: RFC 2047 section 5(3) in a phrase,
 * section 4.2 elsewhere. */
static int q_literal(unsigned char c, int phrase)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	if (phrase)
		return c && strchr("!*+-/", c) != NULL;
	return c > 32 && c < 127 && c != '=' && c != '?' && c != '_';
}

static size_t seq_len(const unsigned char *s, size_t i, size_t n)
{
	size_t len = s[i] < 0xC0 ? 1 : s[i] < 0xE0 ? 2 : s[i] < 0xF0 ? 3 : 4;

	return i + len <= n ? len : n - i;
}

struct word {
	const char *p;
	size_t n;
	int enc;
};

static int word_needs_encoding(const struct word *w)
{
	size_t i;

	if (w->n > MAX_TOKEN)
		return 1;
	for (i = 0; i < w->n; i++) {
		unsigned char c = (unsigned char)w->p[i];

		if (c < 0x20 || c >= 0x7F)
			return 1;
		if (c == '=' && i + 1 < w->n && w->p[i + 1] == '?')
			return 1;
	}
	return 0;
}

static int word_is_atoms(const struct word *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (!is_atext((unsigned char)w->p[i]))
			return 0;
	return 1;
}

static void emit_q(struct buf *out, const unsigned char *s, size_t n, int phrase)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	buf_adds(out, "=?UTF-8?Q?");
	for (i = 0; i < n; i++) {
		if (s[i] == ' ') {
			buf_addc(out, '_');
		} else if (q_literal(s[i], phrase)) {
			buf_addc(out, (char)s[i]);
		} else {
			char t[3] = {'=', hex[s[i] >> 4], hex[s[i] & 15]};
			buf_add(out, t, 3);
		}
	}
	buf_adds(out, "?=");
}

static void emit_b(struct buf *out, const unsigned char *s, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	buf_adds(out, "=?UTF-8?B?");
	for (i = 0; i < n; i += 3) {
		unsigned a = s[i], b = i + 1 < n ? s[i + 1] : 0, c = i + 2 < n ? s[i + 2] : 0;
		char t[4] = {tab[a >> 2], tab[((a & 3) << 4) | (b >> 4)],
		             i + 1 < n ? tab[((b & 15) << 2) | (c >> 6)] : '=',
		             i + 2 < n ? tab[c & 63] : '='};
		buf_add(out, t, 4);
	}
	buf_adds(out, "?=");
}

/*
 * Encodes one run (the words joined by single spaces) as encoded words separated by spaces.
 * Each word takes as many whole UTF-8 characters as fit: Q or B, whichever holds more.
 */
static void encode_run(struct buf *out, const char *run, size_t n, size_t first_limit, int phrase)
{
	const unsigned char *s = (const unsigned char *)run;
	size_t i = 0, limit = first_limit;

	while (i < n) {
		size_t room = limit - EW_OVERHEAD, qi = i, qlen = 0, bi = i, end;
		int use_q;

		while (qi < n) {
			size_t len = seq_len(s, qi, n), add = 0, k;

			for (k = 0; k < len; k++)
				add += s[qi + k] == ' ' || q_literal(s[qi + k], phrase) ? 1 : 3;
			if (qlen + add > room)
				break;
			qlen += add;
			qi += len;
		}
		while (bi < n) {
			size_t len = seq_len(s, bi, n);

			if ((bi + len - i + 2) / 3 * 4 > room)
				break;
			bi += len;
		}
		if (out->len > 0)
			buf_addc(out, ' ');
		/* The one that carries more of the run; for the same text, the shorter. */
		use_q = qi > bi || (qi == bi && qlen <= (bi - i + 2) / 3 * 4);
		end = use_q ? qi : bi;
		/* End at a space when one is near: a decoder that wrongly keeps the space
		 * between encoded words (Python's address parser) then splits no word. */
		if (end < n) {
			size_t sp = end;

			while (sp > i && s[sp] != ' ')
				sp--;
			if (sp > i + (end - i) / 2)
				end = sp;
		}
		if (use_q)
			emit_q(out, s + i, end - i, phrase);
		else
			emit_b(out, s + i, end - i);
		i = end;
		limit = RFC2047_MAX_WORD;
	}
}

static size_t split_words(const char *s, struct word **out)
{
	size_t n = 0, cap = 8;
	struct word *v = xmalloc(cap * sizeof(*v));

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (n == cap)
			v = xreallocarray(v, cap *= 2, sizeof(*v));
		v[n].p = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		v[n].n = (size_t)(s - v[n].p);
		v[n].enc = word_needs_encoding(&v[n]);
		n++;
	}
	*out = v;
	return n;
}

static char *encode(const char *s, size_t col, int phrase)
{
	struct word *w = NULL;
	struct buf out = BUF_INIT, run = BUF_INIT;
	size_t n, i, joined = 0;
	size_t first_limit = col + 1 < FIRST_LINE ? FIRST_LINE - col - 1 : 0;
	int any_enc = 0, atoms = 1;

	if (strpbrk(s, "\r\n") || !utf8_valid(s, strlen(s)))
		return NULL;
	if (first_limit > RFC2047_MAX_WORD || first_limit < 30)
		first_limit = RFC2047_MAX_WORD;
	n = split_words(s, &w);
	if (n > 0 && w[0].n > first_limit)
		w[0].enc = 1; /* too long for the first line: encoded words can be split */
	for (i = 0; i < n; i++) {
		any_enc |= w[i].enc;
		atoms &= word_is_atoms(&w[i]);
		joined += w[i].n + (i > 0);
	}
	if (phrase && !any_enc && !atoms) {
		size_t quoted = joined + 2;

		for (i = 0; i < n; i++) {
			size_t k;

			for (k = 0; k < w[i].n; k++)
				quoted += w[i].p[k] == '"' || w[i].p[k] == '\\';
		}
		if (quoted <= MAX_QUOTED) {
			/* RFC 5322 section 3.2.4: one quoted-string, \ and " escaped. */
			buf_addc(&out, '"');
			for (i = 0; i < n; i++) {
				size_t k;

				if (i > 0)
					buf_addc(&out, ' ');
				for (k = 0; k < w[i].n; k++) {
					if (w[i].p[k] == '"' || w[i].p[k] == '\\')
						buf_addc(&out, '\\');
					buf_addc(&out, w[i].p[k]);
				}
			}
			buf_addc(&out, '"');
			goto out;
		}
	}
	if (phrase && (any_enc || !atoms))
		for (i = 0; i < n; i++)
			w[i].enc |= !word_is_atoms(&w[i]);
	for (i = 0; i < n;) {
		if (!w[i].enc) {
			if (out.len > 0)
				buf_addc(&out, ' ');
			buf_add(&out, w[i].p, w[i].n);
			i++;
			continue;
		}
		/* RFC 2047 section 5: a run of words to encode is encoded as one text, so the
		 * spaces between them survive (whitespace between encoded words is dropped). */
		buf_reset(&run);
		for (; i < n && w[i].enc; i++) {
			if (run.len > 0)
				buf_addc(&run, ' ');
			buf_add(&run, w[i].p, w[i].n);
		}
		encode_run(&out, run.data, run.len, out.len == 0 ? first_limit : RFC2047_MAX_WORD,
		           phrase);
	}
out:
	free(w);
	buf_free(&run);
	return buf_detach(&out);
}

char *rfc2047_encode_text(const char *s, size_t col)
{
	return encode(s, col, 0);
}

char *rfc2047_encode_phrase(const char *s, size_t col)
{
	return encode(s, col, 1);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes the encoded word t[0..n) into out; -1 when it is not a well-formed one. */
static int decode_word(const char *t, size_t n, struct buf *out)
{
	const char *cs, *q1, *q2, *text;
	size_t cslen, tlen, i;

	if (n < 8 || t[0] != '=' || t[1] != '?' || t[n - 2] != '?' || t[n - 1] != '=')
		return -1;
	cs = t + 2;
	q1 = memchr(cs, '?', n - 2);
	if (!q1 || q1 + 3 > t + n - 2 || q1[2] != '?')
		return -1;
	q2 = q1 + 2;
	text = q2 + 1;
	tlen = (size_t)(t + n - 2 - text);
	if (memchr(text, '?', tlen))
		return -1;
	cslen = strcspn(cs, "*?"); /* RFC 2231 section 5: charset*language */
	if (!((cslen == 5 && strncasecmp(cs, "utf-8", 5) == 0) ||
	      (cslen == 8 && strncasecmp(cs, "us-ascii", 8) == 0)))
		return -1;
	if (q1[1] == 'Q' || q1[1] == 'q') {
		for (i = 0; i < tlen; i++) {
			if (text[i] == '_') {
				buf_addc(out, ' ');
			} else if (text[i] == '=') {
				int h, l;

				if (i + 2 >= tlen)
					return -1;
				h = hexval(text[i + 1]);
				l = hexval(text[i + 2]);
				if (h < 0 || l < 0)
					return -1;
				buf_addc(out, (char)(h << 4 | l));
				i += 2;
			} else {
				buf_addc(out, text[i]);
			}
		}
		return 0;
	}
	if (q1[1] == 'B' || q1[1] == 'b') {
		unsigned acc = 0;
		int bits = 0;

		if (tlen % 4)
			return -1;
		for (i = 0; i < tlen; i++) {
			int v;

			if (text[i] == '=') {
				if (i < tlen - 2 || (i == tlen - 2 && text[tlen - 1] != '='))
					return -1;
				break;
			}
			if ((v = b64val(text[i])) < 0)
				return -1;
			acc = acc << 6 | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				buf_addc(out, (char)(acc >> bits & 0xFF));
			}
		}
		return 0;
	}
	return -1;
}

char *rfc2047_decode(const char *s, int phrase)
{
	struct buf out = BUF_INIT, ws = BUF_INIT;
	int prev_ew = 0;

	while (*s) {
		if (s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')) {
			s += 2; /* RFC 5322 section 2.2.3: unfolding */
			continue;
		}
		if (*s == ' ' || *s == '\t') {
			buf_addc(&ws, *s++);
			continue;
		}
		if (*s == '"' && phrase) {
			buf_add(&out, ws.data, ws.len);
			buf_reset(&ws);
			for (s++; *s && *s != '"'; s++) {
				if (s[0] == '\r' && s[1] == '\n') {
					s++;
					continue;
				}
				if (*s == '\\' && s[1])
					s++;
				buf_addc(&out, *s);
			}
			if (*s != '"')
				goto fail;
			s++;
			prev_ew = 0;
			continue;
		}
		{
			size_t n = strcspn(s, phrase ? " \t\r\"" : " \t\r");

			if (n == 0) {
				buf_addc(&out, *s++); /* a CR that does not start a fold */
				continue;
			}
			if (n >= 2 && s[0] == '=' && s[1] == '?') {
				/* RFC 2047 section 6.2: whitespace between encoded words goes. */
				if (!prev_ew)
					buf_add(&out, ws.data, ws.len);
				if (decode_word(s, n, &out) < 0)
					goto fail;
				prev_ew = 1;
			} else {
				buf_add(&out, ws.data, ws.len);
				buf_add(&out, s, n);
				prev_ew = 0;
			}
			buf_reset(&ws);
			s += n;
		}
	}
	buf_add(&out, ws.data, ws.len);
	buf_free(&ws);
	if (!utf8_valid(buf_str(&out), out.len) || memchr(buf_str(&out), '\0', out.len)) {
		buf_free(&out);
		return NULL;
	}
	return buf_detach(&out);
fail:
	buf_free(&out);
	buf_free(&ws);
	return NULL;
}
