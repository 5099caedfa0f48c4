/* The letter as a PDF for one mission, its file name, and the cover note that carries it. */
#include "campaign/document.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/digest.h"
#include "base/xalloc.h"
#include "letter/markdown.h"
#include "letter/mustache.h"
#include "letter/plaintext.h"
#include "mail/compose.h"
#include "pdf/pdf.h"

/* path as given when absolute (or no configuration file), else next to the configuration. */
static char *beside(const struct config *cfg, const char *path)
{
	char *dir, *s;

	if (!path || !*path || path[0] == '/' || !cfg->path)
		return path ? xstrdup(path) : NULL;
	dir = xstrdup(cfg->path);
	s = xasprintf("%s/%s", dirname(dir), path);
	free(dir);
	return s;
}

int document_run_init(struct document_run *dr, const struct config *cfg, const char *appeal_path,
                      const char *sender_name, struct diags *d, char **errstr)
{
	const struct config *c = cfg;
	struct pdf_letterhead lh = {0};
	char *logo = beside(cfg, c->letterhead.logo), *sig = beside(cfg, c->letterhead.signature);
	char **files = xcalloc(c->letterhead.nsigs + 1, sizeof(char *));
	char *cover = appeal_path ? xasprintf("%s/cover", appeal_path) : NULL;
	struct stat st;
	int rc;

	memset(dr, 0, sizeof(*dr));
	for (size_t i = 0; i < c->letterhead.nsigs; i++)
		files[i] = beside(cfg, c->letterhead.sig_files[i]);
	lh.name = c->letterhead.name;
	lh.address = c->letterhead.address;
	lh.logo = logo;
	lh.footer = c->letterhead.footer;
	lh.paper = c->letterhead.paper;
	lh.margins = c->letterhead.margins;
	lh.font = c->letterhead.font;
	lh.signature = sig;
	lh.sig_names = (const char *const *)c->letterhead.sig_names;
	lh.sig_files = (const char *const *)files;
	lh.nsigs = c->letterhead.nsigs;
	rc = pdf_style_new(&lh, &dr->style, errstr);
	if (rc == EX_OK && cover && stat(cover, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = letter_load(cover, NULL, &dr->cover, d);
		if (rc != EX_OK)
			rc = error_set(errstr, rc, "the cover notes in %s cannot be loaded", cover);
	}
	dr->author = xstrdup(c->letterhead.name && *c->letterhead.name ? c->letterhead.name
	                     : sender_name                             ? sender_name
	                                                               : "");
	for (size_t i = 0; i < c->letterhead.nsigs; i++)
		free(files[i]);
	free(files);
	free(logo);
	free(sig);
	free(cover);
	return rc;
}

void document_run_free(struct document_run *dr)
{
	pdf_style_free(dr->style);
	letter_free(dr->cover);
	free(dr->author);
	memset(dr, 0, sizeof(*dr));
}

char *document_file_name(const char *campaign, const char *key)
{
	char *s = xasprintf("%s-%s", campaign ? campaign : "letter", key ? key : "");
	size_t n = strlen(s);

	if (n > 120)
		n = 120;
	s[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		         (c >= '0' && c <= '9') || c == '-' || c == '_' || (c == '.' && i > 0);
		if (!ok)
			s[i] = '_';
	}
	{
		char *full = xasprintf("%s.pdf", s);
		free(s);
		return full;
	}
}

static const char *ctx_str(json_t *ctx, const char *name)
{
	const char *s = json_string_value(json_object_get(ctx, name));
	return s ? s : "";
}

int document_render(const struct document_run *dr, const char *campaign, const char *key,
                    json_t *ctx, const struct letter_out *lo, time_t date, struct buf *pdf,
                    char **errstr)
{
	struct pdf_meta meta = {0};
	char *keywords = xasprintf("%s, %s, %s", campaign ? campaign : "", key ? key : "",
	                           lo->language ? lo->language : "");
	int rc;

	meta.title = lo->title;
	meta.author = dr->author;
	meta.subject = lo->subject;
	meta.keywords = keywords;
	meta.language = lo->language;
	meta.date = date;
	meta.date_line = ctx_str(ctx, "letter_date");
	rc = pdf_render(dr->style, lo->md, strlen(lo->md), &meta, pdf, errstr);
	free(keywords);
	return rc;
}

/* The built-in cover notes: salutation, the letter's title, file and date, the sender. */
static const struct {
	const char *lang, *fmt[4], *closing;
} notes[] = {
    {"en",
     {",\n\nPlease find attached our letter *", "* (", "), dated ",
      ".\n\nThe letter itself is the attached PDF; this message only carries it.\n\n"},
     "Sincerely,"},
    {"fr",
     {",\n\nVeuillez trouver ci-joint notre lettre *", "* (", "), datée du ",
      ".\n\nLa lettre elle-même est le PDF joint ; ce message ne fait que le porter.\n\n"},
     "Veuillez agréer l'expression de notre haute considération."},
    {"es",
     {":\n\nAdjuntamos nuestra carta *", "* (", "), de fecha ",
      ".\n\nLa carta misma es el PDF adjunto; este mensaje solo lo transmite.\n\n"},
     "Atentamente,"},
};

static void add_md(struct buf *b, const char *s)
{
	mustache_escape(b, MUSTACHE_ESCAPE_MARKDOWN, s, strlen(s));
}

int document_cover(const struct document_run *dr, json_t *ctx, const struct letter_out *lo,
                   const char *file, char **text, char **html, struct diags *d)
{
	struct buf md = BUF_INIT;
	size_t k = 0;

	*text = *html = NULL;
	if (dr->cover) {
		struct letter_out co;
		json_t *c = json_copy(ctx);
		int rc;

		json_object_set_new(c, "document", json_string(file));
		json_object_set_new(c, "title", json_string(lo->title ? lo->title : ""));
		rc = letter_render(dr->cover, lo->language, c, &co, d);
		json_decref(c);
		if (rc != EX_OK)
			return rc;
		*text = co.text;
		*html = co.html;
		co.text = co.html = NULL;
		letter_out_free(&co);
		return EX_OK;
	}
	for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++)
		if (lo->language && !strcmp(notes[i].lang, lo->language))
			k = i;
	add_md(&md, ctx_str(ctx, "salutation"));
	buf_adds(&md, notes[k].fmt[0]);
	add_md(&md, lo->title ? lo->title : "");
	buf_adds(&md, notes[k].fmt[1]);
	add_md(&md, file);
	buf_adds(&md, notes[k].fmt[2]);
	add_md(&md, ctx_str(ctx, "letter_date"));
	buf_adds(&md, notes[k].fmt[3]);
	buf_adds(&md, notes[k].closing);
	buf_adds(&md, "\n\n");
	add_md(&md, dr->author);
	buf_addc(&md, '\n');
	*text = plaintext_from_markdown(md.data, md.len);
	*html = markdown_html_document(md.data, md.len, lo->title);
	buf_free(&md);
	return EX_OK;
}

int document_attach(const struct document_run *dr, const char *campaign, const char *key,
                    json_t *ctx, const struct letter_out *lo, time_t date,
                    struct mail_attachment **att, char **sha, char **text, char **html,
                    char **errstr)
{
	struct buf pdf = BUF_INIT;
	struct diags d = {0};
	char *name = document_file_name(campaign, key), hex[DIGEST_HEX_SIZE];
	int rc;

	*att = NULL;
	*sha = *text = *html = NULL;
	rc = document_render(dr, campaign, key, ctx, lo, date, &pdf, errstr);
	if (rc != EX_OK)
		goto out;
	if (lo->form == LETTER_FORM_PDF) {
		rc = document_cover(dr, ctx, lo, name, text, html, &d);
		if (rc != EX_OK) {
			rc = error_set(errstr, rc, "the cover note cannot be rendered for '%s': %s",
			               key, d.n ? d.v[0].msg : "?");
			goto out;
		}
	}
	rc = mail_attachment_new(name, pdf.data, pdf.len, att, errstr);
	if (rc != EX_OK)
		goto out;
	digest_sha256_hex(pdf.data, pdf.len, hex);
	*sha = xstrdup(hex);
out:
	if (rc != EX_OK) {
		free(*text);
		free(*html);
		*text = *html = NULL;
	}
	diags_free(&d);
	buf_free(&pdf);
	free(name);
	return rc;
}
