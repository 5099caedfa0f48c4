/* ledger copy: a whole ledger from one backend to another, row for row, chain verified. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

/* Each table, read in the order its references need, the statement that writes a row, and
 * (PostgreSQL) the columns COPY loads, in the order the dump reads them. */
static const struct {
	enum query dump, load;
	int ncols;
	const char *what, *copy;
} tables[] = {
    {Q_DUMP_CAMPAIGNS, Q_LOAD_CAMPAIGN, 7, "campaigns",
     "campaigns (id, title, subject, content_hash, created, first_sent, last_sent)"},
    {Q_DUMP_DELIVERIES, Q_LOAD_DELIVERY, 15, "deliveries",
     "deliveries (id, campaign, key, address, message_id, state, attempts, last_code,"
     " last_reply, via, created, updated, key_norm, address_norm, merged_into)"},
    {Q_DUMP_EVENTS, Q_LOAD_EVENT, 15, "events",
     "events (seq, time, campaign, delivery, kind, from_state, to_state, code, reply, via,"
     " detail, prev_hash, hash, operator, host)"},
    {Q_DUMP_OBSERVED, Q_INSERT_OBSERVED, 4, "observations",
     "observed (kind, delivery, source, seq)"},
    {Q_DUMP_IMAP_STATE, Q_IMAP_STATE_SET, 5, "IMAP folder states",
     "imap_state (account, folder, uidvalidity, last_uid, updated)"},
    {Q_DUMP_SENT_COPIES, Q_SENT_COPY_SET, 5, "Sent copies",
     "sent_copies (delivery, folder, uidvalidity, uid, time)"},
    {Q_DUMP_OUTBOX, Q_LOAD_OUTBOX, 8, "pending Sent copies",
     "outbox_copies (id, campaign, deliveries, data, attempts, last_error, created, updated)"},
};

/*
 * Copies one table's rows; *n counts them. Into PostgreSQL through COPY FROM STDIN (one
 * statement per table instead of a round trip per row: a million deliveries in minutes, not
 * hours), elsewhere row by row; streamed either way.
 */
static int copy_table(struct ledger *from, struct ledger *to, size_t t, long *n, char **errstr)
{
	struct ldb_stmt *src, *dst;
	int rc;

	if ((rc = ldb_query(from, tables[t].dump, &src, tables[t].what, errstr, "")))
		return rc;
	if (to->pg && (rc = pg_copy_begin(to, tables[t].copy, tables[t].what, errstr))) {
		ldb_done(src);
		return rc;
	}
	while (ldb_next(from, src, &rc, tables[t].what, errstr)) {
		struct ldb_arg a[LDB_MAX_ARGS];

		memset(a, 0, sizeof(a));
		for (int c = 0; c < tables[t].ncols; c++) {
			a[c].type = ldb_col_type(src, c);
			if (a[c].type == LDB_INT) {
				a[c].i = ldb_col_int64(src, c);
			} else if (a[c].type != LDB_NULL) {
				/* text stays text; a blob (a kept message) stays bytes */
				a[c].s = a[c].type == LDB_TEXT ? ldb_col_text(src, c)
				                               : ldb_col_blob(src, c);
				a[c].n = ldb_col_bytes(src, c);
				if (!a[c].s)
					a[c].s = "";
			}
		}
		if (to->pg)
			rc = pg_copy_row(to, a, tables[t].ncols, tables[t].what, errstr);
		else if (!(rc = ldb_bind(to, tables[t].load, &dst, tables[t].what, errstr, a,
		                         tables[t].ncols)))
			rc = ldb_finish(to, dst, tables[t].what, errstr);
		if (rc)
			break;
		(*n)++;
	}
	ldb_done(src);
	if (to->pg) {
		int end = pg_copy_end(to, !rc, tables[t].what, rc ? NULL : errstr);

		if (!rc)
			rc = end;
	}
	return rc;
}

static int count_events(struct ledger *l, long *n, char **errstr)
{
	struct ldb_stmt *st;
	int rc;

	*n = 0;
	if ((rc = ldb_query(l, Q_COUNT_EVENTS, &st, "counting events", errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, "counting events", errstr))
		*n = (long)ldb_col_int64(st, 0);
	ldb_done(st);
	return rc;
}

/*
 * PostgreSQL: the trigger that keeps events_highest (the chain's high-water mark) updates its
 * one row per event; a million updates of one row in one transaction each scan the row's
 * earlier versions, which no one may clean up before the commit: hours. So the copy turns it
 * off inside its transaction (no other session sees that; they wait on the table's lock) and
 * sets the mark once. Only the tables' owner may: for another role the copy keeps the
 * trigger, slower. 1 when turned off.
 */
static int highest_trigger_off(struct ledger *to)
{
	if (ldb_tx_begin(to, NULL))
		return 0;
	if (ldb_exec(to, "ALTER TABLE events DISABLE TRIGGER events_highest", NULL)) {
		ldb_tx_rollback(to);
		return 0;
	}
	if (ldb_tx_commit(to, NULL)) {
		ldb_tx_rollback(to);
		return 0;
	}
	return 1;
}

int ledger_copy_all(struct ledger *from, struct ledger *to, struct ledger_copy_report *r,
                    char **errstr)
{
	char *err = NULL;
	long have = 0;
	int rc, highest_off = 0;

	memset(r, 0, sizeof(*r));
	if (from->readonly || to->readonly)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: ledger copy of a read-only ledger");
	if ((rc = ledger_verify(from, &r->events, r->head_from, &err))) {
		rc = error_set(errstr, rc, "ledger copy: %s does not verify, nothing copied: %s",
		               from->path, err);
		goto out;
	}
	if ((rc = count_events(to, &have, errstr)))
		goto out;
	if (have) {
		rc = error_set(errstr, EX_CANTCREAT,
		               "ledger copy: %s already holds %ld events; copy into a new, empty "
		               "ledger (nothing was copied)",
		               to->path, have);
		goto out;
	}
	if ((rc = ldb_tx_begin(to, errstr)))
		goto out;
	if (to->pg)
		highest_off = highest_trigger_off(to);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]) && !rc; t++) {
		long n = 0;

		rc = copy_table(from, to, t, &n, errstr);
		if (tables[t].dump == Q_DUMP_DELIVERIES)
			r->deliveries = n;
		else if (tables[t].dump == Q_DUMP_CAMPAIGNS)
			r->campaigns = n;
	}
	if (!rc && highest_off)
		rc = ldb_exec(to,
		              "UPDATE events_highest SET seq = greatest(seq,"
		              " (SELECT coalesce(max(seq), 0) FROM events));"
		              "ALTER TABLE events ENABLE TRIGGER events_highest",
		              errstr);
	/* PostgreSQL: the identity columns go on after the ids copied */
	if (!rc && to->pg)
		rc = ldb_exec(to,
		              "SELECT setval(pg_get_serial_sequence('deliveries', 'id'),"
		              " coalesce(max(id), 0) + 1, false) FROM deliveries;"
		              "SELECT setval(pg_get_serial_sequence('outbox_copies', 'id'),"
		              " coalesce(max(id), 0) + 1, false) FROM outbox_copies",
		              errstr);
	if (!rc)
		rc = ldb_tx_commit(to, errstr);
	if (rc) {
		ldb_tx_rollback(to);
		goto out;
	}
	if ((rc = ledger_verify(to, &have, r->head_to, &err))) {
		rc = error_set(errstr, rc, "ledger copy: the copy in %s does not verify: %s",
		               to->path, err);
		goto out;
	}
	if (have != r->events || strcmp(r->head_from, r->head_to))
		rc = error_set(errstr, EX_SOFTWARE,
		               "ledger copy: the copy's chain (%ld events, head %.16s) is not the "
		               "original's (%ld events, head %.16s)",
		               have, r->head_to, r->events, r->head_from);
out:
	free(err);
	return rc;
}
