/* The ledger: SQLite store, schema migrations, the one-door state machine, hash chain. */
#include "ledger/ledger.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"

static const char *const state_names[LS__COUNT] = {
    "pending", "sending", "sent", "deferred", "failed", "unknown", "bounced", "replied",
};

/* legal[from][to]: 1 always, or the LEDGER_RETRY_* flag the caller must pass (as 0x100|f). */
#define NEEDS(flag) (0x100 | (flag))
static const int legal[LS__COUNT][LS__COUNT] = {
    [LS_PENDING] = {[LS_SENDING] = 1},
    [LS_SENDING] = {[LS_SENT] = 1, [LS_DEFERRED] = 1, [LS_FAILED] = 1, [LS_UNKNOWN] = 1},
    [LS_DEFERRED] = {[LS_SENDING] = 1},
    [LS_UNKNOWN] = {[LS_SENDING] = NEEDS(LEDGER_RETRY_UNKNOWN)},
    [LS_FAILED] = {[LS_SENDING] = NEEDS(LEDGER_RETRY_FAILED)},
    [LS_SENT] = {[LS_BOUNCED] = 1, [LS_REPLIED] = 1},
};

/* For the matrix: which of several deliveries of one key tells most (best first). */
static const enum ledger_state best_order[LS__COUNT] = {
    LS_REPLIED, LS_SENT, LS_BOUNCED, LS_UNKNOWN, LS_DEFERRED, LS_SENDING, LS_FAILED, LS_PENDING,
};

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* Bumped only with a new canonical encoding; part of every hash. */
#define HASH_DOMAIN "demarche-ledger-v1\n"

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

/*
 * Every statement the ledger runs, prepared once per connection on first use (query())
 * and reset after each use (done()): one place for the SQL, one way to run it.
 */
enum query {
	Q_USER_VERSION,
	Q_COUNT_OBJECTS,
	Q_LAST_EVENT,
	Q_INSERT_EVENT,
	Q_CAMPAIGN_EXISTS,
	Q_CAMPAIGN_HASH,
	Q_CAMPAIGN_INSERT,
	Q_CAMPAIGN_AMEND,
	Q_DELIVERY,
	Q_UPDATE_DELIVERY,
	Q_CAMPAIGN_SENT,
	Q_FIND_DELIVERY,
	Q_INSERT_DELIVERY,
	Q_COUNT_SENT,
	Q_DELIVERIES,
	Q_WIDTHS,
	Q_CAMPAIGNS,
	Q_STATE_COUNTS,
	Q_MISSING,
	Q_MATRIX,
	Q_FIND_MESSAGE,
	Q_FIND_ADDRESS,
	Q_OBSERVED,
	Q_INSERT_OBSERVED,
	Q_IMAP_STATE,
	Q_IMAP_STATE_SET,
	Q_SENT_COPY_SET,
	Q_SENT_COPY,
	Q_COPY_DELETE,
	Q_COPY_RETRY,
	Q_COPY_INSERT,
	Q_COPIES,
	Q_COPY,
	Q_EVENTS,
	Q_EVENTS_HIGHEST,
	Q_VERIFY_DELIVERIES,
	Q__COUNT
};

/* The columns of a struct ledger_row, in fill_row()'s order. */
#define ROW_COLUMNS                                                                                \
	"SELECT id, campaign, key, address, message_id, state, attempts, last_code, last_reply,"   \
	" via, created, updated FROM deliveries "

static const char *const query_sql[Q__COUNT] = {
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
    [Q_FIND_DELIVERY] = "SELECT id, state, attempts FROM deliveries"
                        " WHERE campaign = ?1 AND key = ?2 AND address = ?3",
    [Q_INSERT_DELIVERY] = "INSERT INTO deliveries (campaign, key, address, message_id, state,"
                          " attempts, created, updated)"
                          " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
    [Q_COUNT_SENT] = "SELECT count(*) FROM events WHERE kind = 'transition'"
                     " AND to_state = 'sent' AND via IS ?1 AND time >= ?2",
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
                 " code, reply, via, detail, prev_hash, hash FROM events ORDER BY seq",
    [Q_EVENTS_HIGHEST] = "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
    [Q_VERIFY_DELIVERIES] = "SELECT id, state, attempts FROM deliveries ORDER BY id",
};

struct ledger {
	sqlite3 *db;
	char *path;
	time_t fixed; /* 0: the real clock */
	int batch;    /* inside ledger_batch_begin() */
	sqlite3_stmt *q[Q__COUNT];
	EVP_MD *sha256; /* fetched once: an implicit fetch per digest costs more than the hash */
	EVP_MD_CTX *mdctx;
	struct buf scratch; /* the canonical encoding being hashed */
};

const char *ledger_state_name(enum ledger_state s)
{
	if ((int)s < 0 || s >= LS__COUNT)
		return "?";
	return state_names[s];
}

int ledger_state_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < LS__COUNT; i++)
		if (!strcmp(s, state_names[i]))
			return i;
	return -1;
}

int ledger_state_received(enum ledger_state s)
{
	return s == LS_SENT || s == LS_REPLIED;
}

/* --- SQLite helpers ---------------------------------------------------------------- */

static int db_fail(struct ledger *l, char **errstr, const char *what)
{
	int rc = sqlite3_errcode(l->db);

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

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/*
 * Sets *st to statement q with the arguments bound to ?1, ?2, ... as types says: 't' a
 * string (NULL: NULL), 'i' an int64_t, 'z' an int64_t stored as NULL when 0, 'b' a blob
 * (const void *, size_t), '-' no argument (that parameter stays NULL). The strings must outlive the
 * statement's use. Returns EX_OK, or what db_fail() returns (what: what was being done).
 * Hand *st back with done() once read.
 */
static int vquery(struct ledger *l, enum query q, sqlite3_stmt **st, const char *what,
                  char **errstr, const char *types, va_list ap)
{
	*st = NULL;
	if (!l->q[q] && sqlite3_prepare_v3(l->db, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT,
	                                   &l->q[q], NULL) != SQLITE_OK)
		return db_fail(l, errstr, what);
	*st = l->q[q];
	for (int i = 1; types[i - 1]; i++) {
		int64_t v;
		const void *p;

		switch (types[i - 1]) {
		case 't':
			bind_text(*st, i, va_arg(ap, const char *));
			break;
		case 'i':
			sqlite3_bind_int64(*st, i, va_arg(ap, int64_t));
			break;
		case 'z':
			if ((v = va_arg(ap, int64_t)))
				sqlite3_bind_int64(*st, i, v);
			break;
		case 'b':
			p = va_arg(ap, const void *);
			sqlite3_bind_blob64(*st, i, p, va_arg(ap, size_t), SQLITE_STATIC);
			break;
		default:
			break;
		}
	}
	return EX_OK;
}

static int query(struct ledger *l, enum query q, sqlite3_stmt **st, const char *what, char **errstr,
                 const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vquery(l, q, st, what, errstr, types, ap);
	va_end(ap);
	return rc;
}

/* Makes a statement from query() ready for its next use. NULL is safe. */
static void done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

/*
 * Steps st: 1 with a row to read, 0 at the end or on an error, which sets *rc (from
 * db_fail(), with what) and leaves it EX_OK otherwise. `while (next(...))` reads them all.
 */
static int next(struct ledger *l, sqlite3_stmt *st, int *rc, const char *what, char **errstr)
{
	int step = sqlite3_step(st);

	if (step == SQLITE_ROW)
		return 1;
	*rc = step == SQLITE_DONE ? EX_OK : db_fail(l, errstr, what);
	return 0;
}

/* Runs st (an INSERT, UPDATE or DELETE from query()) to its end and hands it back. */
static int finish(struct ledger *l, sqlite3_stmt *st, const char *what, char **errstr)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? EX_OK : db_fail(l, errstr, what);

	done(st);
	return rc;
}

/* Runs statement q (an INSERT, UPDATE or DELETE) with the arguments of query(). */
static int run(struct ledger *l, enum query q, const char *what, char **errstr, const char *types,
               ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vquery(l, q, &st, what, errstr, types, ap);
	va_end(ap);
	return rc ? rc : finish(l, st, what, errstr);
}

static int exec(struct ledger *l, const char *sql, char **errstr)
{
	if (sqlite3_exec(l->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(l, errstr, sql);
	return EX_OK;
}

static int tx_begin(struct ledger *l, char **errstr)
{
	return l->batch ? EX_OK : exec(l, "BEGIN IMMEDIATE", errstr);
}

static int tx_commit(struct ledger *l, char **errstr)
{
	return l->batch ? EX_OK : exec(l, "COMMIT", errstr);
}

static void tx_rollback(struct ledger *l)
{
	if (!l->batch && !sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ISO 8601 UTC with milliseconds: sorts as text, readable in the sqlite3 shell. */
static void format_time(time_t t, long ms, char out[32])
{
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static void now(struct ledger *l, char out[32])
{
	struct timespec ts;

	if (l->fixed) {
		format_time(l->fixed, 0, out);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	format_time(ts.tv_sec, ts.tv_nsec / 1000000, out);
}

void ledger_set_clock(struct ledger *l, time_t fixed)
{
	l->fixed = fixed;
}

/* --- The hash chain ------------------------------------------------------------------ */

/*
 * The canonical encoding of one event's content: each field in column order as "N;"
 * (NULL), "i<decimal>;" (integer) or "s<bytes>:<text>;" (text), so no two different rows
 * encode alike. Anything else (a real, a blob) can only come from tampering.
 */
enum {
	F_SEQ,
	F_TIME,
	F_CAMPAIGN,
	F_DELIVERY,
	F_KIND,
	F_FROM,
	F_TO,
	F_CODE,
	F_REPLY,
	F_VIA,
	F_DETAIL,
	F__COUNT
};

struct field {
	int type; /* SQLITE_NULL, SQLITE_INTEGER, SQLITE_TEXT, other */
	int64_t i;
	const char *s;
	size_t n;
};

static void field_int(struct field *f, int64_t v, int null_if_zero)
{
	f->type = (null_if_zero && !v) ? SQLITE_NULL : SQLITE_INTEGER;
	f->i = v;
}

static void field_text(struct field *f, const char *s)
{
	f->type = s ? SQLITE_TEXT : SQLITE_NULL;
	f->s = s;
	f->n = s ? strlen(s) : 0;
}

static void add_int(struct buf *b, int64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* hash = SHA-256(HASH_DOMAIN || prev_hash || encoding), as lowercase hex. */
static int event_hash(struct ledger *l, const char *prev, const struct field *f, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct buf *b = &l->scratch;

	buf_reset(b);
	buf_adds(b, HASH_DOMAIN);
	buf_adds(b, prev);
	for (int i = 0; i < F__COUNT; i++) {
		switch (f[i].type) {
		case SQLITE_NULL:
			buf_add(b, "N;", 2);
			continue;
		case SQLITE_INTEGER:
			buf_addc(b, 'i');
			add_int(b, f[i].i);
			buf_addc(b, ';');
			continue;
		case SQLITE_TEXT:
			buf_addc(b, 's');
			break;
		default:
			buf_addc(b, 'x');
			break;
		}
		add_int(b, (int64_t)f[i].n);
		buf_addc(b, ':');
		buf_add(b, f[i].s, f[i].n);
		buf_addc(b, ';');
	}
	if (!EVP_DigestInit_ex2(l->mdctx, l->sha256, NULL) ||
	    !EVP_DigestUpdate(l->mdctx, b->data, b->len) ||
	    !EVP_DigestFinal_ex(l->mdctx, md, &mdlen) || mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* Appends one event to the chain; the caller holds the write transaction. */
static int event_append(struct ledger *l, const char *time, const char *kind, const char *campaign,
                        int64_t delivery, const char *from, const char *to,
                        const struct ledger_outcome *o, char **errstr)
{
	static const struct ledger_outcome none = {0};
	static const char what[] = "appending an event";
	struct field f[F__COUNT];
	char prev[65] = ZERO_HASH, hash[65];
	int64_t seq = 1;
	sqlite3_stmt *st;
	int rc;

	if (!o)
		o = &none;
	if ((rc = query(l, Q_LAST_EVENT, &st, "reading the last event", errstr, "")))
		return rc;
	if (next(l, st, &rc, "reading the last event", errstr)) {
		seq = sqlite3_column_int64(st, 0) + 1;
		if (col_text(st, 1))
			snprintf(prev, sizeof(prev), "%s", col_text(st, 1));
	}
	done(st);
	if (rc)
		return rc;

	field_int(&f[F_SEQ], seq, 0);
	field_text(&f[F_TIME], time);
	field_text(&f[F_CAMPAIGN], campaign);
	field_int(&f[F_DELIVERY], delivery, 1);
	field_text(&f[F_KIND], kind);
	field_text(&f[F_FROM], from);
	field_text(&f[F_TO], to);
	field_int(&f[F_CODE], o->code, 1);
	field_text(&f[F_REPLY], o->reply);
	field_text(&f[F_VIA], o->via);
	field_text(&f[F_DETAIL], o->detail);
	if (event_hash(l, prev, f, hash))
		return error_set(errstr, EX_SOFTWARE, "SHA-256 failed (libcrypto)");

	if ((rc = query(l, Q_INSERT_EVENT, &st, what, errstr, "")))
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	for (int i = F_TIME; i < F__COUNT; i++) {
		if (f[i].type == SQLITE_INTEGER)
			sqlite3_bind_int64(st, i + 1, f[i].i);
		else
			bind_text(st, i + 1, f[i].type == SQLITE_TEXT ? f[i].s : NULL);
	}
	bind_text(st, 12, prev);
	bind_text(st, 13, hash);
	return finish(l, st, what, errstr);
}

/* --- Opening ------------------------------------------------------------------------- */

static int read_user_version(struct ledger *l, int *v, char **errstr)
{
	static const char what[] = "reading the schema version";
	sqlite3_stmt *st;
	int rc;

	if (!(rc = query(l, Q_USER_VERSION, &st, what, errstr, "")) &&
	    !next(l, st, &rc, what, errstr) && !rc)
		rc = error_set(errstr, EX_IOERR, "ledger %s: %s: no answer", l->path, what);
	if (!rc)
		*v = sqlite3_column_int(st, 0);
	else if (sqlite3_errcode(l->db) == SQLITE_NOTADB)
		rc = error_set(errstr, EX_DATAERR,
		               "%s is not a demarche ledger (not an SQLite database)", l->path);
	done(st);
	return rc;
}

static int count_objects(struct ledger *l, long *n, char **errstr)
{
	static const char what[] = "reading the schema";
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_COUNT_OBJECTS, &st, what, errstr, "")))
		return rc;
	if (next(l, st, &rc, what, errstr))
		*n = sqlite3_column_int64(st, 0);
	done(st);
	return rc;
}

static int migrate(struct ledger *l, char **errstr)
{
	int v, rc;
	long nobj = 0;

	if ((rc = exec(l, "BEGIN IMMEDIATE", errstr)))
		return rc;
	/* read again under the lock: another demarche may have migrated meanwhile */
	if ((rc = read_user_version(l, &v, errstr)))
		goto out;
	if (v == 0 && (count_objects(l, &nobj, NULL) || nobj > 0)) {
		rc = error_set(errstr, EX_DATAERR,
		               "%s is an SQLite database but not a demarche ledger", l->path);
		goto out;
	}
	for (; v < LEDGER_SCHEMA_VERSION; v++) {
		char *set;

		if ((rc = exec(l, migrations[v], errstr)))
			goto out;
		set = xasprintf("PRAGMA user_version = %d", v + 1);
		rc = exec(l, set, errstr);
		free(set);
		if (rc)
			goto out;
	}
	rc = exec(l, "COMMIT", errstr);
out:
	if (rc)
		tx_rollback(l);
	return rc;
}

int ledger_open(const char *path, int flags, struct ledger **out, char **errstr)
{
	struct ledger *l = xcalloc(1, sizeof(*l));
	struct stat sb;
	int rc, v;

	*out = NULL;
	l->path = xstrdup(path);
	if (!(l->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(l->mdctx = EVP_MD_CTX_new())) {
		rc = error_set(errstr, EX_SOFTWARE, "libcrypto has no SHA-256");
		goto out;
	}
	if (stat(path, &sb) != 0) {
		int fd;

		if (errno != ENOENT || !(flags & LEDGER_CREATE)) {
			rc = error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
			               "ledger %s: %s%s", path, strerror(errno),
			               errno == ENOENT ? " (nothing has been sent with this store)"
			                               : "");
			goto out;
		}
		/* Create it ourselves, so it is 0600 from its first byte (SQLite gives its -wal
		 * and -shm files the database's mode). */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			rc = error_set(errstr, EX_CANTCREAT, "ledger %s: cannot create: %s", path,
			               strerror(errno));
			goto out;
		}
		if (fd >= 0)
			close(fd);
	} else if (!S_ISREG(sb.st_mode)) {
		rc = error_set(errstr, EX_DATAERR, "ledger %s: not a regular file", path);
		goto out;
	}
	if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = error_set(errstr, EX_IOERR, "ledger %s: %s", path,
		               l->db ? sqlite3_errmsg(l->db) : "cannot open");
		goto out;
	}
	sqlite3_extended_result_codes(l->db, 0);
	sqlite3_busy_timeout(l->db, 10000);
	/* Check the version before anything that writes (journal_mode=WAL writes the header). */
	if ((rc = read_user_version(l, &v, errstr)))
		goto out;
	if (v > LEDGER_SCHEMA_VERSION) {
		rc = error_set(
		    errstr, EX_CONFIG,
		    "ledger %s was written by a newer demarche (schema %d; this one knows "
		    "up to %d): upgrade demarche; the file was not changed",
		    path, v, LEDGER_SCHEMA_VERSION);
		goto out;
	}
	if ((rc = exec(l, "PRAGMA journal_mode = WAL", errstr)) ||
	    (rc = exec(l, "PRAGMA synchronous = FULL", errstr)) ||
	    (rc = exec(l, "PRAGMA foreign_keys = ON", errstr)))
		goto out;
	/* No memory map: measured on audit of 1,000,000 deliveries, pread into SQLite's small
	 * page cache costs less CPU than a page fault per 4 KB page, and peak RSS stays at
	 * 14 MB instead of the 960 MB of file pages a 1 GB map counted (bench/ledger). */
	sqlite3_exec(l->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
	if (v < LEDGER_SCHEMA_VERSION && (rc = migrate(l, errstr)))
		goto out;
	*out = l;
	l = NULL;
	rc = EX_OK;
out:
	ledger_close(l);
	return rc;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	for (int i = 0; i < Q__COUNT; i++)
		sqlite3_finalize(l->q[i]);
	if (l->db)
		sqlite3_close(l->db);
	EVP_MD_CTX_free(l->mdctx);
	EVP_MD_free(l->sha256);
	buf_free(&l->scratch);
	free(l->path);
	free(l);
}

int ledger_batch_begin(struct ledger *l, char **errstr)
{
	int rc = exec(l, "BEGIN IMMEDIATE", errstr);

	if (!rc)
		l->batch = 1;
	return rc;
}

int ledger_batch_end(struct ledger *l, int commit, char **errstr)
{
	l->batch = 0;
	if (commit)
		return exec(l, "COMMIT", errstr);
	tx_rollback(l);
	return EX_OK;
}

/* --- Campaigns ----------------------------------------------------------------------- */

int ledger_campaign_exists(struct ledger *l, const char *id)
{
	sqlite3_stmt *st;
	int rc, found = 0;

	if ((rc = query(l, Q_CAMPAIGN_EXISTS, &st, "", NULL, "t", id)))
		return -1;
	found = next(l, st, &rc, "", NULL);
	done(st);
	return rc ? -1 : found;
}

int ledger_campaign_begin(struct ledger *l, const char *id, const char *title, const char *subject,
                          const char *content_hash, int amend, char **errstr)
{
	static const char what[] = "recording the campaign";
	sqlite3_stmt *st;
	struct ledger_outcome o = {0};
	char *old = NULL, *detail = NULL;
	char t[32];
	int rc;

	if (!id || !*id || !content_hash)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: campaign without id or hash");
	if ((rc = tx_begin(l, errstr)))
		return rc;
	now(l, t);
	if ((rc = query(l, Q_CAMPAIGN_HASH, &st, "reading campaigns", errstr, "t", id)))
		goto out;
	if (next(l, st, &rc, "reading campaigns", errstr))
		old = xstrdup(col_text(st, 0) ? col_text(st, 0) : "");
	done(st);
	if (rc)
		goto out;

	if (old && !strcmp(old, content_hash)) {
		rc = EX_OK; /* the same appeal again: a rerun */
		goto out;
	}
	if (old && !amend) {
		rc = error_set(
		    errstr, EX_DATAERR,
		    "campaign '%s' was recorded with another appeal (content sha256 %.12s, "
		    "now %.12s): use a new campaign id or --amend",
		    id, old, content_hash);
		goto out;
	}
	if (old) {
		rc = run(l, Q_CAMPAIGN_AMEND, what, errstr, "tttt", id, content_hash, title,
		         subject);
		detail = xasprintf("sha256 %s -> %s; title: %s; subject: %s", old, content_hash,
		                   title ? title : "", subject ? subject : "");
	} else {
		rc = run(l, Q_CAMPAIGN_INSERT, what, errstr, "ttttt", id, content_hash, title,
		         subject, t);
		detail = xasprintf("sha256 %s; title: %s; subject: %s", content_hash,
		                   title ? title : "", subject ? subject : "");
	}
	if (rc)
		goto out;
	o.detail = detail;
	if ((rc = event_append(l, t, old ? "amend" : "campaign", id, 0, NULL, NULL, &o, errstr)))
		goto out;
	rc = tx_commit(l, errstr);
out:
	if (rc)
		tx_rollback(l);
	else if (!l->batch && !sqlite3_get_autocommit(l->db))
		rc = tx_commit(l, errstr);
	free(old);
	free(detail);
	return rc;
}

/* --- Deliveries and the one door ------------------------------------------------------ */

/* EX_OK with *out set, -1 when there is no such delivery, or an error code. */
static int find_delivery(struct ledger *l, const char *campaign, const char *key,
                         const char *address, struct ledger_delivery *out, char **errstr)
{
	static const char what[] = "reading deliveries";
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_FIND_DELIVERY, &st, what, errstr, "ttt", campaign, key, address)))
		return rc;
	if (next(l, st, &rc, what, errstr)) {
		out->id = sqlite3_column_int64(st, 0);
		out->state = ledger_state_parse(col_text(st, 1));
		out->attempts = sqlite3_column_int(st, 2);
	} else if (!rc) {
		rc = -1;
	}
	done(st);
	return rc;
}

int ledger_delivery_get(struct ledger *l, const char *campaign, const char *key,
                        const char *address, const char *message_id, struct ledger_delivery *out,
                        char **errstr)
{
	sqlite3_stmt *st;
	char t[32];
	int rc;

	if (!campaign || !key || !address)
		return error_set(errstr, EX_SOFTWARE, "internal error: delivery without a key");
	if ((rc = find_delivery(l, campaign, key, address, out, errstr)) != -1)
		return rc;
	now(l, t);
	if ((rc = query(l, Q_INSERT_DELIVERY, &st, "recording a delivery", errstr, "ttttt",
	                campaign, key, address, message_id, t)))
		return rc;
	rc = sqlite3_step(st);
	done(st);
	if (rc == SQLITE_CONSTRAINT && ledger_campaign_exists(l, campaign) == 0)
		return error_set(errstr, EX_DATAERR, "no campaign '%s' in ledger %s", campaign,
		                 l->path);
	/* SQLITE_CONSTRAINT otherwise: another process created it just now */
	if (rc != SQLITE_DONE && rc != SQLITE_CONSTRAINT)
		return db_fail(l, errstr, "recording a delivery");
	rc = find_delivery(l, campaign, key, address, out, errstr);
	if (rc == -1)
		rc = error_set(errstr, EX_IOERR, "ledger %s: a new delivery vanished", l->path);
	return rc;
}

/*
 * Reads delivery id's state, attempts and (when wanted, allocated) campaign and key.
 * EX_OK, EX_DATAERR (no such delivery) or an SQLite error.
 */
static int read_delivery(struct ledger *l, int64_t id, int *state, int *attempts, char **campaign,
                         char **key, char **errstr)
{
	static const char what[] = "reading a delivery";
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_DELIVERY, &st, what, errstr, "i", id)))
		return rc;
	if (next(l, st, &rc, what, errstr)) {
		*state = ledger_state_parse(col_text(st, 0));
		if (attempts)
			*attempts = sqlite3_column_int(st, 1);
		if (campaign)
			*campaign = xstrdup(col_text(st, 2) ? col_text(st, 2) : "");
		if (key)
			*key = xstrdup(col_text(st, 3) ? col_text(st, 3) : "");
	} else if (!rc) {
		rc = error_set(errstr, EX_DATAERR, "ledger %s: no delivery %lld", l->path,
		               (long long)id);
	}
	done(st);
	return rc;
}

/* The one door's work, inside the caller's write transaction. */
static int transition_locked(struct ledger *l, int64_t delivery, enum ledger_state to,
                             unsigned flags, const struct ledger_outcome *o,
                             struct ledger_delivery *state_out, char **errstr)
{
	static const struct ledger_outcome none = {0};
	char *campaign = NULL, *key = NULL;
	int from, attempts, need, rc;
	char t[32];

	if (!o)
		o = &none;
	if ((int)to < 0 || to >= LS__COUNT)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: illegal transition to state %d of delivery %lld",
		                 (int)to, (long long)delivery);
	if ((rc = read_delivery(l, delivery, &from, &attempts, &campaign, &key, errstr)))
		goto out;

	need = from < 0 ? 0 : legal[from][to];
	if (!need || ((need & 0x100) && !(flags & (need & 0xff)))) {
		rc = error_set(errstr, EX_SOFTWARE,
		               "internal error: illegal transition %s -> %s of delivery %lld "
		               "(campaign %s, key %s)%s",
		               ledger_state_name(from), to < LS__COUNT ? state_names[to] : "?",
		               (long long)delivery, campaign, key,
		               need ? (need & LEDGER_RETRY_UNKNOWN ? ": needs --retry-unknown"
		                                                   : ": needs retry-failed")
		                    : "");
		goto out;
	}

	now(l, t);
	if ((rc = event_append(l, t, "transition", campaign, delivery, state_names[from],
	                       state_names[to], o, errstr)) ||
	    (rc = run(l, Q_UPDATE_DELIVERY, "updating a delivery", errstr, "itizttt", delivery,
	              state_names[to], (int64_t)(to == LS_SENDING), (int64_t)o->code, o->reply,
	              o->via, t)))
		goto out;
	if (to == LS_SENT &&
	    (rc = run(l, Q_CAMPAIGN_SENT, "updating a campaign", errstr, "tt", campaign, t)))
		goto out;
	if (state_out) {
		state_out->id = delivery;
		state_out->state = to;
		state_out->attempts = attempts + (to == LS_SENDING);
	}
out:
	free(campaign);
	free(key);
	return rc;
}

int ledger_transition(struct ledger *l, int64_t delivery, enum ledger_state to, unsigned flags,
                      const struct ledger_outcome *o, struct ledger_delivery *state_out,
                      char **errstr)
{
	int rc;

	if ((int)to < 0 || to >= LS__COUNT)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: illegal transition to state %d of delivery %lld",
		                 (int)to, (long long)delivery);
	if ((rc = tx_begin(l, errstr)))
		return rc;
	rc = transition_locked(l, delivery, to, flags, o, state_out, errstr);
	if (!rc)
		rc = tx_commit(l, errstr);
	if (rc)
		tx_rollback(l);
	return rc;
}

/* Kinds only the ledger itself writes. */
static int kind_reserved(const char *kind)
{
	return !kind || !*kind || !strcmp(kind, "transition") || !strcmp(kind, "campaign") ||
	       !strcmp(kind, "amend");
}

int ledger_record(struct ledger *l, const char *kind, const char *campaign, int64_t delivery,
                  const struct ledger_outcome *o, char **errstr)
{
	char t[32];
	int rc;

	if (kind_reserved(kind))
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: event kind '%s' is not for ledger_record()",
		                 kind ? kind : "(null)");
	if ((rc = tx_begin(l, errstr)))
		return rc;
	now(l, t);
	rc = event_append(l, t, kind, campaign, delivery, NULL, NULL, o, errstr);
	if (!rc)
		rc = tx_commit(l, errstr);
	if (rc)
		tx_rollback(l);
	return rc;
}

/* --- Queries ------------------------------------------------------------------------- */

int ledger_count_sent(struct ledger *l, const char *via, time_t since, long *count, char **errstr)
{
	static const char what[] = "counting sent messages";
	sqlite3_stmt *st;
	char t[32];
	int rc;

	format_time(since, 0, t);
	if ((rc = query(l, Q_COUNT_SENT, &st, what, errstr, "tt", via, t)))
		return rc;
	if (next(l, st, &rc, what, errstr))
		*count = sqlite3_column_int64(st, 0);
	else if (!rc)
		rc = db_fail(l, errstr, what);
	done(st);
	return rc;
}

static void fill_row(sqlite3_stmt *st, struct ledger_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->campaign = col_text(st, 1);
	r->key = col_text(st, 2);
	r->address = col_text(st, 3);
	r->message_id = col_text(st, 4);
	r->state = ledger_state_parse(col_text(st, 5));
	r->attempts = sqlite3_column_int(st, 6);
	r->last_code = sqlite3_column_int(st, 7);
	r->last_reply = col_text(st, 8);
	r->via = col_text(st, 9);
	r->created = col_text(st, 10);
	r->updated = col_text(st, 11);
}

/* Calls fn for each row of st (a query of ROW_COLUMNS), then hands st back. */
static int walk_rows(struct ledger *l, sqlite3_stmt *st, ledger_row_fn fn, void *ctx, char **errstr)
{
	struct ledger_row r;
	int rc = EX_OK;

	while (next(l, st, &rc, "reading deliveries", errstr)) {
		fill_row(st, &r);
		if ((rc = fn(&r, ctx)))
			break;
	}
	done(st);
	return rc;
}

int ledger_deliveries(struct ledger *l, const char *campaign, ledger_row_fn fn, void *ctx,
                      char **errstr)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_DELIVERIES, &st, "reading deliveries", errstr, "t", campaign)))
		return rc;
	return walk_rows(l, st, fn, ctx, errstr);
}

int ledger_delivery_widths(struct ledger *l, const char *campaign, struct ledger_widths *w,
                           char **errstr)
{
	static const char what[] = "reading deliveries";
	sqlite3_stmt *st;
	int rc;

	memset(w, 0, sizeof(*w));
	if ((rc = query(l, Q_WIDTHS, &st, what, errstr, "t", campaign)))
		return rc;
	if (next(l, st, &rc, what, errstr)) {
		w->key = sqlite3_column_int(st, 0);
		w->address = sqlite3_column_int(st, 1);
		w->reply = sqlite3_column_int(st, 2);
	} else if (!rc) {
		rc = db_fail(l, errstr, what);
	}
	done(st);
	return rc;
}

/* Fills c's counts by state. */
static int count_states(struct ledger *l, struct ledger_campaign *c, char **errstr)
{
	static const char what[] = "counting deliveries";
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_STATE_COUNTS, &st, what, errstr, "t", c->id)))
		return rc;
	while (next(l, st, &rc, what, errstr)) {
		int s = ledger_state_parse(col_text(st, 0));
		long n = sqlite3_column_int64(st, 1);

		if (s >= 0)
			c->counts[s] = n;
		c->total += n;
	}
	done(st);
	return rc;
}

int ledger_campaigns(struct ledger *l, ledger_campaign_fn fn, void *ctx, char **errstr)
{
	static const char what[] = "reading campaigns";
	sqlite3_stmt *st;
	struct ledger_campaign c;
	int rc;

	if ((rc = query(l, Q_CAMPAIGNS, &st, what, errstr, "")))
		return rc;
	while (next(l, st, &rc, what, errstr)) {
		memset(&c, 0, sizeof(c));
		c.id = col_text(st, 0);
		c.title = col_text(st, 1);
		c.subject = col_text(st, 2);
		c.content_hash = col_text(st, 3);
		c.created = col_text(st, 4);
		c.first_sent = col_text(st, 5);
		c.last_sent = col_text(st, 6);
		if ((rc = count_states(l, &c, errstr)) || (rc = fn(&c, ctx)))
			break;
	}
	done(st);
	return rc;
}

int ledger_missing(struct ledger *l, const char *campaign, const char *const *keys, size_t n,
                   int (*fn)(const char *key, void *ctx), void *ctx, char **errstr)
{
	static const char what[] = "reading deliveries";
	sqlite3_stmt *st;
	int rc = EX_OK, received;

	for (size_t i = 0; i < n && !rc; i++) {
		if ((rc = query(l, Q_MISSING, &st, what, errstr, "tt", campaign, keys[i])))
			break;
		received = next(l, st, &rc, what, errstr);
		done(st);
		if (!rc && !received)
			rc = fn(keys[i], ctx);
	}
	return rc;
}

int ledger_matrix(struct ledger *l, const char *const *keys, size_t n, const char *const *campaigns,
                  size_t ncampaigns, int *states, char **errstr)
{
	static const char what[] = "reading deliveries";
	sqlite3_stmt *st;
	int rc = EX_OK;
	int rank[LS__COUNT];

	for (int i = 0; i < LS__COUNT; i++)
		rank[best_order[i]] = i;
	for (size_t i = 0; i < n && !rc; i++) {
		for (size_t j = 0; j < ncampaigns && !rc; j++) {
			int *cell = &states[i * ncampaigns + j];

			*cell = -1;
			if ((rc = query(l, Q_MATRIX, &st, what, errstr, "tt", campaigns[j],
			                keys[i])))
				break;
			while (next(l, st, &rc, what, errstr)) {
				int s = ledger_state_parse(col_text(st, 0));

				if (s >= 0 && (*cell < 0 || rank[s] < rank[*cell]))
					*cell = s;
			}
			done(st);
		}
	}
	return rc;
}

/* --- What comes back over IMAP ----------------------------------------------------------- */

int ledger_find_message(struct ledger *l, const char *message_id, ledger_row_fn fn, void *ctx,
                        char **errstr)
{
	sqlite3_stmt *st;
	char *bare, *angled;
	size_t n;
	int rc;

	/* RFC 5322 3.6.4: msg-id is "<" id-left "@" id-right ">"; report.c gives it bare */
	while (*message_id == ' ' || *message_id == '\t')
		message_id++;
	if (*message_id == '<')
		message_id++;
	n = strcspn(message_id, "> \t");
	if (!n)
		return EX_OK;
	bare = xstrndup(message_id, n);
	angled = xasprintf("<%s>", bare);
	if (!(rc = query(l, Q_FIND_MESSAGE, &st, "reading deliveries", errstr, "tt", angled, bare)))
		rc = walk_rows(l, st, fn, ctx, errstr);
	free(bare);
	free(angled);
	return rc;
}

int ledger_find_address(struct ledger *l, const char *campaign, const char *address,
                        ledger_row_fn fn, void *ctx, char **errstr)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_FIND_ADDRESS, &st, "reading deliveries", errstr, "tt", campaign,
	                address)))
		return rc;
	return walk_rows(l, st, fn, ctx, errstr);
}

int ledger_observe(struct ledger *l, const char *kind, int64_t delivery, int to, const char *source,
                   const struct ledger_outcome *o, enum ledger_observed *what, char **errstr)
{
	static const struct ledger_outcome none = {0};
	struct ledger_outcome eo;
	sqlite3_stmt *st;
	char *campaign = NULL, *detail = NULL, t[32];
	enum ledger_observed did;
	int rc, seen, from;

	if (!o)
		o = &none;
	if (kind_reserved(kind) || !source || !*source || to >= LS__COUNT)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: ledger_observe(%s, %lld, %d) without a kind or "
		                 "source",
		                 kind ? kind : "(null)", (long long)delivery, to);
	if ((rc = tx_begin(l, errstr)))
		return rc;
	if ((rc = query(l, Q_OBSERVED, &st, "reading observations", errstr, "tit", kind, delivery,
	                source)))
		goto out;
	seen = next(l, st, &rc, "reading observations", errstr);
	done(st);
	if (rc)
		goto out;
	if (seen) {
		did = LEDGER_SEEN_BEFORE;
		goto commit;
	}
	if ((rc = read_delivery(l, delivery, &from, NULL, &campaign, NULL, errstr)))
		goto out;

	if (to >= 0 && from >= 0 && legal[from][to] == 1) {
		did = LEDGER_CHANGED;
		rc = transition_locked(l, delivery, to, 0, o, NULL, errstr);
	} else {
		/* a bounce for a delivery in doubt, a second reply...: evidence, not a state */
		did = LEDGER_EVENT;
		eo = *o;
		detail = xasprintf("%s%sdelivery was %s", o->detail ? o->detail : "",
		                   o->detail ? "; " : "", ledger_state_name(from));
		eo.detail = detail;
		now(l, t);
		rc = event_append(l, t, kind, campaign, delivery, NULL, NULL, &eo, errstr);
	}
	/* seq: the event just appended; the UPDATEs after it do not move last_insert_rowid */
	if (rc || (rc = run(l, Q_INSERT_OBSERVED, "recording an observation", errstr, "titi", kind,
	                    delivery, source, (int64_t)sqlite3_last_insert_rowid(l->db))))
		goto out;
commit:
	rc = tx_commit(l, errstr);
	if (!rc && what)
		*what = did;
out:
	if (rc)
		tx_rollback(l);
	free(campaign);
	free(detail);
	return rc;
}

int ledger_imap_state(struct ledger *l, const char *account, const char *folder,
                      uint32_t *uidvalidity, uint32_t *last_uid, char **errstr)
{
	static const char what[] = "reading the IMAP state";
	sqlite3_stmt *st;
	int rc;

	*uidvalidity = *last_uid = 0;
	if ((rc = query(l, Q_IMAP_STATE, &st, what, errstr, "tt", account, folder)))
		return rc;
	if (next(l, st, &rc, what, errstr)) {
		*uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		*last_uid = (uint32_t)sqlite3_column_int64(st, 1);
	}
	done(st);
	return rc;
}

int ledger_imap_state_set(struct ledger *l, const char *account, const char *folder,
                          uint32_t uidvalidity, uint32_t last_uid, char **errstr)
{
	char t[32];

	now(l, t);
	return run(l, Q_IMAP_STATE_SET, "recording the IMAP state", errstr, "ttiit", account,
	           folder, (int64_t)uidvalidity, (int64_t)last_uid, t);
}

int ledger_copy_appended(struct ledger *l, const char *campaign, const int64_t *deliveries,
                         size_t n, const char *via, const char *folder, uint32_t uidvalidity,
                         uint32_t uid, int64_t pending, char **errstr)
{
	struct ledger_outcome o = {0};
	char *detail, t[32];
	int rc;

	if (!n || !folder)
		return error_set(errstr, EX_DATAERR, "internal error: a Sent copy of nothing");
	if (uid)
		detail = xasprintf("copy in %s: UID %lu, UIDVALIDITY %lu", folder,
		                   (unsigned long)uid, (unsigned long)uidvalidity);
	else
		detail = xasprintf("copy in %s (no UID: the server lacks UIDPLUS)", folder);
	o.via = via;
	o.detail = detail;
	if ((rc = tx_begin(l, errstr)))
		goto out;
	now(l, t);
	for (size_t i = 0; i < n; i++) {
		/* without UIDPLUS, uid and uidvalidity stay NULL */
		if ((rc = event_append(l, t, "append", campaign, deliveries[i], NULL, NULL, &o,
		                       errstr)) ||
		    (rc = uid ? run(l, Q_SENT_COPY_SET, "recording a Sent copy", errstr, "itiit",
		                    deliveries[i], folder, (int64_t)uidvalidity, (int64_t)uid, t)
		              : run(l, Q_SENT_COPY_SET, "recording a Sent copy", errstr, "it--t",
		                    deliveries[i], folder, t)))
			goto out;
	}
	if (pending &&
	    (rc = run(l, Q_COPY_DELETE, "removing a pending copy", errstr, "i", pending)))
		goto out;
	rc = tx_commit(l, errstr);
out:
	if (rc)
		tx_rollback(l);
	free(detail);
	return rc;
}

int ledger_copy_failed(struct ledger *l, const char *campaign, const int64_t *deliveries, size_t n,
                       const char *via, const char *data, size_t len, const char *why,
                       int64_t pending, char **errstr)
{
	static const char what[] = "recording a pending copy";
	struct ledger_outcome o = {0};
	struct buf ids = BUF_INIT;
	char t[32];
	int rc;

	if (!n || (!pending && !data))
		return error_set(errstr, EX_DATAERR, "internal error: a Sent copy of nothing");
	for (size_t i = 0; i < n; i++)
		buf_addf(&ids, "%s%lld", i ? " " : "", (long long)deliveries[i]);
	o.via = via;
	o.detail = why;
	if ((rc = tx_begin(l, errstr)))
		goto out;
	now(l, t);
	for (size_t i = 0; i < n; i++)
		if ((rc = event_append(l, t, "append-failed", campaign, deliveries[i], NULL, NULL,
		                       &o, errstr)))
			goto out;
	if (pending)
		rc = run(l, Q_COPY_RETRY, what, errstr, "itt", pending, why, t);
	else
		rc = run(l, Q_COPY_INSERT, what, errstr, "ttttb", why, t, campaign, buf_str(&ids),
		         data, len);
	if (!rc)
		rc = tx_commit(l, errstr);
out:
	if (rc)
		tx_rollback(l);
	buf_free(&ids);
	return rc;
}

int ledger_copies_pending(struct ledger *l, int64_t **ids, size_t *n, char **errstr)
{
	static const char what[] = "reading pending copies";
	sqlite3_stmt *st;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = query(l, Q_COPIES, &st, what, errstr, "")))
		return rc;
	while (next(l, st, &rc, what, errstr)) {
		*ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	done(st);
	return rc;
}

int ledger_copy_get(struct ledger *l, int64_t id, struct ledger_copy *out, char **errstr)
{
	static const char what[] = "reading a pending copy";
	sqlite3_stmt *st;
	const char *p;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = query(l, Q_COPY, &st, what, errstr, "i", id)))
		return rc;
	if (!next(l, st, &rc, what, errstr)) {
		if (!rc)
			rc = error_set(errstr, EX_DATAERR, "ledger %s: no pending copy %lld",
			               l->path, (long long)id);
		goto out;
	}
	out->id = id;
	out->campaign = col_text(st, 0) ? xstrdup(col_text(st, 0)) : NULL;
	for (p = col_text(st, 1); p && *p;) {
		char *end;
		long long v = strtoll(p, &end, 10);

		if (end == p)
			break;
		out->deliveries = xreallocarray(out->deliveries, out->n + 1, sizeof(int64_t));
		out->deliveries[out->n++] = v;
		p = end;
	}
	out->len = (size_t)sqlite3_column_bytes(st, 2);
	out->data = xmalloc(out->len + 1);
	if (out->len)
		memcpy(out->data, sqlite3_column_blob(st, 2), out->len);
	out->data[out->len] = '\0';
	out->attempts = sqlite3_column_int(st, 3);
out:
	done(st);
	return rc;
}

void ledger_copy_clear(struct ledger_copy *c)
{
	if (!c)
		return;
	free(c->campaign);
	free(c->deliveries);
	free(c->data);
	memset(c, 0, sizeof(*c));
}

int ledger_sent_copy(struct ledger *l, int64_t delivery, uint32_t *uidvalidity, uint32_t *uid)
{
	sqlite3_stmt *st;
	int rc, found;

	*uidvalidity = *uid = 0;
	if ((rc = query(l, Q_SENT_COPY, &st, "", NULL, "i", delivery)))
		return -1;
	if ((found = next(l, st, &rc, "", NULL))) {
		*uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		*uid = (uint32_t)sqlite3_column_int64(st, 1);
	}
	done(st);
	return rc ? -1 : found;
}

/* --- verify -------------------------------------------------------------------------- */

struct track {
	signed char state; /* -1: no transition seen */
	int sendings;
};

static void column_field(sqlite3_stmt *st, int col, struct field *f)
{
	f->type = sqlite3_column_type(st, col);
	if (f->type == SQLITE_INTEGER) {
		f->i = sqlite3_column_int64(st, col);
	} else if (f->type != SQLITE_NULL) {
		/* text, or a real/blob only tampering can put there: hash its bytes */
		f->s = (const char *)sqlite3_column_blob(st, col);
		f->n = (size_t)sqlite3_column_bytes(st, col);
		if (!f->s)
			f->s = "";
	}
}

static int verify_deliveries(struct ledger *l, struct track *tr, int64_t ntr, char **errstr)
{
	static const char what[] = "reading deliveries";
	sqlite3_stmt *st;
	int rc;

	if ((rc = query(l, Q_VERIFY_DELIVERIES, &st, what, errstr, "")))
		return rc;
	while (next(l, st, &rc, what, errstr)) {
		int64_t id = sqlite3_column_int64(st, 0);
		int s = ledger_state_parse(col_text(st, 1));
		int attempts = sqlite3_column_int(st, 2);
		int want = LS_PENDING, wattempts = 0;

		if (id > 0 && id < ntr && tr[id].state >= 0) {
			want = tr[id].state;
			wattempts = tr[id].sendings;
		}
		if (s != want) {
			rc = error_set(
			    errstr, EX_DATAERR,
			    "delivery %lld: its state is %s but its events say %s (the row "
			    "was edited, or its last events were deleted)",
			    (long long)id, col_text(st, 1) ? col_text(st, 1) : "NULL",
			    state_names[want]);
			break;
		}
		if (attempts != wattempts) {
			rc = error_set(
			    errstr, EX_DATAERR,
			    "delivery %lld: %d attempts recorded but its events show %d (the "
			    "row was edited, or events were deleted)",
			    (long long)id, attempts, wattempts);
			break;
		}
	}
	done(st);
	return rc;
}

int ledger_verify(struct ledger *l, long *nevents, char head[65], char **errstr)
{
	static const char what[] = "reading events";
	sqlite3_stmt *st = NULL;
	struct field f[F__COUNT];
	struct track *tr = NULL;
	int64_t ntr = 0, expect = 1, last_seq = 0;
	char prev[65] = ZERO_HASH, hash[65];
	int rc;

	/* One read transaction, so the chain and the deliveries are one snapshot. */
	if ((rc = exec(l, "BEGIN", errstr)))
		return rc;
	if ((rc = query(l, Q_EVENTS, &st, what, errstr, "")))
		goto out;
	while (next(l, st, &rc, what, errstr)) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const char *sprev = col_text(st, 11), *shash = col_text(st, 12);

		if (seq != expect) {
			rc = error_set(
			    errstr, EX_DATAERR,
			    seq == expect + 1
			        ? "event %lld: event %lld before it is missing (deleted)"
			        : "event %lld: events %lld and later before it are missing "
			          "(deleted)",
			    (long long)seq, (long long)expect);
			goto out;
		}
		if (!sprev || strcmp(sprev, prev)) {
			rc = error_set(
			    errstr, EX_DATAERR,
			    "event %lld: its prev_hash does not match the hash of the event "
			    "before it (rows were deleted, inserted or reordered)",
			    (long long)seq);
			goto out;
		}
		for (int i = 0; i < F__COUNT; i++)
			column_field(st, i, &f[i]);
		if (event_hash(l, prev, f, hash)) {
			rc = error_set(errstr, EX_SOFTWARE, "SHA-256 failed (libcrypto)");
			goto out;
		}
		if (!shash || strcmp(shash, hash)) {
			rc = error_set(
			    errstr, EX_DATAERR,
			    "event %lld: its content does not match its hash (the row was "
			    "edited)",
			    (long long)seq);
			goto out;
		}
		/* the chain of states each delivery went through must itself be legal */
		if (f[F_KIND].type == SQLITE_TEXT && !strcmp(f[F_KIND].s, "transition")) {
			int64_t d = f[F_DELIVERY].type == SQLITE_INTEGER ? f[F_DELIVERY].i : 0;
			int from = ledger_state_parse(col_text(st, 5));
			int to = ledger_state_parse(col_text(st, 6));
			int cur;

			if (d <= 0 || from < 0 || to < 0) {
				rc = error_set(
				    errstr, EX_DATAERR,
				    "event %lld: a transition without a delivery or states",
				    (long long)seq);
				goto out;
			}
			if (d >= ntr) {
				int64_t n = ntr ? ntr : 1024;

				while (n <= d)
					n *= 2;
				tr = xreallocarray(tr, (size_t)n, sizeof(*tr));
				for (int64_t i = ntr; i < n; i++) {
					tr[i].state = -1;
					tr[i].sendings = 0;
				}
				ntr = n;
			}
			cur = tr[d].state < 0 ? LS_PENDING : tr[d].state;
			if (from != cur || !legal[from][to]) {
				rc = error_set(errstr, EX_DATAERR,
				               "event %lld: delivery %lld goes %s -> %s but was %s",
				               (long long)seq, (long long)d, state_names[from],
				               state_names[to], state_names[cur]);
				goto out;
			}
			tr[d].state = (signed char)to;
			tr[d].sendings += to == LS_SENDING;
		}
		memcpy(prev, hash, sizeof(prev));
		last_seq = seq;
		expect = seq + 1;
	}
	done(st);
	st = NULL;
	if (rc)
		goto out;
	/* AUTOINCREMENT remembers the highest seq ever used: a shorter chain lost its tail */
	if (!query(l, Q_EVENTS_HIGHEST, &st, what, NULL, "") && next(l, st, &rc, what, NULL) &&
	    sqlite3_column_int64(st, 0) > last_seq) {
		rc = error_set(errstr, EX_DATAERR,
		               "event %lld: the events after event %lld are missing (deleted)",
		               (long long)last_seq + 1, (long long)last_seq);
		goto out;
	}
	done(st);
	st = NULL;
	rc = EX_OK; /* as before: a failure to read sqlite_sequence is not a broken chain */
	if ((rc = verify_deliveries(l, tr, ntr, errstr)))
		goto out;
	*nevents = (long)last_seq;
	memcpy(head, prev, 65);
out:
	done(st);
	sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
	free(tr);
	return rc;
}
