/* Mustache engine, compilation: source to a tree once (rendering: mustache_render.c). */
#include "letter/mustache.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/utf8.h"
#include "base/xalloc.h"
#include "letter/mustache_int.h"

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

struct cstate {
	const char *src;
	size_t len;
	const char *name;
	int first_line;
	struct tok *toks;
	size_t ntoks, cap;
	char **errstr;
};

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
