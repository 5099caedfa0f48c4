/* The letter as a PDF: cmark's tree laid out with pango on cairo's PDF surface. */
#include "pdf/pdf.h"

#include <cairo-pdf.h>
#include <cmark.h>
#include <errno.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "pdf/pdf_int.h"

/* --- blocks --------------------------------------------------------------------------- */

/*
 * A chunk is what the pages are filled with: a laid-out block of text (split between lines
 * when it must), a rule, or the signature block (cells in columns, never split).
 */
enum chunk_kind { CK_TEXT, CK_RULE, CK_SIGNATURE };

struct cell {
	PangoLayout *lay;
	const struct image *img; /* drawn above the line, or NULL */
	double x, y, imgh;       /* within the block */
};

struct chunk {
	enum chunk_kind kind;
	PangoLayout *lay, *marker; /* CK_TEXT; marker: a list item's number or bullet */
	double x, before;          /* left offset from the margin; space above */
	int keep_next;             /* on the same page as the next chunk's first lines */
	int nlines;
	double *top, *bottom, *base, *lx; /* per line, within the layout */
	struct cell *cells;               /* CK_SIGNATURE */
	size_t ncells;
	double height;
};

struct doc {
	const struct pdf_style *st;
	struct tcache *tc;
	char lang[16];
	PangoContext *pc; /* the thread's, for lang */
	PangoFontDescription *body, *bold, *small, *sig;
	double width;  /* of the text */
	double lineh;  /* a body line */
	double top1;   /* page 1's first line: below the letterhead */
	double lh_bot; /* the letterhead's bottom */
	struct chunk *ch;
	size_t nch;
	const char *date_line;
	size_t top_blocks; /* top-level blocks seen */
};

static struct chunk *chunk_add(struct doc *d, enum chunk_kind kind)
{
	struct chunk *c;

	d->ch = xreallocarray(d->ch, d->nch + 1, sizeof(*d->ch));
	c = &d->ch[d->nch++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	return c;
}

/* The inline text of a block, as the text part has it, with emphasis as attributes. */
struct inl {
	struct buf b;
	PangoAttrList *attrs;
};

static void inl_attr(struct inl *in, PangoAttribute *a, size_t start)
{
	a->start_index = (guint)start;
	a->end_index = (guint)in->b.len;
	pango_attr_list_insert(in->attrs, a);
}

static void inlines(struct inl *in, cmark_node *n)
{
	for (cmark_node *c = cmark_node_first_child(n); c; c = cmark_node_next(c)) {
		const char *lit, *url;
		size_t start = in->b.len;

		switch (cmark_node_get_type(c)) {
		case CMARK_NODE_TEXT:
			lit = cmark_node_get_literal(c);
			buf_adds(&in->b, lit ? lit : "");
			break;
		case CMARK_NODE_CODE:
			lit = cmark_node_get_literal(c);
			buf_adds(&in->b, lit ? lit : "");
			inl_attr(in, pango_attr_family_new("monospace"), start);
			break;
		case CMARK_NODE_SOFTBREAK:
			buf_addc(&in->b, ' ');
			break;
		case CMARK_NODE_LINEBREAK:
			buf_addc(&in->b, '\n');
			break;
		case CMARK_NODE_EMPH:
			inlines(in, c);
			inl_attr(in, pango_attr_style_new(PANGO_STYLE_ITALIC), start);
			break;
		case CMARK_NODE_STRONG:
			inlines(in, c);
			inl_attr(in, pango_attr_weight_new(PANGO_WEIGHT_BOLD), start);
			break;
		case CMARK_NODE_LINK:
			inlines(in, c);
			url = cmark_node_get_url(c);
			/* As the text part: "text <url>", unless the text is the url. */
			if (url && *url && strcmp(buf_str(&in->b) + start, url) &&
			    !(strncmp(url, "mailto:", 7) == 0 &&
			      !strcmp(buf_str(&in->b) + start, url + 7)))
				buf_addf(&in->b, " <%s>", url);
			break;
		case CMARK_NODE_HTML_INLINE:
			break; /* dropped, as in the HTML part */
		default:       /* image: its alt text */
			inlines(in, c);
		}
	}
}

/* A layout of text with attrs, width wide, justified unless align says otherwise. */
static PangoLayout *layout_make(struct doc *d, const char *text, size_t len, PangoAttrList *attrs,
                                const PangoFontDescription *fd, double width, int justify,
                                PangoAlignment align)
{
	PangoLayout *lay = pango_layout_new(d->pc);
	PangoAttrList *al = attrs ? pango_attr_list_copy(attrs) : pango_attr_list_new();
	PangoAttribute *nohyph = pango_attr_insert_hyphens_new(FALSE), *nolig;

	/* No hyphen is ever added: the PDF holds the text part's words, whole. */
	nohyph->start_index = 0;
	nohyph->end_index = G_MAXUINT;
	pango_attr_list_insert_before(al, nohyph);
	/* No ligatures: each glyph is one character, so cairo embeds one simple font per face
	 * (a ligature needs a second, CID-keyed subset: twice the fonts to subset and compress)
	 * and text copied from the PDF reads as typed. */
	nolig = pango_attr_font_features_new("liga 0, clig 0");
	nolig->start_index = 0;
	nolig->end_index = G_MAXUINT;
	pango_attr_list_insert_before(al, nolig);
	pango_layout_set_font_description(lay, fd);
	pango_layout_set_width(lay, (int)(width * PANGO_SCALE));
	pango_layout_set_wrap(lay, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_justify(lay, justify);
	pango_layout_set_alignment(lay, align);
	pango_layout_set_spacing(lay, (int)(2.0 * PANGO_SCALE));
	pango_layout_set_text(lay, text, (int)len);
	pango_layout_set_attributes(lay, al);
	pango_attr_list_unref(al);
	return lay;
}

/*
 * layout_make(), from the thread's cache when the same text was laid out the same way
 * before (most of a letter reads the same for every mission of a language): shaping is
 * most of the work. The layout is shared: never changed after this. The caller unrefs it.
 */
static PangoLayout *layout_new(struct doc *d, const char *text, size_t len, PangoAttrList *attrs,
                               const PangoFontDescription *fd, double width, int justify,
                               PangoAlignment align)
{
	struct buf key = BUF_INIT;
	char *fds = pango_font_description_to_string(fd);
	char *as = attrs ? pango_attr_list_to_string(attrs) : NULL;
	PangoLayout *lay;

	buf_addf(&key, "%s\x1f%s\x1f%d %d %d\x1f%s\x1f", d->lang, fds, (int)(width * PANGO_SCALE),
	         justify, (int)align, as ? as : "");
	buf_add(&key, text, len);
	g_free(fds);
	g_free(as);
	lay = g_hash_table_lookup(d->tc->layouts, buf_str(&key));
	if (lay) {
		buf_free(&key);
		return g_object_ref(lay);
	}
	if (g_hash_table_size(d->tc->layouts) >= CACHE_LAYOUTS)
		g_hash_table_remove_all(d->tc->layouts);
	lay = layout_make(d, text, len, attrs, fd, width, justify, align);
	pango_layout_get_line_count(lay); /* laid out now, once */
	g_hash_table_insert(d->tc->layouts, buf_detach(&key), g_object_ref(lay));
	return lay;
}

/* Fills c's per-line geometry from its layout. */
static void measure(struct chunk *c)
{
	PangoLayoutIter *it = pango_layout_get_iter(c->lay);
	int i = 0;

	c->nlines = pango_layout_get_line_count(c->lay);
	c->top = xcalloc((size_t)c->nlines, sizeof(double));
	c->bottom = xcalloc((size_t)c->nlines, sizeof(double));
	c->base = xcalloc((size_t)c->nlines, sizeof(double));
	c->lx = xcalloc((size_t)c->nlines, sizeof(double));
	do {
		PangoRectangle r;

		pango_layout_iter_get_line_extents(it, NULL, &r);
		c->top[i] = (double)r.y / PANGO_SCALE;
		c->bottom[i] = (double)(r.y + r.height) / PANGO_SCALE;
		c->lx[i] = (double)r.x / PANGO_SCALE;
		c->base[i] = (double)pango_layout_iter_get_baseline(it) / PANGO_SCALE;
		i++;
	} while (i < c->nlines && pango_layout_iter_next_line(it));
	pango_layout_iter_free(it);
	c->height = c->nlines ? c->bottom[c->nlines - 1] : 0;
}

static void text_chunk(struct doc *d, struct inl *in, const PangoFontDescription *fd, double x,
                       double before, int justify, PangoAlignment align, const char *marker)
{
	struct chunk *c;

	if (!in->b.len)
		return;
	c = chunk_add(d, CK_TEXT);
	c->x = x;
	c->before = before;
	c->lay = layout_new(d, in->b.data, in->b.len, in->attrs, fd, d->width - x, justify, align);
	if (marker) {
		c->marker = layout_new(d, marker, strlen(marker), NULL, fd, INDENT - MM(1.5), 0,
		                       PANGO_ALIGN_RIGHT);
	}
	measure(c);
}

static void walk(struct doc *d, cmark_node *n, double x, int depth, int tight);

static void paragraph(struct doc *d, cmark_node *n, double x, double before, const char *marker)
{
	struct inl in = {BUF_INIT, pango_attr_list_new()};
	PangoAlignment align = PANGO_ALIGN_LEFT;

	inlines(&in, n);
	/* The date line, near the top, goes flush right as in a letter. */
	if (!marker && x == 0 && d->top_blocks <= 6 && d->date_line && *d->date_line &&
	    strstr(buf_str(&in.b), d->date_line) && !strchr(buf_str(&in.b), '\n'))
		align = PANGO_ALIGN_RIGHT;
	text_chunk(d, &in, d->body, x, before, align == PANGO_ALIGN_LEFT, align, marker);
	buf_free(&in.b);
	pango_attr_list_unref(in.attrs);
}

static void list(struct doc *d, cmark_node *n, double x, int depth)
{
	int ordered = cmark_node_get_list_type(n) == CMARK_ORDERED_LIST;
	int num = cmark_node_get_list_start(n);
	int tight = cmark_node_get_list_tight(n);
	char delim = cmark_node_get_list_delim(n) == CMARK_PAREN_DELIM ? ')' : '.';

	for (cmark_node *it = cmark_node_first_child(n); it; it = cmark_node_next(it), num++) {
		char marker[32];
		int first = 1;

		if (ordered)
			snprintf(marker, sizeof(marker), "%d%c", num, delim);
		else
			snprintf(marker, sizeof(marker), "%s",
			         depth % 2 ? "\xe2\x80\x93" : "\xe2\x80\xa2");
		for (cmark_node *c = cmark_node_first_child(it); c; c = cmark_node_next(c)) {
			double before = first ? (tight ? 3.0 : 6.0) : (tight ? 2.0 : 6.0);

			if (cmark_node_get_type(c) == CMARK_NODE_PARAGRAPH) {
				paragraph(d, c, x + INDENT, before, first ? marker : NULL);
			} else {
				walk(d, c, x + INDENT, depth + 1, tight);
			}
			first = 0;
		}
	}
}

static void heading(struct doc *d, cmark_node *n, double x)
{
	struct inl in = {BUF_INIT, pango_attr_list_new()};
	PangoFontDescription *fd = pango_font_description_copy(d->bold);
	int level = cmark_node_get_heading_level(n);

	pango_font_description_set_size(fd, (gint)((level <= 1   ? 13.0
	                                            : level == 2 ? 12.0
	                                                         : BODY_SIZE) *
	                                           PANGO_SCALE));
	inlines(&in, n);
	text_chunk(d, &in, fd, x, 12.0, 0, PANGO_ALIGN_LEFT, NULL);
	if (d->nch && d->ch[d->nch - 1].lay)
		d->ch[d->nch - 1].keep_next = 1;
	pango_font_description_free(fd);
	buf_free(&in.b);
	pango_attr_list_unref(in.attrs);
}

static void code_block(struct doc *d, cmark_node *n, double x)
{
	const char *lit = cmark_node_get_literal(n);
	struct inl in = {BUF_INIT, pango_attr_list_new()};
	size_t len;

	buf_adds(&in.b, lit ? lit : "");
	len = in.b.len;
	while (len && in.b.data[len - 1] == '\n')
		len--;
	buf_truncate(&in.b, len);
	inl_attr(&in, pango_attr_family_new("monospace"), 0);
	text_chunk(d, &in, d->small, x, 6.0, 0, PANGO_ALIGN_LEFT, NULL);
	buf_free(&in.b);
	pango_attr_list_unref(in.attrs);
}

static void walk(struct doc *d, cmark_node *n, double x, int depth, int tight)
{
	double before = tight ? 2.0 : d->lineh * 0.75;

	switch (cmark_node_get_type(n)) {
	case CMARK_NODE_PARAGRAPH:
		paragraph(d, n, x, before, NULL);
		break;
	case CMARK_NODE_HEADING:
		heading(d, n, x);
		break;
	case CMARK_NODE_LIST:
		list(d, n, x, depth);
		break;
	case CMARK_NODE_BLOCK_QUOTE:
		for (cmark_node *c = cmark_node_first_child(n); c; c = cmark_node_next(c))
			walk(d, c, x + INDENT, depth, 0);
		break;
	case CMARK_NODE_CODE_BLOCK:
		code_block(d, n, x);
		break;
	case CMARK_NODE_THEMATIC_BREAK:
		chunk_add(d, CK_RULE)->before = before;
		d->ch[d->nch - 1].height = 1;
		break;
	default: /* raw HTML dropped, as in the HTML part */
		break;
	}
}

/* The image going above a signature line, or NULL. */
static const struct image *sig_image(const struct pdf_style *st, const char *line, int first)
{
	for (size_t i = 0; i < st->nsigs; i++)
		if (!strcmp(st->sigs[i].name, line))
			return &st->sigs[i];
	return first && st->signature.data ? &st->signature : NULL;
}

/* The signature block's sizes and columns, tried in order. */
static const struct {
	double size;
	int cols;
} sig_sizes[] = {
    {BODY_SIZE, 1}, {9, 2},   {9, 3}, {8.5, 2}, {8.5, 3}, {8, 2},   {8, 3},   {8, 4}, {7.5, 2},
    {7.5, 3},       {7.5, 4}, {7, 2}, {7, 3},   {7, 4},   {6.5, 3}, {6.5, 4}, {6, 3}, {6, 4},
};

/*
 * The signature block: one cell per line of the last paragraph, in the fewest columns (up
 * to MAX_COLUMNS) that fit one page, so a joint letter's hundred signatories stay together.
 */
static void signature(struct doc *d, cmark_node *n, double avail)
{
	struct inl in = {BUF_INIT, pango_attr_list_new()};
	struct chunk *c = chunk_add(d, CK_SIGNATURE);
	const char *p;
	double *h;
	size_t i;

	c->before = d->lineh * 0.75;
	inlines(&in, n);
	p = buf_str(&in.b);
	while (*p) {
		size_t len = strcspn(p, "\n");
		struct cell *cl;

		if (len) {
			char *line = xstrndup(p, len);

			c->cells = xreallocarray(c->cells, c->ncells + 1, sizeof(*c->cells));
			cl = &c->cells[c->ncells];
			memset(cl, 0, sizeof(*cl));
			cl->img = sig_image(d->st, line, c->ncells == 0);
			c->ncells++;
			free(line);
			/* Attributes start where the line starts: kept by offsetting a copy. */
			{
				PangoAttrList *al = pango_attr_list_new();
				size_t off = (size_t)(p - buf_str(&in.b));
				PangoAttrIterator *ai = pango_attr_list_get_iterator(in.attrs);

				do {
					GSList *l = pango_attr_iterator_get_attrs(ai);
					for (GSList *e = l; e; e = e->next) {
						PangoAttribute *a = e->data;
						if (a->end_index <= off ||
						    a->start_index >= off + len) {
							pango_attribute_destroy(a);
							continue;
						}
						a->start_index = a->start_index > off
						                     ? (guint)(a->start_index - off)
						                     : 0;
						a->end_index = (guint)(a->end_index - off);
						pango_attr_list_change(al, a);
					}
					g_slist_free(l);
				} while (pango_attr_iterator_next(ai));
				pango_attr_iterator_destroy(ai);
				cl->lay = layout_make(d, p, len, al, d->body, d->width, 0,
				                      PANGO_ALIGN_LEFT);
				pango_attr_list_unref(al);
			}
		}
		p += len;
		if (*p)
			p++;
	}
	buf_free(&in.b);
	pango_attr_list_unref(in.attrs);
	h = xcalloc(c->ncells ? c->ncells : 1, sizeof(double));
	/* The largest size, then the fewest columns, that fit one page: the body's size in one
	 * column, then smaller sizes in up to four columns. */
	for (size_t t = 0; t < sizeof(sig_sizes) / sizeof(sig_sizes[0]); t++) {
		int cols = sig_sizes[t].cols;
		double colw = (d->width - (cols - 1) * MM(5)) / cols, total = 0, target, x = 0,
		       y = 0, maxy = 0;
		int col = 0, last = t + 1 == sizeof(sig_sizes) / sizeof(sig_sizes[0]);

		pango_font_description_set_size(d->sig, (gint)(sig_sizes[t].size * PANGO_SCALE));
		for (i = 0; i < c->ncells; i++) {
			struct cell *cl = &c->cells[i];
			PangoRectangle r;

			pango_layout_set_font_description(cl->lay, d->sig);
			pango_layout_set_spacing(cl->lay, 0);
			/* A name that wraps goes on indented under itself. */
			pango_layout_set_indent(cl->lay, -(int)(MM(3) * PANGO_SCALE));
			pango_layout_set_width(cl->lay, (int)(colw * PANGO_SCALE));
			pango_layout_get_extents(cl->lay, NULL, &r);
			cl->imgh = cl->img ? SIG_IMG_H : 0;
			h[i] = cl->imgh + (double)r.height / PANGO_SCALE + (cols > 1 ? 1.5 : 0.5);
			total += h[i];
		}
		target = total / cols;
		for (i = 0; i < c->ncells; i++) {
			/* The next column when this one has its share (never the last's). */
			if (y > 0 && y + h[i] / 2 > target * 1.02 && col < cols - 1) {
				col++;
				x += colw + MM(5);
				y = 0;
			}
			c->cells[i].x = x;
			c->cells[i].y = y;
			y += h[i];
			if (y > maxy)
				maxy = y;
		}
		c->height = maxy;
		if (maxy <= avail || last)
			break;
	}
	free(h);
}

/* --- pages ---------------------------------------------------------------------------- */

struct place {
	size_t chunk;
	int from, to, page;
	double y; /* the top of line from */
};

struct pages {
	struct place *v;
	size_t n;
	int npages;
};

static void place_add(struct pages *pg, size_t chunk, int from, int to, int page, double y)
{
	pg->v = xreallocarray(pg->v, pg->n + 1, sizeof(*pg->v));
	pg->v[pg->n++] = (struct place){chunk, from, to, page, y};
}

/* The height of lines [from, to) of c. */
static double lines_h(const struct chunk *c, int from, int to)
{
	if (c->kind != CK_TEXT)
		return c->height;
	return to > from ? c->bottom[to - 1] - c->top[from] : 0;
}

/* What must come on the same page after chunk i: its first two lines (all when short). */
static double keep_need(const struct doc *d, size_t i)
{
	const struct chunk *c;

	if (i >= d->nch)
		return 0;
	c = &d->ch[i];
	if (c->kind != CK_TEXT || c->nlines <= 3)
		return c->before + c->height + (c->keep_next ? keep_need(d, i + 1) : 0);
	return c->before + lines_h(c, 0, 2);
}

/*
 * Puts the chunks on pages: a text chunk splits between lines with at least two lines on
 * either side (no widow, no orphan; three lines or fewer never split), a chunk marked
 * keep_next goes with the next one's first lines, the signature block never splits.
 */
static void paginate(struct doc *d, struct pages *pg)
{
	const struct pdf_style *st = d->st;
	double top = st->mt, bottom = st->ph - st->mb;
	double y = d->top1;
	int page = 1;

	for (size_t i = 0; i < d->nch; i++) {
		const struct chunk *c = &d->ch[i];
		int from = 0, n = c->kind == CK_TEXT ? c->nlines : 1;
		double pagetop = page == 1 ? d->top1 : top;

		for (;;) {
			double before = y <= pagetop ? 0 : c->before;
			double avail = bottom - y - before;
			double need =
			    lines_h(c, from, n) + (c->keep_next ? keep_need(d, i + 1) : 0);
			int k;

			if (need <= avail ||
			    (y <= pagetop && (c->kind != CK_TEXT || c->keep_next))) {
				place_add(pg, i, from, n, page, y + before);
				y += before + lines_h(c, from, n);
				break;
			}
			if (c->kind == CK_TEXT && !c->keep_next && n - from >= 4) {
				for (k = from; k < n && c->bottom[k] - c->top[from] <= avail; k++)
					;
				if (k > n - 2)
					k = n - 2;
				if (k - from >= 2) {
					place_add(pg, i, from, k, page, y + before);
					from = k;
					page++;
					y = pagetop = top;
					continue;
				}
			}
			if (y <= pagetop) { /* an empty page cannot hold it: overflow */
				place_add(pg, i, from, n, page, y);
				y += lines_h(c, from, n);
				break;
			}
			page++;
			y = pagetop = top;
		}
	}
	pg->npages = page;
}

static void show_text(cairo_t *cr, PangoLayout *lay, double x, double y)
{
	cairo_move_to(cr, x, y);
	pango_cairo_show_layout(cr, lay);
}

/* Draws page 1's letterhead (cr NULL: only measures it); returns its bottom. The logo at
 * the top left, the organisation and its address flush right beside it, a rule below. */
static double letterhead(struct doc *d, cairo_t *cr)
{
	const struct pdf_style *st = d->st;
	double logow = 0, logoh = 0, y = st->mt, textw;

	if (st->logo.data) {
		cairo_surface_t *sf =
		    cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, NULL);
		cairo_t *m = cairo_create(sf);

		logoh = image_draw(m, &st->logo, st->ml, st->mt, LOGO_W, LOGO_H, 1, &logow);
		cairo_destroy(m);
		cairo_surface_destroy(sf);
		if (cr)
			image_draw(cr, &st->logo, st->ml, st->mt, LOGO_W, LOGO_H, 0, NULL);
	}
	textw = d->width - (logow > 0 ? logow + MM(8) : 0);
	for (size_t i = 0; i < st->naddr + 1; i++) {
		const char *s = i == 0 ? st->name : st->addr[i - 1];
		PangoFontDescription *fd;
		PangoLayout *lay;
		PangoRectangle r;

		if (!s)
			continue;
		fd = pango_font_description_copy(i == 0 ? d->bold : d->small);
		if (i == 0)
			pango_font_description_set_size(fd, (gint)(13 * PANGO_SCALE));
		lay = layout_new(d, s, strlen(s), NULL, fd, textw, 0, PANGO_ALIGN_RIGHT);
		pango_layout_get_extents(lay, NULL, &r);
		if (cr)
			show_text(cr, lay, st->pw - st->mr - textw, y);
		y += (double)r.height / PANGO_SCALE + (i == 0 ? 3 : 0);
		g_object_unref(lay);
		pango_font_description_free(fd);
	}
	y = fmax(y, st->mt + logoh);
	if (y > st->mt) {
		y += MM(3);
		if (cr) {
			cairo_set_line_width(cr, 0.5);
			cairo_move_to(cr, st->ml, y);
			cairo_line_to(cr, st->pw - st->mr, y);
			cairo_stroke(cr);
		}
	}
	return y;
}

static void draw_footer(struct doc *d, cairo_t *cr, int page, int npages)
{
	const struct pdf_style *st = d->st;
	double y = st->ph - st->mb + MM(6);

	if (st->footer) {
		PangoLayout *lay = layout_new(d, st->footer, strlen(st->footer), NULL, d->small,
		                              d->width, 0, PANGO_ALIGN_CENTER);
		show_text(cr, lay, st->ml, y);
		g_object_unref(lay);
	}
	if (page > 1) {
		char num[32];
		PangoLayout *lay;

		snprintf(num, sizeof(num), "%d/%d", page, npages);
		lay =
		    layout_new(d, num, strlen(num), NULL, d->small, d->width, 0, PANGO_ALIGN_RIGHT);
		show_text(cr, lay, st->ml, y + (st->footer ? SMALL_SIZE * 1.6 : 0));
		g_object_unref(lay);
	}
}

static void draw_chunk(struct doc *d, cairo_t *cr, const struct place *pl)
{
	const struct chunk *c = &d->ch[pl->chunk];
	double x0 = d->st->ml + c->x;

	if (c->kind == CK_RULE) {
		cairo_set_line_width(cr, 0.5);
		cairo_move_to(cr, d->st->ml + d->width * 0.3, pl->y);
		cairo_line_to(cr, d->st->ml + d->width * 0.7, pl->y);
		cairo_stroke(cr);
		return;
	}
	if (c->kind == CK_SIGNATURE) {
		for (size_t i = 0; i < c->ncells; i++) {
			const struct cell *cl = &c->cells[i];

			if (cl->img)
				image_draw(cr, cl->img, x0 + cl->x, pl->y + cl->y, MM(50),
				           cl->imgh - 2, 0, NULL);
			show_text(cr, cl->lay, x0 + cl->x, pl->y + cl->y + cl->imgh);
		}
		return;
	}
	for (int i = pl->from; i < pl->to; i++) {
		double base = pl->y + c->base[i] - c->top[pl->from];

		cairo_move_to(cr, x0 + c->lx[i], base);
		pango_cairo_show_layout_line(cr, pango_layout_get_line_readonly(c->lay, i));
		if (i == 0 && c->marker) {
			PangoLayoutLine *ml = pango_layout_get_line_readonly(c->marker, 0);
			PangoRectangle r;

			pango_layout_line_get_extents(ml, NULL, &r);
			cairo_move_to(cr, x0 - MM(1.5) - (double)r.width / PANGO_SCALE, base);
			pango_cairo_show_layout_line(cr, ml);
		}
	}
}

static cairo_status_t write_buf(void *closure, const unsigned char *data, unsigned int len)
{
	buf_add(closure, data, len);
	return CAIRO_STATUS_SUCCESS;
}

static void set_meta(cairo_surface_t *sf, cairo_pdf_metadata_t what, const char *v)
{
	if (v && *v)
		cairo_pdf_surface_set_metadata(sf, what, v);
}

static void chunk_free(struct chunk *c)
{
	if (c->lay)
		g_object_unref(c->lay);
	if (c->marker)
		g_object_unref(c->marker);
	for (size_t k = 0; k < c->ncells; k++)
		g_object_unref(c->cells[k].lay);
	free(c->cells);
	free(c->top);
	free(c->bottom);
	free(c->base);
	free(c->lx);
}

/* Drops the last chunk. */
static void chunk_drop(struct doc *d)
{
	chunk_free(&d->ch[--d->nch]);
}

static void doc_free(struct doc *d)
{
	for (size_t i = 0; i < d->nch; i++)
		chunk_free(&d->ch[i]);
	free(d->ch);
	if (d->body)
		pango_font_description_free(d->body);
	if (d->bold)
		pango_font_description_free(d->bold);
	if (d->small)
		pango_font_description_free(d->small);
	if (d->sig)
		pango_font_description_free(d->sig);
}

static PangoFontDescription *font(const char *family, double size, PangoWeight weight)
{
	PangoFontDescription *fd = pango_font_description_new();

	pango_font_description_set_family(fd, family);
	pango_font_description_set_size(fd, (gint)(size * PANGO_SCALE));
	pango_font_description_set_weight(fd, weight);
	return fd;
}

/* The last top-level paragraph is the signature block when it is one (lines of names, or a
 * short line); the paragraph before it, when short and one line, is the closing. */
static int is_signature(cmark_node *n)
{
	const char *lit;
	size_t len = 0;

	if (!n || cmark_node_get_type(n) != CMARK_NODE_PARAGRAPH)
		return 0;
	for (cmark_node *c = cmark_node_first_child(n); c; c = cmark_node_next(c)) {
		if (cmark_node_get_type(c) == CMARK_NODE_LINEBREAK)
			return 1;
		lit = cmark_node_get_literal(c);
		len += lit ? strlen(lit) : 0;
	}
	return len <= 80;
}

int pdf_render(const struct pdf_style *st, const char *md, size_t len, const struct pdf_meta *meta,
               struct buf *out, char **errstr)
{
	struct doc d = {0};
	struct pages pg = {0};
	cmark_node *root = cmark_parse_document(md, len, CMARK_OPT_DEFAULT);
	cmark_node *last = cmark_node_last_child(root), *closing = NULL;
	cairo_surface_t *sf = NULL;
	cairo_t *cr = NULL;
	char when[32];
	struct tm tm;
	time_t day = meta->date;
	int rc = EX_OK;

	d.st = st;
	d.width = st->pw - st->ml - st->mr;
	d.date_line = meta->date_line;
	snprintf(d.lang, sizeof(d.lang), "%s", meta->language ? meta->language : "");
	d.tc = tc_get();
	d.pc = tc_context(d.tc, d.lang);
	d.body = font(st->font, BODY_SIZE, PANGO_WEIGHT_NORMAL);
	d.bold = font(st->font, BODY_SIZE, PANGO_WEIGHT_BOLD);
	d.small = font(st->font, SMALL_SIZE, PANGO_WEIGHT_NORMAL);
	d.sig = font(st->font, BODY_SIZE, PANGO_WEIGHT_NORMAL);
	d.lineh = BODY_SIZE * 1.4;

	d.lh_bot = letterhead(&d, NULL);
	d.top1 = d.lh_bot > st->mt ? d.lh_bot + MM(10) : st->mt;
	if (!is_signature(last))
		last = NULL;
	if (last) {
		cmark_node *prev = cmark_node_previous(last);
		if (prev && is_signature(prev)) {
			int breaks = 0;
			for (cmark_node *c = cmark_node_first_child(prev); c;
			     c = cmark_node_next(c))
				breaks |= cmark_node_get_type(c) == CMARK_NODE_LINEBREAK;
			if (!breaks)
				closing = prev;
		}
	}
	for (cmark_node *c = cmark_node_first_child(root); c; c = cmark_node_next(c)) {
		d.top_blocks++;
		if (c == last) {
			double avail = st->ph - st->mb - st->mt - 2 * d.lineh;

			signature(&d, c, avail);
			if (d.ch[d.nch - 1].height <= avail)
				continue;
			/* Too many to fit one page even small and in columns: a paragraph that
			 * goes on over the pages, as a list of names would. */
			chunk_drop(&d);
		}
		walk(&d, c, 0, 0, 0);
		if (c == closing && d.nch)
			d.ch[d.nch - 1].keep_next = 1;
	}

	paginate(&d, &pg);

	sf = cairo_pdf_surface_create_for_stream(write_buf, out, st->pw, st->ph);
	cairo_pdf_surface_restrict_to_version(sf, CAIRO_PDF_VERSION_1_5);
	day -= day % 86400; /* the day: a letter is dated by its day */
	gmtime_r(&day, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	set_meta(sf, CAIRO_PDF_METADATA_CREATE_DATE, when);
	set_meta(sf, CAIRO_PDF_METADATA_MOD_DATE, when);
	set_meta(sf, CAIRO_PDF_METADATA_TITLE, meta->title);
	set_meta(sf, CAIRO_PDF_METADATA_AUTHOR, meta->author);
	set_meta(sf, CAIRO_PDF_METADATA_SUBJECT, meta->subject);
	set_meta(sf, CAIRO_PDF_METADATA_KEYWORDS, meta->keywords);
	set_meta(sf, CAIRO_PDF_METADATA_CREATOR, "demarche " DEMARCHE_VERSION);
	cr = cairo_create(sf);
	{
		size_t k = 0;

		for (int page = 1; page <= pg.npages; page++) {
			cairo_set_source_rgb(cr, 0, 0, 0);
			if (page == 1)
				letterhead(&d, cr);
			draw_footer(&d, cr, page, pg.npages);
			cairo_set_source_rgb(cr, 0, 0, 0);
			for (; k < pg.n && pg.v[k].page == page; k++)
				draw_chunk(&d, cr, &pg.v[k]);
			cairo_show_page(cr);
		}
	}
	cairo_destroy(cr);
	cairo_surface_finish(sf);
	if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS)
		rc = error_set(errstr, EX_SOFTWARE, "cairo cannot make the PDF: %s",
		               cairo_status_to_string(cairo_surface_status(sf)));
	cairo_surface_destroy(sf);
	free(pg.v);
	doc_free(&d);
	cmark_node_free(root);
	return rc;
}
