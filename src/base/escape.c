/* Showing untrusted text safely: on a terminal, in CSV cells and in JSON strings. */
#include "base/escape.h"

#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

int esc_unsafe(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return 1;
	if (cp < 0x61c)
		return 0;
	return cp == 0x061c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f);
}

/* The code point of the well-formed sequence at s (n bytes left) and its length; 0: none. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t k = utf8_seq((const char *)s, n);

	switch (k) {
	case 1:
		*cp = s[0];
		break;
	case 2:
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		break;
	case 3:
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		break;
	case 4:
		*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		break;
	}
	return k;
}

/* Printable ASCII but the backslash: the usual byte, copied as it is everywhere. */
static int plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '\\';
}

/*
 * The one walk behind esc_term() and esc_term_width(): appends to b when b is not NULL,
 * returns the width either way, so the two can never disagree.
 */
static size_t term_walk(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = str ? strlen(str) : 0, i = 0, width = 0;
	char esc[16];

	while (i < n) {
		size_t run = i, k, e;
		uint32_t cp;

		while (run < n && plain(s[run]))
			run++;
		if (run > i) {
			if (b)
				buf_add(b, s + i, run - i);
			width += run - i;
			i = run;
			continue;
		}
		k = decode(s + i, n - i, &cp);
		if (k == 0)
			e = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", s[i]), k = 1;
		else if (cp == '\\')
			e = (size_t)snprintf(esc, sizeof(esc), "\\\\");
		else if (cp == '\t' || cp == '\n' || cp == '\r')
			e = (size_t)snprintf(esc, sizeof(esc), "\\%c",
			                     cp == '\t'   ? 't'
			                     : cp == '\n' ? 'n'
			                                  : 'r');
		else if (cp < 0x20 || cp == 0x7f)
			e = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
		else if (esc_unsafe(cp))
			e = (size_t)snprintf(esc, sizeof(esc), cp > 0xffff ? "\\U%08x" : "\\u%04x",
			                     (unsigned)cp);
		else {
			if (b)
				buf_add(b, s + i, k);
			width++;
			i += k;
			continue;
		}
		if (b)
			buf_add(b, esc, e);
		width += e;
		i += k;
	}
	return width;
}

size_t esc_term(struct buf *b, const char *s)
{
	return term_walk(b, s);
}

size_t esc_term_width(const char *s)
{
	return term_walk(NULL, s);
}

char *esc_term_dup(const char *s)
{
	struct buf b = BUF_INIT;

	if (!s)
		return NULL;
	term_walk(&b, s);
	return buf_detach(&b);
}

void esc_csv(struct buf *b, const char *s, int visible)
{
	struct buf tmp = BUF_INIT;
	const char *p;
	int formula;

	if (!s)
		return;
	if (visible) {
		term_walk(&tmp, s);
		s = buf_str(&tmp);
	}
	/* OWASP, CSV injection: these make a spreadsheet read the cell as a formula */
	formula = *s && strchr("=+-@\t\r", *s) != NULL;
	p = s + strcspn(s, ",\"\r\n");
	if (!*p && !formula) { /* the usual field needs no quotes */
		buf_add(b, s, (size_t)(p - s));
		goto out;
	}
	buf_addc(b, '"');
	if (formula)
		buf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			buf_addc(b, '"');
		buf_addc(b, *s);
	}
	buf_addc(b, '"');
out:
	buf_free(&tmp);
}

static void json_u(struct buf *b, uint32_t u)
{
	char esc[16];

	snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)u);
	buf_add(b, esc, 6);
}

void esc_json(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n = strlen((const char *)s), i = 0;

	buf_addc(b, '"');
	while (i < n) {
		size_t run = i, k;
		uint32_t cp;

		while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > i) {
			buf_add(b, s + i, run - i);
			i = run;
			continue;
		}
		k = decode(s + i, n - i, &cp);
		if (k == 0) {
			json_u(b, 0xfffd);
			i++;
			continue;
		}
		i += k;
		switch (cp) {
		case '"':
			buf_adds(b, "\\\"");
			break;
		case '\\':
			buf_adds(b, "\\\\");
			break;
		case '\b':
			buf_adds(b, "\\b");
			break;
		case '\f':
			buf_adds(b, "\\f");
			break;
		case '\n':
			buf_adds(b, "\\n");
			break;
		case '\r':
			buf_adds(b, "\\r");
			break;
		case '\t':
			buf_adds(b, "\\t");
			break;
		default:
			if (!esc_unsafe(cp)) {
				buf_add(b, s + i - k, k);
			} else if (cp > 0xffff) { /* RFC 8259 7: a UTF-16 surrogate pair */
				json_u(b, 0xd800 + ((cp - 0x10000) >> 10));
				json_u(b, 0xdc00 + ((cp - 0x10000) & 0x3ff));
			} else {
				json_u(b, cp);
			}
		}
	}
	buf_addc(b, '"');
}

/* The length of the escape or character starting esc_term()'s output at p (ASCII escapes
 * start with a backslash: \\ \t \xHH \uHHHH \UHHHHHHHH). */
static size_t shown_unit(const char *p, size_t n)
{
	size_t k;

	if (p[0] != '\\')
		return (k = utf8_seq(p, n)) ? k : 1;
	switch (p[1]) {
	case 'x':
		return 4;
	case 'u':
		return 6;
	case 'U':
		return 10;
	default:
		return 2;
	}
}

size_t esc_term_fit(struct buf *b, const char *s, size_t max)
{
	struct buf tmp = BUF_INIT;
	size_t w, used = 0, i = 0;

	if (!max)
		return 0;
	w = term_walk(&tmp, s);
	if (w <= max) {
		buf_add(b, tmp.data ? tmp.data : "", tmp.len);
		goto out;
	}
	/* every unit is one column per byte (escapes, ASCII) or one per code point */
	while (i < tmp.len) {
		size_t k = shown_unit(tmp.data + i, tmp.len - i);
		size_t cols = tmp.data[i] == '\\' ? k : 1;

		if (used + cols > max - 1)
			break;
		buf_add(b, tmp.data + i, k);
		used += cols;
		i += k;
	}
	buf_adds(b, "\xe2\x80\xa6");
	w = used + 1;
out:
	buf_free(&tmp);
	return w;
}

void esc_html_chars(struct buf *b, const char *s, int apos)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, apos ? "&#39;" : "'");
			break;
		default:
			buf_addc(b, *s);
		}
	}
}

void esc_html(struct buf *b, const char *s)
{
	struct buf tmp = BUF_INIT;

	term_walk(&tmp, s);
	esc_html_chars(b, buf_str(&tmp), 1);
	buf_free(&tmp);
}

char *esc_html_dup(const char *s)
{
	struct buf b = BUF_INIT;

	esc_html(&b, s);
	return buf_detach(&b);
}
