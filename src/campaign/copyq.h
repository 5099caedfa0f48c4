/*
 * Sent copies off the SMTP path: a thread of its own appends each accepted message to the
 * IMAP Sent folder (campaign/sentcopy.h), through its own ledger connection, so a slow IMAP
 * server never holds up a delivery. The engine pushes a copy only after the 'sent' it
 * follows is committed; the message is read back from the plan's spool.
 */
#ifndef DEMARCHE_COPYQ_H
#define DEMARCHE_COPYQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "campaign/plan.h"
#include "campaign/sentcopy.h"

struct copyq;

/*
 * Starts the thread: it first appends the copies earlier runs kept, then what is pushed.
 * sc and p must outlive copyq_finish(); store is the ledger's path (opened again).
 * Returns EX_OK with *out, or the ledger's code with *errstr. Takes sc (closes it).
 */
int copyq_start(struct sentcopy *sc, const char *store, const struct plan *p, struct copyq **out,
                char **errstr);

/* Queues the copy of the message at spool offset off, sent to deliveries[0..n). */
void copyq_push(struct copyq *q, const char *campaign, const int64_t *deliveries, size_t n,
                off_t off);

/*
 * Waits for the queue to drain (abandon: copies not yet tried are kept in the ledger for the
 * next run instead) and frees q. *appended and *kept (may be NULL) count this run's copies.
 * Returns EX_OK, or EX_IOERR when the ledger could not record a copy (*errstr). q may be
 * NULL (EX_OK, counts 0).
 */
int copyq_finish(struct copyq *q, int abandon, size_t *appended, size_t *kept, char **errstr);

#endif
