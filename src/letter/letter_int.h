/*
 * What the pieces of src/letter/letter*.c share: a loaded letter's structure, the input
 * limits, and the lookups the loader, the renderer and draft all use. Private to them.
 */
#ifndef DEMARCHE_LETTER_INT_H
#define DEMARCHE_LETTER_INT_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"
#include "letter/mustache.h"

/* One header value: its source, where it was, and its compiled template. */
struct header {
	char *name; /* canonical spelling: "Title", "Reply-To", ... */
	char *src;
	long line;
	struct mustache_template *tpl;
};

struct letter_file {
	char *language;
	char *path; /* as opened */
	char *dir;  /* its folder: attachments and partials are relative to it */
	char *bytes;
	size_t len;
	struct header *headers;
	size_t nheaders;
	char **params;
	size_t nparams;
	long body_line;
	char *body_src;
	struct mustache_template *body;
};

struct letter {
	char *path;
	char *layout_dir;
	struct letter_file *files;
	size_t nfiles;
	const char **languages;
	char **params;
	size_t nparams;
	char hash[65];
	struct mustache_partials *partials;
};

/*
 * Input limits: a letter is a few pages (the longest of the Coalition's is 12 KB), and what
 * goes out must fit the mail providers' message size limits (commonly 25 MB, base64 adds
 * a third). Each is refused with an error naming the limit.
 */
#define LETTER_MAX_SIZE        (1024 * 1024)       /* bytes in one LANG.md or partial */
#define LETTER_MAX_ATTACHMENTS 20                  /* Attachment headers in one file */
#define LETTER_MAX_ATTACH_SIZE (25L * 1000 * 1000) /* their total size in bytes */

/* The header name of f ("Title", ...), or NULL. */
const struct header *letter_find_header(const struct letter_file *f, const char *name);
/* The file for language, else en, else the first; *fell_back = 1 when not language's own. */
const struct letter_file *letter_pick_file(const struct letter *l, const char *language,
                                           int *fell_back);
/* Renders one header value; a rendered line break is refused (header injection). Returns
 * EX_OK with *out allocated, or EX_DATAERR (problems in d). */
int letter_render_header(const struct letter_file *f, const struct header *h, json_t *ctx,
                         const struct mustache_render_opts *opts, char **out, struct diags *d);

#endif
