/*
 * Composition of one RFC 5322 / MIME message per mission with libetpan: headers (RFC 2047
 * encoded where needed), multipart/alternative text + HTML, attachments. Only src/mail/
 * sees libetpan; callers see these structs and a struct buf.
 */
#ifndef DEMARCHE_MAIL_COMPOSE_H
#define DEMARCHE_MAIL_COMPOSE_H

#include <stddef.h>
#include <time.h>

#include "base/buf.h"

/* A mailbox: addr is an RFC 5322 addr-spec (ASCII); name is UTF-8 or NULL. Borrowed. */
struct mail_address {
	const char *name;
	const char *addr;
};

/* A file to attach, loaded and base64-encoded once per run, shared by every message. */
struct mail_attachment {
	char *filename;     /* UTF-8 base name, as sent (RFC 2231 when not ASCII) */
	char *content_type; /* from the extension, see mail_content_type() */
	char *data;         /* the raw bytes (NUL-terminated for convenience) */
	size_t len;
	char *encoded; /* base64, CRLF lines; what each message carries */
	size_t encoded_len;
	/* Worked out once too: an ASCII stand-in for the name (Content-Type name=), and the
	 * Content-Disposition value when the name needs RFC 2231 (else NULL). */
	char *ascii_name;
	char *disposition;
};

/* A body part's text checked (valid UTF-8) and quoted-printable encoded, see mail_body(). */
struct mail_body {
	struct buf qp;
};

/*
 * One message. Every pointer is borrowed from the caller and only read during
 * mail_compose(). There is no Bcc: blind copies are envelope recipients, never headers.
 */
struct mail_message {
	struct mail_address from;
	const struct mail_address *to; /* at least one */
	size_t nto;
	const struct mail_address *cc; /* may be NULL when ncc is 0 */
	size_t ncc;
	const struct mail_address *reply_to; /* NULL: no Reply-To */
	const char *subject;                 /* UTF-8 */
	time_t date;                         /* written in the local time zone (RFC 5322 3.3) */
	const char *message_id;              /* "<left@right>", see mail_message_id() */
	const char *campaign;                /* X-Demarche-Campaign; NULL: none */
	const char *text;                    /* UTF-8 body (Markdown) -> text/plain */
	const char *html;                    /* UTF-8 HTML -> text/html; NULL: text/plain only */
	/*
	 * Optional, for speed: text and html already turned into mail_body() (the same bodies
	 * in many messages are encoded once). When set, they must be mail_body() of text and
	 * html exactly; NULL: encoded here.
	 */
	const struct mail_body *text_body, *html_body;
	struct mail_attachment *const *attachments;
	size_t nattachments;
	/* A reply: "<id>" written as In-Reply-To and References (RFC 5322 section 3.6.4);
	 * NULL: none. */
	const char *in_reply_to;
};

/*
 * Appends the message to out: CRLF line ends, no line over 998 octets, 7-bit only
 * (encoded words, quoted-printable, base64). Structure: multipart/alternative (text/plain,
 * text/html; both charset=utf-8, quoted-printable), inside multipart/mixed when there are
 * attachments. Display names and Subject are normalised: whitespace runs become one space.
 *
 * Returns EX_OK; EX_DATAERR when a value is refused, with *errstr naming the header (a CR,
 * LF or NUL in any header value, invalid UTF-8, an address that is not a plain addr-spec, a
 * malformed Message-ID, no To, no text); EX_SOFTWARE if libetpan fails or the output breaks
 * a rule checked after writing (it is never returned). On error out is left as it was.
 */
int mail_compose(const struct mail_message *m, struct buf *out, char **errstr);

/*
 * Checks and encodes a body for mail_message's text_body or html_body: returns 1 with
 * b->qp filled (free it with buf_free()), or 0 when s is not valid UTF-8 (b left empty;
 * mail_compose() reports it when given the text itself). Can't fail otherwise.
 */
int mail_body(struct mail_body *b, const char *s, size_t len);

/*
 * The Message-ID for one recipient of one campaign: "<campaign.key.hash@domain>", where
 * hash is 16 hex digits of SHA-256 over campaign, key and content (e.g. the appeal's content
 * hash), so it is stable across retries and differs per key. Characters of campaign and key
 * outside [A-Za-z0-9_-] become "-". Never libetpan's etPan id, never the host name.
 * Returns EX_OK with *out allocated (the caller frees), or EX_DATAERR when domain is not a
 * valid domain name. content may be NULL.
 */
int mail_message_id(const char *campaign, const char *key, const char *content, const char *domain,
                    char **out, char **errstr);

/*
 * Reads the file at path once and encodes it: content type by extension, file name from
 * the path's last component. path is trusted as given (tests, a path the operator names);
 * a letter's attachments go through mail_attachment_load_in() (mail/attachment.h), which
 * keeps them inside the letter's folder. Returns EX_OK with *out (free with
 * mail_attachment_free()), EX_NOINPUT when the file is missing, EX_IOERR when it cannot be
 * read, EX_DATAERR when it is not a regular file, is over 25 MB, or the name is not valid
 * UTF-8 or holds control characters.
 */
int mail_attachment_load(const char *path, struct mail_attachment **out, char **errstr);

/* The same from memory (data is copied). Returns EX_OK or EX_DATAERR as above. */
int mail_attachment_new(const char *filename, const void *data, size_t len,
                        struct mail_attachment **out, char **errstr);

void mail_attachment_free(struct mail_attachment *a); /* NULL is fine */

/*
 * The MIME type for a file name by its extension (case-insensitive): pdf, docx, odt, png,
 * jpg/jpeg, txt; anything else is application/octet-stream. Static string; can't fail.
 */
const char *mail_content_type(const char *filename);

#endif
