/* draft: a template rendered residually with campaign params into an appeal's folder. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/confine.h"
#include "base/error.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/letter_int.h"
#include "letter/mustache.h"

/* One file draft writes: its name in the appeal's folder and its bytes. */
struct draft_out {
	char *name;
	char *data;
	size_t len;
	mode_t mode;
	char *source; /* an attachment's canonical path; NULL for LANG.md */
	char *tmp;    /* its temporary name while written, NULL once renamed or removed */
	int placed;   /* renamed into place over nothing: removed again when a later one fails */
};

struct draft_outs {
	struct draft_out *v;
	size_t n;
};

static void draft_outs_free(struct draft_outs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].name);
		free(o->v[i].data);
		free(o->v[i].source);
		free(o->v[i].tmp);
	}
	free(o->v);
	memset(o, 0, sizeof(*o));
}

/*
 * Adds a file to write (takes data and source). The same attachment named twice (e.g. by
 * each language) is written once; two different files under one name are refused, so that
 * one never silently replaces the other (an attachment called fr.md, or a/x.pdf and b/x.pdf).
 */
static int draft_add(struct draft_outs *o, const char *name, char *data, size_t len, mode_t mode,
                     char *source, const char *file, long line, struct diags *d)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->v[i].name, name))
			continue;
		if (source && o->v[i].source && !strcmp(source, o->v[i].source)) {
			free(data);
			free(source);
			return EX_OK;
		}
		diags_add(d, DIAG_ERROR, file, line, NULL,
		          "two different files would be written as '%s' in the appeal's folder",
		          name);
		free(data);
		free(source);
		return EX_DATAERR;
	}
	o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
	o->v[o->n] = (struct draft_out){xstrdup(name), data, len, mode, source, NULL, 0};
	o->n++;
	return EX_OK;
}

/* Reads the attachment rel of f (as confine_open() allows) into o. */
static int draft_attachment(const struct letter_file *f, const struct header *h, const char *rel,
                            struct draft_outs *o, struct diags *d)
{
	char *why = NULL, *resolved = NULL, *data = NULL;
	const char *base = strrchr(rel, '/');
	struct stat st;
	size_t len = 0;
	int fd, rc;

	rc = confine_open(f->dir, rel, &fd, &st, &resolved, &why);
	if (rc == EX_OK) {
		rc = confine_read(fd, LETTER_MAX_ATTACH_SIZE, &data, &len, &why);
		close(fd);
	}
	if (rc != EX_OK) {
		diags_add(d, DIAG_ERROR, f->path, h->line, NULL, "Attachment '%s' refused: %s", rel,
		          why);
		free(why);
		free(resolved);
		return EX_DATAERR;
	}
	/* The copy is never more open than its source: its read and write bits, no more. */
	return draft_add(o, base ? base + 1 : rel, data, len, st.st_mode & 0666, resolved, f->path,
	                 h->line, d);
}

/* Removes what this draft created: temporary files, and files it put where none was. */
static void draft_rollback(int dfd, struct draft_outs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		if (o->v[i].tmp)
			unlinkat(dfd, o->v[i].tmp, 0);
		if (o->v[i].placed)
			unlinkat(dfd, o->v[i].name, 0);
	}
}

/*
 * Writes o into dir: each file new under a temporary name (O_EXCL | O_NOFOLLOW: nothing
 * planted there is followed), then each renamed into place. rename() replaces a symlink
 * or a hard link at the name instead of writing through it.
 */
static int draft_write(const char *dir, struct draft_outs *o, struct diags *d)
{
	char *path = xstrdup(dir);
	int dfd, rc = EX_OK;

	/* "DIR/" would make O_NOFOLLOW follow DIR itself. */
	for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
		path[n - 1] = '\0';
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		diags_add(d, DIAG_ERROR, dir, 0, NULL, "%s",
		          errno == ELOOP || errno == ENOTDIR
		              ? "a symlink or not a folder; draft does not write through a "
		                "symlink (name the real folder)"
		              : strerror(errno));
		free(path);
		return EX_CANTCREAT;
	}
	for (size_t i = 0; i < o->n && rc == EX_OK; i++) {
		struct draft_out *w = &o->v[i];
		int fd = -1;

		for (unsigned k = 0; k < 100 && fd < 0; k++) {
			free(w->tmp);
			w->tmp = xasprintf(".draft-%ld-%zu-%u.tmp", (long)getpid(), i, k);
			fd = openat(dfd, w->tmp,
			            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, w->mode);
			if (fd < 0 && errno != EEXIST)
				break;
		}
		if (fd < 0) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot create %s: %s", w->tmp,
			          strerror(errno));
			free(w->tmp);
			w->tmp = NULL;
			rc = EX_CANTCREAT;
			break;
		}
		if (write_all(fd, w->data, w->len) != 0) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot write %s: %s", w->name,
			          strerror(errno));
			rc = EX_IOERR;
		}
		if (close(fd) != 0 && rc == EX_OK) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot write %s: %s", w->name,
			          strerror(errno));
			rc = EX_IOERR;
		}
	}
	for (size_t i = 0; i < o->n && rc == EX_OK; i++) {
		struct draft_out *w = &o->v[i];
		struct stat st;
		int existed = fstatat(dfd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0;

		if (renameat(dfd, w->tmp, dfd, w->name) != 0) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot write %s: %s", w->name,
			          strerror(errno));
			rc = EX_CANTCREAT;
			break;
		}
		free(w->tmp);
		w->tmp = NULL;
		w->placed = !existed;
	}
	if (rc != EX_OK)
		draft_rollback(dfd, o);
	close(dfd);
	free(path);
	return rc;
}

/* Renders one file residually into out (headers then body); its attachments read into o. */
static int draft_file(const struct letter *l, const struct letter_file *f, json_t *params,
                      struct draft_outs *o, struct buf *out, struct diags *d)
{
	struct mustache_render_opts hopts = {MUSTACHE_ESCAPE_NONE, 0, 1, l->partials, d};
	struct mustache_render_opts bopts = {MUSTACHE_ESCAPE_MARKDOWN, 0, 1, l->partials, d};
	int rc = EX_OK;

	for (size_t i = 0; i < f->nheaders; i++) {
		const struct header *h = &f->headers[i];
		char *v = NULL;

		if (!h->tpl) {
			/* Params are filled; Language is the file name now; Audience stays. */
			if (!strcmp(h->name, "Audience") || !strcmp(h->name, "Form"))
				buf_addf(out, "%s: %s\n", h->name, h->src);
			continue;
		}
		if (letter_render_header(f, h, params, &hopts, &v, d) != EX_OK) {
			rc = EX_DATAERR;
			continue;
		}
		if (!strcmp(h->name, "Attachment")) {
			const char *base = strrchr(v, '/');
			char *name = xstrdup(base ? base + 1 : v);
			int r = draft_attachment(f, h, v, o, d);

			if (r != EX_OK)
				rc = r;
			free(v);
			v = name;
		}
		buf_addf(out, "%s: %s\n", h->name, v);
		free(v);
	}
	buf_addc(out, '\n');
	if (mustache_render(f->body, params, &bopts, out) != EX_OK)
		rc = EX_DATAERR;
	return rc;
}

int letter_draft(const struct letter *l, json_t *params, const char *dir, struct diags *d)
{
	struct draft_outs o = {0};
	struct buf b = BUF_INIT;
	size_t e0 = d->errors;
	int rc = EX_OK;

	if (!json_is_object(params)) {
		diags_add(d, DIAG_ERROR, NULL, 0, NULL, "the params must be a JSON object");
		return EX_DATAERR;
	}
	for (size_t i = 0; i < l->nparams; i++)
		if (!json_object_get(params, l->params[i]))
			diags_add(d, DIAG_ERROR, l->path, 0, NULL, "missing param '%s'",
			          l->params[i]);
	if (d->errors > e0)
		return EX_DATAERR;
	/* Everything rendered and read before anything is written. */
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct letter_file *f = &l->files[i];
		char *name = xasprintf("%s.md", f->language);
		int r;

		buf_reset(&b);
		r = draft_file(l, f, params, &o, &b, d);
		if (r == EX_OK) {
			size_t len = b.len;

			r = draft_add(&o, name, buf_detach(&b), len, 0666, NULL, f->path, 0, d);
		}
		if (r != EX_OK && rc == EX_OK)
			rc = r;
		free(name);
	}
	if (rc == EX_OK)
		rc = draft_write(dir, &o, d);
	buf_free(&b);
	draft_outs_free(&o);
	return rc;
}
