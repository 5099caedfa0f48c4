/* Private to src/ledger: the connection, the prepared statements and helpers its files share. */
#ifndef DEMARCHE_LEDGER_INT_H
#define DEMARCHE_LEDGER_INT_H

#include <stdarg.h>
#include <stddef.h>
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
	Q_COUNT_SENT_MSGS,
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
	Q_NOTE_LAST,      /* issue 18: a campaign's latest event of one kind (the roster's names) */
	/* schema 5 (team): who and where, leases, ledger copy */
	Q_INSERT_EVENT_WHO,
	Q_DUMP_CAMPAIGNS,
	Q_LOAD_CAMPAIGN,
	Q_DUMP_DELIVERIES,
	Q_LOAD_DELIVERY,
	Q_DUMP_EVENTS,
	Q_LOAD_EVENT,
	Q_DUMP_OBSERVED,
	Q_DUMP_IMAP_STATE,
	Q_DUMP_SENT_COPIES,
	Q_DUMP_OUTBOX,
	Q_LOAD_OUTBOX,
	Q_COUNT_EVENTS,
	Q_LEASE_EXPIRED,
	Q_LEASE_TAKE,
	Q_LEASE_DROP,
	Q_LEASE_HELD,
	Q_DELIVERIES_WHO,
	Q__COUNT
};

/*
 * The SQL dialects: query_sql[] (db.c) is written once, portably, with ?N parameters; the
 * PostgreSQL backend turns ?N into $N and takes its own text from pg_query_sql[] (pg.c)
 * where the two must differ (COLLATE NOCASE, INDEXED BY, INSERT OR REPLACE, IS ?N...).
 */
extern const char *const query_sql[Q__COUNT];

/* Column types as ldb_col_type() reports them, whatever the backend. */
enum { LDB_NULL, LDB_INT, LDB_TEXT, LDB_OTHER };

/* A statement of one backend: SQLite's prepared statement, or PostgreSQL's result and the
 * row being read (pg.c). One per query per ledger (l->st[q]). */
struct pgres;
struct ldb_stmt {
	struct ledger *l;
	enum query q;
	struct sqlite3_stmt *sq; /* SQLite only */
	struct pgres *pg;        /* PostgreSQL only */
};

/* The columns of a struct ledger_row, in query.c's fill_row() order. */
#define ROW_COLUMNS                                                                                \
	"SELECT id, campaign, key, address, message_id, state, attempts, last_code, last_reply,"   \
	" via, created, updated FROM deliveries "

struct pgconn;
struct ledger {
	struct sqlite3 *db; /* SQLite only */
	struct pgconn *pg;  /* PostgreSQL only (pg.c) */
	char *path;         /* the file, or the connection string as shown (no password) */
	time_t fixed;       /* 0: the real clock */
	int schema;         /* the file's user_version once open (older only when read-only) */
	int readonly;       /* LEDGER_READONLY: nothing is ever written */
	int lockfd; /* LEDGER_EXCLUSIVE's flock() on the file; closed after sqlite3_close() */
	int depth;  /* open write transactions: 1 the BEGIN, more the SAVEPOINTs in it */
	int lost;   /* SQLite rolled back an enclosing transaction: refuse until it ends */
	struct ldb_stmt st[Q__COUNT];
	int64_t last_seq;   /* the event chain_append() wrote last */
	int want_operator;  /* ledger_want_operator() */
	int locked;         /* PostgreSQL: this transaction holds the chain lock (db.c) */
	struct digest *md;  /* base/digest: SHA-256 fetched once per process */
	struct buf scratch; /* the canonical encoding being hashed */
};

/* state.c: names by state, and legal[from][to] (1, or 0x100 | the LEDGER_RETRY_* needed) */
extern const char *const ledger_state_names[LS__COUNT];
extern const int ledger_legal[LS__COUNT][LS__COUNT];

/* --- db.c: statements over either backend --------------------------------------------- */

/* One bound parameter: LDB_NULL, LDB_INT (i), LDB_TEXT (s) or LDB_OTHER (a blob: s, n). */
struct ldb_arg {
	int type;
	int64_t i;
	const char *s;
	size_t n;
};
#define LDB_MAX_ARGS 16
/* Sets *st to statement q with args[0..n) bound to ?1...; the strings must outlive its use. */
int ldb_bind(struct ledger *l, enum query q, struct ldb_stmt **st, const char *what, char **errstr,
             const struct ldb_arg *args, int n);
/* The SQL of q for this ledger's backend and schema. */
const char *ldb_sql(struct ledger *l, enum query q);

/* EX_TEMPFAIL (busy/locked) or EX_IOERR naming the file, what and SQLite's message. */
int ldb_fail(struct ledger *l, char **errstr, const char *what);
/* The current row's column i: its type (LDB_*), value, and bytes (text or blob). */
int ldb_col_type(struct ldb_stmt *st, int i);
int64_t ldb_col_int64(struct ldb_stmt *st, int i);
int ldb_col_int(struct ldb_stmt *st, int i);
const char *ldb_col_text(struct ldb_stmt *st, int i);
const void *ldb_col_blob(struct ldb_stmt *st, int i);
size_t ldb_col_bytes(struct ldb_stmt *st, int i);
/* The id the INSERT st just made (SQLite's rowid; PostgreSQL's RETURNING id). */
int64_t ldb_insert_id(struct ldb_stmt *st);
/* Steps st once: 1 a row, 0 done, -1 a constraint refused it, -2 another error. */
int ldb_step(struct ldb_stmt *st);
/* A read transaction (verify, the quick check): one snapshot of the chain and the rows.
 * ldb_read_end() is safe when none is open. */
int ldb_read_begin(struct ledger *l, char **errstr);
void ldb_read_end(struct ledger *l);
/*
 * Sets *st to statement q with the arguments bound to ?1, ?2, ... as types says: 't' a
 * string (NULL: NULL), 'i' an int64_t, 'z' an int64_t stored as NULL when 0, 'b' a blob
 * (const void *, size_t), '-' no argument (that parameter stays NULL). The strings must
 * outlive the statement's use. Returns EX_OK, or what ldb_fail() returns. Hand *st back
 * with ldb_done() once read.
 */
int ldb_vquery(struct ledger *l, enum query q, struct ldb_stmt **st, const char *what,
               char **errstr, const char *types, va_list ap);
int ldb_query(struct ledger *l, enum query q, struct ldb_stmt **st, const char *what, char **errstr,
              const char *types, ...);
void ldb_done(struct ldb_stmt *st); /* NULL is safe */
/* Steps st: 1 with a row, 0 at the end or on an error (then *rc is set, else EX_OK). */
int ldb_next(struct ledger *l, struct ldb_stmt *st, int *rc, const char *what, char **errstr);
/* Runs st (INSERT, UPDATE, DELETE) to its end and hands it back. */
int ldb_finish(struct ledger *l, struct ldb_stmt *st, const char *what, char **errstr);
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

/* --- pg.c: the PostgreSQL backend (the only file that sees libpq) ----------------------- */

/* Every write transaction's start: one writer at a time, as SQLite's BEGIN IMMEDIATE. */
#define PG_LOCK_KEY "7236828457829638243" /* "demarche" as a 64-bit number */
#define PG_LOCK     "SELECT pg_advisory_xact_lock(" PG_LOCK_KEY ")"

/* 1 when store names a PostgreSQL database (postgresql://, postgres://, or key=value). */
int pg_is_store(const char *store);
/* ledger_open() of a PostgreSQL store: connects, checks and migrates the schema. */
int pg_open(struct ledger *l, const char *conninfo, int flags, char **errstr);
void pg_close(struct ledger *l);
int pg_fail(struct ledger *l, char **errstr, const char *what);
int pg_bind(struct ldb_stmt *st, const char *what, char **errstr, const struct ldb_arg *args,
            int n);
int pg_step(struct ldb_stmt *st);
void pg_done(struct ldb_stmt *st);
int pg_col_type(struct ldb_stmt *st, int i);
int64_t pg_col_int64(struct ldb_stmt *st, int i);
const char *pg_col_text(struct ldb_stmt *st, int i);
const void *pg_col_blob(struct ldb_stmt *st, int i);
size_t pg_col_bytes(struct ldb_stmt *st, int i);
int pg_exec(struct ledger *l, const char *sql, char **errstr);
int pg_in_tx(struct ledger *l);
/*
 * ledger copy's bulk load: COPY target ("table (columns)") FROM STDIN, then one call per
 * row (args as ldb_bind() takes them, in the columns' order), sent in chunks; end with
 * ok 0 to abandon the rows (the COPY then fails, and the transaction with it).
 */
int pg_copy_begin(struct ledger *l, const char *target, const char *what, char **errstr);
int pg_copy_row(struct ledger *l, const struct ldb_arg *a, int n, const char *what, char **errstr);
int pg_copy_end(struct ledger *l, int ok, const char *what, char **errstr);
/* pg_schema.c: the schema version, and the migrations to PG_SCHEMA (== LEDGER_SCHEMA_VERSION) */
int pg_schema_version(struct ledger *l, int *v, char **errstr);
int pg_schema_migrate(struct ledger *l, char **errstr);

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
	F__V4,              /* the fields of every event up to schema 4 */
	F_OPERATOR = F__V4, /* schema 5: who wrote it ([sender] operator) and on which host; */
	F_HOST,             /* encoded only when one is set, so older events hash as before */
	F__COUNT
};

struct field {
	int type; /* LDB_NULL, LDB_INT, LDB_TEXT, LDB_OTHER */
	int64_t i;
	const char *s;
	size_t n;
};

void chain_field_int(struct field *f, int64_t v, int null_if_zero);
void chain_field_text(struct field *f, const char *s);
/* The operator and host every event of schema 5 records (db.c; set once per process). */
void ldb_who(struct field *operator_name, struct field *host);
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
