/* The ledger's schema and its forward-only migrations (PRAGMA user_version). */
#include "ledger/ledger.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

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
};

/* --- Opening ------------------------------------------------------------------------- */

int schema_user_version(struct ledger *l, int *v, char **errstr)
{
	static const char what[] = "reading the schema version";
	sqlite3_stmt *st;
	int rc;

	if (!(rc = ldb_query(l, Q_USER_VERSION, &st, what, errstr, "")) &&
	    !ldb_next(l, st, &rc, what, errstr) && !rc)
		rc = error_set(errstr, EX_IOERR, "ledger %s: %s: no answer", l->path, what);
	if (!rc)
		*v = sqlite3_column_int(st, 0);
	else if (sqlite3_errcode(l->db) == SQLITE_NOTADB)
		rc = error_set(errstr, EX_DATAERR,
		               "%s is not a demarche ledger (not an SQLite database)", l->path);
	ldb_done(st);
	return rc;
}

static int count_objects(struct ledger *l, long *n, char **errstr)
{
	static const char what[] = "reading the schema";
	sqlite3_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_COUNT_OBJECTS, &st, what, errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr))
		*n = sqlite3_column_int64(st, 0);
	ldb_done(st);
	return rc;
}

int schema_migrate(struct ledger *l, char **errstr)
{
	int v, rc;
	long nobj = 0;

	if ((rc = ldb_exec(l, "BEGIN IMMEDIATE", errstr)))
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
		set = xasprintf("PRAGMA user_version = %d", v + 1);
		rc = ldb_exec(l, set, errstr);
		free(set);
		if (rc)
			goto out;
	}
	rc = ldb_exec(l, "COMMIT", errstr);
out:
	if (rc)
		ldb_tx_rollback(l);
	return rc;
}
