/*
 * An SMTP check that sends nothing (for 'demarche doctor'): connect, read the greeting,
 * EHLO (RFC 5321 section 4.1.1.1) and its extensions, STARTTLS (RFC 3207) or implicit TLS
 * with the peer verified, AUTH (RFC 4954) when a user is given, then NOOP and QUIT.
 */
#ifndef DEMARCHE_TRANSPORT_PROBE_H
#define DEMARCHE_TRANSPORT_PROBE_H

#include "transport/transport.h"

/* Where a probe stopped; PROBE_DONE when every step passed. */
enum probe_stage {
	PROBE_CONFIG,   /* the options are refused before connecting (bad URL, AUTH in clear) */
	PROBE_CONNECT,  /* no connection, or no 220 greeting (RFC 5321 section 4.3.2) */
	PROBE_EHLO,     /* EHLO refused */
	PROBE_STARTTLS, /* TLS required but the server offers no STARTTLS */
	PROBE_TLS,      /* the TLS handshake or the peer's verification failed */
	PROBE_AUTH,     /* login refused, or a user is set and the server offers no AUTH */
	PROBE_DONE,
};

/* What the server said; every string is owned by the probe. */
struct transport_probe {
	enum probe_stage stage; /* where it stopped */
	char *hostport;         /* "HOST:PORT" as connected to; NULL when the URL is bad */
	char *greeting;         /* the 220 line(s), without CRLF; NULL when none came */
	int implicit_tls;       /* smtps://: TLS from the first byte */
	int starttls_offered;   /* the EHLO before TLS listed STARTTLS */
	int tls;                /* the session ran over TLS (peer verified: curl checks it) */
	int ehlo_seen;          /* an EHLO reply arrived (the fields below are from the last) */
	long size;              /* SIZE limit in octets (RFC 1870); 0: none or unlimited */
	int has_size, smtputf8, pipelining, eightbitmime;
	char *auth;     /* the AUTH mechanisms offered, space separated, or NULL */
	int auth_tried; /* a user was given and curl sent AUTH */
	int auth_ok;    /* 235 (RFC 4954 section 6) */
	char *reply;    /* the last reply that is not a 220 or 250 (e.g. "535 5.7.8 ..."),
	                           or NULL */
	char *error;    /* the local error (curl's words), or NULL when stage is DONE */
};

/*
 * Probes the SMTP server of o (url smtp:// or smtps://; tls, ca_file, user, password or
 * oauth_token and helo as for transport_open(); concurrency is ignored) with the same TLS
 * and AUTH rules send applies. Sends no MAIL command. Returns EX_OK with *out set in every
 * case where a probe ran (look at (*out)->stage to see how far it got; free it with
 * transport_probe_free()), or EX_CONFIG with *errstr and *out NULL when the options are
 * refused before connecting. Can't fail otherwise.
 */
int transport_probe(const struct transport_opts *o, struct transport_probe **out, char **errstr);

void transport_probe_free(struct transport_probe *p); /* NULL is safe */

#endif
