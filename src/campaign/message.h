/*
 * One mission's message, as preview writes it and send sends it: the sender from the
 * configuration, To/Cc from the roster row and the letter, the stable Message-ID, the
 * attachments (read once per run), and the envelope recipients (Bcc only there).
 */
#ifndef DEMARCHE_MESSAGE_H
#define DEMARCHE_MESSAGE_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "base/buf.h"
#include "base/config.h"
#include "campaign/merge.h"

struct followup;
struct document_run;

/* What stays the same for every message of a run. */
struct message_run {
	char *from_name, *from_addr, *domain, *reply_to;
	int example_sender; /* 1 when no [sender] address is configured (preview, maildir) */
	const char *campaign;
	const char *content_hash; /* the appeal's hash: part of every Message-ID */
	const char *test_to;      /* --test-to: every message goes there instead, Subject [TEST] */
	/* attachments read once: paths and their loaded contents */
	char **att_paths;
	struct mail_attachment **atts;
	size_t natts;
	pthread_mutex_t lock; /* the attachments: message_build() may run on several threads */
	const struct followup *follow; /* a reminder: threaded under each first letter; NULL */
	struct document_run *doc;      /* Form: pdf or both (campaign/document.h); else NULL */
	int html_views;                /* preview: each message's html_view too */
};

/*
 * Sets up a run from the configuration (the sender) and the merge. Returns EX_OK, or
 * EX_CONFIG with *errstr when the configured sender address or domain is invalid.
 * Can be freed with message_run_free() either way.
 */
int message_run_init(struct message_run *mr, const struct config *cfg, const struct merge *m,
                     char **errstr);
void message_run_free(struct message_run *mr);

/* One composed message. */
struct message {
	struct buf data; /* the RFC 5322 message, CRLF */
	char *message_id;
	char **rcpt; /* envelope recipients: the mission's addresses (email, cc, letter Cc/Bcc) */
	size_t nrcpt;
	char *document; /* the attached PDF letter's hex SHA-256 (Form: pdf, both), or NULL */
	/* With mr->html_views: the text/html part as mail_text_part() reads it back (the
	 * letter's HTML; a cover note's is not given), so preview need not parse the message;
	 * NULL when not given. */
	char *html_view;
	size_t html_view_len;
};

/*
 * Composes the message for the mission key whose letter context (roster_context()) is ctx:
 * To is its mission (else state) and email, Cc its cc and the letter's Cc. Returns EX_OK
 * with msg filled (free it with message_free()), or EX_DATAERR / EX_NOINPUT (an attachment)
 * with *errstr.
 */
int message_build(struct message_run *mr, const char *key, json_t *ctx, const struct letter_out *lo,
                  time_t date, struct message *msg, char **errstr);
void message_free(struct message *msg); /* safe on a zeroed or freed one */

/*
 * What a thread keeps from one message to the next: the last few bodies (text and title)
 * with their HTML and their encoded parts, so that missions whose letter reads the same
 * (often every mission of a language) share one cmark run and one encoding. Not to be
 * shared between threads. message_cache_new() can't fail; free with message_cache_free()
 * (NULL is fine).
 */
struct message_cache;
struct message_cache *message_cache_new(void);
void message_cache_free(struct message_cache *mc);

/*
 * message_build() for a letter from letter_render_md() or letter_render_text() (lo->html
 * NULL; lo->text, if set, is not read). Both parts come from mc when the same text and title
 * were seen; else the end of the Markdown that is the same as in recent missions (the letter
 * after the salutation, say) is rendered and encoded once and kept in mc, and only the rest
 * is rendered for this mission (letter/markdown.h, markdown_splits_at()); else from one
 * cmark run. lo->text and lo->html are as they were on return. The message is the same as
 * message_build() gives for letter_render()'s letter, byte for byte. Returns as
 * message_build().
 */
int message_build_cached(struct message_run *mr, struct message_cache *mc, const char *key,
                         json_t *ctx, struct letter_out *lo, time_t date, struct message *msg,
                         char **errstr);

/* For merge_validate(): the message must compose for every mission. */
struct message_check {
	struct message_run *mr;
	time_t date;
	char *err; /* scratch; the caller frees it */
};

/* A merge_fn: composes the mission's message and adds a problem to m->d if it cannot. */
int message_check_row(void *user, struct merge *m, const struct roster_row *row,
                      const struct letter_out *lo);

#endif
