/* Private to src/ledger: the connection, the prepared statements and helpers its files share. */
#ifndef DEMARCHE_LEDGER_INT_H
#define DEMARCHE_LEDGER_INT_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>


#include "base/buf.h"
#include "ledger/ledger.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* Bumped only with a new canonical encoding; part of every hash. */
#define HASH_DOMAIN "demarche-ledger-v1\n"

/*
 * Every statement the ledger runs, prepared once per connection on first use (ldb_query())
 * and reset after each use (ldb_done()): one place for the SQL (db.c), one way to run it.
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
	Q_CREATE_SEEN,
	Q_LAST_CREATE,
	Q_COUNT_DELIVERIES,
	Q_HEAD,
	Q_DELIVERY_ROW,
	Q_VERIFY_CAMPAIGNS,
	Q_VERIFY_DELIVERIES_V3,
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
	Q_APPROVALS,
	Q_EVENTS_OF_KIND, /* the send calendar: schedule and followup events */
	Q__COUNT
};

/* The columns of a struct ledger_row, in query.c's fill_row() order. */
#define ROW_COLUMNS                                                                                \
	"SELECT id, campaign, key, address, message_id, state, attempts, last_code, last_reply,"   \
	" via, created, updated FROM deliveries "

struct ledger {
	sqlite3 *db;
	char *path;
	time_t fixed; /* 0: the real clock */
	int schema;   /* the file's user_version once open (older only when read-only) */
	int readonly; /* LEDGER_READONLY: nothing is ever written */
	int lockfd;   /* LEDGER_EXCLUSIVE's flock() on the file; closed after sqlite3_close() */
	int depth;    /* open write transactions: 1 the BEGIN, more the SAVEPOINTs in it */
	int lost;     /* SQLite rolled back an enclosing transaction: refuse until it ends */
	sqlite3_stmt *q[Q__COUNT];
	struct digest *md; /* base/digest: SHA-256 fetched once per process */
	struct buf scratch; /* the canonical encoding being hashed */
};

/* state.c: names by state, and legal[from][to] (1, or 0x100 | the LEDGER_RETRY_* needed) */
extern const char *const ledger_state_names[LS__COUNT];
extern const int ledger_legal[LS__COUNT][LS__COUNT];

/* --- db.c: SQLite helpers ---------------------------------------------------------------- */

/* EX_TEMPFAIL (busy/locked) or EX_IOERR naming the file, what and SQLite's message. */
int ldb_fail(struct ledger *l, char **errstr, const char *what);
void ldb_bind_text(sqlite3_stmt *st, int i, const char *s);
const char *ldb_col_text(sqlite3_stmt *st, int i);
/*
 * Sets *st to statement q with the arguments bound to ?1, ?2, ... as types says: 't' a
 * string (NULL: NULL), 'i' an int64_t, 'z' an int64_t stored as NULL when 0, 'b' a blob
 * (const void *, size_t), '-' no argument (that parameter stays NULL). The strings must
 * outlive the statement's use. Returns EX_OK, or what ldb_fail() returns. Hand *st back
 * with ldb_done() once read.
 */
int ldb_vquery(struct ledger *l, enum query q, sqlite3_stmt **st, const char *what, char **errstr,
               const char *types, va_list ap);
int ldb_query(struct ledger *l, enum query q, sqlite3_stmt **st, const char *what, char **errstr,
              const char *types, ...);
void ldb_done(sqlite3_stmt *st); /* NULL is safe */
/* Steps st: 1 with a row, 0 at the end or on an error (then *rc is set, else EX_OK). */
int ldb_next(struct ledger *l, sqlite3_stmt *st, int *rc, const char *what, char **errstr);
/* Runs st (INSERT, UPDATE, DELETE) to its end and hands it back. */
int ldb_finish(struct ledger *l, sqlite3_stmt *st, const char *what, char **errstr);
/* Runs statement q (INSERT, UPDATE, DELETE) with the arguments of ldb_query(). */
int ldb_run(struct ledger *l, enum query q, const char *what, char **errstr, const char *types,
            ...);
int ldb_exec(struct ledger *l, const char *sql, char **errstr);
/*
 * Write transactions that nest: the outermost is BEGIN IMMEDIATE, each inner one a
 * SAVEPOINT (ledger_batch_begin() is one more level). Commit releases one level (on failure
 * the level stays open: roll it back); rollback undoes one level.
 */
int ldb_tx_begin(struct ledger *l, char **errstr);
int ldb_tx_commit(struct ledger *l, char **errstr);
void ldb_tx_rollback(struct ledger *l);
/* ISO 8601 UTC with milliseconds; ldb_now(): the ledger's clock. */
void ldb_format_time(time_t t, long ms, char out[32]);
void ldb_now(struct ledger *l, char out[32]);

/* --- schema.c ------------------------------------------------------------------------------ */

/* PRAGMA user_version; EX_DATAERR when the file is not an SQLite database. */
int schema_user_version(struct ledger *l, int *v, char **errstr);
/* Migrates the schema to LEDGER_SCHEMA_VERSION in one IMMEDIATE transaction. */
int schema_migrate(struct ledger *l, char **errstr);
/* Registers the SQL functions the migrations use (demarche_fold). */
int schema_functions(struct ledger *l, char **errstr);

/* --- chain.c ------------------------------------------------------------------------------- */

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

void chain_field_int(struct field *f, int64_t v, int null_if_zero);
void chain_field_text(struct field *f, const char *s);
/* hash = SHA-256(HASH_DOMAIN || prev || encoding(f)), lowercase hex; 0 (kept for callers). */
int chain_hash(struct ledger *l, const char *prev, const struct field *f, char out[65]);
/* Appends one event to the chain; the caller holds the write transaction. */
int chain_append(struct ledger *l, const char *time, const char *kind, const char *campaign,
                 int64_t delivery, const char *from, const char *to, const struct ledger_outcome *o,
                 char **errstr);

/*
 * What create, campaign, amend and adopt events say about their row, in their detail:
 * items "name LEN:bytes;" (strings) or "name DECIMAL;" joined by spaces, in a fixed order
 * per kind, so the detail is readable in the sqlite3 shell and parses back unambiguously.
 * A delivery's creation starts with its identity (rec_identity()), which an index on
 * creation events finds by prefix.
 */
void rec_add(struct buf *b, const char *name, const char *v); /* NULL v: nothing added */
void rec_add_int(struct buf *b, const char *name, int64_t v);
/* 1 with *v, *n set to item name's value; 0 when absent; -1 when d is not such a detail. */
int rec_get(const char *d, size_t len, const char *name, const char **v, size_t *n);
/* 1 when item name's value is want (NULL: when the item is absent). */
int rec_is(const char *d, size_t len, const char *name, const char *want);
/* "key_norm LEN:k; address_norm LEN:a;" (caller frees). */
char *rec_identity(const char *key_norm, const char *address_norm);
/*
 * The detail of a delivery's creation (caller frees); merged_into 0: none. ordinal: how
 * many creations the chain holds with this one (1, 2, ...), so the last creation says how
 * many deliveries there must be, whichever were deleted with their events.
 */
char *rec_delivery(const char *key, const char *address, const char *message_id,
                   int64_t merged_into, int adopted, int64_t ordinal);
/* The ordinal of the last creation in the chain (0: none) in *n. EX_OK or an SQLite error. */
int rec_last_ordinal(struct ledger *l, int64_t *n, char **errstr);
/* The detail of a campaign's creation, amendment or adoption (caller frees). */
char *rec_campaign(const char *content_hash, const char *title, const char *subject,
                   const char *previous, int adopted);

/* --- state.c: the door ------------------------------------------------------------------- */

/* Delivery id's state, attempts and (allocated, when wanted) campaign and key. */
int door_read_delivery(struct ledger *l, int64_t id, int *state, int *attempts, char **campaign,
                       char **key, char **errstr);
/* ledger_transition()'s work inside the caller's write transaction. */
int door_transition_locked(struct ledger *l, int64_t delivery, enum ledger_state to, unsigned flags,
                           const struct ledger_outcome *o, struct ledger_delivery *state_out,
                           char **errstr);
/* 1 for the event kinds only the ledger writes ("transition", "campaign", ...). */
int door_kind_reserved(const char *kind);

/* --- approval.c -------------------------------------------------------------------------- */

/*
 * Checks an approval event (its campaign column and detail): NULL when its signature verifies
 * for the public key it names and it is about its own campaign, else why not (caller frees).
 */
char *approval_event_problem(const char *campaign, size_t clen, const char *detail, size_t len);

#endif
