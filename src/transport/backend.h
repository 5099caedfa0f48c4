/* Inside the transport module: what transport.c needs from each backend (common.h: what they share). */
#ifndef DEMARCHE_TRANSPORT_BACKEND_H
#define DEMARCHE_TRANSPORT_BACKEND_H

#include "transport/common.h"

/* One backend (OpenSMTPD's queue_backend style): smtp.c, maildir.c and sendmail.c each fill
 * one. */
struct transport_ops {
	const char *name;
	/* Same contract and codes as transport_run(). */
	int (*run)(void *impl, transport_next_fn next, transport_done_fn done, void *u,
	           volatile sig_atomic_t *stop, char **errstr);
	long (*connections)(const void *impl);
	void (*free)(void *impl); /* NULL-safe */
	/* 1: a staging channel (a local outbox): what it takes has not reached the recipient */
	int staging;
	/* transport_run_gated()'s contract; NULL: the backend keeps no dot gate */
	int (*run_gated)(void *impl, transport_next_fn next, transport_commit_fn commit,
	                 transport_done_fn done, void *u, volatile sig_atomic_t *stop,
	                 char **errstr);
};

/* Each returns EX_OK with *impl set, or transport_open()'s codes with *errstr. */
int smtp_open(const struct transport_opts *o, void **impl, char **errstr);
int maildir_open(const char *dir, void **impl, char **errstr);
int sendmail_open(const struct transport_opts *o, void **impl, char **errstr);
extern const struct transport_ops smtp_ops, maildir_ops, sendmail_ops;

#endif
