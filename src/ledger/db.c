/* The ledger's SQLite connection: opening, the prepared statements, transactions, time. */
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

const char *const query_sql[Q__COUNT] = {
    [Q_USER_VERSION] = "PRAGMA user_version",
    [Q_COUNT_OBJECTS] = "SELECT count(*) FROM sqlite_master",
    [Q_LAST_EVENT] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
    [Q_INSERT_EVENT] = "INSERT INTO events (seq, time, campaign, delivery, kind, from_state,"
                       " to_state, code, reply, via, detail, prev_hash, hash)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [Q_CAMPAIGN_EXISTS] = "SELECT 1 FROM campaigns WHERE id = ?1",
    [Q_CAMPAIGN_HASH] = "SELECT content_hash FROM campaigns WHERE id = ?1",
    [Q_CAMPAIGN_INSERT] = "INSERT INTO campaigns (id, content_hash, title, subject, created)"
                          " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_CAMPAIGN_AMEND] = "UPDATE campaigns SET content_hash = ?2, title = ?3, subject = ?4"
                         " WHERE id = ?1",
    [Q_DELIVERY] = "SELECT state, attempts, campaign, key FROM deliveries WHERE id = ?1",
    [Q_UPDATE_DELIVERY] = "UPDATE deliveries SET state = ?2, attempts = attempts + ?3,"
                          " last_code = coalesce(?4, last_code),"
                          " last_reply = coalesce(?5, last_reply), via = coalesce(?6, via),"
                          " updated = ?7 WHERE id = ?1",
    [Q_CAMPAIGN_SENT] = "UPDATE campaigns SET first_sent = coalesce(first_sent, ?2),"
                        " last_sent = ?2 WHERE id = ?1",
    [Q_FIND_DELIVERY] = "SELECT id, state, attempts FROM deliveries WHERE campaign = ?1"
                        " AND key_norm = ?2 AND address_norm = ?3 AND merged_into IS NULL",
    [Q_INSERT_DELIVERY] = "INSERT INTO deliveries (campaign, key, address, message_id, state,"
                          " attempts, created, updated, key_norm, address_norm)"
                          " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?6, ?7)",
    /* by prefix in the partial index events_create (schema 4) */
    [Q_CREATE_SEEN] = "SELECT delivery FROM events WHERE kind = 'create' AND campaign = ?1"
                      " AND detail >= ?2 AND detail < ?3 LIMIT 1",
    /* the newest creation: the highest delivery id, through the small partial index */
    [Q_LAST_CREATE] = "SELECT detail FROM events INDEXED BY events_creations"
                      " WHERE kind = 'create' ORDER BY delivery DESC, seq DESC LIMIT 1",
    /* the smallest index (the quick check must stay fast at 1M deliveries) */
    [Q_COUNT_DELIVERIES] = "SELECT count(*) FROM deliveries INDEXED BY deliveries_state",
    [Q_HEAD] = "SELECT seq, time, campaign, delivery, kind, from_state, to_state, code, reply,"
               " via, detail, operator, host, prev_hash, hash FROM events"
               " ORDER BY seq DESC LIMIT 2",
    [Q_DELIVERY_ROW] = "SELECT state, campaign, key, address, message_id FROM deliveries"
                       " WHERE id = ?1",
    [Q_VERIFY_CAMPAIGNS] = "SELECT id, title, subject, content_hash, first_sent, last_sent"
                           " FROM campaigns ORDER BY id",
    [Q_VERIFY_DELIVERIES_V3] = "SELECT id, state, attempts, campaign, key, address, message_id,"
                               " NULL, NULL, NULL, last_code, last_reply, via"
                               " FROM deliveries ORDER BY id",
    [Q_COUNT_SENT] = "SELECT count(*) FROM events WHERE kind = 'transition'"
                     " AND to_state = 'sent' AND via IS ?1 AND time >= ?2",
    [Q_COUNT_SENT_MSGS] = "SELECT count(DISTINCT d.message_id) FROM events e"
                          " JOIN deliveries d ON d.id = e.delivery WHERE e.kind = 'transition'"
                          " AND e.to_state = 'sent' AND e.via IS ?1 AND e.time >= ?2",
    /* in the order of the UNIQUE (campaign, key, address) index: no sort */
    [Q_DELIVERIES] = ROW_COLUMNS "WHERE campaign = ?1 ORDER BY key, address",
    /* one index entry each (schema 3), not a scan of the campaign's rows */
    [Q_WIDTHS] = "SELECT (SELECT max(length(key)) FROM deliveries WHERE campaign = ?1),"
                 " (SELECT max(length(address)) FROM deliveries WHERE campaign = ?1),"
                 " (SELECT max(length(last_reply)) FROM deliveries WHERE campaign = ?1)",
    [Q_CAMPAIGNS] = "SELECT id, title, subject, content_hash, created, first_sent, last_sent"
                    " FROM campaigns ORDER BY created, id",
    [Q_STATE_COUNTS] = "SELECT state, count(*) FROM deliveries WHERE campaign = ?1"
                       " GROUP BY state",
    [Q_MISSING] = "SELECT 1 FROM deliveries WHERE campaign = ?1 AND key = ?2"
                  " AND state IN ('sent', 'replied') LIMIT 1",
    [Q_MATRIX] = "SELECT state FROM deliveries WHERE campaign = ?1 AND key = ?2",
    [Q_FIND_MESSAGE] = ROW_COLUMNS "WHERE message_id = ?1 COLLATE NOCASE"
                                   " OR message_id = ?2 COLLATE NOCASE ORDER BY id",
    [Q_FIND_ADDRESS] = ROW_COLUMNS "WHERE address = ?2 COLLATE NOCASE"
                                   " AND (?1 IS NULL OR campaign = ?1) ORDER BY id DESC",
    [Q_OBSERVED] = "SELECT 1 FROM observed WHERE kind = ?1 AND delivery = ?2 AND source = ?3",
    [Q_INSERT_OBSERVED] = "INSERT INTO observed (kind, delivery, source, seq)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [Q_IMAP_STATE] = "SELECT uidvalidity, last_uid FROM imap_state"
                     " WHERE account = ?1 AND folder = ?2",
    [Q_IMAP_STATE_SET] = "INSERT OR REPLACE INTO imap_state (account, folder, uidvalidity,"
                         " last_uid, updated) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_SENT_COPY_SET] = "INSERT OR REPLACE INTO sent_copies (delivery, folder, uidvalidity,"
                        " uid, time) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_SENT_COPY] = "SELECT uidvalidity, uid FROM sent_copies WHERE delivery = ?1",
    [Q_COPY_DELETE] = "DELETE FROM outbox_copies WHERE id = ?1",
    [Q_COPY_RETRY] = "UPDATE outbox_copies SET attempts = attempts + 1, last_error = ?2,"
                     " updated = ?3 WHERE id = ?1",
    [Q_COPY_INSERT] = "INSERT INTO outbox_copies (last_error, updated, created, campaign,"
                      " deliveries, data) VALUES (?1, ?2, ?2, ?3, ?4, ?5)",
    [Q_COPIES] = "SELECT id FROM outbox_copies ORDER BY id",
    [Q_COPY] = "SELECT campaign, deliveries, data, attempts FROM outbox_copies WHERE id = ?1",
    [Q_EVENTS] = "SELECT seq, time, campaign, delivery, kind, from_state, to_state,"
                 " code, reply, via, detail, operator, host, prev_hash, hash FROM events"
                 " ORDER BY seq",
    [Q_EVENTS_HIGHEST] = "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
    [Q_VERIFY_DELIVERIES] = "SELECT id, state, attempts, campaign, key, address, message_id,"
                            " key_norm, address_norm, merged_into, last_code, last_reply, via"
                            " FROM deliveries ORDER BY id",
    /* approvals (approval.c): few, read in chain order */
    [Q_APPROVALS] = "SELECT seq, time, campaign, detail FROM events WHERE kind = 'approval'"
                    " AND (?1 IS NULL OR campaign = ?1) ORDER BY seq",
    [Q_EVENTS_OF_KIND] = "SELECT time, delivery, detail FROM events"
                         " WHERE campaign = ?1 AND kind = ?2 ORDER BY seq",
    /* issue 18: a campaign's latest event of one kind (the names its first send wrote to) */
    [Q_NOTE_LAST] = "SELECT detail FROM events WHERE campaign = ?1 AND kind = ?2"
                    " ORDER BY seq DESC LIMIT 1",
    /* schema 5 (team): every event names who wrote it and where */
    [Q_INSERT_EVENT_WHO] = "INSERT INTO events (seq, time, campaign, delivery, kind, from_state,"
                           " to_state, code, reply, via, detail, prev_hash, hash, operator,"
                           " host) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                           " ?13, ?14, ?15)",
    /* ledger copy: every table, row by row, in the order its references need */
    [Q_DUMP_CAMPAIGNS] = "SELECT id, title, subject, content_hash, created, first_sent,"
                         " last_sent FROM campaigns ORDER BY created, id",
    [Q_LOAD_CAMPAIGN] = "INSERT INTO campaigns (id, title, subject, content_hash, created,"
                        " first_sent, last_sent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_DUMP_DELIVERIES] = "SELECT id, campaign, key, address, message_id, state, attempts,"
                          " last_code, last_reply, via, created, updated, key_norm,"
                          " address_norm, merged_into FROM deliveries ORDER BY id",
    [Q_LOAD_DELIVERY] = "INSERT INTO deliveries (id, campaign, key, address, message_id, state,"
                        " attempts, last_code, last_reply, via, created, updated, key_norm,"
                        " address_norm, merged_into) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                        " ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [Q_DUMP_EVENTS] = "SELECT seq, time, campaign, delivery, kind, from_state, to_state, code,"
                      " reply, via, detail, prev_hash, hash, operator, host FROM events"
                      " ORDER BY seq",
    [Q_LOAD_EVENT] = "INSERT INTO events (seq, time, campaign, delivery, kind, from_state,"
                     " to_state, code, reply, via, detail, prev_hash, hash, operator, host)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                     " ?15)",
    /* loaded by Q_INSERT_OBSERVED, Q_IMAP_STATE_SET and Q_SENT_COPY_SET */
    [Q_DUMP_OBSERVED] = "SELECT kind, delivery, source, seq FROM observed"
                        " ORDER BY seq, kind, delivery, source",
    [Q_DUMP_IMAP_STATE] = "SELECT account, folder, uidvalidity, last_uid, updated"
                          " FROM imap_state ORDER BY account, folder",
    [Q_DUMP_SENT_COPIES] = "SELECT delivery, folder, uidvalidity, uid, time FROM sent_copies"
                           " ORDER BY delivery",
    [Q_DUMP_OUTBOX] = "SELECT id, campaign, deliveries, data, attempts, last_error, created,"
                      " updated FROM outbox_copies ORDER BY id",
    [Q_LOAD_OUTBOX] = "INSERT INTO outbox_copies (id, campaign, deliveries, data, attempts,"
                      " last_error, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_COUNT_EVENTS] = "SELECT count(*) FROM events",
    /* several senders on one campaign (PostgreSQL): leases on deliveries being sent */
    [Q_LEASE_EXPIRED] = "SELECT l.delivery FROM leases l JOIN deliveries d ON d.id = l.delivery"
                        " WHERE l.campaign = ?1 AND l.until < ?2 AND d.state = 'sending'"
                        " ORDER BY l.delivery",
    [Q_LEASE_TAKE] = "INSERT INTO leases (delivery, campaign, holder, since, until)"
                     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (delivery) DO UPDATE SET"
                     " holder = excluded.holder, since = excluded.since,"
                     " until = excluded.until",
    [Q_LEASE_DROP] = "DELETE FROM leases WHERE delivery = ?1",
    [Q_LEASE_HELD] = "SELECT holder, until FROM leases WHERE delivery = ?1",
    /* audit --columns operator: who wrote each delivery's last event (events_delivery) */
    [Q_DELIVERIES_WHO] = "SELECT id, campaign, key, address, message_id, state, attempts,"
                         " last_code, last_reply, via, created, updated,"
                         " (SELECT operator FROM events e WHERE e.delivery = d.id"
                         " ORDER BY e.seq DESC LIMIT 1) FROM deliveries d WHERE campaign = ?1"
                         " ORDER BY key, address",
};

/* --- Statements over either backend ---------------------------------------------------- */

int ldb_fail(struct ledger *l, char **errstr, const char *what)
{
	int rc;

	if (l->pg)
		return pg_fail(l, errstr, what);
	rc = sqlite3_errcode(l->db);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return error_set(errstr, EX_TEMPFAIL,
		                 "ledger %s: %s: locked by another demarche; try again", l->path,
		                 what);
	return error_set(errstr, EX_IOERR, "ledger %s: %s: %s", l->path, what,
	                 sqlite3_errmsg(l->db));
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int ldb_col_type(struct ldb_stmt *st, int i)
{
	if (st->pg)
		return pg_col_type(st, i);
	switch (sqlite3_column_type(st->sq, i)) {
	case SQLITE_NULL:
		return LDB_NULL;
	case SQLITE_INTEGER:
		return LDB_INT;
	case SQLITE_TEXT:
		return LDB_TEXT;
	default:
		return LDB_OTHER;
	}
}

int64_t ldb_col_int64(struct ldb_stmt *st, int i)
{
	return st->pg ? pg_col_int64(st, i) : sqlite3_column_int64(st->sq, i);
}

int ldb_col_int(struct ldb_stmt *st, int i)
{
	return (int)ldb_col_int64(st, i);
}

const char *ldb_col_text(struct ldb_stmt *st, int i)
{
	return st->pg ? pg_col_text(st, i) : (const char *)sqlite3_column_text(st->sq, i);
}

const void *ldb_col_blob(struct ldb_stmt *st, int i)
{
	return st->pg ? pg_col_blob(st, i) : sqlite3_column_blob(st->sq, i);
}

size_t ldb_col_bytes(struct ldb_stmt *st, int i)
{
	return st->pg ? pg_col_bytes(st, i) : (size_t)sqlite3_column_bytes(st->sq, i);
}

int64_t ldb_insert_id(struct ldb_stmt *st)
{
	return st->pg ? pg_col_int64(st, 0) : sqlite3_last_insert_rowid(st->l->db);
}

/* Binds args[0..n) to SQLite statement st (?1...). */
static void sq_bind(sqlite3_stmt *st, const struct ldb_arg *args, int n)
{
	for (int i = 0; i < n; i++) {
		switch (args[i].type) {
		case LDB_INT:
			sqlite3_bind_int64(st, i + 1, args[i].i);
			break;
		case LDB_TEXT:
			bind_text(st, i + 1, args[i].s);
			break;
		case LDB_OTHER:
			sqlite3_bind_blob64(st, i + 1, args[i].s, args[i].n, SQLITE_STATIC);
			break;
		default:
			break;
		}
	}
}

/* Sets *st to statement q with args bound; the backend's part of ldb_vquery(). */
int ldb_bind(struct ledger *l, enum query q, struct ldb_stmt **st, const char *what, char **errstr,
             const struct ldb_arg *args, int n)
{
	struct ldb_stmt *s = &l->st[q];

	*st = NULL;
	s->l = l;
	s->q = q;
	if (l->pg) {
		int rc = pg_bind(s, what, errstr, args, n);

		if (!rc)
			*st = s;
		return rc;
	}
	if (!s->sq && sqlite3_prepare_v3(l->db, ldb_sql(l, q), -1, SQLITE_PREPARE_PERSISTENT,
	                                 (sqlite3_stmt **)&s->sq, NULL) != SQLITE_OK)
		return ldb_fail(l, errstr, what);
	sq_bind(s->sq, args, n);
	*st = s;
	return EX_OK;
}

const char *ldb_sql(struct ledger *l, enum query q)
{
	/* the events of a ledger opened read-only at schema 4 or older have no operator, host */
	if (l->schema < 5 && q == Q_EVENTS)
		return "SELECT seq, time, campaign, delivery, kind, from_state, to_state, code, "
		       "reply,"
		       " via, detail, NULL, NULL, prev_hash, hash FROM events ORDER BY seq";
	if (l->schema < 5 && q == Q_HEAD)
		return "SELECT seq, time, campaign, delivery, kind, from_state, to_state, code, "
		       "reply,"
		       " via, detail, NULL, NULL, prev_hash, hash FROM events ORDER BY seq DESC"
		       " LIMIT 2";
	if (l->schema < 5 && q == Q_DUMP_EVENTS)
		return "SELECT seq, time, campaign, delivery, kind, from_state, to_state, code, "
		       "reply,"
		       " via, detail, prev_hash, hash, NULL, NULL FROM events ORDER BY seq";
	return query_sql[q];
}

/*
 * Sets *st to statement q with the arguments bound to ?1, ?2, ... as types says: 't' a
 * string (NULL: NULL), 'i' an int64_t, 'z' an int64_t stored as NULL when 0, 'b' a blob
 * (const void *, size_t), '-' no argument (that parameter stays NULL). The strings must outlive the
 * statement's use. Returns EX_OK, or what ldb_fail() returns (what: what was being done).
 * Hand *st back with ldb_done() once read.
 */
int ldb_vquery(struct ledger *l, enum query q, struct ldb_stmt **st, const char *what,
               char **errstr, const char *types, va_list ap)
{
	struct ldb_arg args[LDB_MAX_ARGS];
	int n = 0;

	memset(args, 0, sizeof(args));
	for (; types[n] && n < LDB_MAX_ARGS; n++) {
		struct ldb_arg *a = &args[n];

		switch (types[n]) {
		case 't':
			a->s = va_arg(ap, const char *);
			a->type = a->s ? LDB_TEXT : LDB_NULL;
			break;
		case 'i':
			a->i = va_arg(ap, int64_t);
			a->type = LDB_INT;
			break;
		case 'z':
			a->i = va_arg(ap, int64_t);
			a->type = a->i ? LDB_INT : LDB_NULL;
			break;
		case 'b':
			a->s = va_arg(ap, const void *);
			a->n = va_arg(ap, size_t);
			a->type = LDB_OTHER;
			break;
		default:
			a->type = LDB_NULL;
			break;
		}
	}
	return ldb_bind(l, q, st, what, errstr, args, n);
}

int ldb_query(struct ledger *l, enum query q, struct ldb_stmt **st, const char *what, char **errstr,
              const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = ldb_vquery(l, q, st, what, errstr, types, ap);
	va_end(ap);
	return rc;
}

/* Makes a statement from ldb_query() ready for its next use. NULL is safe. */
void ldb_done(struct ldb_stmt *st)
{
	if (!st)
		return;
	if (st->pg) {
		pg_done(st);
	} else if (st->sq) {
		sqlite3_reset(st->sq);
		sqlite3_clear_bindings(st->sq);
	}
}

int ldb_step(struct ldb_stmt *st)
{
	int step;

	if (st->l->pg)
		return pg_step(st);
	step = sqlite3_step(st->sq);
	if (step == SQLITE_ROW)
		return 1;
	if (step == SQLITE_DONE)
		return 0;
	return step == SQLITE_CONSTRAINT ? -1 : -2;
}

/*
 * Steps st: 1 with a row to read, 0 at the end or on an error, which sets *rc (from
 * ldb_fail(), with what) and leaves it EX_OK otherwise. `while (ldb_next(...))` reads them all.
 */
int ldb_next(struct ledger *l, struct ldb_stmt *st, int *rc, const char *what, char **errstr)
{
	int step = ldb_step(st);

	if (step == 1)
		return 1;
	*rc = step == 0 ? EX_OK : ldb_fail(l, errstr, what);
	return 0;
}

/* Runs st (an INSERT, UPDATE or DELETE from ldb_query()) to its end and hands it back. */
int ldb_finish(struct ledger *l, struct ldb_stmt *st, const char *what, char **errstr)
{
	int rc = ldb_step(st) >= 0 ? EX_OK : ldb_fail(l, errstr, what);

	ldb_done(st);
	return rc;
}

/* Runs statement q (an INSERT, UPDATE or DELETE) with the arguments of ldb_query(). */
int ldb_run(struct ledger *l, enum query q, const char *what, char **errstr, const char *types, ...)
{
	struct ldb_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = ldb_vquery(l, q, &st, what, errstr, types, ap);
	va_end(ap);
	return rc ? rc : ldb_finish(l, st, what, errstr);
}

int ldb_exec(struct ledger *l, const char *sql, char **errstr)
{
	if (l->pg)
		return pg_exec(l, sql, errstr);
	if (sqlite3_exec(l->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return ldb_fail(l, errstr, sql);
	return EX_OK;
}

int ldb_read_begin(struct ledger *l, char **errstr)
{
	return ldb_exec(l, l->pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
	                errstr);
}

void ldb_read_end(struct ledger *l)
{
	if (l->pg ? pg_in_tx(l) : !sqlite3_get_autocommit(l->db))
		ldb_exec(l, "COMMIT", NULL);
}

static int in_tx(struct ledger *l)
{
	return l->pg ? pg_in_tx(l) : !sqlite3_get_autocommit(l->db);
}

/*
 * Nested write transactions: the outermost is BEGIN IMMEDIATE (the write lock up front, so
 * a busy ledger fails at the start, not halfway), each inner one a SAVEPOINT, so a
 * transition inside a batch that fails is undone alone and the batch can go on or stop.
 */
/* lock: PostgreSQL's chain lock now (every write), or at the first write inside (a batch) */
static int tx_begin(struct ledger *l, int lock, char **errstr)
{
	char sql[40];
	int rc;

	if (l->lost)
		return error_set(errstr, EX_IOERR,
		                 "ledger %s: the enclosing transaction was rolled back by SQLite",
		                 l->path);
	if (l->depth == 0)
		rc = ldb_exec(l, l->pg ? "BEGIN" : "BEGIN IMMEDIATE", errstr);
	else {
		snprintf(sql, sizeof(sql), "SAVEPOINT ledger_%d", l->depth);
		rc = ldb_exec(l, sql, errstr);
	}
	if (rc)
		return rc;
	l->depth++;
	/* PostgreSQL: one writer at a time, as SQLite's write lock: everything a write reads
	 * (the chain's last link above all) is read under it, so the chain stays one line.
	 * A batch takes it at its first write: a sender's claim that finds the mission taken
	 * (lease.c) waits for no one. */
	if (lock && l->pg && !l->locked) {
		if ((rc = ldb_exec(l, PG_LOCK, errstr))) {
			ldb_tx_rollback(l);
			return rc;
		}
		l->locked = 1;
	}
	return EX_OK;
}

int ldb_tx_begin(struct ledger *l, char **errstr)
{
	return tx_begin(l, 1, errstr);
}

/* On failure the transaction stays open: the caller then calls ldb_tx_rollback(). */
int ldb_tx_commit(struct ledger *l, char **errstr)
{
	char sql[40];
	int rc;

	if (l->depth <= 0)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: ledger commit without begin");
	if (l->depth == 1)
		rc = ldb_exec(l, "COMMIT", errstr);
	else {
		snprintf(sql, sizeof(sql), "RELEASE ledger_%d", l->depth - 1);
		rc = ldb_exec(l, sql, errstr);
	}
	if (!rc && --l->depth == 0)
		l->locked = 0;
	return rc;
}

void ldb_tx_rollback(struct ledger *l)
{
	char sql[64];

	if (l->depth <= 0)
		return;
	if (--l->depth == 0)
		l->locked = 0;
	if (!in_tx(l)) {
		/* SQLite (or the server) rolled the whole transaction back itself (disk full, I/O error...):
		 * every level is gone; the enclosing ones must not go on as if not */
		if (l->depth > 0)
			l->lost = 1;
		return;
	}
	if (l->depth == 0) {
		ldb_exec(l, "ROLLBACK", NULL);
		return;
	}
	snprintf(sql, sizeof(sql), "ROLLBACK TO ledger_%d; RELEASE ledger_%d", l->depth, l->depth);
	ldb_exec(l, sql, NULL);
}

/* ISO 8601 UTC with milliseconds: sorts as text, readable in the sqlite3 shell. */
void ldb_format_time(time_t t, long ms, char out[32])
{
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

void ldb_now(struct ledger *l, char out[32])
{
	int64_t now;

	if (l->fixed) {
		ldb_format_time(l->fixed, 0, out);
		return;
	}
	now = clock_real_ms(); /* base/clock.h: DEMARCHE_NOW's fake clock in tests */
	ldb_format_time((time_t)(now / 1000), (long)(now % 1000), out);
}

/* Who writes the events of this process: [sender] operator, else the login name; the host. */
static char *who_operator, *who_host;

void ledger_set_operator(const char *operator_name)
{
	free(who_operator);
	who_operator = operator_name && *operator_name ? xstrdup(operator_name) : NULL;
}

void ldb_who(struct field *operator_name, struct field *host)
{
	if (!who_operator) {
		struct passwd *pw = getpwuid(getuid());
		const char *env = getenv("LOGNAME");

		who_operator = xstrdup(pw && pw->pw_name ? pw->pw_name : env ? env : "unknown");
	}
	if (!who_host) {
		char h[256];

		if (gethostname(h, sizeof(h)) != 0)
			snprintf(h, sizeof(h), "unknown");
		h[sizeof(h) - 1] = '\0';
		who_host = xstrdup(h);
	}
	chain_field_text(operator_name, who_operator);
	chain_field_text(host, who_host);
}

const char *ledger_operator(void)
{
	struct field o, h;

	ldb_who(&o, &h);
	return o.s;
}

void ledger_set_clock(struct ledger *l, time_t fixed)
{
	l->fixed = fixed;
}

/*
 * LEDGER_EXCLUSIVE: a non-blocking flock() on the file itself, so every path to it (a
 * symlink, a hard link, another spelling) meets the same lock. flock() and SQLite's POSIX
 * fcntl() locks are independent on Linux, but closing any descriptor of the file drops the
 * process's POSIX locks: this descriptor stays open until after sqlite3_close().
 */
static int lock_file(struct ledger *l, char **errstr)
{
	l->lockfd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (l->lockfd < 0)
		return error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR, "ledger %s: %s",
		                 l->path, strerror(errno));
	if (flock(l->lockfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e == EWOULDBLOCK || e == EINTR)
			return error_set(errstr, EX_TEMPFAIL,
			                 "another demarche send is using this ledger (%s)",
			                 l->path);
		return error_set(errstr, EX_IOERR, "ledger %s: cannot lock: %s", l->path,
		                 strerror(e));
	}
	return EX_OK;
}

/* Creates the file ourselves, so it is 0600 from its first byte (SQLite gives its -wal and
 * -shm files the database's mode). */
static int create_file(const char *path, char **errstr)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 && errno != EEXIST)
		return error_set(errstr, EX_CANTCREAT, "ledger %s: cannot create: %s", path,
		                 strerror(errno));
	if (fd >= 0)
		close(fd);
	return EX_OK;
}

/*
 * Read-only: SQLITE_OPEN_READONLY first; on a read-only file system SQLite cannot make the
 * WAL's -shm file, and then the file is opened immutable (nothing else can be writing to a
 * read-only file system), unless a -wal file holds transactions only the -shm would find.
 */
static int open_readonly(struct ledger *l, char **errstr)
{
	char *wal = xasprintf("%s-wal", l->path), *uri = NULL;
	struct stat sb;
	int v, rc;

	if (sqlite3_open_v2(l->path, &l->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) ==
	        SQLITE_OK &&
	    schema_user_version(l, &v, NULL) == EX_OK) {
		rc = EX_OK;
		goto out;
	}
	/* the probe's statement belongs to this connection: gone with it */
	sqlite3_finalize(l->st[Q_USER_VERSION].sq);
	l->st[Q_USER_VERSION].sq = NULL;
	sqlite3_close(l->db);
	l->db = NULL;
	if (stat(wal, &sb) == 0 && sb.st_size > 0) {
		rc = error_set(errstr, EX_IOERR,
		               "ledger %s: cannot be read here (read-only, and its write-ahead log "
		               "%s is not empty): open it once where it can be written",
		               l->path, wal);
		goto out;
	}
	uri = sqlite3_mprintf("file:%q?immutable=1", l->path);
	if (sqlite3_open_v2(uri, &l->db,
	                    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		rc = error_set(errstr, EX_IOERR, "ledger %s: %s", l->path,
		               l->db ? sqlite3_errmsg(l->db) : "cannot open");
		goto out;
	}
	rc = EX_OK;
out:
	free(wal);
	sqlite3_free(uri);
	return rc;
}

int ledger_open(const char *path, int flags, struct ledger **out, char **errstr)
{
	struct ledger *l = xcalloc(1, sizeof(*l));
	struct stat sb;
	int rc, v;

	*out = NULL;
	l->path = xstrdup(path);
	l->lockfd = -1;
	l->readonly = (flags & LEDGER_READONLY) != 0;
	l->md = digest_new();
	if (pg_is_store(path)) {
		if ((rc = pg_open(l, path, flags, errstr)))
			goto out;
		goto check;
	}
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT || !(flags & LEDGER_CREATE) || l->readonly) {
			rc = error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
			               "ledger %s: %s%s", path, strerror(errno),
			               errno == ENOENT ? " (nothing has been sent with this store)"
			                               : "");
			goto out;
		}
		if ((rc = create_file(path, errstr)))
			goto out;
	} else if (!S_ISREG(sb.st_mode)) {
		rc = error_set(errstr, EX_DATAERR, "ledger %s: not a regular file", path);
		goto out;
	}
	if ((flags & LEDGER_EXCLUSIVE) && (rc = lock_file(l, errstr)))
		goto out;
	if (l->readonly) {
		if ((rc = open_readonly(l, errstr)))
			goto out;
	} else if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	                           NULL) != SQLITE_OK) {
		rc = error_set(errstr, EX_IOERR, "ledger %s: %s", path,
		               l->db ? sqlite3_errmsg(l->db) : "cannot open");
		goto out;
	}
	sqlite3_extended_result_codes(l->db, 0);
	sqlite3_busy_timeout(l->db, 10000);
	if ((rc = schema_functions(l, errstr)))
		goto out;
	/* Check the version before anything that writes (journal_mode=WAL writes the header). */
	if ((rc = schema_user_version(l, &v, errstr)))
		goto out;
	if (v > LEDGER_SCHEMA_VERSION) {
		rc = error_set(
		    errstr, EX_CONFIG,
		    "ledger %s was written by a newer demarche (schema %d; this one knows "
		    "up to %d): upgrade demarche; the file was not changed",
		    path, v, LEDGER_SCHEMA_VERSION);
		goto out;
	}
	l->schema = v;
	/* No memory map: measured on audit of 1,000,000 deliveries, pread into SQLite's small
	 * page cache costs less CPU than a page fault per 4 KB page, and peak RSS stays at
	 * 14 MB instead of the 960 MB of file pages a 1 GB map counted (bench/ledger). */
	sqlite3_exec(l->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
	if (l->readonly) {
		if (v == 0) {
			rc = error_set(errstr, EX_DATAERR, "ledger %s is empty or not a ledger",
			               path);
			goto out;
		}
		if (v < 3) {
			/* schema 3's indexes are what audit's queries expect */
			rc = error_set(errstr, EX_CONFIG,
			               "ledger %s has schema %d, too old to be read without being "
			               "upgraded (this demarche writes %d): run demarche send or "
			               "verify where it can be written; the file was not changed",
			               path, v, LEDGER_SCHEMA_VERSION);
			goto out;
		}
	} else {
		if ((rc = ldb_exec(l, "PRAGMA journal_mode = WAL", errstr)) ||
		    (rc = ldb_exec(l, "PRAGMA synchronous = FULL", errstr)) ||
		    (rc = ldb_exec(l, "PRAGMA foreign_keys = ON", errstr)) ||
		    /* each write inside a batch is a SAVEPOINT, whose statement journal would
		     * otherwise be a temporary file written page by page: 2.5x slower plans */
		    (rc = ldb_exec(l, "PRAGMA temp_store = MEMORY", errstr)))
			goto out;
		if (v < LEDGER_SCHEMA_VERSION) {
			if ((rc = schema_migrate(l, errstr)))
				goto out;
			l->schema = LEDGER_SCHEMA_VERSION;
		}
	}
check:
	if ((flags & LEDGER_CHECK) && (rc = ledger_quick_check(l, errstr)))
		goto out;
	*out = l;
	l = NULL;
	rc = EX_OK;
out:
	ledger_close(l);
	return rc;
}

int ledger_store_is_remote(const char *store)
{
	return pg_is_store(store);
}

int ledger_schema(struct ledger *l)
{
	return l->schema;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	for (int i = 0; i < Q__COUNT; i++)
		sqlite3_finalize(l->st[i].sq);
	if (l->db)
		sqlite3_close(l->db);
	if (l->lockfd >= 0)
		close(l->lockfd); /* after sqlite3_close(): see lock_file() */
	pg_close(l);
	digest_free(l->md);
	buf_free(&l->scratch);
	free(l->path);
	free(l);
}

int ledger_file_mode_check(const char *path, char **warning)
{
	struct stat sb;

	*warning = NULL;
	if (stat(path, &sb) != 0)
		return 0;
	if (!(sb.st_mode & (S_IRWXG | S_IRWXO)))
		return 0;
	*warning = xasprintf("ledger %s is %s by %s (mode %04o): it holds every mission's "
	                     "address and the servers' replies; chmod 600 %s",
	                     path, sb.st_mode & (S_IWGRP | S_IWOTH) ? "writable" : "readable",
	                     sb.st_mode & (S_IRWXO) ? "others" : "its group",
	                     (unsigned)(sb.st_mode & 07777), path);
	return 1;
}

int ledger_batch_begin(struct ledger *l, char **errstr)
{
	return tx_begin(l, 0, errstr);
}

int ledger_batch_end(struct ledger *l, int commit, char **errstr)
{
	int rc = EX_OK;

	if (commit && (rc = ldb_tx_commit(l, errstr)) == EX_OK)
		goto out;
	ldb_tx_rollback(l);
out:
	if (l->depth == 0)
		l->lost = 0;
	return rc;
}
