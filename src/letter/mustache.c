/* Mustache engine: compiles a template into a tree once, renders it against jansson values. */
#include "letter/mustache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/utf8.h"
#include "base/xalloc.h"

/* Deeper nesting of partials and parents than this is taken for endless recursion. */
#define MAX_DEPTH 100
/*
 * Rendered bytes per call: a letter is kilobytes. Depth alone does not stop a template that
 * multiplies itself (a block or partial used twice at each of 100 levels, sections nested
 * over lists): found by tests/fuzz/fuzz_mustache.
 */
#define MAX_OUTPUT (16 * 1024 * 1024)

enum tok_type {
	T_TEXT,
	T_VAR,
	T_RAW,
	T_SECTION,
	T_INVERTED,
	T_CLOSE,
	T_PARTIAL,
	T_PARENT,
	T_BLOCK,
	T_COMMENT,
	T_DELIM,
};

/*
 * One piece of source. A tag on a standalone line also removes the whitespace before it and
 * the line end after it: [ws_start, start) and [end, ws_end) produce no output.
 */
struct tok {
	enum tok_type type;
	size_t start, end;
	size_t ws_start, ws_end;
	char *name;
	long line;
	size_t match; /* section-like openers and closers: index of the other end */
	int standalone;
};

enum node_type { N_TEXT, N_VAR, N_RAW, N_SECTION, N_INVERTED, N_PARTIAL, N_PARENT, N_BLOCK };

struct node {
	enum node_type type;
	char *str;  /* text, or the tag's name as written ("a.b", ".") */
	size_t len; /* of str */
	char **path;
	size_t npath; /* 0 for the implicit iterator "." */
	const char *file;
	long line;
	int standalone, close_standalone; /* for residual write-back */
	/*
	 * Partial and parent: the indentation of their standalone line (NULL when inline).
	 * Block: what its content is indented by where it is expanded (NULL: nothing).
	 */
	char *indent;
	struct node *kids;
	size_t nkids, cap;
};

struct mustache_template {
	char *name;
	struct node root;
};

struct partial_entry {
	char *name;
	struct mustache_template *t; /* NULL: missing (err NULL) or did not compile (err set) */
	char *err;
};

/*
 * Renders may run on several threads at once (campaign/merge.c): the cache is filled under
 * a lock, and its entries are allocated one by one so that a pointer handed out stays
 * valid while the array grows.
 */
struct mustache_partials {
	mustache_loader_fn fn;
	void *user;
	struct partial_entry **v;
	size_t n, cap;
	pthread_mutex_t lock;
};

/* ---------------------------------------------------------------------------------------- */
/* Compilation                                                                                */

struct cstate {
	const char *src;
	size_t len;
	const char *name;
	int first_line;
	struct tok *toks;
	size_t ntoks, cap;
	char **errstr;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static long line_of(const struct cstate *cs, size_t pos)
{
	long line = cs->first_line;

	for (size_t i = 0; i < pos && i < cs->len; i++)
		if (cs->src[i] == '\n')
			line++;
	return line;
}

static struct tok *add_tok(struct cstate *cs, enum tok_type type, size_t start, size_t end)
{
	struct tok *t;

	if (cs->ntoks == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 32;
		cs->toks = xreallocarray(cs->toks, cs->cap, sizeof(*cs->toks));
	}
	t = &cs->toks[cs->ntoks++];
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->start = t->ws_start = start;
	t->end = t->ws_end = end;
	t->match = (size_t)-1;
	return t;
}

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	return memmem(hay, hlen, needle, nlen);
}

/* Trims blanks (and line ends, for padding across lines) around [*s, *e). */
static void trim(const char *src, size_t *s, size_t *e)
{
	while (*s < *e && strchr(" \t\r\n", src[*s]))
		(*s)++;
	while (*e > *s && strchr(" \t\r\n", src[*e - 1]))
		(*e)--;
}

static int set_delims(struct cstate *cs, size_t s, size_t e, long line, char *otag, char *ctag)
{
	size_t a, b;

	trim(cs->src, &s, &e);
	a = s;
	while (a < e && !strchr(" \t\r\n", cs->src[a]))
		a++;
	b = a;
	while (b < e && strchr(" \t\r\n", cs->src[b]))
		b++;
	if (a == s || b == a || b == e || a - s > 15 || e - b > 15 ||
	    memchr(cs->src + b, ' ', e - b) || memchr(cs->src + b, '\t', e - b) ||
	    memchr(cs->src + s, '=', a - s) || memchr(cs->src + b, '=', e - b))
		return error_set(cs->errstr, EX_DATAERR,
		                 "%s:%ld: bad set-delimiter tag (want {{=OPEN CLOSE=}})", cs->name,
		                 line);
	memcpy(otag, cs->src + s, a - s);
	otag[a - s] = '\0';
	memcpy(ctag, cs->src + b, e - b);
	ctag[e - b] = '\0';
	return EX_OK;
}

static int tokenize(struct cstate *cs)
{
	char otag[16] = "{{", ctag[16] = "}}";
	size_t pos = 0;
	long line = cs->first_line;
	size_t counted = 0; /* line is the line of offset counted */

	while (pos < cs->len) {
		const char *o = find(cs->src + pos, cs->len - pos, otag, strlen(otag));
		size_t olen = strlen(otag), clen = strlen(ctag);
		size_t ts, p, cs_, ce, end;
		const char *c;
		enum tok_type type;
		struct tok *t;

		if (!o) {
			add_tok(cs, T_TEXT, pos, cs->len);
			break;
		}
		ts = (size_t)(o - cs->src);
		if (ts > pos)
			add_tok(cs, T_TEXT, pos, ts);
		for (; counted < ts; counted++)
			if (cs->src[counted] == '\n')
				line++;
		p = ts + olen;
		type = T_VAR;
		if (p < cs->len) {
			switch (cs->src[p]) {
			case '{':
				type = T_RAW;
				break;
			case '&':
				type = T_RAW;
				break;
			case '#':
				type = T_SECTION;
				break;
			case '^':
				type = T_INVERTED;
				break;
			case '/':
				type = T_CLOSE;
				break;
			case '>':
				type = T_PARTIAL;
				break;
			case '<':
				type = T_PARENT;
				break;
			case '$':
				type = T_BLOCK;
				break;
			case '!':
				type = T_COMMENT;
				break;
			case '=':
				type = T_DELIM;
				break;
			default:
				break;
			}
		}
		if (type != T_VAR)
			p++;
		cs_ = p;
		if (type == T_RAW && cs->src[p - 1] == '{') {
			char close[20];
			snprintf(close, sizeof(close), "}%s", ctag);
			c = find(cs->src + p, cs->len - p, close, clen + 1);
			ce = c ? (size_t)(c - cs->src) : 0;
			end = ce + clen + 1;
		} else if (type == T_DELIM) {
			char close[20];
			snprintf(close, sizeof(close), "=%s", ctag);
			c = find(cs->src + p, cs->len - p, close, clen + 1);
			ce = c ? (size_t)(c - cs->src) : 0;
			end = ce + clen + 1;
		} else {
			c = find(cs->src + p, cs->len - p, ctag, clen);
			ce = c ? (size_t)(c - cs->src) : 0;
			end = ce + clen;
		}
		if (!c)
			return error_set(
			    cs->errstr, EX_DATAERR, "%s:%ld: unclosed tag '%.*s'", cs->name, line,
			    (int)(cs->len - ts > 20 ? 20 : cs->len - ts), cs->src + ts);
		t = add_tok(cs, type, ts, end);
		t->line = line;
		if (type == T_DELIM) {
			if (set_delims(cs, cs_, ce, line, otag, ctag) != EX_OK)
				return EX_DATAERR;
		} else if (type != T_COMMENT) {
			size_t s = cs_, e = ce;

			trim(cs->src, &s, &e);
			if (s == e)
				return error_set(cs->errstr, EX_DATAERR, "%s:%ld: empty tag name",
				                 cs->name, line);
			for (size_t k = s; k < e; k++)
				if (strchr(" \t\r\n", cs->src[k]))
					return error_set(cs->errstr, EX_DATAERR,
					                 "%s:%ld: bad tag name '%.*s'", cs->name,
					                 line, (int)(e - s), cs->src + s);
			t->name = xstrndup(cs->src + s, e - s);
		}
		pos = end;
	}
	return EX_OK;
}

/* Pairs sections, inverted sections, parents and blocks with their closing tags. */
static int match_sections(struct cstate *cs)
{
	size_t *stack = NULL, n = 0;
	int rc = EX_OK;

	stack = xreallocarray(NULL, cs->ntoks + 1, sizeof(*stack));
	for (size_t i = 0; i < cs->ntoks; i++) {
		struct tok *t = &cs->toks[i];

		switch (t->type) {
		case T_SECTION:
		case T_INVERTED:
		case T_PARENT:
		case T_BLOCK:
			stack[n++] = i;
			break;
		case T_CLOSE:
			if (!n) {
				rc = error_set(cs->errstr, EX_DATAERR,
				               "%s:%ld: closing tag '%s' without an opening tag",
				               cs->name, t->line, t->name);
				goto out;
			}
			if (strcmp(cs->toks[stack[n - 1]].name, t->name)) {
				struct tok *o = &cs->toks[stack[n - 1]];
				rc = error_set(
				    cs->errstr, EX_DATAERR,
				    "%s:%ld: closing tag '%s' does not match section '%s' "
				    "opened on line %ld",
				    cs->name, t->line, t->name, o->name, o->line);
				goto out;
			}
			t->match = stack[--n];
			cs->toks[t->match].match = i;
			break;
		default:
			break;
		}
	}
	if (n) {
		struct tok *o = &cs->toks[stack[n - 1]];
		rc = error_set(cs->errstr, EX_DATAERR, "%s:%ld: unclosed section '%s'", cs->name,
		               o->line, o->name);
	}
out:
	free(stack);
	return rc;
}

/* The start of the line holding pos when only blanks precede pos on it, else (size_t)-1. */
static size_t blank_before(const struct cstate *cs, size_t pos)
{
	while (pos > 0 && is_blank(cs->src[pos - 1]))
		pos--;
	if (pos == 0 || cs->src[pos - 1] == '\n')
		return pos;
	return (size_t)-1;
}

/* Just past the line end after pos when only blanks follow pos on its line, else -1. */
static size_t blank_after(const struct cstate *cs, size_t pos)
{
	while (pos < cs->len && is_blank(cs->src[pos]))
		pos++;
	if (pos == cs->len)
		return pos;
	if (cs->src[pos] == '\n')
		return pos + 1;
	if (cs->src[pos] == '\r' && pos + 1 < cs->len && cs->src[pos + 1] == '\n')
		return pos + 2;
	return (size_t)-1;
}

static int can_stand_alone(enum tok_type t)
{
	return t != T_TEXT && t != T_VAR && t != T_RAW;
}

/*
 * Standalone lines (spec: a line holding only one such tag and blanks is removed). Parents
 * and blocks also pair up: {{<p}}{{/p}}, {{$b}}{{/b}}, {{<p}}{{$b}} and {{/b}}{{/p}} on one
 * line stand alone together (inheritance.json, "Standalone parent/block").
 */
static void find_standalone(struct cstate *cs)
{
	for (size_t i = 0; i < cs->ntoks; i++) {
		struct tok *t = &cs->toks[i], *u;
		size_t ls, le;

		if (!can_stand_alone(t->type))
			continue;
		ls = blank_before(cs, t->start);
		if (ls == (size_t)-1)
			continue;
		le = blank_after(cs, t->end);
		if (le != (size_t)-1) {
			t->standalone = 1;
			t->ws_start = ls;
			t->ws_end = le;
			continue;
		}
		if (i + 1 >= cs->ntoks)
			continue;
		u = &cs->toks[i + 1];
		if (u->start != t->end)
			continue;
		le = blank_after(cs, u->end);
		if (le == (size_t)-1)
			continue;
		if (t->type == T_PARENT && u->type == T_CLOSE && u->match == i) {
			t->standalone = u->standalone = 1;
			t->ws_start = ls;
			u->ws_end = le;
		} else if (t->type == T_BLOCK && u->type == T_CLOSE && u->match == i) {
			/* the line end stays: the block's content replaces only its indentation */
			t->standalone = u->standalone = 1;
			t->ws_start = ls;
		} else if (t->type == T_PARENT && u->type == T_BLOCK) {
			t->standalone = u->standalone = 1;
			t->ws_start = ls;
			u->ws_end = le;
		} else if (t->type == T_CLOSE && u->type == T_CLOSE &&
		           cs->toks[t->match].type == T_BLOCK &&
		           cs->toks[u->match].type == T_PARENT) {
			t->standalone = u->standalone = 1;
			t->ws_start = ls;
			u->ws_end = le;
		} else {
			continue;
		}
		i++;
	}
}

static struct node *add_node(struct node *parent, enum node_type type, const char *file, long line)
{
	struct node *n;

	if (parent->nkids == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 8;
		parent->kids = xreallocarray(parent->kids, parent->cap, sizeof(*parent->kids));
	}
	n = &parent->kids[parent->nkids++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->file = file;
	n->line = line;
	return n;
}

static void set_name(struct node *n, const char *name)
{
	const char *p = name;

	n->str = xstrdup(name);
	n->len = strlen(name);
	if (!strcmp(name, "."))
		return;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		n->path = xreallocarray(n->path, n->npath + 1, sizeof(*n->path));
		n->path[n->npath++] = xstrndup(p, l);
		if (!dot)
			break;
		p = dot + 1;
	}
}

/* Appends src[s, e) as text, dropping up to mlen blanks at the start of each line in it. */
static void add_text(struct cstate *cs, struct node *parent, size_t s, size_t e, size_t mlen,
                     const char *file)
{
	struct buf b = BUF_INIT;
	struct node *n;

	while (s < e) {
		size_t nl;
		const char *q;

		if (mlen && (s == 0 || cs->src[s - 1] == '\n'))
			for (size_t k = 0; k < mlen && s < e && is_blank(cs->src[s]); k++)
				s++;
		q = memchr(cs->src + s, '\n', e - s);
		nl = q ? (size_t)(q - cs->src) + 1 : e;
		buf_add(&b, cs->src + s, nl - s);
		s = nl;
	}
	if (!b.len) {
		buf_free(&b);
		return;
	}
	n = add_node(parent, N_TEXT, file, 0);
	n->len = b.len;
	n->str = buf_detach(&b);
}

/* The blanks common to the start of every non-blank line of src[s, e). */
static size_t common_margin(const struct cstate *cs, size_t s, size_t e, size_t *mstart)
{
	size_t best = (size_t)-1, bstart = s;

	while (s < e) {
		size_t w = s, nl;
		const char *q = memchr(cs->src + s, '\n', e - s);

		nl = q ? (size_t)(q - cs->src) + 1 : e;
		while (w < nl && is_blank(cs->src[w]))
			w++;
		if (w < nl && cs->src[w] != '\n' && cs->src[w] != '\r') {
			if (best == (size_t)-1) {
				best = w - s;
				bstart = s;
			} else {
				size_t k = 0;
				while (k < best && k < w - s &&
				       cs->src[s + k] == cs->src[bstart + k])
					k++;
				best = k;
			}
		}
		s = nl;
	}
	*mstart = bstart;
	return best == (size_t)-1 ? 0 : best;
}

/* The part of the blanks src[s, e) past the first mlen; NULL when nothing is left. */
static char *indent_past(const struct cstate *cs, size_t s, size_t e, size_t mlen)
{
	s = s + mlen < e ? s + mlen : e;
	return s < e ? xstrndup(cs->src + s, e - s) : NULL;
}

/* Builds the nodes of toks[from, to) into parent; mlen blanks are stripped from each line. */
static void build(struct cstate *cs, size_t from, size_t to, struct node *parent, size_t mlen,
                  const char *file)
{
	for (size_t i = from; i < to; i++) {
		struct tok *t = &cs->toks[i];
		struct node *n;
		size_t s, e;

		switch (t->type) {
		case T_TEXT:
			s = t->start;
			e = t->end;
			if (i > 0 && cs->toks[i - 1].ws_end > s)
				s = cs->toks[i - 1].ws_end;
			if (i + 1 < cs->ntoks && cs->toks[i + 1].ws_start < e)
				e = cs->toks[i + 1].ws_start;
			if (s < e)
				add_text(cs, parent, s, e, mlen, file);
			break;
		case T_VAR:
		case T_RAW:
			n = add_node(parent, t->type == T_VAR ? N_VAR : N_RAW, file, t->line);
			set_name(n, t->name);
			break;
		case T_PARTIAL:
			n = add_node(parent, N_PARTIAL, file, t->line);
			set_name(n, t->name);
			if (t->standalone)
				n->indent = indent_past(cs, t->ws_start, t->start, mlen);
			n->standalone = t->standalone;
			break;
		case T_SECTION:
		case T_INVERTED:
		case T_PARENT:
			n = add_node(parent,
			             t->type == T_SECTION    ? N_SECTION
			             : t->type == T_INVERTED ? N_INVERTED
			                                     : N_PARENT,
			             file, t->line);
			set_name(n, t->name);
			n->standalone = t->standalone;
			n->close_standalone = cs->toks[t->match].standalone;
			if (t->type == T_PARENT && t->standalone)
				n->indent = indent_past(cs, t->ws_start, t->start, mlen);
			build(cs, i + 1, t->match, n, mlen, file);
			i = t->match;
			break;
		case T_BLOCK: {
			size_t cs0 = t->ws_end, ce = cs->toks[t->match].ws_start;
			size_t m2 = mlen, mstart;

			n = add_node(parent, N_BLOCK, file, t->line);
			set_name(n, t->name);
			n->standalone = t->standalone;
			if (t->standalone && (cs0 == 0 || cs->src[cs0 - 1] == '\n')) {
				/*
				 * inheritance.json, "Block reindentation": the indentation of a
				 * standalone block's content is removed where it is defined and
				 * added where it is expanded.
				 */
				size_t m = common_margin(cs, cs0, ce, &mstart);
				if (m > mlen) {
					m2 = m;
					n->indent = xstrndup(cs->src + mstart + mlen, m - mlen);
				}
			}
			if (t->standalone && !n->indent) {
				size_t ls = blank_before(cs, t->start);
				if (ls != (size_t)-1)
					n->indent = indent_past(cs, ls, t->start, mlen);
			}
			build(cs, i + 1, t->match, n, m2, file);
			i = t->match;
			break;
		}
		case T_CLOSE:
		case T_COMMENT:
		case T_DELIM:
			break;
		}
	}
}

static void node_clear(struct node *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_clear(&n->kids[i]);
	free(n->kids);
	for (size_t i = 0; i < n->npath; i++)
		free(n->path[i]);
	free(n->path);
	free(n->str);
	free(n->indent);
}

int mustache_compile(const char *src, size_t len, const char *name, int first_line,
                     struct mustache_template **out, char **errstr)
{
	struct cstate cs = {0};
	struct mustache_template *t = NULL;
	size_t bad;
	int rc;

	*out = NULL;
	cs.src = src;
	cs.len = len;
	cs.name = name ? name : "template";
	cs.first_line = first_line > 0 ? first_line : 1;
	cs.errstr = errstr;
	bad = utf8_scan(src, len);
	if (bad < len) {
		rc = error_set(errstr, EX_DATAERR, "%s:%ld: invalid UTF-8 (byte 0x%02x)", cs.name,
		               line_of(&cs, bad), (unsigned char)src[bad]);
		goto out;
	}
	if ((rc = tokenize(&cs)) != EX_OK || (rc = match_sections(&cs)) != EX_OK)
		goto out;
	find_standalone(&cs);
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(cs.name);
	build(&cs, 0, cs.ntoks, &t->root, 0, t->name);
	*out = t;
	rc = EX_OK;
out:
	for (size_t i = 0; i < cs.ntoks; i++)
		free(cs.toks[i].name);
	free(cs.toks);
	return rc;
}

void mustache_free(struct mustache_template *t)
{
	if (!t)
		return;
	node_clear(&t->root);
	free(t->name);
	free(t);
}

const char *mustache_name(const struct mustache_template *t)
{
	return t->name;
}

static void walk_sections(const struct node *n, mustache_section_fn fn, void *user)
{
	for (size_t i = 0; i < n->nkids; i++) {
		const struct node *k = &n->kids[i];
		if (k->type == N_SECTION || k->type == N_INVERTED)
			fn(user, k->str, k->line, k->type == N_INVERTED);
		walk_sections(k, fn, user);
	}
}

void mustache_sections(const struct mustache_template *t, mustache_section_fn fn, void *user)
{
	walk_sections(&t->root, fn, user);
}

static void walk_names(const struct node *n, mustache_name_fn fn, void *user)
{
	for (size_t i = 0; i < n->nkids; i++) {
		const struct node *k = &n->kids[i];
		if (k->type == N_VAR || k->type == N_RAW || k->type == N_SECTION ||
		    k->type == N_INVERTED)
			fn(user, k->str, k->line);
		walk_names(k, fn, user);
	}
}

void mustache_names(const struct mustache_template *t, mustache_name_fn fn, void *user)
{
	walk_names(&t->root, fn, user);
}

/* ---------------------------------------------------------------------------------------- */
/* Partials                                                                                   */

struct mustache_partials *mustache_partials_new(mustache_loader_fn fn, void *user)
{
	struct mustache_partials *p = xcalloc(1, sizeof(*p));

	p->fn = fn;
	p->user = user;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void mustache_partials_free(struct mustache_partials *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i]->name);
		mustache_free(p->v[i]->t);
		free(p->v[i]->err);
		free(p->v[i]);
	}
	free(p->v);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* The compiled partial NAME, loaded and compiled on first use; NULL when missing or bad. */
static const struct partial_entry *partial_get(struct mustache_partials *p, const char *name)
{
	struct partial_entry *e;
	char *src = NULL;
	size_t len = 0;

	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++) {
		if (!strcmp(p->v[i]->name, name)) {
			e = p->v[i];
			goto out;
		}
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->v = xreallocarray(p->v, p->cap, sizeof(*p->v));
	}
	e = p->v[p->n++] = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	if (p->fn && p->fn(p->user, name, &src, &len) == 0) {
		if (mustache_compile(src ? src : "", src ? len : 0, name, 1, &e->t, &e->err) !=
		    EX_OK)
			mustache_free(e->t), e->t = NULL;
		free(src);
	}
out:
	pthread_mutex_unlock(&p->lock);
	return e;
}

/* ---------------------------------------------------------------------------------------- */
/* Escapes                                                                                    */

static void escape_html(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			buf_adds(out, "&amp;");
			break;
		case '<':
			buf_adds(out, "&lt;");
			break;
		case '>':
			buf_adds(out, "&gt;");
			break;
		case '"':
			buf_adds(out, "&quot;");
			break;
		default:
			buf_addc(out, s[i]);
			break;
		}
	}
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (unsigned char)c >= 0x80;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * 1 when text appended to out would start a Markdown block: the current line holds only
 * blanks and container markers (block quote '>', list item "- ", "+ ", "* ", "1. ", "1) ").
 */
static int md_block_start(const struct buf *out)
{
	size_t i = out->len;
	const char *d = out->data;

	while (i > 0 && d[i - 1] != '\n')
		i--;
	while (i < out->len) {
		size_t j;

		if (is_blank(d[i]) || d[i] == '>') {
			i++;
			continue;
		}
		if ((d[i] == '-' || d[i] == '+' || d[i] == '*') && i + 1 < out->len &&
		    is_blank(d[i + 1])) {
			i += 2;
			continue;
		}
		for (j = i; j < out->len && j - i < 9 && is_digit(d[j]); j++)
			;
		if (j > i && j + 1 < out->len && (d[j] == '.' || d[j] == ')') &&
		    is_blank(d[j + 1])) {
			i = j + 2;
			continue;
		}
		return 0;
	}
	return 1;
}

/* 1 when s[i..n) from i is at a line end for Markdown's purposes (or the value ends). */
static int md_eol(const char *s, size_t n, size_t i)
{
	return i >= n || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r';
}

/*
 * CommonMark (0.30) escapes with backslashes (section 2.4), contextually so that ordinary
 * text stays as it is: inline openers everywhere (emphasis 6.2, code spans 6.1, links and
 * images 6.3-6.4, autolinks 6.5, raw HTML 6.6, entities 2.5), block markers only at the start
 * of a line (headings 4.2-4.3, thematic breaks 4.1, block quotes 5.1, list items 5.2, fences
 * 4.5); leading blanks of a line are dropped so no indented code block (4.4) can start, and
 * trailing ones so no hard line break (6.7) either.
 */
static void escape_markdown(struct buf *out, const char *s, size_t n, int block_start)
{
	size_t start = out->len;
	int ls = block_start;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			/* two blanks before a line end would be a hard line break (6.7) */
			while (out->len > start && is_blank(out->data[out->len - 1]))
				out->len--;
			buf_addc(out, '\n');
			ls = 1;
			continue;
		}
		if (ls) {
			if (is_blank(c))
				continue;
			ls = 0;
			if (c == '#' || c == '>' || (c == '~' && i + 1 < n && s[i + 1] == '~') ||
			    ((c == '-' || c == '+' || c == '=') &&
			     (md_eol(s, n, i + 1) || s[i + 1] == c))) {
				buf_addc(out, '\\');
				buf_addc(out, c);
				continue;
			}
			if (is_digit(c)) {
				size_t j = i;
				while (j < n && j - i < 10 && is_digit(s[j]))
					j++;
				if (j < n && (s[j] == '.' || s[j] == ')') && md_eol(s, n, j + 1)) {
					buf_add(out, s + i, j - i);
					buf_addc(out, '\\');
					buf_addc(out, s[j]);
					i = j;
					continue;
				}
			}
		}
		switch (c) {
		case '\\':
		case '`':
		case '*':
		case '[':
		case ']':
		case '|':
			buf_addc(out, '\\');
			break;
		case '_':
			/* intraword '_' opens and closes nothing (6.2, rules 2 and 4) */
			if (!(i > 0 && i + 1 < n && is_alnum(s[i - 1]) && is_alnum(s[i + 1])))
				buf_addc(out, '\\');
			break;
		case '<':
			if (!md_eol(s, n, i + 1))
				buf_addc(out, '\\');
			break;
		case '&': {
			size_t j = i + 1;
			if (j < n && s[j] == '#')
				j++;
			while (j < n && is_alnum(s[j]))
				j++;
			if (j > i + 1 && (j == n || s[j] == ';'))
				buf_addc(out, '\\');
			break;
		}
		case '#': {
			/* an ATX heading's closing sequence: " ###" at the end */
			size_t j = i;
			while (j < n && s[j] == '#')
				j++;
			if (j == n && (i == 0 || is_blank(s[i - 1])))
				buf_addc(out, '\\');
			break;
		}
		default:
			break;
		}
		buf_addc(out, c);
	}
}

void mustache_escape(struct buf *out, enum mustache_escape e, const char *s, size_t len)
{
	switch (e) {
	case MUSTACHE_ESCAPE_HTML:
		escape_html(out, s, len);
		break;
	case MUSTACHE_ESCAPE_MARKDOWN:
		escape_markdown(out, s, len, 1);
		break;
	case MUSTACHE_ESCAPE_NONE:
		buf_add(out, s, len);
		break;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Rendering                                                                                  */

struct rstate {
	const struct mustache_render_opts *opts;
	struct buf *out;
	json_t **stack;
	size_t depth, cap;
	const struct node **overrides; /* parents being expanded, outermost first */
	size_t noverrides, ocap;
	struct buf indent;
	int bol;      /* the next template text starts a line: indent it */
	int residual; /* inside a section written back in residual mode */
	int nesting;  /* partials and parents */
	int problems;
	size_t base; /* out->len when the render started */
	int full;    /* MAX_OUTPUT reached: render nothing more */
	/* residual: where section tags that shared their line start and end in out */
	size_t (*inline_tags)[2];
	size_t ninline, icap;
};

static void push(struct rstate *st, json_t *v)
{
	if (st->depth == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 16;
		st->stack = xreallocarray(st->stack, st->cap, sizeof(*st->stack));
	}
	st->stack[st->depth++] = v;
}

static void problem(struct rstate *st, const struct node *n, const char *fmt, const char *name)
{
	st->problems++;
	if (st->opts->diags)
		diags_add(st->opts->diags, DIAG_ERROR, n ? n->file : NULL, n ? n->line : 0, NULL,
		          fmt, name);
}

/* Writes s as literal output: in residual mode "{{" must not read as a tag later. */
static void put_literal(struct rstate *st, const char *s, size_t n)
{
	if (!st->opts->residual) {
		buf_add(st->out, s, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '{' && i + 1 < n && s[i + 1] == '{') {
			buf_adds(st->out, "{{=<% %>=}}{{<%={{ }}=%>");
			i++;
			continue;
		}
		if (s[i] == '{' && st->out->len && st->out->data[st->out->len - 1] == '{') {
			/* "{" then "{" from another piece of text or value: the same pair */
			buf_truncate(st->out, st->out->len - 1);
			buf_adds(st->out, "{{=<% %>=}}{{<%={{ }}=%>");
			continue;
		}
		buf_addc(st->out, s[i]);
	}
}

/* Template text: each of its lines gets the current indentation (partials, blocks). */
static void emit_text(struct rstate *st, const char *s, size_t n, int literal)
{
	while (n > 0) {
		const char *q = memchr(s, '\n', n);
		size_t l = q ? (size_t)(q - s) + 1 : n;

		if (st->bol && st->indent.len && s[0] != '\n' && !(s[0] == '\r' && l == 2))
			buf_add(st->out, st->indent.data, st->indent.len);
		st->bol = 0;
		if (literal)
			put_literal(st, s, l);
		else
			buf_add(st->out, s, l);
		if (q)
			st->bol = 1;
		s += l;
		n -= l;
	}
}

static void emit_value(struct rstate *st, const char *s, size_t n, int escape)
{
	struct buf tmp = BUF_INIT;

	if (!n)
		return;
	if (st->bol && st->indent.len)
		buf_add(st->out, st->indent.data, st->indent.len);
	st->bol = 0;
	if (!escape) {
		put_literal(st, s, n);
		return;
	}
	switch (st->opts->escape) {
	case MUSTACHE_ESCAPE_HTML:
		escape_html(&tmp, s, n);
		break;
	case MUSTACHE_ESCAPE_MARKDOWN:
		escape_markdown(&tmp, s, n, md_block_start(st->out));
		break;
	case MUSTACHE_ESCAPE_NONE:
		buf_add(&tmp, s, n);
		break;
	}
	put_literal(st, tmp.data, tmp.len);
	buf_free(&tmp);
}

/* The value of n's name on the context stack, or NULL when it is missing. */
static json_t *lookup(struct rstate *st, const struct node *n)
{
	json_t *v = NULL;

	if (!n->npath)
		return st->depth ? st->stack[st->depth - 1] : NULL;
	for (size_t i = st->depth; i-- > 0;) {
		if (json_is_object(st->stack[i]) && (v = json_object_get(st->stack[i], n->path[0])))
			break;
	}
	for (size_t k = 1; v && k < n->npath; k++)
		v = json_is_object(v) ? json_object_get(v, n->path[k]) : NULL;
	return v;
}

/* Residual mode: 1 when n names something the final context will supply (not ours now). */
static int left_open(struct rstate *st, const struct node *n)
{
	json_t *top = st->depth ? st->stack[0] : NULL;

	if (!st->opts->residual)
		return 0;
	if (!n->npath)
		return st->residual;
	return !json_is_object(top) || !json_object_get(top, n->path[0]);
}

/* The shortest decimal that reads back as d (interpolation.json: 1.210 is "1.21"). */
static void format_real(struct buf *b, double d)
{
	char tmp[64];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	buf_adds(b, tmp);
}

static void scalar_text(json_t *v, struct buf *b)
{
	char *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		buf_add(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		format_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		buf_adds(b, "true");
		break;
	case JSON_FALSE:
		buf_adds(b, "false");
		break;
	case JSON_NULL:
		break;
	default:
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (s)
			buf_adds(b, s);
		free(s);
		break;
	}
}

/* Falsy: missing, null, false, an empty list, an empty string (a blank roster cell). */
static int truthy(json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return 0;
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	return 1;
}

static void render_nodes(struct rstate *st, const struct node *kids, size_t n);

/*
 * Residual mode: writes a tag back. A section tag that stood alone on its line goes on a line
 * of its own again, so that compiling the result removes that line as the original did.
 */
static void write_tag(struct rstate *st, const char *sigil, const struct node *n, int standalone,
                      const char *close)
{
	/* Other delimiters for a name holding "}" (written with "}}" it would end early). */
	static const char *const alt[][2] = {{"<%", "%>"}, {"[%", "%]"}, {"(%", "%)"}};
	int alone = standalone && (!st->out->len || st->out->data[st->out->len - 1] == '\n');
	size_t start = st->out->len, k = 0;
	int brace = memchr(n->str, '}', n->len) != NULL;

	if (st->out->len && st->out->data[st->out->len - 1] == '{') {
		/* Text ending in "{" would make the tag's "{{" a "{{{" (found by the fuzzer). */
		buf_truncate(st->out, st->out->len - 1);
		buf_adds(st->out, "{{=<% %>=}}{<%={{ }}=%>");
		start = st->out->len;
	}
	if (brace) {
		while (k < 2 && memmem(n->str, n->len, alt[k][1], 2))
			k++;
		emit_text(st, "{{=", 3, 0);
		emit_text(st, alt[k][0], 2, 0);
		emit_text(st, " ", 1, 0);
		emit_text(st, alt[k][1], 2, 0);
		emit_text(st, "=}}", 3, 0);
		emit_text(st, alt[k][0], 2, 0);
	} else {
		emit_text(st, "{{", 2, 0);
	}
	/* A variable whose name starts like a sigil ("{{ #x}}" is the variable "#x") keeps
	 * the space that made it a variable, or it would compile again as a section. */
	if (!*sigil && n->len && strchr("{&#^/><$!=", n->str[0]))
		emit_text(st, " ", 1, 0);
	if (brace) {
		emit_text(st, *sigil == '{' ? "&" : sigil, strlen(sigil), 0);
		emit_text(st, n->str, n->len, 0);
		emit_text(st, alt[k][1], 2, 0);
		emit_text(st, alt[k][0], 2, 0);
		emit_text(st, "={{ }}=", 7, 0);
		emit_text(st, alt[k][1], 2, 0);
	} else {
		emit_text(st, sigil, strlen(sigil), 0);
		emit_text(st, n->str, n->len, 0);
		emit_text(st, close, strlen(close), 0);
	}
	if (alone) {
		emit_text(st, "\n", 1, 0);
	} else if (*sigil && *sigil != '{') {
		if (st->ninline == st->icap) {
			st->icap = st->icap ? st->icap * 2 : 16;
			st->inline_tags =
			    xreallocarray(st->inline_tags, st->icap, sizeof(*st->inline_tags));
		}
		st->inline_tags[st->ninline][0] = start;
		st->inline_tags[st->ninline++][1] = st->out->len;
	}
}

/*
 * Residual mode: a section tag that shared its line in the template may end up alone on it
 * in the result (its neighbours were filled in with nothing, or were comments); it would then
 * stand alone when compiled again and take its line end with it. An empty comment after it
 * keeps it inline.
 */
static void guard_inline(struct rstate *st)
{
	struct buf *out = st->out;

	for (size_t i = st->ninline; i-- > 0;) {
		size_t s = st->inline_tags[i][0], end = st->inline_tags[i][1], e = end;

		while (s > 0 && is_blank(out->data[s - 1]))
			s--;
		while (e < out->len && is_blank(out->data[e]))
			e++;
		if ((s == 0 || out->data[s - 1] == '\n') &&
		    (e == out->len || out->data[e] == '\n' ||
		     (out->data[e] == '\r' && e + 1 < out->len && out->data[e + 1] == '\n'))) {
			struct buf b = BUF_INIT;

			buf_add(&b, out->data + end, out->len - end);
			buf_truncate(out, end);
			buf_adds(out, "{{!}}");
			buf_add(out, b.data, b.len);
			buf_free(&b);
		}
	}
}

static void render_var(struct rstate *st, const struct node *n)
{
	json_t *v = lookup(st, n);
	struct buf b = BUF_INIT;

	if (!v && left_open(st, n)) {
		if (n->type == N_VAR)
			write_tag(st, "", n, 0, "}}");
		else
			write_tag(st, "{", n, 0, "}}}");
		return;
	}
	if (!v || (json_is_null(v) && st->opts->strict)) {
		if (st->opts->strict)
			problem(st, n, v ? "null variable '%s'" : "missing variable '%s'", n->str);
		return;
	}
	scalar_text(v, &b);
	emit_value(st, b.data, b.len, n->type == N_VAR);
	buf_free(&b);
}

static void render_section(struct rstate *st, const struct node *n)
{
	json_t *v = lookup(st, n);

	if (!v && left_open(st, n)) {
		write_tag(st, n->type == N_SECTION ? "#" : "^", n, n->standalone, "}}");
		st->residual++;
		render_nodes(st, n->kids, n->nkids);
		st->residual--;
		write_tag(st, "/", n, n->close_standalone, "}}");
		return;
	}
	if (!v && st->opts->strict)
		problem(st, n, "missing section '%s'", n->str);
	if (n->type == N_INVERTED) {
		if (!truthy(v))
			render_nodes(st, n->kids, n->nkids);
		return;
	}
	if (!truthy(v))
		return;
	if (json_is_array(v)) {
		size_t i;
		json_t *item;

		json_array_foreach(v, i, item)
		{
			push(st, item);
			render_nodes(st, n->kids, n->nkids);
			st->depth--;
		}
		return;
	}
	push(st, v);
	render_nodes(st, n->kids, n->nkids);
	st->depth--;
}

/* Renders kids with extra indentation on each line they start (a standalone partial). */
static void render_indented(struct rstate *st, const char *indent, const struct node *kids,
                            size_t n)
{
	size_t keep = st->indent.len;

	if (indent)
		buf_adds(&st->indent, indent);
	render_nodes(st, kids, n);
	buf_truncate(&st->indent, keep);
}

static const struct mustache_template *get_partial(struct rstate *st, const struct node *n)
{
	const struct partial_entry *e = partial_get(st->opts->partials, n->str);

	if (e && e->err) {
		problem(st, n, "%s", e->err);
		return NULL;
	}
	if (!e || !e->t) {
		if (st->opts->strict)
			problem(st, n, "missing partial '%s'", n->str);
		return NULL;
	}
	if (st->nesting >= MAX_DEPTH) {
		problem(st, n, "partials nested too deeply at '%s' (endless recursion?)", n->str);
		return NULL;
	}
	return e->t;
}

static void render_partial(struct rstate *st, const struct node *n)
{
	const struct mustache_template *t = get_partial(st, n);

	if (!t)
		return;
	st->nesting++;
	if (n->type == N_PARENT) {
		if (st->noverrides == st->ocap) {
			st->ocap = st->ocap ? st->ocap * 2 : 8;
			st->overrides =
			    xreallocarray(st->overrides, st->ocap, sizeof(*st->overrides));
		}
		st->overrides[st->noverrides++] = n;
	}
	render_indented(st, n->indent, t->root.kids, t->root.nkids);
	if (n->type == N_PARENT)
		st->noverrides--;
	st->nesting--;
}

/* The outermost override of block n (inheritance.json, "Multi-level inheritance"). */
static const struct node *find_override(struct rstate *st, const struct node *n)
{
	for (size_t i = 0; i < st->noverrides; i++) {
		const struct node *p = st->overrides[i];

		for (size_t k = 0; k < p->nkids; k++)
			if (p->kids[k].type == N_BLOCK && !strcmp(p->kids[k].str, n->str))
				return &p->kids[k];
	}
	return n;
}

static void render_block(struct rstate *st, const struct node *n)
{
	const struct node *src = find_override(st, n);

	if (st->nesting >= MAX_DEPTH) {
		problem(st, n, "blocks nested too deeply at '%s' (endless recursion?)", n->str);
		return;
	}
	st->nesting++;
	render_indented(st, n->indent, src->kids, src->nkids);
	st->nesting--;
}

static void render_nodes(struct rstate *st, const struct node *kids, size_t n)
{
	for (size_t i = 0; i < n && !st->full; i++) {
		const struct node *k = &kids[i];

		if (st->out->len - st->base > MAX_OUTPUT) {
			st->full = 1;
			problem(st, k, "rendered text over %s (a template that repeats itself?)",
			        "16 MiB");
			break;
		}
		switch (k->type) {
		case N_TEXT:
			emit_text(st, k->str, k->len, 1);
			break;
		case N_VAR:
		case N_RAW:
			render_var(st, k);
			break;
		case N_SECTION:
		case N_INVERTED:
			render_section(st, k);
			break;
		case N_PARTIAL:
		case N_PARENT:
			render_partial(st, k);
			break;
		case N_BLOCK:
			render_block(st, k);
			break;
		}
	}
}

int mustache_render(const struct mustache_template *t, json_t *ctx,
                    const struct mustache_render_opts *opts, struct buf *out)
{
	struct rstate st = {0};

	st.opts = opts;
	st.out = out;
	st.base = out->len;
	st.bol = !out->len || out->data[out->len - 1] == '\n';
	if (ctx)
		push(&st, ctx);
	render_nodes(&st, t->root.kids, t->root.nkids);
	if (opts->residual)
		guard_inline(&st);
	free(st.inline_tags);
	free(st.stack);
	free(st.overrides);
	buf_free(&st.indent);
	if (!out->data)
		buf_add(out, "", 0);
	return st.problems ? EX_DATAERR : EX_OK;
}
