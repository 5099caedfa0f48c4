/* A delivery's identity: keys and addresses compared the way roster validation compares them. */
#include "base/ident.h"

#include <string.h>

#include "base/xalloc.h"

/* Not tolower(): its answer depends on the locale, and the identity must not. */
static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void ident_fold_n(char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = fold(s[i]);
}

char *ident_fold(const char *s)
{
	char *out;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s);
	out = xmalloc(n + 1);
	ident_fold_n(out, s, n);
	out[n] = '\0';
	return out;
}

int ident_equal(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	for (; *a && *b; a++, b++)
		if (fold(*a) != fold(*b))
			return 0;
	return *a == *b;
}
