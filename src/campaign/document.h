/*
 * The letter as a document (docs/design.md, "The letter as a PDF"): the [letterhead]
 * configuration resolved once per run, one mission's letter rendered as a PDF, its file name,
 * and the cover note that carries it when the appeal says Form: pdf.
 */
#ifndef DEMARCHE_DOCUMENT_H
#define DEMARCHE_DOCUMENT_H

#include <jansson.h>
#include <time.h>

#include "base/buf.h"
#include "base/config.h"
#include "letter/letter.h"

struct pdf_style;

struct document_run {
	struct pdf_style *style;
	char *author;         /* [letterhead] name, else [sender] name: the PDF's Author */
	struct letter *cover; /* APPEAL/cover/ (LANG.md files), or NULL: the built-in note */
};

/*
 * Reads [letterhead] (file names relative to the configuration's folder) and, when the
 * appeal at appeal_path is a folder with a cover/ folder, its cover notes. sender_name may
 * be NULL. Returns EX_OK, or EX_CONFIG / EX_NOINPUT / EX_DATAERR with *errstr (see
 * pdf_style_new(); a bad cover note's problems go to d). Free with document_run_free()
 * either way.
 */
int document_run_init(struct document_run *dr, const struct config *cfg, const char *appeal_path,
                      const char *sender_name, struct diags *d, char **errstr);
void document_run_free(struct document_run *dr);

/* "CAMPAIGN-KEY.pdf" with every byte but [A-Za-z0-9._-] as '_' (never a leading '.'), at
 * most 120 bytes before ".pdf": a safe attachment and file name. Caller frees; can't fail. */
char *document_file_name(const char *campaign, const char *key);

/*
 * Renders the mission's letter (lo, from letter_render*() with ctx, the roster context with
 * the letter parts) as a PDF appended to pdf; date fixes its CreationDate (its day), so the
 * same letter on the same day gives the same bytes. Thread-safe. Returns EX_OK or EX_SOFTWARE
 * with *errstr.
 */
int document_render(const struct document_run *dr, const char *campaign, const char *key,
                    json_t *ctx, const struct letter_out *lo, time_t date, struct buf *pdf,
                    char **errstr);

/*
 * The cover note for a mission whose letter goes as the PDF named file: cover/LANG.md
 * rendered with ctx (strict: problems in d, EX_DATAERR), else a short note in the letter's
 * language (en, fr, es; others get en). *text and *html (caller frees) are the message's
 * parts. Thread-safe.
 */
int document_cover(const struct document_run *dr, json_t *ctx, const struct letter_out *lo,
                   const char *file, char **text, char **html, struct diags *d);

/*
 * For message_build(): the mission's letter as the PDF attachment *att (named by
 * document_file_name(); free with mail_attachment_free()) and its hex SHA-256 *sha (caller
 * frees); with Form: pdf also the cover note's parts *text and *html (caller frees; both NULL
 * with Form: both). Returns EX_OK, or EX_DATAERR / EX_SOFTWARE with *errstr, nothing set.
 */
struct mail_attachment;
int document_attach(const struct document_run *dr, const char *campaign, const char *key,
                    json_t *ctx, const struct letter_out *lo, time_t date,
                    struct mail_attachment **att, char **sha, char **text, char **html,
                    char **errstr);

#endif
