/* The letterhead's style and images, and each thread's cache (docs/design.md, "The letter as a PDF"). */
#include "pdf/pdf.h"

#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <librsvg/rsvg.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "pdf/pdf_int.h"

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static void image_obj_free(int svg, void *obj);

static void tc_free(void *p)
{
	struct tcache *tc = p;

	g_hash_table_destroy(tc->layouts);
	for (size_t i = 0; i < tc->npc; i++)
		g_object_unref(tc->pc[i]);
	for (size_t i = 0; i < tc->nimg; i++)
		image_obj_free(tc->img[i].svg, tc->img[i].obj);
	free(tc);
}

/*
 * At exit: the main thread's cache, pango's font map for it and fontconfig's caches are
 * given back, so that leak checkers (ASan, valgrind) see only what is really lost.
 */
static void tc_exit(void)
{
	struct tcache *tc = pthread_getspecific(tc_key);

	if (tc) {
		pthread_setspecific(tc_key, NULL);
		tc_free(tc);
	}
	pango_cairo_font_map_set_default(NULL);
	cairo_debug_reset_static_data();
	FcFini();
}

static void tc_init(void)
{
	pthread_key_create(&tc_key, tc_free);
	atexit(tc_exit);
}

struct tcache *tc_get(void)
{
	struct tcache *tc;

	pthread_once(&tc_once, tc_init);
	tc = pthread_getspecific(tc_key);
	if (!tc) {
		tc = xcalloc(1, sizeof(*tc));
		tc->layouts = g_hash_table_new_full(g_str_hash, g_str_equal, free, g_object_unref);
		pthread_setspecific(tc_key, tc);
	}
	return tc;
}

/* The thread's context for lang: 72 dpi, unhinted metrics, unrounded glyph positions (the same
 * layout on every run). */
PangoContext *tc_context(struct tcache *tc, const char *lang)
{
	cairo_font_options_t *fo;
	PangoContext *pc;

	for (size_t i = 0; i < tc->npc; i++)
		if (!strcmp(tc->lang[i], lang))
			return tc->pc[i];
	pc = pango_font_map_create_context(pango_cairo_font_map_get_default());
	pango_cairo_context_set_resolution(pc, 72.0);
	/* Glyphs where the font puts them, not rounded to whole points: the PDF's text runs then
	 * need no per-glyph adjustment (a third of the content stream and its cost) */
	pango_context_set_round_glyph_positions(pc, FALSE);
	fo = cairo_font_options_create();
	cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
	cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
	pango_cairo_context_set_font_options(pc, fo);
	cairo_font_options_destroy(fo);
	if (*lang)
		pango_context_set_language(pc, pango_language_from_string(lang));
	if (tc->npc == CACHE_LANGS) { /* many languages: start again */
		g_hash_table_remove_all(tc->layouts);
		for (size_t i = 0; i < tc->npc; i++)
			g_object_unref(tc->pc[i]);
		tc->npc = 0;
	}
	tc->pc[tc->npc] = pc;
	snprintf(tc->lang[tc->npc++], sizeof(tc->lang[0]), "%s", lang);
	return pc;
}

/* --- images ---------------------------------------------------------------------------- */

struct png_reader {
	const unsigned char *p;
	size_t left;
};

static cairo_status_t png_read(void *closure, unsigned char *data, unsigned int len)
{
	struct png_reader *r = closure;

	if (len > r->left)
		return CAIRO_STATUS_READ_ERROR;
	memcpy(data, r->p, len);
	r->p += len;
	r->left -= len;
	return CAIRO_STATUS_SUCCESS;
}

/* img decoded: an RsvgHandle or a cairo image surface; NULL when it cannot be. Its own size
 * in *iw, *ih. */
static void *image_decode(const struct image *img, double *iw, double *ih)
{
	if (img->svg) {
		RsvgHandle *hd =
		    rsvg_handle_new_from_data((const guint8 *)img->data, img->len, NULL);
		gdouble w = 0, h = 0;

		if (!hd)
			return NULL;
		rsvg_handle_set_dpi(hd, 72.0);
		if (!rsvg_handle_get_intrinsic_size_in_pixels(hd, &w, &h) || w <= 0 || h <= 0) {
			RsvgRectangle vp0 = {0, 0, 100, 100}, ink, logical;
			if (!rsvg_handle_get_geometry_for_layer(hd, NULL, &vp0, &ink, &logical,
			                                        NULL) ||
			    logical.width <= 0 || logical.height <= 0) {
				g_object_unref(hd);
				return NULL;
			}
			w = logical.width;
			h = logical.height;
		}
		*iw = w;
		*ih = h;
		return hd;
	} else {
		struct png_reader r = {(const unsigned char *)img->data, img->len};
		cairo_surface_t *sf = cairo_image_surface_create_from_png_stream(png_read, &r);

		if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS ||
		    cairo_image_surface_get_width(sf) <= 0 ||
		    cairo_image_surface_get_height(sf) <= 0) {
			cairo_surface_destroy(sf);
			return NULL;
		}
		*iw = cairo_image_surface_get_width(sf);
		*ih = cairo_image_surface_get_height(sf);
		return sf;
	}
}

static void image_obj_free(int svg, void *obj)
{
	if (svg)
		g_object_unref(obj);
	else
		cairo_surface_destroy(obj);
}

/* img decoded, from the thread's cache: a letterhead's logo is parsed once per thread, not
 * twice per letter. NULL when it cannot be decoded. */
static void *image_obj(const struct image *img)
{
	struct tcache *tc = tc_get();
	double iw, ih;
	void *obj;

	for (size_t i = 0; i < tc->nimg; i++)
		if (tc->img[i].id == img->id)
			return tc->img[i].obj;
	obj = image_decode(img, &iw, &ih);
	if (!obj)
		return NULL;
	if (tc->nimg == CACHE_IMAGES) { /* many styles in one process: start again */
		for (size_t i = 0; i < tc->nimg; i++)
			image_obj_free(tc->img[i].svg, tc->img[i].obj);
		tc->nimg = 0;
	}
	tc->img[tc->nimg].id = img->id;
	tc->img[tc->nimg].svg = img->svg;
	tc->img[tc->nimg++].obj = obj;
	return obj;
}

double image_draw(cairo_t *cr, const struct image *img, double x, double y, double maxw,
                  double maxh, int measure_only, double *width_out)
{
	double w, h, s;
	void *obj;

	if (!img->data || img->iw <= 0 || img->ih <= 0)
		return 0;
	s = fmin(maxw / img->iw, maxh / img->ih);
	w = img->iw * s;
	h = img->ih * s;
	if (!measure_only) {
		if (!(obj = image_obj(img)))
			return 0;
		if (img->svg) {
			RsvgRectangle vp = {x, y, w, h};

			rsvg_handle_render_document(obj, cr, &vp, NULL);
		} else {
			cairo_save(cr);
			cairo_translate(cr, x, y);
			cairo_scale(cr, s, s);
			cairo_set_source_surface(cr, obj, 0, 0);
			cairo_paint(cr);
			cairo_restore(cr);
		}
	}
	if (width_out)
		*width_out = w;
	return h;
}

/* Reads path into img and checks that it is a PNG or SVG that can be drawn. */
static int image_load(struct image *img, const char *path, const char *what, char **errstr)
{
	static atomic_ulong ids;
	const char *dot = strrchr(path, '.');
	GError *err = NULL;
	gsize len = 0;
	void *obj;

	if (!g_file_get_contents(path, &img->data, &len, &err)) {
		int rc = error_set(errstr, EX_NOINPUT, "[letterhead] %s: cannot read %s: %s", what,
		                   path, err->message);
		g_error_free(err);
		return rc;
	}
	img->len = len;
	img->svg = dot && !strcasecmp(dot, ".svg");
	if (!img->svg && (!dot || strcasecmp(dot, ".png")))
		return error_set(errstr, EX_DATAERR, "[letterhead] %s: %s is neither .png nor .svg",
		                 what, path);
	if (!(obj = image_decode(img, &img->iw, &img->ih)))
		return error_set(errstr, EX_DATAERR, "[letterhead] %s: %s is not a valid %s image",
		                 what, path, img->svg ? "SVG" : "PNG");
	image_obj_free(img->svg, obj);
	img->id = atomic_fetch_add(&ids, 1) + 1;
	return EX_OK;
}

static void image_free(struct image *img)
{
	free(img->name);
	g_free(img->data);
	memset(img, 0, sizeof(*img));
}

/* --- the style -------------------------------------------------------------------------- */

static int parse_margins(struct pdf_style *st, const char *s, char **errstr)
{
	double v[4];
	int n = 0;
	const char *p = s;

	while (*p && n < 5) {
		char *end;
		double x;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		errno = 0;
		x = strtod(p, &end);
		if (end == p || errno || x < 0 || x > 100 || n == 4)
			return error_set(
			    errstr, EX_CONFIG,
			    "[letterhead] margins '%s': give one number of millimetres "
			    "(0 to 100) or four (top right bottom left)",
			    s);
		v[n++] = x;
		p = end;
		if (!strncmp(p, "mm", 2))
			p += 2;
	}
	if (n != 1 && n != 4)
		return error_set(
		    errstr, EX_CONFIG,
		    "[letterhead] margins '%s': give one number of millimetres or four "
		    "(top right bottom left)",
		    s);
	if (n == 1)
		v[1] = v[2] = v[3] = v[0];
	st->mt = MM(v[0]);
	st->mr = MM(v[1]);
	st->mb = MM(v[2]);
	st->ml = MM(v[3]);
	if (st->ml + st->mr > st->pw - MM(50) || st->mt + st->mb > st->ph - MM(80))
		return error_set(errstr, EX_CONFIG, "[letterhead] margins '%s' leave no room", s);
	return EX_OK;
}

/* 1 when fontconfig has the family itself (not a substitute). */
static int font_exists(const char *family)
{
	PangoFontMap *fm;
	PangoFontFamily **fams = NULL;
	int n = 0, found = 0;

	tc_get(); /* the font map is given back at exit */
	fm = pango_cairo_font_map_get_default();
	pango_font_map_list_families(fm, &fams, &n);
	for (int i = 0; i < n && !found; i++)
		found = !strcasecmp(pango_font_family_get_name(fams[i]), family);
	g_free(fams);
	return found;
}

static void split_lines(struct pdf_style *st, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, ";\n");
		const char *a = s, *b = s + n;

		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > a) {
			st->addr = xreallocarray(st->addr, st->naddr + 1, sizeof(char *));
			st->addr[st->naddr++] = xstrndup(a, (size_t)(b - a));
		}
		s += n;
		if (*s)
			s++;
	}
}

int pdf_style_new(const struct pdf_letterhead *lh, struct pdf_style **out, char **errstr)
{
	struct pdf_style *st = xcalloc(1, sizeof(*st));
	int rc = EX_OK;

	*out = NULL;
	if (!lh->paper || !*lh->paper || !strcasecmp(lh->paper, "A4")) {
		st->pw = 595.2756; /* 210 x 297 mm */
		st->ph = 841.8898;
	} else if (!strcasecmp(lh->paper, "Letter")) {
		st->pw = 612; /* 8.5 x 11 in */
		st->ph = 792;
	} else {
		rc = error_set(errstr, EX_CONFIG, "[letterhead] paper '%s': write A4 or Letter",
		               lh->paper);
		goto out;
	}
	rc = parse_margins(st, lh->margins && *lh->margins ? lh->margins : "25", errstr);
	if (rc != EX_OK)
		goto out;
	st->font = xstrdup(lh->font && *lh->font ? lh->font : "Noto Serif");
	if (!font_exists(st->font)) {
		rc =
		    error_set(errstr, EX_CONFIG,
		              "[letterhead] font '%s' is not installed (fc-list : family lists the "
		              "families; the default, Noto Serif, is in fonts-noto-core)",
		              st->font);
		goto out;
	}
	st->name = lh->name && *lh->name ? xstrdup(lh->name) : NULL;
	st->footer = lh->footer && *lh->footer ? xstrdup(lh->footer) : NULL;
	if (lh->address)
		split_lines(st, lh->address);
	if (lh->logo && *lh->logo) {
		rc = image_load(&st->logo, lh->logo, "logo", errstr);
		if (rc != EX_OK)
			goto out;
	}
	if (lh->signature && *lh->signature) {
		rc = image_load(&st->signature, lh->signature, "signature", errstr);
		if (rc != EX_OK)
			goto out;
	}
	if (lh->nsigs)
		st->sigs = xcalloc(lh->nsigs, sizeof(*st->sigs));
	for (size_t i = 0; i < lh->nsigs; i++) {
		char *what = xasprintf("signature.%s", lh->sig_names[i]);

		st->nsigs++;
		rc = image_load(&st->sigs[i], lh->sig_files[i], what, errstr);
		free(what);
		if (rc != EX_OK)
			goto out;
		st->sigs[i].name = xstrdup(lh->sig_names[i]);
	}
	*out = st;
	st = NULL;
out:
	pdf_style_free(st);
	return rc;
}

void pdf_style_free(struct pdf_style *st)
{
	if (!st)
		return;
	free(st->font);
	free(st->name);
	free(st->footer);
	for (size_t i = 0; i < st->naddr; i++)
		free(st->addr[i]);
	free(st->addr);
	image_free(&st->logo);
	image_free(&st->signature);
	for (size_t i = 0; i < st->nsigs; i++)
		image_free(&st->sigs[i]);
	free(st->sigs);
	free(st);
}
