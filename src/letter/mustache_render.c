/* Mustache engine, rendering: a compiled tree (mustache.c) against jansson values. */
#include "letter/mustache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/xalloc.h"
#include "letter/mustache_int.h"

/* Deeper nesting of partials and parents than this is taken for endless recursion. */
#define MAX_DEPTH 100
/*
 * Rendered bytes per call: a letter is kilobytes. Depth alone does not stop a template that
 * multiplies itself (a block or partial used twice at each of 100 levels, sections nested
 * over lists): found by tests/fuzz/fuzz_mustache.
 */
#define MAX_OUTPUT (16 * 1024 * 1024)

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
