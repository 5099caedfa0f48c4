/* Translation parity check: asks, paragraphs, headings, links and names per language. */
#include "letter/parity.h"

#include <cmark.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xalloc.h"

/* What one language file's body says. */
struct shape {
	size_t numbered, bulleted, paragraphs, headings;
	char **links, **names;
	size_t nlinks, nnames;
};

static void shape_free(struct shape *s)
{
	for (size_t i = 0; i < s->nlinks; i++)
		free(s->links[i]);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->links);
	free(s->names);
	memset(s, 0, sizeof(*s));
}

/* Adds v to the set (v, n) unless it is there; takes v. */
static void set_add(char ***v, size_t *n, char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s)) {
			free(s);
			return;
		}
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The Markdown body of a letter file: what follows the first empty line (the headers end). */
static const char *body_of(const char *text)
{
	const char *p = text;

	while (*p) {
		if (*p == '\n')
			return p + 1;
		if (p[0] == '\r' && p[1] == '\n')
			return p + 2;
		p = strchr(p, '\n');
		if (!p)
			return "";
		p++;
		if (*p == '\n' || (p[0] == '\r' && p[1] == '\n'))
			return p + (*p == '\n' ? 1 : 2);
	}
	return "";
}

/* The text between {{$body}} and its {{/body}} (nesting of other blocks aside), or all. */
static char *body_block(const char *body)
{
	const char *s = strstr(body, "{{$body}}"), *e;

	if (!s)
		return xstrdup(body);
	s += strlen("{{$body}}");
	e = strstr(s, "{{/body}}");
	return e ? xstrndup(s, (size_t)(e - s)) : xstrdup(s);
}

/* name without "_LANG" at its end. */
static char *unsuffixed(const char *name, size_t n, const char *lang)
{
	size_t l = strlen(lang);

	if (n > l + 1 && name[n - l - 1] == '_' && !strncmp(name + n - l, lang, l))
		n -= l + 1;
	return xstrndup(name, n);
}

/*
 * Records the Mustache names of block in s and writes into md the Markdown with the tags
 * replaced: a variable by a word, a section or comment tag by nothing, a line holding only
 * such tags by nothing at all (so a conditional ask stays an item of its list).
 */
static void scan_tags(const char *block, const char *lang, struct shape *s, struct buf *md)
{
	static const char *const form[] = {"excellency", "salutation", NULL};
	const char *p = block;

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) + 1 : strlen(p);
		struct buf line = BUF_INIT;
		int tags = 0, text = 0;
		const char *q = p;

		while (q < p + len) {
			const char *o = strstr(q, "{{");
			const char *c, *name;
			size_t n;
			char kind;
			if (!o || o >= p + len) {
				for (const char *t = q; t < p + len; t++)
					if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r')
						text = 1;
				buf_add(&line, q, (size_t)(p + len - q));
				break;
			}
			for (const char *t = q; t < o; t++)
				if (*t != ' ' && *t != '\t')
					text = 1;
			buf_add(&line, q, (size_t)(o - q));
			c = strstr(o + 2, "}}");
			if (!c) { /* not a tag: the letter loaded, so this cannot be; keep the text */
				buf_add(&line, o, (size_t)(p + len - o));
				text = 1;
				break;
			}
			name = o + 2;
			kind = *name;
			if (strchr("#^/!>&{<$=", kind))
				name++;
			while (*name == ' ')
				name++;
			n = (size_t)(c - name);
			while (n && (name[n - 1] == ' ' || name[n - 1] == '}'))
				n--;
			q = c + 2 + (kind == '{' && c[2] == '}');
			if (kind == '#' || kind == '^' || kind == '/' || kind == '!' ||
			    kind == '=' || kind == '<' || kind == '$') {
				tags = 1;
				if (kind == '/' || kind == '!' || kind == '=' || kind == '<' ||
				    kind == '$')
					continue;
			} else {
				buf_adds(&line, "VAR");
				text = 1;
			}
			if (kind == '>' || (n == 1 && *name == '.'))
				continue;
			{
				char *u = unsuffixed(name, n, lang);
				int skip = 0;
				for (size_t i = 0; form[i]; i++)
					skip |= !strcmp(u, form[i]);
				if (skip)
					free(u);
				else
					set_add(&s->names, &s->nnames, u);
			}
		}
		if (text || !tags)
			buf_adds(md, buf_str(&line));
		buf_free(&line);
		p += len;
	}
}

static void count(cmark_node *n, struct shape *s, int in_list)
{
	for (cmark_node *c = cmark_node_first_child(n); c; c = cmark_node_next(c)) {
		switch (cmark_node_get_type(c)) {
		case CMARK_NODE_ITEM:
			if (cmark_node_get_list_type(n) == CMARK_ORDERED_LIST)
				s->numbered++;
			else
				s->bulleted++;
			count(c, s, 1);
			continue;
		case CMARK_NODE_PARAGRAPH:
			if (!in_list)
				s->paragraphs++;
			break;
		case CMARK_NODE_HEADING:
			s->headings++;
			break;
		case CMARK_NODE_LINK: {
			const char *u = cmark_node_get_url(c);
			set_add(&s->links, &s->nlinks, xstrdup(u ? u : ""));
			break;
		}
		default:
			break;
		}
		count(c, s, in_list);
	}
}

/* Reads dir/LANG.md and fills s; 0, or -1 when the file cannot be read. */
static int shape_of(const char *dir, const char *lang, struct shape *s)
{
	char *path = xasprintf("%s/%s.md", dir, lang), *text = NULL, *block;
	size_t len;
	struct buf md = BUF_INIT;
	cmark_node *doc;

	if (read_file(path, &text, &len) != 0) {
		free(path);
		return -1;
	}
	free(path);
	block = body_block(body_of(text));
	scan_tags(block, lang, s, &md);
	doc = cmark_parse_document(buf_str(&md), md.len, 0);
	if (!doc)
		abort(); /* cmark only fails when out of memory */
	count(doc, s, 0);
	cmark_node_free(doc);
	if (s->nlinks > 1) /* qsort() wants a non-NULL base even for nothing */
		qsort(s->links, s->nlinks, sizeof(*s->links), cmp_str);
	if (s->nnames > 1)
		qsort(s->names, s->nnames, sizeof(*s->names), cmp_str);
	buf_free(&md);
	free(block);
	free(text);
	return 0;
}

/* Each string of a that b lacks: one problem. */
static size_t missing(char **a, size_t na, char **b, size_t nb, const char *what, const char *fa,
                      const char *fb, const char *file, enum diag_level level, struct diags *d)
{
	size_t n = 0;

	for (size_t i = 0; i < na; i++) {
		int found = 0;
		for (size_t j = 0; j < nb && !found; j++)
			found = !strcmp(a[i], b[j]);
		if (!found) {
			diags_add(d, level, file, 0, NULL, "%s uses %s '%s', %s does not", fa, what,
			          a[i], fb);
			n++;
		}
	}
	return n;
}

size_t letter_parity(const struct letter *l, enum diag_level level, struct diags *d)
{
	const char *dir = letter_path(l);
	size_t nl, problems = 0;
	const char *const *langs = letter_languages(l, &nl);
	struct shape ref = {0};
	struct stat st;
	char *fref;

	if (nl < 2 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0;
	fref = xasprintf("%s.md", langs[0]);
	if (shape_of(dir, langs[0], &ref) != 0) {
		diags_add(d, level, dir, 0, NULL, "cannot read %s again to compare the languages",
		          fref);
		free(fref);
		return 1;
	}
	for (size_t i = 1; i < nl; i++) {
		struct shape s = {0};
		char *f = xasprintf("%s.md", langs[i]);
		char *file = xasprintf("%s/%s", dir, f);
		static const char *const what[] = {"numbered asks", "bulleted asks", "paragraphs",
		                                   "headings"};
		if (shape_of(dir, langs[i], &s) != 0) {
			diags_add(d, level, file, 0, NULL,
			          "cannot be read again to compare with %s", fref);
			problems++;
		} else {
			size_t a[] = {ref.numbered, ref.bulleted, ref.paragraphs, ref.headings};
			size_t b[] = {s.numbered, s.bulleted, s.paragraphs, s.headings};
			for (size_t k = 0; k < 4; k++)
				if (a[k] != b[k]) {
					diags_add(d, level, file, 0, NULL,
					          "%s has %zu %s, %s has %zu", fref, a[k], what[k],
					          f, b[k]);
					problems++;
				}
			problems += missing(ref.links, ref.nlinks, s.links, s.nlinks, "the link",
			                    fref, f, file, level, d);
			problems += missing(s.links, s.nlinks, ref.links, ref.nlinks, "the link", f,
			                    fref, file, level, d);
			problems += missing(ref.names, ref.nnames, s.names, s.nnames, "the name",
			                    fref, f, file, level, d);
			problems += missing(s.names, s.nnames, ref.names, ref.nnames, "the name", f,
			                    fref, file, level, d);
		}
		shape_free(&s);
		free(f);
		free(file);
	}
	shape_free(&ref);
	free(fref);
	return problems;
}
