/* Letter rendering: one mission's headers and body from a loaded letter (letter.c). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/confine.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/letter_int.h"
#include "letter/markdown.h"
#include "letter/mustache.h"
#include "letter/plaintext.h"

/* Renders one header value; a rendered line break is refused (header injection). */
int letter_render_header(const struct letter_file *f, const struct header *h, json_t *ctx,
                         const struct mustache_render_opts *opts, char **out, struct diags *d)
{
	struct buf b = BUF_INIT;
	int rc = mustache_render(h->tpl, ctx, opts, &b);

	*out = NULL;
	if (rc != EX_OK) {
		buf_free(&b);
		return rc;
	}
	if (strpbrk(buf_str(&b), "\r\n")) {
		diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
		          "%s renders with a line break; a header value must be one line", h->name);
		buf_free(&b);
		return EX_DATAERR;
	}
	*out = buf_detach(&b);
	return EX_OK;
}

int letter_campaign_id(const struct letter *l, char **id, struct diags *d)
{
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_NONE, 1, 0, l->partials, d};
	json_t *empty = json_object();
	int rc = EX_OK;

	*id = NULL;
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct letter_file *f = &l->files[i];
		const struct header *h = letter_find_header(f, "Campaign");
		size_t e0 = d->errors;
		char *v = NULL;

		if (!h) {
			diags_add(d, DIAG_ERROR, f->path, 1, NULL, "no Campaign header");
			rc = EX_DATAERR;
			continue;
		}
		if (letter_render_header(f, h, empty, &opts, &v, d) != EX_OK) {
			if (d->errors > e0)
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "Campaign needs variables: this is a template; draft an "
				          "appeal from it first");
			rc = EX_DATAERR;
			continue;
		}
		if (!*v) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL, "Campaign is empty");
			rc = EX_DATAERR;
		} else if (*id && strcmp(*id, v)) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
			          "Campaign '%s' differs from '%s' in %s", v, *id,
			          l->files[0].path);
			rc = EX_DATAERR;
		}
		if (!*id)
			*id = v;
		else
			free(v);
	}
	json_decref(empty);
	if (rc != EX_OK) {
		free(*id);
		*id = NULL;
	}
	return rc;
}

void letter_out_free(struct letter_out *out)
{
	if (!out)
		return;
	free(out->language);
	free(out->title);
	free(out->subject);
	free(out->campaign);
	free(out->cc);
	free(out->bcc);
	free(out->reply_to);
	for (size_t i = 0; i < out->nattachments; i++) {
		free(out->attachments[i]);
		free(out->attachment_rel[i]);
	}
	free(out->attachments);
	free(out->attachment_rel);
	free(out->attachment_dir);
	free(out->text);
	free(out->md);
	free(out->html);
	memset(out, 0, sizeof(*out));
}

static char *resolve_path(const char *dir, const char *rel)
{
	if (rel[0] == '/' || !strcmp(dir, "."))
		return xstrdup(rel);
	return xasprintf("%s/%s", dir, rel);
}

/* letter_render_text(), or letter_render_md() when text is 0. */
static int render(const struct letter *l, const char *language, json_t *ctx, struct letter_out *out,
                  struct diags *d, int text)
{
	struct mustache_render_opts hopts = {MUSTACHE_ESCAPE_NONE, 1, 0, l->partials, d};
	struct mustache_render_opts bopts = {MUSTACHE_ESCAPE_MARKDOWN, 1, 0, l->partials, d};
	const struct letter_file *f;
	struct buf body = BUF_INIT;
	size_t e0 = d->errors;
	int fell_back, rc = EX_OK;
	long long attach_size = 0;
	struct stat st;

	memset(out, 0, sizeof(*out));
	f = letter_pick_file(l, language, &fell_back);
	out->language = xstrdup(f->language);
	out->fell_back = fell_back;
	{
		const struct header *fh = letter_find_header(f, "Form");
		out->form = fh && letter_form_parse(fh->src) > 0 ? letter_form_parse(fh->src)
		                                                 : LETTER_FORM_EMAIL;
	}
	for (size_t i = 0; i < f->nheaders; i++) {
		const struct header *h = &f->headers[i];
		char *v = NULL, **slot = NULL;

		if (!h->tpl)
			continue; /* Params, Language */
		if (letter_render_header(f, h, ctx, &hopts, &v, d) != EX_OK) {
			rc = EX_DATAERR;
			continue;
		}
		if (!strcmp(h->name, "Title"))
			slot = &out->title;
		else if (!strcmp(h->name, "Subject"))
			slot = &out->subject;
		else if (!strcmp(h->name, "Campaign"))
			slot = &out->campaign;
		else if (!strcmp(h->name, "Cc"))
			slot = &out->cc;
		else if (!strcmp(h->name, "Reply-To"))
			slot = &out->reply_to;
		if (slot) {
			*slot = v;
			continue;
		}
		if (!strcmp(h->name, "Follows")) { /* read as its source (letter_header_source) */
			free(v);
			continue;
		}
		/* Attachment */
		if (!*v) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL, "Attachment is empty");
			rc = EX_DATAERR;
			free(v);
			continue;
		}
		if (!out->attachment_dir)
			out->attachment_dir = xstrdup(f->dir);
		out->attachments = xreallocarray(out->attachments, out->nattachments + 1,
		                                 sizeof(*out->attachments));
		out->attachment_rel = xreallocarray(out->attachment_rel, out->nattachments + 1,
		                                    sizeof(*out->attachment_rel));
		out->attachments[out->nattachments] = resolve_path(f->dir, v);
		out->attachment_rel[out->nattachments] = v;
		out->nattachments++;
		/* Opened as send will open it: inside the folder, a regular file. */
		{
			char *why = NULL;
			int fd, r = confine_open(f->dir, v, &fd, &st, NULL, &why);

			if (r != EX_OK) {
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "Attachment '%s' refused: %s", v, why);
				rc = EX_DATAERR;
			} else if ((attach_size += st.st_size) > LETTER_MAX_ATTACH_SIZE) {
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "attachments up to '%s' total %lld bytes, over the %ld "
				          "byte limit (25 MB)",
				          out->attachments[out->nattachments - 1], attach_size,
				          LETTER_MAX_ATTACH_SIZE);
				rc = EX_DATAERR;
			}
			if (fd >= 0)
				close(fd);
			free(why);
		}
	}
	/* About the size of its source: no regrowth as it is rendered. */
	buf_grow(&body, strlen(f->body_src) + 256);
	if (mustache_render(f->body, ctx, &bopts, &body) != EX_OK)
		rc = EX_DATAERR;
	if (rc == EX_OK && d->errors > e0)
		rc = EX_DATAERR;
	if (rc != EX_OK) {
		buf_free(&body);
		letter_out_free(out);
		return rc;
	}
	if (!out->title)
		out->title = xstrdup(out->subject ? out->subject : "");
	/* The text part from cmark's tree (letter/plaintext.h), not from the source; the
	 * Markdown is kept for letter_html(). */
	out->md = markdown_renumber(buf_str(&body));
	if (text)
		out->text = plaintext_from_markdown(out->md, strlen(out->md));
	buf_free(&body);
	return EX_OK;
}

int letter_render_text(const struct letter *l, const char *language, json_t *ctx,
                       struct letter_out *out, struct diags *d)
{
	return render(l, language, ctx, out, d, 1);
}

int letter_render_md(const struct letter *l, const char *language, json_t *ctx,
                     struct letter_out *out, struct diags *d)
{
	return render(l, language, ctx, out, d, 0);
}

char *letter_html(const struct letter_out *lo)
{
	return markdown_html_document(lo->md, strlen(lo->md), lo->title);
}

int letter_render(const struct letter *l, const char *language, json_t *ctx, struct letter_out *out,
                  struct diags *d)
{
	int rc = letter_render_text(l, language, ctx, out, d);

	if (rc == EX_OK)
		out->html = letter_html(out);
	return rc;
}
