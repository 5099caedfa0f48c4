/*
 * The batch: what an approval covers (docs/design.md, "Two-person approval"). Its hash is a
 * SHA-256 over, in a canonical order (its parts sorted by name), the appeal's content hash,
 * the letters' date, the sender, the [letterhead] section, and for each selected mission its
 * roster row (with its joined facts) and its message exactly as composed for sending: the
 * envelope recipients and the bytes, less the Date header (the one value that depends on the
 * moment of sending; the Message-ID and the MIME boundaries are already stable). Any change
 * to the appeal, a roster row, a fact, the letterhead, the sender, the selection or the
 * letters' date changes it. Each part keeps its own hash so that a refusal can say what
 * changed ("roster row KEN changed", "fr.md changed", "the letterhead changed"); a few parts
 * only explain (each language file, each joined table) and are not hashed into the batch.
 */
#ifndef DEMARCHE_BATCH_H
#define DEMARCHE_BATCH_H

#include <stddef.h>

#include "base/buf.h"
#include "base/config.h"
#include "campaign/merge.h"
#include "campaign/message.h"
#include "campaign/plan.h"

struct batch_part {
	char *name;    /* "appeal", "date", "sender", "letterhead", "row KEY", "message KEY", ... */
	char hash[65]; /* hex SHA-256 */
	int in_batch;  /* 0: only to explain a change (a language file, a joined table) */
};

struct batch {
	char hash[65]; /* the batch hash, hex */
	char date[16]; /* the letters' date, YYYY-MM-DD */
	struct batch_part *v;
	size_t n;
	size_t missions;
};

/*
 * Works out the batch of the merge m (opened from mo) whose messages plan_compose() put in p's spool (mr: the
 * run they were composed with; cfg: the [letterhead] section). Reads the roster once more
 * (no rendering) for the rows. Returns EX_OK with b filled (batch_free()), or the roster's or
 * the spool's code (EX_DATAERR, EX_IOERR, EX_NOINPUT) with *errstr.
 */
int batch_compute(struct batch *b, const struct config *cfg, const struct merge_opts *mo,
                  struct merge *m, const struct message_run *mr, const struct plan *p,
                  char **errstr);

/* The parts as stored with an approval: "HASH16 NAME" lines sorted by name, the hashes cut to
 * 16 hex digits (enough to tell a change), control characters in names escaped (caller
 * frees). Can't fail. */
char *batch_components(const struct batch *b);

/*
 * Appends to out, one per line each starting with two spaces, what differs between the parts
 * old (batch_components() of an approved batch; old_date its date) and b: "fr.md changed",
 * "roster row KEN changed", "1 mission added to the selection (FRA)", "the letterhead changed", "the letters'
 * date changed (approved 2026-12-02, now 2026-12-03)", then how many messages differ. At most
 * max lines of rows (then "... and N more"). Names are escaped for the terminal. Returns the
 * number of differences found (0: the same batch). Can't fail.
 */
size_t batch_diff(const char *old, const char *old_date, const struct batch *b, size_t max,
                  struct buf *out);

void batch_free(struct batch *b); /* safe on a zeroed batch */

#endif
