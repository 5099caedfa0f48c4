/* Joint letters: the signatories of a sign-on CSV, sorted, with duplicates named. */
#include "roster/signon.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "roster/csvread.h"

struct signatory {
	char *line;  /* as printed */
	char *key;   /* folded name and country: sorting and duplicates */
	char *bare;  /* folded name without a parenthesised part: near-duplicates */
	long row;    /* the CSV line */
	int dropped; /* a duplicate of an earlier row */
};

struct signon {
	const char *path;
	struct diags *d;
	size_t org, country; /* column indexes; country may be (size_t)-1 */
	struct signatory *v;
	size_t n;
};

/* The base letter of a 2-byte UTF-8 Latin-1 letter (U+00C0..U+00FF), or 0. */
static char latin1_base(unsigned char b1, unsigned char b2)
{
	static const char map[] =
	    "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo/ouuuuyty";
	unsigned cp = ((unsigned)(b1 & 0x1F) << 6) | (b2 & 0x3F);

	if (b1 == 0xC3 && cp >= 0xC0 && cp <= 0xFF)
		return map[cp - 0xC0];
	return 0;
}

/*
 * The folded form of s: lower-case letters and digits only (accents dropped, everything else
 * left out), a leading "the " dropped; with bare, a parenthesised part is left out too.
 */
static char *fold(const char *s, int bare)
{
	struct buf b = BUF_INIT;
	int depth = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (!strncasecmp(s, "the ", 4))
		s += 4;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char c = 0;
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth)
			depth--;
		if (bare && (depth || *p == ')'))
			continue;
		if (*p < 0x80)
			c = isalnum(*p) ? (char)tolower(*p) : 0;
		else if (p[1] && (c = latin1_base(p[0], p[1])))
			c = (char)tolower((unsigned char)c), p++;
		else if ((*p & 0xC0) == 0xC0) /* another letter: kept as its bytes */
			for (buf_addc(&b, (char)*p); (p[1] & 0xC0) == 0x80; p++)
				buf_addc(&b, (char)p[1]);
		if (c)
			buf_addc(&b, c);
	}
	return buf_detach(&b);
}

static char *trimmed(const char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static int on_record(void *user, const struct csvr_record *rec)
{
	struct signon *so = user;
	struct signatory *s;
	char *org, *country = NULL, *name_key;

	if (rec->index == 0) {
		so->org = so->country = (size_t)-1;
		for (size_t i = 0; i < rec->n; i++) {
			if (!strcmp(rec->v[i], "organisation") ||
			    !strcmp(rec->v[i], "organization"))
				so->org = i;
			else if (!strcmp(rec->v[i], "country"))
				so->country = i;
		}
		if (so->org == (size_t)-1) {
			diags_add(so->d, DIAG_ERROR, so->path, rec->line, "organisation",
			          "missing column: a sign-on sheet has organisation[,country]");
			return EX_DATAERR;
		}
		return 0;
	}
	if (rec->bad || so->org >= rec->n)
		return 0;
	org = trimmed(rec->v[so->org]);
	if (!*org) {
		diags_add(so->d, DIAG_ERROR, so->path, rec->line, "organisation", "empty");
		free(org);
		return 0;
	}
	if (so->country != (size_t)-1 && so->country < rec->n)
		country = trimmed(rec->v[so->country]);
	so->v = xreallocarray(so->v, so->n + 1, sizeof(*so->v));
	s = &so->v[so->n++];
	memset(s, 0, sizeof(*s));
	s->row = rec->line;
	s->line = country && *country ? xasprintf("%s (%s)", org, country) : xstrdup(org);
	name_key = fold(org, 0);
	{
		char *ck = fold(country ? country : "", 0);
		s->key = xasprintf("%s|%s", name_key, ck);
		free(ck);
	}
	s->bare = fold(org, 1);
	free(name_key);
	free(org);
	free(country);
	return 0;
}

static int by_key(const void *a, const void *b)
{
	const struct signatory *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* 1 when a and b are names one might have typed twice for the same organisation. */
static int near(const struct signatory *a, const struct signatory *b)
{
	size_t la = strlen(a->bare), lb = strlen(b->bare);

	const char *p = a->bare, *q = b->bare;

	if (!strcmp(a->bare, b->bare))
		return 1;
	/* "Section 12" and "Section 13" are two: names whose numbers differ are not near */
	for (;; p++, q++) {
		p += strcspn(p, "0123456789");
		q += strcspn(q, "0123456789");
		if (*p != *q)
			return 0;
		if (!*p)
			break;
	}
	/* short names ("ACAT" and "ACT") are too close to tell by edits */
	return la >= 8 && lb >= 8 && str_distance(a->bare, b->bare) <= 2;
}

int signon_read(const char *path, json_t **out, struct diags *d)
{
	struct signon so = {path, d, 0, 0, NULL, 0};
	size_t e0 = d->errors;
	int rc;

	*out = NULL;
	rc = csvr_read(path, on_record, &so, d);
	if (rc == EX_OK && d->errors > e0)
		rc = EX_DATAERR;
	if (rc == EX_OK) {
		if (so.n > 1)
			qsort(so.v, so.n, sizeof(*so.v), by_key);
		for (size_t i = 1; i < so.n; i++) {
			/* sorted: the same key is next to its first occurrence */
			size_t j = i;
			while (j > 0 && so.v[j - 1].dropped)
				j--;
			if (j > 0 && !strcmp(so.v[i].key, so.v[j - 1].key)) {
				so.v[i].dropped = 1;
				diags_add(d, DIAG_WARNING, path, so.v[i].row, "organisation",
				          "'%s' is a duplicate of row %ld ('%s'); left out",
				          so.v[i].line, so.v[j - 1].row, so.v[j - 1].line);
			}
		}
		for (size_t i = 0; i < so.n; i++)
			for (size_t j = i + 1; j < so.n; j++)
				if (!so.v[i].dropped && !so.v[j].dropped &&
				    near(&so.v[i], &so.v[j]))
					diags_add(
					    d, DIAG_WARNING, path,
					    so.v[i].row > so.v[j].row ? so.v[i].row : so.v[j].row,
					    "organisation",
					    "'%s' looks like '%s' (row %ld): one organisation "
					    "twice? "
					    "both kept",
					    so.v[i].row > so.v[j].row ? so.v[i].line : so.v[j].line,
					    so.v[i].row > so.v[j].row ? so.v[j].line : so.v[i].line,
					    so.v[i].row > so.v[j].row ? so.v[j].row : so.v[i].row);
		*out = json_array();
		for (size_t i = 0; i < so.n; i++)
			if (!so.v[i].dropped)
				json_array_append_new(*out, json_string(so.v[i].line));
	}
	for (size_t i = 0; i < so.n; i++) {
		free(so.v[i].line);
		free(so.v[i].key);
		free(so.v[i].bare);
	}
	free(so.v);
	return rc;
}
