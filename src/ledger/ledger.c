/* The ledger: SQLite store, schema migrations, the one-door state machine, hash chain. */
#include "ledger/ledger.h"

#include <errno.h>
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
};

enum query {
	Q_LAST_EVENT,
	Q_INSERT_EVENT,
	Q_DELIVERY,
	Q_UPDATE_DELIVERY,
	Q_CAMPAIGN_SENT,
	Q_FIND_DELIVERY,
	Q_INSERT_DELIVERY,
	Q__COUNT
};

static const char *const query_sql[Q__COUNT] = {
    [Q_LAST_EVENT] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
    [Q_INSERT_EVENT] = "INSERT INTO events (seq, time, campaign, delivery, kind, from_state,"
                       " to_state, code, reply, via, detail, prev_hash, hash)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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

static sqlite3_stmt *query(struct ledger *l, enum query q)
{
	if (!l->q[q] &&
	    sqlite3_prepare_v3(l->db, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &l->q[q], NULL))
		return NULL;
	return l->q[q];
}

static void done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
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
	struct field f[F__COUNT];
	char prev[65] = ZERO_HASH, hash[65];
	int64_t seq = 1;
	sqlite3_stmt *st;
	int rc = EX_OK;

	if (!o)
		o = &none;
	if (!(st = query(l, Q_LAST_EVENT)))
		return db_fail(l, errstr, "reading the last event");
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		seq = sqlite3_column_int64(st, 0) + 1;
		if (col_text(st, 1))
			snprintf(prev, sizeof(prev), "%s", col_text(st, 1));
		break;
	case SQLITE_DONE:
		break;
	default:
		rc = db_fail(l, errstr, "reading the last event");
		done(st);
		return rc;
	}
	done(st);

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

	if (!(st = query(l, Q_INSERT_EVENT)))
		return db_fail(l, errstr, "appending an event");
	sqlite3_bind_int64(st, 1, seq);
	for (int i = F_TIME; i < F__COUNT; i++) {
		if (f[i].type == SQLITE_INTEGER)
			sqlite3_bind_int64(st, i + 1, f[i].i);
		else
			bind_text(st, i + 1, f[i].type == SQLITE_TEXT ? f[i].s : NULL);
	}
	bind_text(st, 12, prev);
	bind_text(st, 13, hash);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(l, errstr, "appending an event");
	done(st);
	return rc;
}

/* --- Opening ------------------------------------------------------------------------- */

static int read_user_version(struct ledger *l, int *v, char **errstr)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = sqlite3_errcode(l->db);
		sqlite3_finalize(st);
		if (rc == SQLITE_NOTADB)
			return error_set(errstr, EX_DATAERR,
			                 "%s is not a demarche ledger (not an SQLite database)",
			                 l->path);
		return db_fail(l, errstr, "reading the schema version");
	}
	*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return EX_OK;
}

static int count_objects(struct ledger *l, long *n)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(l->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
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
	if (v == 0 && (count_objects(l, &nobj) || nobj > 0)) {
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
	if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
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
	/* audit reads a million rows: map the file instead of a pread per page */
	sqlite3_exec(l->db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
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
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(l->db, "SELECT 1 FROM campaigns WHERE id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		bind_text(st, 1, id);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(st);
	return rc;
}

int ledger_campaign_begin(struct ledger *l, const char *id, const char *title, const char *subject,
                          const char *content_hash, int amend, char **errstr)
{
	sqlite3_stmt *st = NULL;
	struct ledger_outcome o = {0};
	char *old = NULL, *detail = NULL;
	char t[32];
	int rc, step;

	if (!id || !*id || !content_hash)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: campaign without id or hash");
	if ((rc = tx_begin(l, errstr)))
		return rc;
	now(l, t);
	if (sqlite3_prepare_v2(l->db, "SELECT content_hash FROM campaigns WHERE id = ?1", -1, &st,
	                       NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading campaigns");
		goto out;
	}
	bind_text(st, 1, id);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		old = xstrdup(col_text(st, 0) ? col_text(st, 0) : "");
	else if (step != SQLITE_DONE) {
		rc = db_fail(l, errstr, "reading campaigns");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

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
	if (old)
		rc = sqlite3_prepare_v2(l->db,
		                        "UPDATE campaigns SET content_hash = ?2, title = ?3,"
		                        " subject = ?4 WHERE id = ?1",
		                        -1, &st, NULL);
	else
		rc = sqlite3_prepare_v2(l->db,
		                        "INSERT INTO campaigns (id, content_hash, title, subject,"
		                        " created) VALUES (?1, ?2, ?3, ?4, ?5)",
		                        -1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(l, errstr, "recording the campaign");
		goto out;
	}
	bind_text(st, 1, id);
	bind_text(st, 2, content_hash);
	bind_text(st, 3, title);
	bind_text(st, 4, subject);
	if (!old)
		bind_text(st, 5, t);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(l, errstr, "recording the campaign");
		goto out;
	}
	if (old)
		detail = xasprintf("sha256 %s -> %s; title: %s; subject: %s", old, content_hash,
		                   title ? title : "", subject ? subject : "");
	else
		detail = xasprintf("sha256 %s; title: %s; subject: %s", content_hash,
		                   title ? title : "", subject ? subject : "");
	o.detail = detail;
	if ((rc = event_append(l, t, old ? "amend" : "campaign", id, 0, NULL, NULL, &o, errstr)))
		goto out;
	rc = tx_commit(l, errstr);
out:
	sqlite3_finalize(st);
	if (rc)
		tx_rollback(l);
	else if (!l->batch && !sqlite3_get_autocommit(l->db))
		rc = tx_commit(l, errstr);
	free(old);
	free(detail);
	return rc;
}

/* --- Deliveries and the one door ------------------------------------------------------ */

static int find_delivery(struct ledger *l, const char *campaign, const char *key,
                         const char *address, struct ledger_delivery *out, char **errstr)
{
	sqlite3_stmt *st = query(l, Q_FIND_DELIVERY);
	int rc;

	if (!st)
		return db_fail(l, errstr, "reading deliveries");
	bind_text(st, 1, campaign);
	bind_text(st, 2, key);
	bind_text(st, 3, address);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->state = ledger_state_parse(col_text(st, 1));
		out->attempts = sqlite3_column_int(st, 2);
		rc = EX_OK;
	} else if (rc == SQLITE_DONE) {
		rc = -1;
	} else {
		rc = db_fail(l, errstr, "reading deliveries");
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
	if (!(st = query(l, Q_INSERT_DELIVERY)))
		return db_fail(l, errstr, "recording a delivery");
	now(l, t);
	bind_text(st, 1, campaign);
	bind_text(st, 2, key);
	bind_text(st, 3, address);
	bind_text(st, 4, message_id);
	bind_text(st, 5, t);
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

/* The one door's work, inside the caller's write transaction. */
static int transition_locked(struct ledger *l, int64_t delivery, enum ledger_state to,
                             unsigned flags, const struct ledger_outcome *o,
                             struct ledger_delivery *state_out, char **errstr)
{
	static const struct ledger_outcome none = {0};
	sqlite3_stmt *st = NULL;
	char *campaign = NULL, *key = NULL;
	enum ledger_state from;
	int attempts, need, rc, step;
	char t[32];

	if (!o)
		o = &none;
	if ((int)to < 0 || to >= LS__COUNT)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: illegal transition to state %d of delivery %lld",
		                 (int)to, (long long)delivery);
	if (!(st = query(l, Q_DELIVERY))) {
		rc = db_fail(l, errstr, "reading a delivery");
		goto out;
	}
	sqlite3_bind_int64(st, 1, delivery);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = error_set(errstr, EX_DATAERR, "ledger %s: no delivery %lld", l->path,
		               (long long)delivery);
		goto out;
	}
	if (step != SQLITE_ROW) {
		rc = db_fail(l, errstr, "reading a delivery");
		goto out;
	}
	from = ledger_state_parse(col_text(st, 0));
	attempts = sqlite3_column_int(st, 1);
	campaign = xstrdup(col_text(st, 2) ? col_text(st, 2) : "");
	key = xstrdup(col_text(st, 3) ? col_text(st, 3) : "");
	done(st);
	st = NULL;

	need = (int)from < 0 ? 0 : legal[from][to];
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
	                       state_names[to], o, errstr)))
		goto out;
	if (!(st = query(l, Q_UPDATE_DELIVERY))) {
		rc = db_fail(l, errstr, "updating a delivery");
		goto out;
	}
	sqlite3_bind_int64(st, 1, delivery);
	bind_text(st, 2, state_names[to]);
	sqlite3_bind_int(st, 3, to == LS_SENDING);
	if (o->code)
		sqlite3_bind_int(st, 4, o->code);
	bind_text(st, 5, o->reply);
	bind_text(st, 6, o->via);
	bind_text(st, 7, t);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(l, errstr, "updating a delivery");
		goto out;
	}
	done(st);
	st = NULL;
	if (to == LS_SENT) {
		if (!(st = query(l, Q_CAMPAIGN_SENT))) {
			rc = db_fail(l, errstr, "updating a campaign");
			goto out;
		}
		bind_text(st, 1, campaign);
		bind_text(st, 2, t);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = db_fail(l, errstr, "updating a campaign");
			goto out;
		}
	}
	if (state_out) {
		state_out->id = delivery;
		state_out->state = to;
		state_out->attempts = attempts + (to == LS_SENDING);
	}
out:
	done(st);
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
	sqlite3_stmt *st = NULL;
	char t[32];
	int rc = EX_OK;

	format_time(since, 0, t);
	if (sqlite3_prepare_v2(l->db,
	                       "SELECT count(*) FROM events WHERE kind = 'transition'"
	                       " AND to_state = 'sent' AND via IS ?1 AND time >= ?2",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "counting sent messages");
		goto out;
	}
	bind_text(st, 1, via);
	bind_text(st, 2, t);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(l, errstr, "counting sent messages");
		goto out;
	}
	*count = sqlite3_column_int64(st, 0);
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_deliveries(struct ledger *l, const char *campaign, ledger_row_fn fn, void *ctx,
                      char **errstr)
{
	sqlite3_stmt *st = NULL;
	struct ledger_row r;
	int rc = EX_OK, step;

	if (sqlite3_prepare_v2(l->db,
	                       "SELECT id, campaign, key, address, message_id, state, attempts,"
	                       " last_code, last_reply, via, created, updated FROM deliveries"
	                       " WHERE campaign = ?1 ORDER BY key, address",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	bind_text(st, 1, campaign);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(st, 0);
		r.campaign = col_text(st, 1);
		r.key = col_text(st, 2);
		r.address = col_text(st, 3);
		r.message_id = col_text(st, 4);
		r.state = ledger_state_parse(col_text(st, 5));
		r.attempts = sqlite3_column_int(st, 6);
		r.last_code = sqlite3_column_int(st, 7);
		r.last_reply = col_text(st, 8);
		r.via = col_text(st, 9);
		r.created = col_text(st, 10);
		r.updated = col_text(st, 11);
		if ((rc = fn(&r, ctx)))
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = db_fail(l, errstr, "reading deliveries");
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_delivery_widths(struct ledger *l, const char *campaign, struct ledger_widths *w,
                           char **errstr)
{
	sqlite3_stmt *st = NULL;
	int rc = EX_OK;

	memset(w, 0, sizeof(*w));
	if (sqlite3_prepare_v2(l->db,
	                       "SELECT max(length(key)), max(length(address)),"
	                       " max(length(last_reply)), max(length(message_id))"
	                       " FROM deliveries WHERE campaign = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	bind_text(st, 1, campaign);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	w->key = sqlite3_column_int(st, 0);
	w->address = sqlite3_column_int(st, 1);
	w->reply = sqlite3_column_int(st, 2);
	w->message_id = sqlite3_column_int(st, 3);
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_campaigns(struct ledger *l, ledger_campaign_fn fn, void *ctx, char **errstr)
{
	sqlite3_stmt *st = NULL, *cnt = NULL;
	struct ledger_campaign c;
	int rc = EX_OK, step;

	if (sqlite3_prepare_v2(l->db,
	                       "SELECT id, title, subject, content_hash, created, first_sent,"
	                       " last_sent FROM campaigns ORDER BY created, id",
	                       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(l->db,
	                       "SELECT state, count(*) FROM deliveries WHERE campaign = ?1"
	                       " GROUP BY state",
	                       -1, &cnt, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading campaigns");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&c, 0, sizeof(c));
		c.id = col_text(st, 0);
		c.title = col_text(st, 1);
		c.subject = col_text(st, 2);
		c.content_hash = col_text(st, 3);
		c.created = col_text(st, 4);
		c.first_sent = col_text(st, 5);
		c.last_sent = col_text(st, 6);
		sqlite3_bind_text(cnt, 1, c.id, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(cnt)) == SQLITE_ROW) {
			int s = ledger_state_parse(col_text(cnt, 0));
			long n = sqlite3_column_int64(cnt, 1);

			if (s >= 0)
				c.counts[s] = n;
			c.total += n;
		}
		sqlite3_reset(cnt);
		if (step != SQLITE_DONE) {
			rc = db_fail(l, errstr, "counting deliveries");
			goto out;
		}
		if ((rc = fn(&c, ctx)))
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = db_fail(l, errstr, "reading campaigns");
out:
	sqlite3_finalize(st);
	sqlite3_finalize(cnt);
	return rc;
}

int ledger_missing(struct ledger *l, const char *campaign, const char *const *keys, size_t n,
                   int (*fn)(const char *key, void *ctx), void *ctx, char **errstr)
{
	sqlite3_stmt *st = NULL;
	int rc = EX_OK, step;

	if (sqlite3_prepare_v2(l->db,
	                       "SELECT 1 FROM deliveries WHERE campaign = ?1 AND key = ?2"
	                       " AND state IN ('sent', 'replied') LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	bind_text(st, 1, campaign);
	for (size_t i = 0; i < n; i++) {
		bind_text(st, 2, keys[i]);
		step = sqlite3_step(st);
		sqlite3_reset(st);
		if (step == SQLITE_DONE) {
			if ((rc = fn(keys[i], ctx)))
				goto out;
		} else if (step != SQLITE_ROW) {
			rc = db_fail(l, errstr, "reading deliveries");
			goto out;
		}
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_matrix(struct ledger *l, const char *const *keys, size_t n, const char *const *campaigns,
                  size_t ncampaigns, int *states, char **errstr)
{
	sqlite3_stmt *st = NULL;
	int rc = EX_OK, step;
	int rank[LS__COUNT];

	for (int i = 0; i < LS__COUNT; i++)
		rank[best_order[i]] = i;
	if (sqlite3_prepare_v2(l->db,
	                       "SELECT state FROM deliveries WHERE campaign = ?1 AND key = ?2", -1,
	                       &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < ncampaigns; j++) {
			int *cell = &states[i * ncampaigns + j];

			*cell = -1;
			bind_text(st, 1, campaigns[j]);
			bind_text(st, 2, keys[i]);
			while ((step = sqlite3_step(st)) == SQLITE_ROW) {
				int s = ledger_state_parse(col_text(st, 0));

				if (s >= 0 && (*cell < 0 || rank[s] < rank[*cell]))
					*cell = s;
			}
			sqlite3_reset(st);
			if (step != SQLITE_DONE) {
				rc = db_fail(l, errstr, "reading deliveries");
				goto out;
			}
		}
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/* --- What comes back over IMAP ----------------------------------------------------------- */

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

#define ROW_COLUMNS                                                                                \
	"SELECT id, campaign, key, address, message_id, state, attempts, last_code, last_reply,"   \
	" via, created, updated FROM deliveries "

/* Runs the prepared statement st (finalized here) and calls fn for each row. */
static int walk_rows(struct ledger *l, sqlite3_stmt *st, ledger_row_fn fn, void *ctx, char **errstr)
{
	struct ledger_row r;
	int rc = EX_OK, step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		fill_row(st, &r);
		if ((rc = fn(&r, ctx)))
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = db_fail(l, errstr, "reading deliveries");
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_find_message(struct ledger *l, const char *message_id, ledger_row_fn fn, void *ctx,
                        char **errstr)
{
	sqlite3_stmt *st = NULL;
	char *bare, *angled;
	size_t n;
	int rc;

	/* RFC 5322 3.6.4: msg-id is "<" id-left "@" id-right ">"; report.c gives it bare */
	while (*message_id == ' ' || *message_id == '\t')
		message_id++;
	if (*message_id == '<')
		message_id++;
	n = strcspn(message_id, "> \t");
	bare = xstrndup(message_id, n);
	angled = xasprintf("<%s>", bare);
	if (sqlite3_prepare_v2(l->db,
	                       ROW_COLUMNS "WHERE message_id = ?1 COLLATE NOCASE"
	                                   " OR message_id = ?2 COLLATE NOCASE ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	bind_text(st, 1, angled);
	bind_text(st, 2, bare);
	rc = n ? walk_rows(l, st, fn, ctx, errstr) : EX_OK;
	st = NULL;
out:
	sqlite3_finalize(st);
	free(bare);
	free(angled);
	return rc;
}

int ledger_find_address(struct ledger *l, const char *campaign, const char *address,
                        ledger_row_fn fn, void *ctx, char **errstr)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(l->db,
	                       ROW_COLUMNS "WHERE address = ?2 COLLATE NOCASE"
	                                   " AND (?1 IS NULL OR campaign = ?1) ORDER BY id DESC",
	                       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_fail(l, errstr, "reading deliveries");
	}
	bind_text(st, 1, campaign);
	bind_text(st, 2, address);
	return walk_rows(l, st, fn, ctx, errstr);
}

int ledger_observe(struct ledger *l, const char *kind, int64_t delivery, int to, const char *source,
                   const struct ledger_outcome *o, enum ledger_observed *what, char **errstr)
{
	static const struct ledger_outcome none = {0};
	struct ledger_outcome eo;
	sqlite3_stmt *st = NULL;
	char *campaign = NULL, *detail = NULL, t[32];
	enum ledger_observed did;
	int rc, step, from;

	if (!o)
		o = &none;
	if (kind_reserved(kind) || !source || !*source || to >= LS__COUNT)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: ledger_observe(%s, %lld, %d) without a kind or "
		                 "source",
		                 kind ? kind : "(null)", (long long)delivery, to);
	if ((rc = tx_begin(l, errstr)))
		return rc;
	if (sqlite3_prepare_v2(l->db,
	                       "SELECT 1 FROM observed WHERE kind = ?1 AND delivery = ?2"
	                       " AND source = ?3",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading observations");
		goto out;
	}
	bind_text(st, 1, kind);
	sqlite3_bind_int64(st, 2, delivery);
	bind_text(st, 3, source);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (step == SQLITE_ROW) {
		did = LEDGER_SEEN_BEFORE;
		goto commit;
	}
	if (step != SQLITE_DONE) {
		rc = db_fail(l, errstr, "reading observations");
		goto out;
	}

	if (!(st = query(l, Q_DELIVERY))) {
		rc = db_fail(l, errstr, "reading a delivery");
		goto out;
	}
	sqlite3_bind_int64(st, 1, delivery);
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		rc = step == SQLITE_DONE
		         ? error_set(errstr, EX_DATAERR, "ledger %s: no delivery %lld", l->path,
		                     (long long)delivery)
		         : db_fail(l, errstr, "reading a delivery");
		done(st); /* a cached statement: reset, never finalized */
		st = NULL;
		goto out;
	}
	from = ledger_state_parse(col_text(st, 0));
	campaign = xstrdup(col_text(st, 2) ? col_text(st, 2) : "");
	done(st);
	st = NULL;

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
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(l->db,
	                       "INSERT INTO observed (kind, delivery, source, seq)"
	                       " VALUES (?1, ?2, ?3, ?4)",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "recording an observation");
		goto out;
	}
	bind_text(st, 1, kind);
	sqlite3_bind_int64(st, 2, delivery);
	bind_text(st, 3, source);
	/* the event just appended: the UPDATEs after it do not move last_insert_rowid */
	sqlite3_bind_int64(st, 4, sqlite3_last_insert_rowid(l->db));
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(l, errstr, "recording an observation");
		goto out;
	}
commit:
	rc = tx_commit(l, errstr);
	if (!rc && what)
		*what = did;
out:
	sqlite3_finalize(st);
	if (rc)
		tx_rollback(l);
	free(campaign);
	free(detail);
	return rc;
}

int ledger_imap_state(struct ledger *l, const char *account, const char *folder,
                      uint32_t *uidvalidity, uint32_t *last_uid, char **errstr)
{
	sqlite3_stmt *st = NULL;
	int rc = EX_OK, step;

	*uidvalidity = *last_uid = 0;
	if (sqlite3_prepare_v2(l->db,
	                       "SELECT uidvalidity, last_uid FROM imap_state"
	                       " WHERE account = ?1 AND folder = ?2",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading the IMAP state");
		goto out;
	}
	bind_text(st, 1, account);
	bind_text(st, 2, folder);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		*last_uid = (uint32_t)sqlite3_column_int64(st, 1);
	} else if (step != SQLITE_DONE) {
		rc = db_fail(l, errstr, "reading the IMAP state");
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_imap_state_set(struct ledger *l, const char *account, const char *folder,
                          uint32_t uidvalidity, uint32_t last_uid, char **errstr)
{
	sqlite3_stmt *st = NULL;
	char t[32];
	int rc = EX_OK;

	now(l, t);
	if (sqlite3_prepare_v2(l->db,
	                       "INSERT OR REPLACE INTO imap_state (account, folder, uidvalidity,"
	                       " last_uid, updated) VALUES (?1, ?2, ?3, ?4, ?5)",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "recording the IMAP state");
		goto out;
	}
	bind_text(st, 1, account);
	bind_text(st, 2, folder);
	sqlite3_bind_int64(st, 3, uidvalidity);
	sqlite3_bind_int64(st, 4, last_uid);
	bind_text(st, 5, t);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(l, errstr, "recording the IMAP state");
out:
	sqlite3_finalize(st);
	return rc;
}

/* Runs one statement with integer/text parameters already bound; finalizes it. */
static int step_done(struct ledger *l, sqlite3_stmt *st, const char *what, char **errstr)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? EX_OK : db_fail(l, errstr, what);

	sqlite3_finalize(st);
	return rc;
}

static int prepare(struct ledger *l, const char *sql, sqlite3_stmt **st, const char *what,
                   char **errstr)
{
	if (sqlite3_prepare_v2(l->db, sql, -1, st, NULL) != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return db_fail(l, errstr, what);
	}
	return EX_OK;
}

int ledger_copy_appended(struct ledger *l, const char *campaign, const int64_t *deliveries,
                         size_t n, const char *via, const char *folder, uint32_t uidvalidity,
                         uint32_t uid, int64_t pending, char **errstr)
{
	struct ledger_outcome o = {0};
	sqlite3_stmt *st = NULL;
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
		if ((rc = event_append(l, t, "append", campaign, deliveries[i], NULL, NULL, &o,
		                       errstr)) ||
		    (rc = prepare(
		         l,
		         "INSERT OR REPLACE INTO sent_copies (delivery, folder, uidvalidity,"
		         " uid, time) VALUES (?1, ?2, ?3, ?4, ?5)",
		         &st, "recording a Sent copy", errstr)))
			goto out;
		sqlite3_bind_int64(st, 1, deliveries[i]);
		bind_text(st, 2, folder);
		if (uid) {
			sqlite3_bind_int64(st, 3, uidvalidity);
			sqlite3_bind_int64(st, 4, uid);
		}
		bind_text(st, 5, t);
		rc = step_done(l, st, "recording a Sent copy", errstr);
		st = NULL;
		if (rc)
			goto out;
	}
	if (pending) {
		if ((rc = prepare(l, "DELETE FROM outbox_copies WHERE id = ?1", &st,
		                  "removing a pending copy", errstr)))
			goto out;
		sqlite3_bind_int64(st, 1, pending);
		rc = step_done(l, st, "removing a pending copy", errstr);
		st = NULL;
		if (rc)
			goto out;
	}
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
	struct ledger_outcome o = {0};
	struct buf ids = BUF_INIT;
	sqlite3_stmt *st = NULL;
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
	if (pending) {
		rc = prepare(l,
		             "UPDATE outbox_copies SET attempts = attempts + 1, last_error = ?2,"
		             " updated = ?3 WHERE id = ?1",
		             &st, "recording a pending copy", errstr);
		if (!rc)
			sqlite3_bind_int64(st, 1, pending);
	} else {
		rc = prepare(l,
		             "INSERT INTO outbox_copies (last_error, updated, created, campaign,"
		             " deliveries, data) VALUES (?2, ?3, ?3, ?4, ?5, ?6)",
		             &st, "recording a pending copy", errstr);
		if (!rc) {
			bind_text(st, 4, campaign);
			bind_text(st, 5, buf_str(&ids));
			sqlite3_bind_blob64(st, 6, data, len, SQLITE_STATIC);
		}
	}
	if (rc)
		goto out;
	bind_text(st, 2, why);
	bind_text(st, 3, t);
	rc = step_done(l, st, "recording a pending copy", errstr);
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
	sqlite3_stmt *st = NULL;
	int rc, step;

	*ids = NULL;
	*n = 0;
	if ((rc = prepare(l, "SELECT id FROM outbox_copies ORDER BY id", &st,
	                  "reading pending copies", errstr)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		*ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (step != SQLITE_DONE)
		rc = db_fail(l, errstr, "reading pending copies");
	sqlite3_finalize(st);
	return rc;
}

int ledger_copy_get(struct ledger *l, int64_t id, struct ledger_copy *out, char **errstr)
{
	sqlite3_stmt *st = NULL;
	const char *p;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if ((rc = prepare(l,
	                  "SELECT campaign, deliveries, data, attempts FROM outbox_copies"
	                  " WHERE id = ?1",
	                  &st, "reading a pending copy", errstr)))
		return rc;
	sqlite3_bind_int64(st, 1, id);
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		rc = step == SQLITE_DONE
		         ? error_set(errstr, EX_DATAERR, "ledger %s: no pending copy %lld", l->path,
		                     (long long)id)
		         : db_fail(l, errstr, "reading a pending copy");
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
	sqlite3_finalize(st);
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
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	*uidvalidity = *uid = 0;
	if (sqlite3_prepare_v2(l->db,
	                       "SELECT uidvalidity, uid FROM sent_copies WHERE delivery = ?1", -1,
	                       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, delivery);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW) {
			*uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
			*uid = (uint32_t)sqlite3_column_int64(st, 1);
			rc = 1;
		} else if (step == SQLITE_DONE) {
			rc = 0;
		}
	}
	sqlite3_finalize(st);
	return rc;
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
	sqlite3_stmt *st = NULL;
	int rc = EX_OK, step;

	if (sqlite3_prepare_v2(l->db, "SELECT id, state, attempts FROM deliveries ORDER BY id", -1,
	                       &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading deliveries");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
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
			goto out;
		}
		if (attempts != wattempts) {
			rc = error_set(
			    errstr, EX_DATAERR,
			    "delivery %lld: %d attempts recorded but its events show %d (the "
			    "row was edited, or events were deleted)",
			    (long long)id, attempts, wattempts);
			goto out;
		}
	}
	if (step != SQLITE_DONE)
		rc = db_fail(l, errstr, "reading deliveries");
out:
	sqlite3_finalize(st);
	return rc;
}

int ledger_verify(struct ledger *l, long *nevents, char head[65], char **errstr)
{
	sqlite3_stmt *st = NULL;
	struct field f[F__COUNT];
	struct track *tr = NULL;
	int64_t ntr = 0, expect = 1, last_seq = 0;
	char prev[65] = ZERO_HASH, hash[65];
	int rc = EX_OK, step;

	/* One read transaction, so the chain and the deliveries are one snapshot. */
	if ((rc = exec(l, "BEGIN", errstr)))
		return rc;
	if (sqlite3_prepare_v2(
	        l->db,
	        "SELECT seq, time, campaign, delivery, kind, from_state, to_state,"
	        " code, reply, via, detail, prev_hash, hash FROM events ORDER BY seq",
	        -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(l, errstr, "reading events");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
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
	if (step != SQLITE_DONE) {
		rc = db_fail(l, errstr, "reading events");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* AUTOINCREMENT remembers the highest seq ever used: a shorter chain lost its tail */
	if (sqlite3_prepare_v2(l->db, "SELECT seq FROM sqlite_sequence WHERE name = 'events'", -1,
	                       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > last_seq) {
		rc = error_set(errstr, EX_DATAERR,
		               "event %lld: the events after event %lld are missing (deleted)",
		               (long long)last_seq + 1, (long long)last_seq);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = verify_deliveries(l, tr, ntr, errstr)))
		goto out;
	*nevents = (long)last_seq;
	memcpy(head, prev, 65);
out:
	sqlite3_finalize(st);
	sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
	free(tr);
	return rc;
}
