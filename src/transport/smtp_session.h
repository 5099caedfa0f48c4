/*
 * Inside the transport module: one SMTP connection (a libcurl easy handle, kept open between
 * messages) that sends one message at a time and learns each recipient's answer. A session
 * is used by one thread at a time; smtp.c gives each worker thread its own.
 */
#ifndef DEMARCHE_TRANSPORT_SMTP_SESSION_H
#define DEMARCHE_TRANSPORT_SMTP_SESSION_H

#include <stdatomic.h>

#include "transport/smtp_opts.h"
#include "transport/transport.h"

struct smtp_session;

/*
 * Prepares a session to c's server with o's login and timeout (c and *abort must outlive
 * it; o's strings are copied by libcurl). Connects to nothing. While *abort is non-zero a
 * transfer is abandoned within about a second, even while waiting for the reply to the
 * final dot. Returns 0 with *out set, or -1 when libcurl refuses an option (a libcurl
 * built without SMTP or TLS).
 */
int smtp_session_new(const struct smtp_conf *c, const struct transport_opts *o,
                     const atomic_int *abort, struct smtp_session **out);

/*
 * Sends m (checked with transport_msg_check() by the caller): MAIL, one RCPT per recipient
 * (a refused one does not stop the others), DATA; after a "too many recipients" reply
 * (RFC 5321 section 4.5.3.1.10) the rest go in further transactions on the same connection.
 * Fills *r as transport.h describes, r->rcpt with m->nrcpt entries. Sets *fatal to EX_CONFIG
 * (credentials, TLS, AUTH missing) or EX_TEMPFAIL (server unreachable or not speaking SMTP)
 * with *fatal_msg when no further message should be tried, else to 0 and NULL. Everything
 * *r and *fatal_msg point to belongs to the session and lives until the next call or
 * smtp_session_free(). Can't fail otherwise.
 *
 * gate (NULL: none) is the dot gate: called at most once, on this thread, when the server
 * has answered DATA with 354 and before any of the data (so before the final dot) is handed
 * to curl; it may block. 0 lets the data go; -1 closes the connection there, without the
 * dot: *r is then deferred, with the error "held before its final dot" (or "interrupted"
 * when *abort is set).
 */
void smtp_session_send(struct smtp_session *ss, const struct transport_msg *m,
                       int (*gate)(void *arg), void *gate_arg, struct transport_result *r,
                       int *fatal, const char **fatal_msg);

/* How many connections the session has opened so far. Can't fail. */
long smtp_session_connections(const struct smtp_session *ss);

/* Closes the connection (QUIT, RFC 5321 section 4.1.1.10) and frees ss. NULL-safe. */
void smtp_session_free(struct smtp_session *ss);

#endif
