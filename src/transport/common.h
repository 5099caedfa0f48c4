/*
 * Inside the transport module, below the dispatcher (transport.c) and the backends (smtp*.c,
 * maildir.c): the checks and the clock they share, so that none of them includes another.
 */
#ifndef DEMARCHE_TRANSPORT_COMMON_H
#define DEMARCHE_TRANSPORT_COMMON_H

#include <stdint.h>

#include "transport/transport.h"

/*
 * Checks a message before anything of it leaves: envelope addresses without control
 * characters or angle brackets, at least one recipient, data non-empty with CRLF line ends
 * only (curl dot-stuffs but does not turn LF into CRLF). Returns 0, or -1 with *why set to
 * a static description.
 */
int transport_msg_check(const struct transport_msg *m, const char **why);

/*
 * The recipients' entries of a result that has one outcome for the whole message (maildir,
 * sendmail): every recipient of m gets r's state, code and reply, in *rcpt (grown to *cap
 * as needed, owned by the backend); then done(u, m, r).
 */
void transport_report_all(struct transport_rcpt **rcpt, size_t *cap, const struct transport_msg *m,
                          struct transport_result *r, transport_done_fn done, void *u);

/* transport_ops.connections of a backend that holds none (maildir, sendmail): 0. */
long transport_no_connections(const void *impl);

/* Milliseconds on the monotonic clock. */
int64_t transport_now_ms(void);

/* 1 when *stop asks to stop (stop may be NULL). */
static inline int transport_stopping(volatile sig_atomic_t *stop)
{
	return stop && *stop;
}

#endif
