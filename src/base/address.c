/* Mail address syntax checks (RFC 5322 section 3.4.1, lengths from RFC 5321 4.5.3.1). */
#include <string.h>

#include "base/address.h"

/* atext, RFC 5322 section 3.2.3; UTF8-non-ascii joins it under RFC 6532 section 3.2. */
static int is_atext(unsigned char c, int utf8)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	if (c >= 0x80)
		return utf8;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* dot-atom-text: 1*atext *("." 1*atext). Returns NULL or the reason. */
static const char *check_dot_atom(const unsigned char *s, size_t len, int utf8, int local)
{
	if (len == 0)
		return local ? "empty local part before '@'" : "empty domain after '@'";
	if (s[0] == '.')
		return local ? "local part starts with a dot" : "domain starts with a dot";
	if (s[len - 1] == '.')
		return local ? "local part ends with a dot" : "domain ends with a dot";
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return "two dots in a row";
			continue;
		}
		if (s[i] >= 0x80 && !utf8)
			return "non-ASCII address: allowed only when the transport offers SMTPUTF8 "
			       "(RFC 6531)";
		if (!is_atext(s[i], utf8)) {
			if (s[i] == ' ' || s[i] == '\t')
				return "space inside the address";
			if (s[i] == '(' || s[i] == ')')
				return "comments are not allowed in an address";
			if (s[i] == '"')
				return "misplaced quote (a quoted local part must be quoted whole)";
			return local ? "character not allowed in the local part"
			             : "character not allowed in the domain";
		}
	}
	return NULL;
}

const char *address_check(const char *str, size_t len, int smtputf8)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t at, i, dlen;
	const char *why;

	if (len == 0)
		return "empty address";
	for (i = 0; i < len; i++) {
		if (s[i] == '<' || s[i] == '>')
			return "display name or angle brackets: give only the address "
			       "(name@domain)";
		if (s[i] == '\r' || s[i] == '\n' || s[i] == 0)
			return "line break or NUL inside the address";
	}
	if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t')
		return "space around the address";
	if (s[0] == '"') {
		/* quoted-string = DQUOTE *([FWS] qcontent) [FWS] DQUOTE (section 3.2.4) */
		for (i = 1; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\') {
				if (++i >= len || !((s[i] >= 0x21 && s[i] <= 0x7e) || s[i] == ' ' ||
				                    s[i] == '\t'))
					return "bad backslash escape in the quoted local part";
			} else if (s[i] >= 0x80) {
				if (!smtputf8)
					return "non-ASCII address: allowed only when the transport "
					       "offers "
					       "SMTPUTF8 (RFC 6531)";
			} else if (s[i] < 0x20 && s[i] != '\t') {
				return "control character in the quoted local part";
			} else if (s[i] == 0x7f) {
				return "control character in the quoted local part";
			}
		}
		if (i >= len)
			return "quoted local part is not closed";
		at = i + 1;
		if (at >= len || s[at] != '@')
			return at >= len ? "no '@'" : "text after the quoted local part before '@'";
	} else {
		const unsigned char *p = memchr(s, '@', len);
		if (!p)
			return "no '@'";
		at = (size_t)(p - s);
		if ((why = check_dot_atom(s, at, smtputf8, 1)))
			return why;
	}
	if (at > 64)
		return "local part longer than 64 octets (RFC 5321 section 4.5.3.1.1)";
	s += at + 1;
	dlen = len - at - 1;
	if (dlen > 255)
		return "domain longer than 255 octets (RFC 5321 section 4.5.3.1.2)";
	if (len > 254)
		return "address longer than 254 octets (RFC 5321 section 4.5.3.1.3 and 4.5.3.1.1)";
	if (dlen && s[0] == '[') {
		/* domain-literal = "[" *([FWS] dtext) [FWS] "]"; dtext excludes [ ] \ */
		if (s[dlen - 1] != ']')
			return "domain literal not closed with ']'";
		for (i = 1; i + 1 < dlen; i++)
			if (s[i] < 33 || s[i] > 126 || s[i] == '[' || s[i] == ']' || s[i] == '\\')
				return "character not allowed in the domain literal";
		if (dlen == 2)
			return "empty domain literal";
		return NULL;
	}
	if (memchr(s, '@', dlen))
		return "more than one '@'";
	return check_dot_atom(s, dlen, smtputf8, 0);
}

int address_split(const char *s, int (*fn)(void *user, const char *item, size_t len), void *user)
{
	size_t start = 0, i = 0;
	int quoted = 0, literal = 0, rc;

	for (;; i++) {
		char c = s[i];
		if (c && quoted) {
			if (c == '\\' && s[i + 1])
				i++;
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (c == '"' && !literal) {
			quoted = 1;
			continue;
		}
		if (c == '[')
			literal = 1;
		else if (c == ']')
			literal = 0;
		if (c && (literal || (c != ';' && c != ',')))
			continue;
		{
			size_t a = start, b = i;
			while (a < b && (s[a] == ' ' || s[a] == '\t'))
				a++;
			while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
				b--;
			if (b > a && (rc = fn(user, s + a, b - a)))
				return rc;
		}
		if (!c)
			break;
		start = i + 1;
	}
	return 0;
}
