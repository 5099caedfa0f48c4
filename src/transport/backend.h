/* Inside the transport module: what transport.c needs from each backend, and shared checks. */
#ifndef DEMARCHE_TRANSPORT_BACKEND_H
#define DEMARCHE_TRANSPORT_BACKEND_H

#include <stdint.h>

#include "transport/transport.h"

/* One backend (OpenSMTPD's queue_backend style): smtp.c and maildir.c each fill one. */
struct transport_ops {
	const char *name;
	/* Same contract and codes as transport_run(). */
	int (*run)(void *impl, transport_next_fn next, transport_done_fn done, void *u,
	           volatile sig_atomic_t *stop, char **errstr);
	long (*connections)(const void *impl);
	void (*free)(void *impl); /* NULL-safe */
};

/* Each returns EX_OK with *impl set, or transport_open()'s codes with *errstr. */
int smtp_open(const struct transport_opts *o, void **impl, char **errstr);
int maildir_open(const char *dir, void **impl, char **errstr);
extern const struct transport_ops smtp_ops, maildir_ops;

/*
 * Checks a message before anything of it leaves: envelope addresses without control
 * characters or angle brackets, at least one recipient, data non-empty with CRLF line ends
 * only (curl dot-stuffs but does not turn LF into CRLF). Returns 0, or -1 with *why set to
 * a static description.
 */
int transport_msg_check(const struct transport_msg *m, const char **why);

/* Milliseconds on the monotonic clock. */
int64_t transport_now_ms(void);

/* 1 when *stop asks to stop (stop may be NULL). */
static inline int transport_stopping(volatile sig_atomic_t *stop)
{
	return stop && *stop;
}

#endif
