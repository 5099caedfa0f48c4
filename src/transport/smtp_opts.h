/*
 * Inside the transport module: the URL, TLS and AUTH rules that smtp_session.c (sending) and
 * probe.c (doctor's check) must apply alike, and the libcurl options they imply. Sees CURL.
 */
#ifndef DEMARCHE_TRANSPORT_SMTP_OPTS_H
#define DEMARCHE_TRANSPORT_SMTP_OPTS_H

#include <curl/curl.h>

#include "base/buf.h"
#include "transport/transport.h"

/* What a checked set of transport_opts comes to. Every string is owned by the struct. */
struct smtp_conf {
	char *host;     /* as in the URL (name, IPv4 or [IPv6]) */
	char *hostport; /* "HOST:PORT", the default port filled in (25, or 465 for TLS) */
	char *url;      /* what curl gets: scheme://HOST:PORT/HELO (the path is the EHLO domain) */
	int implicit;   /* TLS from the first byte (smtps://, or tls = implicit) */
	int auth;       /* a user is set: AUTH is required */
	long usessl;    /* CURLUSESSL_ALL, _TRY (STARTTLS when offered, loopback only) or _NONE */
};

/* Calls curl_global_init() the first time (not thread-safe: call from one thread). */
void smtp_curl_init(void);

/*
 * Checks o (url smtp:// or smtps://, tls, user, password, oauth_token, helo) and fills *c.
 * Returns EX_OK, or EX_CONFIG with *errstr (bad URL, credentials in it, unknown tls value,
 * tls contradicting the URL, AUTH over cleartext to a host that is not loopback, a user
 * without password or token); *c then holds nothing to free. smtp_conf_free() is NULL-safe.
 */
int smtp_conf_init(struct smtp_conf *c, const struct transport_opts *o, char **errstr);
void smtp_conf_free(struct smtp_conf *c);

/*
 * Sets on e what every session to c's server shares: URL, protocols, no signals, timeouts
 * (o->timeout, <= 0: 60 s), TLS with the peer verified (o->ca_file), and the login (password
 * or XOAUTH2 bearer token). Returns 0, or -1 when curl refuses an option.
 */
int smtp_conf_setopt(CURL *e, const struct smtp_conf *c, const struct transport_opts *o);

/*
 * 1 when an implicit-TLS handshake failed because the server spoke plain text (an SMTP
 * greeting read as a TLS record: smtps:// to a STARTTLS or plain port), from curl's result
 * and error text (GnuTLS: "unexpected TLS packet", OpenSSL: "wrong version number").
 */
int smtp_tls_got_plaintext(CURLcode cc, const char *errbuf);

/* What to say then: "the server at HOST:PORT did not speak TLS: is the port for STARTTLS
 * (smtp://)?". Allocated; the caller frees it. */
char *smtp_tls_plaintext_text(const struct smtp_conf *c);

/*
 * Adds one server line, as curl hands it to the header callback, to *line (lines joined by
 * '\n', CRLF dropped). Returns -1 while the reply goes on ("NNN-text"), SMTP_REPLY_BAD when
 * the line is not "NNN", "NNN text" or "NNN-text" with NNN from 200 to 599 (RFC 5321 section
 * 4.2; libcurl would wait for more and time out), else the code of the complete reply now in
 * *line. Can't fail.
 */
#define SMTP_REPLY_BAD (-2)
int smtp_reply_add(struct buf *line, const char *p, size_t n);

/*
 * Writes a reply as smtp_reply_add() keeps it, on ONE line, to *out (reset first): the
 * first line with its code ("250-a" becomes "250 a"), then each further line without its
 * code, and without the enhanced status code when it repeats the first line's (RFC 3463),
 * joined by single spaces: "550 5.1.1 No such user here see https://...". Can't fail.
 */
void smtp_reply_oneline(const char *reply, struct buf *out);

#endif
