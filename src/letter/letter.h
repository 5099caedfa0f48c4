/*
 * Letter files: a template or an appeal is a folder with one file per language (en.md,
 * fr.md, ...) or a single .md file. A file is RFC 822-style headers, a blank line, then a
 * Markdown body; header values and body are Mustache templates, compiled once at load.
 *
 * Headers (RFC 5322 section 2.2 syntax: "Name: value", continuation lines start with
 * blank space): Title, Campaign, Subject, Params (comma-separated names), Attachment
 * (repeatable; a file inside the letter's folder, named relative to it: no absolute path,
 * no "..", no symlink leading out, see mail/attachment.h), Cc, Reply-To, Language
 * (single-file letters; default en), Audience ("parties", the default, or "any": the appeal
 * may go to a state that is not a party on the sending date, e.g. one urged to return).
 * Bcc is refused: a letter to a mission has no hidden recipient. Any other header is an
 * error naming the file and line.
 *
 * Partials and parents ({{> name}}, {{< name}}) are NAME.mustache, looked up in the
 * letter's own folder, then in the layout folder given to letter_load() (templates use
 * templates/_layout/; an appeal written by draft is flattened and needs none).
 *
 * Ownership: letter_load() gives a letter the caller frees with letter_free();
 * letter_render() fills a struct letter_out whose contents the caller frees with
 * letter_out_free(). Every string a letter returns is owned by the letter. Both frees are
 * safe on NULL.
 */
#ifndef DEMARCHE_LETTER_H
#define DEMARCHE_LETTER_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"

struct letter;

/*
 * Loads the letter at path (a folder of LANG.md files or one .md file). layout_dir may be
 * NULL. Returns EX_OK; EX_NOINPUT when path does not exist or holds no LANG.md; EX_DATAERR
 * when a file is bad (invalid UTF-8, unknown or malformed header, Mustache syntax,
 * unreadable attachment path syntax). Problems go to d with file and line, all of them.
 */
int letter_load(const char *path, const char *layout_dir, struct letter **out, struct diags *d);
void letter_free(struct letter *l);

/* 1 when a file of the letter says "Audience: any", else 0. Can't fail. */
int letter_audience_any(const struct letter *l);

/*
 * Form: how the letter goes. email (the default): the letter is the message; pdf: the message
 * is a cover note and the letter is attached as a PDF; both: the letter and the PDF.
 */
#define LETTER_FORM_EMAIL 0
#define LETTER_FORM_PDF   1
#define LETTER_FORM_BOTH  2
/* The LETTER_FORM_* for s (ASCII case ignored), or -1. */
int letter_form_parse(const char *s);
/* 1 when a file of the letter says Form: pdf or both. Can't fail. */
int letter_form_any_pdf(const struct letter *l);

/* The path given to letter_load(). Can't fail. */
const char *letter_path(const struct letter *l);

/* The languages, sorted ("en" first, then by code); *n receives the count. Can't fail. */
const char *const *letter_languages(const struct letter *l, size_t *n);
/* 1 when the letter has a file for language. */
int letter_has_language(const struct letter *l, const char *language);

/* The Params names, the union over the files in language order, each once. Can't fail. */
const char *const *letter_params(const struct letter *l, size_t *n);

/* Hex SHA-256 over the files' bytes in language order (64 characters). Can't fail. */
const char *letter_hash(const struct letter *l);

/*
 * The unrendered value of header name ("Title", "Subject", ...) in language's file
 * (falling back to en, then the first), or NULL when that file lacks it. For listings.
 */
const char *letter_header_source(const struct letter *l, const char *language, const char *name);

/*
 * The campaign id: the Campaign header rendered with an empty context. Returns EX_OK with
 * *id (the caller frees it), or EX_DATAERR (problems in d) when a file has no Campaign
 * header, when it needs variables (a template: draft it first), or when the languages
 * disagree.
 */
int letter_campaign_id(const struct letter *l, char **id, struct diags *d);

/* One mission's letter. Strings are allocated; NULL for an absent optional header. */
struct letter_out {
	char *language; /* the file used */
	int fell_back;  /* 1 when the requested language has no file and en was used */
	char *title, *subject, *campaign, *cc, *reply_to;
	char *bcc; /* always NULL: a Bcc header is refused when the letter is loaded */
	/* Attachment i is attachment_rel[i] inside attachment_dir (the letter file's folder);
	 * open it only with confine_open() / mail_attachment_load_in(). attachments[i]
	 * is the two joined, for messages. */
	char *attachment_dir;
	char **attachment_rel;
	char **attachments;
	size_t nattachments;
	char *md;   /* the rendered Markdown (lists renumbered): what both parts come from */
	char *text; /* plain text from cmark's tree (letter/plaintext.h): the text/plain part */
	char *html; /* cmark's HTML document: the text/html part */
	int form;   /* LETTER_FORM_*: the file's Form header (default email) */
};

/*
 * Renders the file for language (NULL: en) with ctx: strict (every missing name is a
 * problem in d with file and line, all of them), Markdown escaping for {{x}} in the body,
 * raw text for {{{x}}} and in headers. Falls back to en (then the first language) when
 * language has no file. Returns EX_OK with out filled, or EX_DATAERR (out left empty).
 */
int letter_render(const struct letter *l, const char *language, json_t *ctx, struct letter_out *out,
                  struct diags *d);
/*
 * letter_render() in two steps, so that the HTML (cmark's work) can be made once for every
 * mission whose letter reads the same (the same out->md): letter_render_text() does all but
 * out->html (left NULL); letter_html() returns what out->html would be (the caller frees
 * it). Can't fail.
 * Both may be called from several threads at once on one letter.
 */
int letter_render_text(const struct letter *l, const char *language, json_t *ctx,
                       struct letter_out *out, struct diags *d);
char *letter_html(const struct letter_out *lo);
/*
 * letter_render_text() without out->text (left NULL, as out->html): for a caller that makes
 * both parts from out->md itself (campaign/message.h renders what stays the same from
 * mission to mission once). May be called from several threads at once on one letter.
 */
int letter_render_md(const struct letter *l, const char *language, json_t *ctx,
                     struct letter_out *out, struct diags *d);

/* Frees what out holds and zeroes it; safe on a zeroed or NULL out. */
void letter_out_free(struct letter_out *out);

/*
 * draft: renders every file with params in residual mode (names that are not params stay
 * Mustache tags; partials and parents are expanded) and writes dir/LANG.md for each, the
 * Params header dropped (the appeal has no params left), attachments copied into dir under
 * their base names (each opened as confine_open() says; a copy keeps the source's
 * read and write bits, never more). Header values are filled raw, the body with Markdown
 * escaping. Strict about params: every name in the Params headers must be a key of params
 * (all missing ones are reported in d); extra keys are ignored (the caller checks --set
 * keys). Two different files under one name (an attachment called fr.md, two report.pdf
 * from two folders) are refused.
 * All or nothing, never through a symlink: everything is rendered and read first, then
 * written into new files (O_CREAT | O_EXCL | O_NOFOLLOW) under temporary names, then renamed
 * into place, which replaces whatever is there (a symlink planted at dir/en.md is replaced,
 * its target untouched). On failure what was created is removed. dir must exist and must
 * not be a symlink. Returns EX_OK, EX_DATAERR (problems in d), or EX_CANTCREAT / EX_IOERR.
 */
int letter_draft(const struct letter *l, json_t *params, const char *dir, struct diags *d);

/*
 * Where templates are found, in order: $DEMARCHE_TEMPLATES alone when set; else
 * ./templates, then templates/ in each data folder of base/datadir.h (the installed share
 * folder, the source tree, wherever the build directory is). Only existing folders are
 * listed. Returns the count; the caller frees each string and *dirs.
 */
size_t letter_template_dirs(char ***dirs);

/*
 * Finds template id (a folder name in the template dirs, or a path holding a '/').
 * Returns EX_OK with *path and *layout_dir (the _layout folder next to it, or NULL when
 * there is none; the caller frees both), or EX_NOINPUT with *errstr.
 */
int letter_find_template(const char *id, char **path, char **layout_dir, char **errstr);

#endif
