/* Small string helpers shared by every module. */
#include "base/strutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"

/* Damerau-Levenshtein (optimal string alignment), as git's help.c suggests commands. */
size_t str_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row0 = xcalloc(lb + 1, sizeof(size_t));
	size_t *row1 = xcalloc(lb + 1, sizeof(size_t));
	size_t *row2 = xcalloc(lb + 1, sizeof(size_t));
	size_t d;

	for (size_t j = 0; j <= lb; j++)
		row1[j] = j;
	for (size_t i = 0; i < la; i++) {
		size_t *t;

		row2[0] = i + 1;
		for (size_t j = 0; j < lb; j++) {
			size_t cost = a[i] != b[j];
			size_t v = row1[j] + cost;

			if (v > row1[j + 1] + 1)
				v = row1[j + 1] + 1;
			if (v > row2[j] + 1)
				v = row2[j] + 1;
			if (i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] &&
			    v > row0[j - 1] + 1)
				v = row0[j - 1] + 1;
			row2[j + 1] = v;
		}
		t = row0;
		row0 = row1;
		row1 = row2;
		row2 = t;
	}
	d = row1[lb];
	free(row0);
	free(row1);
	free(row2);
	return d;
}

int str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

int read_file(const char *path, char **out, size_t *len)
{
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;
	FILE *fp = fopen(path, "rb");

	if (!fp)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(fp)) {
		int e = errno;
		fclose(fp);
		buf_free(&b);
		errno = e ? e : EIO;
		return -1;
	}
	fclose(fp);
	if (len)
		*len = b.len;
	*out = buf_detach(&b);
	return 0;
}

const char *str_nearest(const char *name, const char *const *cand, size_t n)
{
	const char *found = NULL;
	size_t nlen = strlen(name), best = nlen <= 3 ? 2 : 3; /* "xx" is not a typo of "en" */

	for (size_t i = 0; i < n; i++) {
		size_t d, clen;

		if (!cand[i] || !strcmp(cand[i], name))
			continue;
		clen = strlen(cand[i]);
		d = str_distance(name, cand[i]);
		if (d >= 3 && nlen >= 3 && nlen < clen && !strncasecmp(cand[i], name, nlen))
			d = 1; /* a shortened name */
		if (d >= 3 && clen >= 2 && clen < nlen && strchr("-_", name[clen]) &&
		    !strncasecmp(cand[i], name, clen))
			d = 1; /* a region or script after the code */
		if (d < best) {
			best = d;
			found = cand[i];
		}
	}
	return found;
}
