/*
 * What the PDF renderer's files share (src/pdf/): the letterhead's style and images, read
 * once, and each thread's cache of pango contexts, layouts and decoded images.
 */
#ifndef DEMARCHE_PDF_INT_H
#define DEMARCHE_PDF_INT_H

#include <pango/pangocairo.h>
#include <stddef.h>

#define MM(x)      ((x)*72.0 / 25.4)
#define BODY_SIZE  11.0 /* points */
#define SMALL_SIZE 8.5
#define LOGO_H     MM(20)
#define LOGO_W     MM(60)
#define SIG_IMG_H  MM(14)
#define INDENT     MM(8) /* a list level, a block quote */

/* An image read once: PNG or SVG bytes. */
struct image {
	char *name; /* the signatory's line it goes above; NULL for the letterhead's logo */
	char *data;
	size_t len;
	int svg;
	double iw, ih;    /* its own size: pixels (PNG), or the SVG's size at 72 dpi */
	unsigned long id; /* unique in the process: what the threads' caches know it by */
};

struct pdf_style {
	double pw, ph, mt, mr, mb, ml;
	char *font, *name, *footer;
	char **addr;
	size_t naddr;
	struct image logo, signature; /* data NULL when none */
	struct image *sigs;
	size_t nsigs;
};

/*
 * What a thread keeps from one letter to the next: a pango context per language (fonts stay
 * loaded), the layouts made, by text and form, and the images decoded. Freed when the thread
 * ends.
 */
#define CACHE_LANGS   8
#define CACHE_LAYOUTS 4096
#define CACHE_IMAGES  8

struct tcache {
	PangoContext *pc[CACHE_LANGS];
	char lang[CACHE_LANGS][16];
	size_t npc;
	GHashTable *layouts; /* key (malloc'ed) -> PangoLayout */
	struct {
		unsigned long id; /* struct image's */
		int svg;
		void *obj; /* RsvgHandle (SVG) or cairo image surface (PNG), decoded once */
	} img[CACHE_IMAGES];
	size_t nimg;
};

/* The calling thread's cache (made on first use, freed when the thread ends). */
struct tcache *tc_get(void);
/* The thread's pango context for lang (a BCP 47 tag, or "" for none). */
PangoContext *tc_context(struct tcache *tc, const char *lang);

/*
 * Draws img into the box (x, y, maxw, maxh), keeping its proportions, flush left; with
 * measure_only nothing is drawn (cr may be NULL). Returns the height (0 when it cannot be
 * drawn); width_out (may be NULL) gets the width.
 */
double image_draw(cairo_t *cr, const struct image *img, double x, double y, double maxw,
                  double maxh, int measure_only, double *width_out);

#endif
