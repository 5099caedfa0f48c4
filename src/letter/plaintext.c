/* The text/plain part from cmark's tree: no Markdown markers, lists numbered, wrapped at 72. */
#include "letter/plaintext.h"

#include <cmark.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

/* The inline text of a block: hard breaks as '\n', soft breaks as ' ', markers dropped. */
static void inlines(cmark_node *n, struct buf *b)
{
	for (cmark_node *c = cmark_node_first_child(n); c; c = cmark_node_next(c)) {
		const char *lit, *url;
		size_t start;

		switch (cmark_node_get_type(c)) {
		case CMARK_NODE_TEXT:
		case CMARK_NODE_CODE:
			lit = cmark_node_get_literal(c);
			buf_adds(b, lit ? lit : "");
			break;
		case CMARK_NODE_SOFTBREAK:
			buf_addc(b, ' ');
			break;
		case CMARK_NODE_LINEBREAK:
			buf_addc(b, '\n');
			break;
		case CMARK_NODE_LINK:
			start = b->len;
			inlines(c, b);
			url = cmark_node_get_url(c);
			/* "text <url>", unless the text is the url (an autolink). */
			if (url && *url && strcmp(buf_str(b) + start, url) &&
			    !(strncmp(url, "mailto:", 7) == 0 &&
			      !strcmp(buf_str(b) + start, url + 7)))
				buf_addf(b, " <%s>", url);
			break;
		case CMARK_NODE_HTML_INLINE:
			break; /* dropped, as in the HTML part (safe mode) */
		default:       /* emphasis, strong, image (its alt text): the children only */
			inlines(c, b);
		}
	}
}

/* Bytes of the UTF-8 character starting at s counted as one column. */
static size_t columns(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/*
 * Appends text wrapped at PLAINTEXT_WIDTH: the first line after first (a list marker, or
 * ""), the next ones after indent spaces. '\n' in text starts a new line (a wrapped part of
 * such a line is indented two more); runs of spaces collapse; no line ends in a blank.
 */
static void wrap(struct buf *out, const char *text, const char *first, size_t indent)
{
	size_t col, prefix = columns(first, strlen(first));
	int line_start = 1;
	const char *p = text;
	/* Lines ended by hard breaks (an address, a list of signatories) stay one a line: a
	 * line too long for the width continues indented by two more, so it reads as one. */
	size_t cont = indent + (strchr(text, '\n') ? 2 : 0);

	buf_adds(out, first);
	col = prefix;
	while (*p) {
		size_t n;
		if (*p == '\n') {
			buf_addc(out, '\n');
			for (size_t i = 0; i < indent; i++)
				buf_addc(out, ' ');
			col = indent;
			line_start = 1;
			p++;
			continue;
		}
		if (*p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		n = strcspn(p, " \t\n");
		if (!line_start && col + 1 + columns(p, n) > PLAINTEXT_WIDTH) {
			buf_addc(out, '\n');
			for (size_t i = 0; i < cont; i++)
				buf_addc(out, ' ');
			col = cont;
			line_start = 1;
		}
		if (!line_start) {
			buf_addc(out, ' ');
			col++;
		}
		buf_add(out, p, n);
		col += columns(p, n);
		line_start = 0;
		p += n;
	}
	buf_addc(out, '\n');
}

/* Appends s with every line after the first indented by indent spaces. */
static void add_indented(struct buf *out, const char *s, size_t indent)
{
	for (; *s; s++) {
		buf_addc(out, *s);
		if (*s == '\n' && s[1] && s[1] != '\n')
			for (size_t i = 0; i < indent; i++)
				buf_addc(out, ' ');
	}
}

static void blocks(cmark_node *parent, struct buf *out);

/* One block into out, ending with '\n'; blocks() puts the empty lines between them. */
static void block(cmark_node *n, struct buf *out)
{
	struct buf t = BUF_INIT;
	const char *lit;

	switch (cmark_node_get_type(n)) {
	case CMARK_NODE_PARAGRAPH:
	case CMARK_NODE_HEADING:
		inlines(n, &t);
		wrap(out, buf_str(&t), "", 0);
		break;
	case CMARK_NODE_LIST: {
		int ordered = cmark_node_get_list_type(n) == CMARK_ORDERED_LIST;
		int num = cmark_node_get_list_start(n), tight = cmark_node_get_list_tight(n);
		for (cmark_node *item = cmark_node_first_child(n); item;
		     item = cmark_node_next(item)) {
			char marker[24];
			struct buf ib = BUF_INIT;
			size_t w;
			if (ordered)
				snprintf(marker, sizeof marker, "%d. ", num++);
			else
				strcpy(marker, "- ");
			w = strlen(marker);
			if (item != cmark_node_first_child(n) && !tight)
				buf_addc(out, '\n');
			/* The item's first paragraph wraps after the marker; the rest is indented. */
			if (cmark_node_first_child(item) &&
			    cmark_node_get_type(cmark_node_first_child(item)) ==
			        CMARK_NODE_PARAGRAPH) {
				struct buf rest = BUF_INIT;
				inlines(cmark_node_first_child(item), &t);
				wrap(&ib, buf_str(&t), marker, w);
				buf_reset(&t);
				for (cmark_node *c = cmark_node_next(cmark_node_first_child(item));
				     c; c = cmark_node_next(c)) {
					if (!tight)
						buf_addc(&rest, '\n');
					block(c, &rest);
				}
				buf_adds(out, buf_str(&ib));
				if (rest.len) {
					for (size_t i = 0; i < w; i++)
						buf_addc(out, ' ');
					add_indented(out, buf_str(&rest), w);
				}
				buf_free(&rest);
			} else {
				struct buf rest = BUF_INIT;
				blocks(item, &rest);
				buf_adds(out, marker);
				add_indented(out, rest.len ? buf_str(&rest) : "\n", w);
				buf_free(&rest);
			}
			buf_free(&ib);
		}
		break;
	}
	case CMARK_NODE_BLOCK_QUOTE: {
		struct buf q = BUF_INIT;
		blocks(n, &q);
		for (const char *p = buf_str(&q); *p;) {
			size_t l = strcspn(p, "\n");
			buf_adds(out, l ? "> " : ">");
			buf_add(out, p, l);
			buf_addc(out, '\n');
			p += l + (p[l] == '\n');
		}
		buf_free(&q);
		break;
	}
	case CMARK_NODE_CODE_BLOCK:
		lit = cmark_node_get_literal(n);
		for (const char *p = lit ? lit : ""; *p;) {
			size_t l = strcspn(p, "\n");
			while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
				l--;
			if (l)
				buf_adds(out, "    ");
			buf_add(out, p, l);
			buf_addc(out, '\n');
			p += strcspn(p, "\n");
			if (*p)
				p++;
		}
		break;
	case CMARK_NODE_THEMATIC_BREAK:
		buf_adds(out, "----------\n");
		break;
	default: /* raw HTML blocks: dropped, as in the HTML part */
		break;
	}
	buf_free(&t);
}

/* The children of parent, one empty line between blocks; empty blocks leave no line. */
static void blocks(cmark_node *parent, struct buf *out)
{
	for (cmark_node *c = cmark_node_first_child(parent); c; c = cmark_node_next(c)) {
		struct buf b = BUF_INIT;
		block(c, &b);
		/* a block of nothing but blanks (an empty paragraph, a dropped HTML block) */
		if (strspn(buf_str(&b), " \n") < b.len) {
			if (out->len)
				buf_addc(out, '\n');
			buf_adds(out, buf_str(&b));
		}
		buf_free(&b);
	}
}

/* The text of doc (see plaintext_from_markdown()). */
static char *text_of(cmark_node *doc)
{
	struct buf out = BUF_INIT;
	struct buf clean = BUF_INIT;

	blocks(doc, &out);
	/* The last guard: no line ends in a blank, whatever the source held. */
	for (const char *p = buf_str(&out); *p;) {
		size_t l = strcspn(p, "\n");
		size_t k = l;
		while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
			k--;
		buf_add(&clean, p, k);
		if (p[l] == '\n')
			buf_addc(&clean, '\n');
		p += l + (p[l] == '\n');
	}
	buf_free(&out);
	return buf_detach(&clean);
}

char *plaintext_from_markdown(const char *md, size_t len)
{
	cmark_node *doc = cmark_parse_document(md ? md : "", md ? len : 0, CMARK_OPT_VALIDATE_UTF8);
	char *text;

	if (!doc)
		abort(); /* cmark only fails when out of memory */
	text = text_of(doc);
	cmark_node_free(doc);
	return text;
}

char *plaintext_and_html(const char *md, size_t len, char **html)
{
	/* The options of markdown_to_html(): CMARK_OPT_SAFE only changes what the HTML
	 * renderer writes, so the tree is the one plaintext_from_markdown() reads. */
	int opts = CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8;
	cmark_node *doc = cmark_parse_document(md ? md : "", md ? len : 0, opts);
	char *h, *text;

	if (!doc || !(h = cmark_render_html(doc, opts)))
		abort(); /* cmark only fails when out of memory */
	*html = xstrdup(h);
	free(h);
	text = text_of(doc);
	cmark_node_free(doc);
	return text;
}
