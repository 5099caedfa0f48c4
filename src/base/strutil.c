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
