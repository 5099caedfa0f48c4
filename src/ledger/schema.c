/* The ledger's schema and its forward-only migrations (PRAGMA user_version). */
#include "ledger/ledger.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/ident.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

static const char *sq_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Schema migrations: migrations[i] takes user_version i to i + 1. Append only. */
static const char *const migrations[LEDGER_SCHEMA_VERSION] = {
    "CREATE TABLE campaigns ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " title TEXT, subject TEXT,"
    " content_hash TEXT NOT NULL,"
    " created TEXT NOT NULL,"
    " first_sent TEXT, last_sent TEXT);"
    "CREATE TABLE deliveries ("
    " id INTEGER PRIMARY KEY,"
    " campaign TEXT NOT NULL REFERENCES campaigns(id),"
    " key TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " message_id TEXT,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent',"
    "   'deferred', 'failed', 'unknown', 'bounced', 'replied')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_code INTEGER, last_reply TEXT, via TEXT,"
    " created TEXT NOT NULL, updated TEXT NOT NULL,"
    " UNIQUE (campaign, key, address));"
    /* audit's counts by state read this index alone */
    "CREATE INDEX deliveries_state ON deliveries(campaign, state);"
    "CREATE TABLE events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time TEXT NOT NULL,"
    " campaign TEXT REFERENCES campaigns(id),"
    " delivery INTEGER REFERENCES deliveries(id),"
    " kind TEXT NOT NULL,"
    " from_state TEXT, to_state TEXT,"
    " code INTEGER, reply TEXT, via TEXT, detail TEXT,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    /* rate windows and daily caps: sent through one account since a time */
    "CREATE INDEX events_sent_via ON events(via, time)"
    " WHERE kind = 'transition' AND to_state = 'sent';"
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
    " BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
    " BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;",
    /* 2: IMAP. Bounces and replies find their delivery by Message-ID. */
    "CREATE INDEX deliveries_message_id ON deliveries(message_id COLLATE NOCASE);"
    /* what was learnt from one received message, once: reading a folder again is harmless */
    "CREATE TABLE observed ("
    " kind TEXT NOT NULL, delivery INTEGER NOT NULL REFERENCES deliveries(id),"
    " source TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (kind, delivery, source)) WITHOUT ROWID;"
    /* how far `bounces` read each folder (RFC 3501 2.3.1.1: UIDs hold within a UIDVALIDITY) */
    "CREATE TABLE imap_state ("
    " account TEXT NOT NULL, folder TEXT NOT NULL,"
    " uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL, updated TEXT NOT NULL,"
    " PRIMARY KEY (account, folder));"
    "CREATE TABLE sent_copies ("
    " delivery INTEGER PRIMARY KEY REFERENCES deliveries(id),"
    " folder TEXT NOT NULL, uidvalidity INTEGER, uid INTEGER, time TEXT NOT NULL);"
    /* Sent copies whose APPEND failed, kept until one succeeds (deliveries: ids, spaced) */
    "CREATE TABLE outbox_copies ("
    " id INTEGER PRIMARY KEY, campaign TEXT REFERENCES campaigns(id),"
    " deliveries TEXT NOT NULL, data BLOB NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 1, last_error TEXT,"
    " created TEXT NOT NULL, updated TEXT NOT NULL);",
    /* 3: audit's table takes its column widths from these (max() reads one entry of each)
       and then streams its rows, instead of scanning a million rows twice */
    "CREATE INDEX deliveries_key_width ON deliveries(campaign, length(key));"
    "CREATE INDEX deliveries_address_width ON deliveries(campaign, length(address));"
    "CREATE INDEX deliveries_reply_width ON deliveries(campaign, length(last_reply));",
    /* 4: a delivery's identity is (campaign, key, address) without ASCII case (base/ident.h);
       merged_into marks a row that collided with an older one (see merge_collisions()).
       Every creation is an event, found by its identity through events_create. The rest of
       the migration is migrate_v4() in C. */
    "ALTER TABLE deliveries ADD COLUMN key_norm TEXT;"
    "ALTER TABLE deliveries ADD COLUMN address_norm TEXT;"
    "ALTER TABLE deliveries ADD COLUMN merged_into INTEGER REFERENCES deliveries(id);"
    "UPDATE deliveries SET key_norm = demarche_fold(key), address_norm = demarche_fold(address);"
    "CREATE INDEX events_create ON events(campaign, detail) WHERE kind = 'create';"
    /* the quick check counts creations from this one: a tenth of events_create's pages */
    "CREATE INDEX events_creations ON events(delivery) WHERE kind = 'create';",
    /* 5: 'staged', a delivery written to a staging channel (a Maildir outbox), joins the
       states deliveries.state may hold (docs/design.md, "Staging is not delivery"). SQLite
       cannot alter a CHECK constraint: migrate_v5() widens it in the schema text, which
       every existing row already satisfies (sqlite.org/lang_altertable.html, section 7). */
    "SELECT 1;",
    /* 6 (team): each event names its operator and host (in its hash when set, chain.c);
       leases of deliveries being sent, for several senders on one PostgreSQL ledger
       (mirrored here so both backends keep one schema) */
    "ALTER TABLE events ADD COLUMN operator TEXT;"
    "ALTER TABLE events ADD COLUMN host TEXT;"
    "CREATE TABLE leases ("
    " delivery INTEGER PRIMARY KEY REFERENCES deliveries(id),"
    " campaign TEXT NOT NULL, holder TEXT NOT NULL, since TEXT NOT NULL, until TEXT NOT NULL);"
    "CREATE INDEX leases_campaign ON leases(campaign, until);"
    /* audit --columns operator: a delivery's last event */
    "CREATE INDEX events_delivery ON events(delivery, seq);",
};

/* The state history of each delivery of one identity, to decide whether they can merge. */
static const char collisions_sql[] =
    "SELECT campaign, key_norm, address_norm FROM deliveries"
    " GROUP BY campaign, key_norm, address_norm HAVING count(*) > 1";
static const char group_sql[] =
    "SELECT d.id, d.key, d.address, coalesce((SELECT group_concat(to_state, '>') FROM"
    " (SELECT to_state FROM events WHERE kind = 'transition' AND delivery = d.id"
    " ORDER BY seq)), '') FROM deliveries d"
    " WHERE campaign = ?1 AND key_norm = ?2 AND address_norm = ?3 ORDER BY id";

/*
 * Rows that are one delivery once case is ignored ("ALB" and "alb"). They merge when that is
 * unambiguous: every one that went anywhere went through the same states, so whichever the
 * next send finds tells it the same thing; the first of those (or the first row) stays, the
 * others point at it with merged_into and stay as evidence. Otherwise EX_DATAERR naming the
 * rows, and the caller rolls everything back.
 */
static int merge_collisions(struct ledger *l, char **errstr)
{
	sqlite3_stmt *groups = NULL, *rows = NULL;
	struct buf why = BUF_INIT;
	int rc = EX_OK, bad = 0;

	if (sqlite3_prepare_v2(l->db, collisions_sql, -1, &groups, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(l->db, group_sql, -1, &rows, NULL) != SQLITE_OK) {
		rc = ldb_fail(l, errstr, "finding deliveries that differ only in case");
		goto out;
	}
	while (!rc && sqlite3_step(groups) == SQLITE_ROW) {
		int64_t keep = 0, ids[64];
		char *history = NULL;
		size_t n = 0;
		int ambiguous = 0;
		struct buf names = BUF_INIT;

		for (int i = 0; i < 3; i++)
			sqlite3_bind_text(rows, i + 1, sq_text(groups, i), -1, SQLITE_TRANSIENT);
		while (sqlite3_step(rows) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(rows, 0);
			const char *h = sq_text(rows, 3);

			buf_addf(&names, "%s%lld (%s, %s: %s)", names.len ? " and " : "",
			         (long long)id, sq_text(rows, 1), sq_text(rows, 2),
			         h && *h ? h : "never sent");
			if (n < sizeof(ids) / sizeof(ids[0]))
				ids[n++] = id;
			if (h && *h) {
				if (!history) {
					history = xstrdup(h);
					keep = id;
				} else if (strcmp(history, h)) {
					ambiguous = 1;
				}
			}
		}
		sqlite3_reset(rows);
		if (!keep)
			keep = ids[0];
		if (ambiguous) {
			if (bad++ < 10)
				buf_addf(&why, "\n  campaign %s: deliveries %s", sq_text(groups, 0),
				         buf_str(&names));
		} else {
			for (size_t i = 0; i < n && !rc; i++) {
				char *sql;

				if (ids[i] == keep)
					continue;
				sql = xasprintf(
				    "UPDATE deliveries SET merged_into = %lld WHERE id = %lld",
				    (long long)keep, (long long)ids[i]);
				rc = ldb_exec(l, sql, errstr);
				free(sql);
			}
		}
		free(history);
		buf_free(&names);
	}
	if (!rc && bad)
		rc = error_set(errstr, EX_DATAERR,
		               "ledger %s: %d deliveries are one delivery now that keys and "
		               "addresses compare without case, but went through different states, "
		               "so none can stand for the others:%s\nThe ledger was not changed "
		               "(schema %d kept); keep using the previous demarche with it, or "
		               "start a new ledger.",
		               l->path, bad, buf_str(&why), LEDGER_SCHEMA_VERSION - 1);
out:
	sqlite3_finalize(groups);
	sqlite3_finalize(rows);
	buf_free(&why);
	return rc;
}

/*
 * Brings the rows of an older ledger into the chain: one 'adopt' event per campaign and one
 * 'create' event (marked adopted) per delivery, holding the row as it is now. What the
 * chain recorded before stays as it was; from here on every row is accounted for.
 */
static int adopt_rows(struct ledger *l, char **errstr)
{
	static const char csql[] = "SELECT id, title, subject, content_hash FROM campaigns"
	                           " ORDER BY created, id";
	static const char dsql[] = "SELECT id, campaign, key, address, message_id, merged_into"
	                           " FROM deliveries ORDER BY id";
	struct ledger_outcome o = {0};
	sqlite3_stmt *st = NULL;
	char t[32];
	int rc = EX_OK, step;
	int64_t ordinal = 0;

	ldb_now(l, t);
	if (sqlite3_prepare_v2(l->db, csql, -1, &st, NULL) != SQLITE_OK)
		return ldb_fail(l, errstr, "adopting campaigns");
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		char *d = rec_campaign(sq_text(st, 3), sq_text(st, 1), sq_text(st, 2), NULL, 1);

		o.detail = d;
		rc = chain_append(l, t, "adopt", sq_text(st, 0), 0, NULL, NULL, &o, errstr);
		free(d);
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	if (sqlite3_prepare_v2(l->db, dsql, -1, &st, NULL) != SQLITE_OK)
		return ldb_fail(l, errstr, "adopting deliveries");
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		char *d = rec_delivery(sq_text(st, 2), sq_text(st, 3), sq_text(st, 4),
		                       sqlite3_column_int64(st, 5), 1, ++ordinal);

		o.detail = d;
		rc = chain_append(l, t, "create", sq_text(st, 1), sqlite3_column_int64(st, 0), NULL,
		                  NULL, &o, errstr);
		free(d);
	}
	sqlite3_finalize(st);
	return rc;
}

static int migrate_v4(struct ledger *l, char **errstr)
{
	int rc;

	if ((rc = merge_collisions(l, errstr)) ||
	    (rc = ldb_exec(l,
	                   "CREATE UNIQUE INDEX deliveries_identity ON deliveries(campaign,"
	                   " key_norm, address_norm) WHERE merged_into IS NULL",
	                   errstr)))
		return rc;
	return adopt_rows(l, errstr);
}

/* The end of the CHECK of deliveries.state before and after schema 5, as SQL strings. */
#define STATES_V4 "'''bounced'', ''replied''))'"
#define STATES_V5 "'''bounced'', ''replied'', ''staged''))'"

static int migrate_v5(struct ledger *l, char **errstr)
{
	sqlite3_stmt *st = NULL;
	char *bump = NULL;
	int rc, version = 0;

	if ((rc = ldb_exec(l, "PRAGMA writable_schema = ON", errstr)))
		return rc;
	if ((rc = ldb_exec(l,
	                   "UPDATE sqlite_master SET sql = replace(sql, " STATES_V4 ", " STATES_V5
	                   ") WHERE type = 'table' AND name = 'deliveries'",
	                   errstr)))
		goto out;
	if (sqlite3_changes(l->db) != 1) {
		rc = error_set(errstr, EX_DATAERR,
		               "ledger %s: the deliveries table is not the one schema 4 made",
		               l->path);
		goto out;
	}
	if (sqlite3_prepare_v2(l->db, "PRAGMA schema_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = ldb_fail(l, errstr, "reading the schema version");
		goto out;
	}
	version = sqlite3_column_int(st, 0);
	/* the new schema text is read again by every connection, this one included */
	bump = xasprintf("PRAGMA schema_version = %d", version + 1);
	rc = ldb_exec(l, bump, errstr);
out:
	sqlite3_finalize(st);
	free(bump);
	if (ldb_exec(l, "PRAGMA writable_schema = OFF", rc ? NULL : errstr) && !rc)
		rc = EX_IOERR;
	return rc;
}

/* --- Opening ------------------------------------------------------------------------- */

int schema_user_version(struct ledger *l, int *v, char **errstr)
{
	static const char what[] = "reading the schema version";
	struct ldb_stmt *st;
	int rc;

	if (!(rc = ldb_query(l, Q_USER_VERSION, &st, what, errstr, "")) &&
	    !ldb_next(l, st, &rc, what, errstr) && !rc)
		rc = error_set(errstr, EX_IOERR, "ledger %s: %s: no answer", l->path, what);
	if (!rc)
		*v = ldb_col_int(st, 0);
	else if (sqlite3_errcode(l->db) == SQLITE_NOTADB)
		rc = error_set(errstr, EX_DATAERR,
		               "%s is not a demarche ledger (not an SQLite database)", l->path);
	ldb_done(st);
	return rc;
}

static int count_objects(struct ledger *l, long *n, char **errstr)
{
	static const char what[] = "reading the schema";
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_COUNT_OBJECTS, &st, what, errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr))
		*n = ldb_col_int64(st, 0);
	ldb_done(st);
	return rc;
}

int schema_migrate(struct ledger *l, char **errstr)
{
	int v, rc;
	long nobj = 0;

	if ((rc = ldb_tx_begin(l, errstr)))
		return rc;
	/* read again under the lock: another demarche may have migrated meanwhile */
	if ((rc = schema_user_version(l, &v, errstr)))
		goto out;
	if (v == 0 && (count_objects(l, &nobj, NULL) || nobj > 0)) {
		rc = error_set(errstr, EX_DATAERR,
		               "%s is an SQLite database but not a demarche ledger", l->path);
		goto out;
	}
	for (; v < LEDGER_SCHEMA_VERSION; v++) {
		char *set;

		if ((rc = ldb_exec(l, migrations[v], errstr)))
			goto out;
		if (v == 3 && (rc = migrate_v4(l, errstr)))
			goto out;
		if (v == 4 && (rc = migrate_v5(l, errstr)))
			goto out;
		set = xasprintf("PRAGMA user_version = %d", v + 1);
		rc = ldb_exec(l, set, errstr);
		free(set);
		if (rc)
			goto out;
	}
	rc = ldb_tx_commit(l, errstr);
out:
	if (rc)
		ldb_tx_rollback(l);
	return rc;
}

/* demarche_fold(s): base/ident.h's fold in SQL, for the migration (NULL stays NULL). */
static void fold_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *s = sqlite3_value_text(argv[0]);
	int n = sqlite3_value_bytes(argv[0]);
	char *out;

	(void)argc;
	if (!s) {
		sqlite3_result_null(ctx);
		return;
	}
	out = xmalloc((size_t)n + 1);
	ident_fold_n(out, (const char *)s, (size_t)n);
	out[n] = '\0';
	sqlite3_result_text(ctx, out, n, free);
}

int schema_functions(struct ledger *l, char **errstr)
{
	if (sqlite3_create_function(l->db, "demarche_fold", 1,
	                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                            fold_fn, NULL, NULL) != SQLITE_OK)
		return ldb_fail(l, errstr, "registering demarche_fold()");
	return EX_OK;
}
