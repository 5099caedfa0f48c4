/*
 * The review server's HTTP side (docs/design.md, "Review in a browser"): libmicrohttpd on
 * 127.0.0.1 only, and every check a local web page needs against other pages and other
 * users of the machine. Only this file's .c sees libmicrohttpd.
 *
 * - The URL printed carries a random one-time token (32 bytes from getrandom(2)); the first
 *   request bearing it gets a session cookie (HttpOnly, SameSite=Strict, Path=/) and a
 *   redirect to the same path without the token; the token is then spent. Any request
 *   without the session cookie is refused with 403.
 * - The Host header must be 127.0.0.1:PORT or localhost:PORT (DNS rebinding): else 421.
 * - GET and HEAD read; POST is the only method that may change anything, and only with the
 *   session's CSRF token (random, per session) in the form field "csrf": else 403. Any
 *   other method: 405.
 * - Every response carries a strict Content-Security-Policy (no script at all, styles and
 *   images from the server itself), X-Content-Type-Options: nosniff, Referrer-Policy:
 *   no-referrer, X-Frame-Options, Cache-Control: no-store.
 * Requests are served one at a time, on the server's own thread: the route function needs
 * no locking against itself, but does run on another thread than the one that started it.
 */
#ifndef DEMARCHE_REVIEW_HTTP_H
#define DEMARCHE_REVIEW_HTTP_H

#include <stddef.h>

#include "base/buf.h"

/* The default policy; a route may set a stricter or looser one for one response. */
#define REVIEW_CSP                                                                                 \
	"default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "           \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

struct review_request {
	const char *method; /* "GET", "HEAD" or "POST" (others never reach a route) */
	const char *path;   /* without the query */
	const char *csrf;   /* the session's CSRF token, for forms (hex) */
	const char *body;   /* a POST's form body (application/x-www-form-urlencoded), or "" */
	size_t body_len;
};

struct review_reply {
	int status;       /* 200 unless set */
	const char *type; /* Content-Type; "text/html; charset=utf-8" unless set */
	const char *csp;  /* NULL: REVIEW_CSP */
	int framable;     /* 1: may be framed by the server's own pages */
	char *location;   /* a redirect's target (allocated), with status 303 */
	struct buf body;
};

/* Fills rp for rq (rp comes zeroed with BUF_INIT). Runs on the server's thread. */
typedef void (*review_route_fn)(void *user, const struct review_request *rq,
                                struct review_reply *rp);

struct review_server;

/*
 * Listens on 127.0.0.1:port (0: a free port the system picks) and serves route. Returns
 * EX_OK with *out, or EX_UNAVAILABLE (the port is taken, the server would not start) or
 * EX_OSERR (no random bytes) with *errstr. Free with review_server_stop().
 */
int review_server_start(unsigned port, review_route_fn route, void *user,
                        struct review_server **out, char **errstr);
/* http://127.0.0.1:PORT/?token=TOKEN: the one URL that opens a session. Owned by s. */
const char *review_server_url(const struct review_server *s);
unsigned review_server_port(const struct review_server *s);
/* Requests refused so far (no cookie, bad Host, no CSRF token, bad method). */
unsigned long review_server_refused(const struct review_server *s);
void review_server_stop(struct review_server *s); /* NULL is safe */

/* Looks up field name in a form body; returns its decoded value (caller frees) or NULL. */
char *review_form_value(const char *body, size_t len, const char *name);

#endif
