/*
 * Several senders on one campaign (PostgreSQL): a mission is claimed through the one door,
 * pending -> sending under the chain's lock, with a lease naming who holds it and until
 * when; a lease that ran out without an outcome leaves the mission in doubt, never resent.
 * docs/design.md, "A team ledger on PostgreSQL".
 */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

#define LEASE_DEFAULT 300 /* seconds: one SMTP transaction with its timeouts, and margin */

static int lease_seconds = LEASE_DEFAULT;

void ledger_set_lease(int seconds)
{
	lease_seconds = seconds > 0 ? seconds : LEASE_DEFAULT;
}

/* "operator@host pid N": who holds a lease (caller frees). */
static char *holder(void)
{
	struct field o, h;

	ldb_who(&o, &h);
	return xasprintf("%s@%s pid %ld", o.s, h.s, (long)getpid());
}

/* The lease's end, seconds from the ledger's clock. */
static void until(struct ledger *l, int seconds, char out[32])
{
	struct timespec ts;

	if (l->fixed) {
		ldb_format_time(l->fixed + seconds, 0, out);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ldb_format_time(ts.tv_sec + seconds, ts.tv_nsec / 1000000, out);
}

/* *ok 1 when each of deliveries may go to sending now. */
static int claimable(struct ledger *l, const int64_t *deliveries, size_t n, unsigned flags, int *ok,
                     char **errstr)
{
	*ok = 0;
	for (size_t k = 0; k < n; k++) {
		int from, need, rc;

		if ((rc = door_read_delivery(l, deliveries[k], &from, NULL, NULL, NULL, errstr)))
			return rc;
		need = from < 0 ? 0 : ledger_legal[from][LS_SENDING];
		if (!need || ((need & 0x100) && !(flags & (need & 0xff))))
			return EX_OK;
	}
	*ok = 1;
	return EX_OK;
}

int ledger_claim(struct ledger *l, const char *campaign, const int64_t *deliveries, size_t n,
                 unsigned flags, const struct ledger_outcome *o, int *claimed, char **errstr)
{
	char *who = NULL, now[32], end[32];
	int rc = EX_OK;

	*claimed = 0;
	if (!l->pg) {
		/* SQLite: one sender per file (LEDGER_EXCLUSIVE): what was planned is ours */
		for (size_t k = 0; k < n && rc == EX_OK; k++)
			rc =
			    ledger_transition(l, deliveries[k], LS_SENDING, flags, o, NULL, errstr);
		*claimed = rc == EX_OK;
		return rc;
	}
	/* first without the lock, then again under it: another sender may have taken or
	 * sent it since this run planned */
	if ((rc = claimable(l, deliveries, n, flags, claimed, errstr)) || !*claimed)
		return rc;
	if ((rc = ldb_tx_begin(l, errstr)))
		return rc;
	if ((rc = claimable(l, deliveries, n, flags, claimed, errstr)) || !*claimed)
		goto out;
	*claimed = 0;
	who = holder();
	ldb_now(l, now);
	until(l, lease_seconds, end);
	for (size_t k = 0; k < n && rc == EX_OK; k++) {
		rc = door_transition_locked(l, deliveries[k], LS_SENDING, flags, o, NULL, errstr);
		if (!rc)
			rc = ldb_run(l, Q_LEASE_TAKE, "taking a lease", errstr, "ittttt",
			             deliveries[k], campaign ? campaign : "", who, now, end);
	}
	if (!rc && !(rc = ldb_tx_commit(l, errstr)))
		*claimed = 1;
out:
	if (rc || !*claimed)
		ldb_tx_rollback(l);
	free(who);
	return rc;
}

int ledger_settle_sending(struct ledger *l, int64_t delivery, const struct ledger_outcome *o,
                          struct ledger_delivery *d, char **errstr)
{
	static const char what[] = "reading a lease";
	struct ledger_outcome so = o ? *o : (struct ledger_outcome){0};
	struct ldb_stmt *st;
	char now[32], *detail = NULL;
	int rc, live = 0;

	if (l->pg) {
		if ((rc = ldb_query(l, Q_LEASE_HELD, &st, what, errstr, "i", delivery)))
			return rc;
		ldb_now(l, now);
		if (ldb_next(l, st, &rc, what, errstr)) {
			const char *h = ldb_col_text(st, 0), *u = ldb_col_text(st, 1);

			if (u && strcmp(u, now) > 0)
				live = 1;
			else
				detail =
				    xasprintf("the lease of %s ran out at %s without an outcome: "
				              "the message may or may not have left",
				              h ? h : "?", u ? u : "?");
		}
		ldb_done(st);
		if (rc)
			goto out;
		if (live) { /* another sender is handing it over now: theirs */
			d->id = delivery;
			d->state = LS_SENDING;
			goto out;
		}
		if (detail)
			so.detail = detail;
	}
	rc = ledger_transition(l, delivery, LS_UNKNOWN, 0, &so, d, errstr);
out:
	free(detail);
	return rc;
}
