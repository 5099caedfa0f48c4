/*
 * The ledger on PostgreSQL, through libpq: connecting, the SQL dialect, statements and
 * transactions behind db.c's ldb_* helpers. The only file of demarche that sees libpq.
 * docs/design.md, "A team ledger on PostgreSQL".
 */
#include "ledger/ledger.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/secret.h"
#include "base/url.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

/*
 * Where PostgreSQL's SQL differs from query_sql[] (db.c). Every other query is the shared
 * text with ?N made $N. A branch that adds a query adds a line here only when its SQL uses
 * something of SQLite's own (COLLATE NOCASE, INDEXED BY, INSERT OR REPLACE, "x IS ?N").
 */
static const char *const pg_query_sql[Q__COUNT] = {
    [Q_USER_VERSION] = "SELECT version FROM demarche_schema",
    [Q_COUNT_OBJECTS] = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                        " AND tablename = 'demarche_schema'",
    [Q_INSERT_DELIVERY] = "INSERT INTO deliveries (campaign, key, address, message_id, state,"
                          " attempts, created, updated, key_norm, address_norm)"
                          " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?6, ?7) RETURNING id",
    [Q_LAST_CREATE] = "SELECT detail FROM events WHERE kind = 'create'"
                      " ORDER BY delivery DESC, seq DESC LIMIT 1",
    [Q_COUNT_DELIVERIES] = "SELECT count(*) FROM deliveries",
    [Q_COUNT_SENT] = "SELECT count(*) FROM events WHERE kind = 'transition'"
                     " AND to_state = 'sent' AND via = ?1 AND time >= ?2",
    [Q_COUNT_SENT_MSGS] = "SELECT count(DISTINCT d.message_id) FROM events e"
                          " JOIN deliveries d ON d.id = e.delivery WHERE e.kind = 'transition'"
                          " AND e.to_state = 'sent' AND e.via = ?1 AND e.time >= ?2",
    [Q_FIND_MESSAGE] = ROW_COLUMNS "WHERE lower(message_id) = lower(?1)"
                                   " OR lower(message_id) = lower(?2) ORDER BY id",
    [Q_FIND_ADDRESS] = ROW_COLUMNS "WHERE lower(address) = lower(?2)"
                                   " AND (?1::text IS NULL OR campaign = ?1) ORDER BY id DESC",
    [Q_IMAP_STATE_SET] = "INSERT INTO imap_state (account, folder, uidvalidity, last_uid,"
                         " updated) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, folder)"
                         " DO UPDATE SET uidvalidity = excluded.uidvalidity,"
                         " last_uid = excluded.last_uid, updated = excluded.updated",
    [Q_SENT_COPY_SET] = "INSERT INTO sent_copies (delivery, folder, uidvalidity, uid, time)"
                        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (delivery) DO UPDATE SET"
                        " folder = excluded.folder, uidvalidity = excluded.uidvalidity,"
                        " uid = excluded.uid, time = excluded.time",
    [Q_EVENTS_HIGHEST] = "SELECT seq FROM events_highest",
    [Q_APPROVALS] = "SELECT seq, time, campaign, detail FROM events WHERE kind = 'approval'"
                    " AND (?1::text IS NULL OR campaign = ?1) ORDER BY seq",
};

/* Read through a cursor, a few thousand rows at a time: a million rows never held at once. */
static int streamed(enum query q)
{
	return q == Q_EVENTS || q == Q_DELIVERIES || q == Q_VERIFY_DELIVERIES ||
	       q == Q_DELIVERIES_WHO || q == Q_DUMP_EVENTS || q == Q_DUMP_DELIVERIES;
}
#define FETCH 4000

struct pgconn {
	PGconn *conn;
	char prepared[Q__COUNT];
	int nparams[Q__COUNT];
	char *error;     /* the last failure's message (one line) */
	char state[6];   /* and its SQLSTATE */
	struct buf copy; /* COPY FROM STDIN: the rows not yet sent (pg_copy_row()) */
};

struct pgres {
	PGresult *res;
	int row, nrows;
	int ran, failed, cursor, own_tx, more;
	int n;
	const char *pv[LDB_MAX_ARGS];
	int len[LDB_MAX_ARGS], fmt[LDB_MAX_ARGS];
	char num[LDB_MAX_ARGS][24];
	unsigned char *blob; /* the bytea column decoded last (blob_col of the current row) */
	size_t blob_len;
	int blob_col;
};

int pg_is_store(const char *store)
{
	return store && (!strncmp(store, "postgresql://", 13) ||
	                 !strncmp(store, "postgres://", 11) || strchr(store, '=') != NULL);
}

/* Keeps the failure of res (or of the connection) for pg_fail(). */
static void keep_error(struct pgconn *c, const PGresult *res)
{
	const char *m = res ? PQresultErrorMessage(res) : NULL, *s;
	size_t n;

	if (!m || !*m)
		m = PQerrorMessage(c->conn);
	free(c->error);
	c->error = xstrdup(m && *m ? m : "unknown error");
	n = strlen(c->error);
	while (n && (c->error[n - 1] == '\n' || c->error[n - 1] == ' '))
		c->error[--n] = '\0';
	/* one line, no control character: it reaches a terminal or a log */
	for (char *p = c->error; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->state, sizeof(c->state), "%s", s ? s : "");
}

int pg_fail(struct ledger *l, char **errstr, const char *what)
{
	struct pgconn *c = l->pg;
	const char *s = c->state;

	if (PQstatus(c->conn) == CONNECTION_BAD || !strncmp(s, "08", 2) || !strcmp(s, "40001") ||
	    !strcmp(s, "40P01") || !strcmp(s, "55P03") || !strncmp(s, "57P", 3))
		return error_set(errstr, EX_TEMPFAIL, "ledger %s: %s: %s; try again", l->path, what,
		                 c->error ? c->error : "connection lost");
	return error_set(errstr, EX_IOERR, "ledger %s: %s: %s", l->path, what,
	                 c->error ? c->error : "failed");
}

int pg_exec(struct ledger *l, const char *sql, char **errstr)
{
	PGresult *res = PQexec(l->pg->conn, sql);
	ExecStatusType s = PQresultStatus(res);
	int rc = EX_OK;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		keep_error(l->pg, res);
		rc = pg_fail(l, errstr, sql);
	}
	PQclear(res);
	return rc;
}

int pg_in_tx(struct ledger *l)
{
	PGTransactionStatusType t = PQtransactionStatus(l->pg->conn);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* The shared SQL with ?N as $N, and how many parameters it takes. */
static char *dialect(const char *sql, int *nparams)
{
	char *out = xmalloc(strlen(sql) + 1), *o = out;

	*nparams = 0;
	for (const char *p = sql; *p; p++) {
		if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
			int n = atoi(p + 1);

			if (n > *nparams)
				*nparams = n;
			*o++ = '$';
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static void clear_row(struct pgres *r)
{
	PQfreemem(r->blob);
	r->blob = NULL;
	r->blob_col = -1;
}

int pg_bind(struct ldb_stmt *st, const char *what, char **errstr, const struct ldb_arg *args, int n)
{
	struct pgres *r;

	(void)what;
	(void)errstr;
	if (!st->pg) {
		st->pg = xcalloc(1, sizeof(*st->pg));
		st->pg->blob_col = -1;
	}
	r = st->pg;
	r->n = n;
	for (int i = 0; i < n; i++) {
		r->fmt[i] = 0;
		r->len[i] = 0;
		switch (args[i].type) {
		case LDB_INT:
			snprintf(r->num[i], sizeof(r->num[i]), "%lld", (long long)args[i].i);
			r->pv[i] = r->num[i];
			break;
		case LDB_TEXT:
			r->pv[i] = args[i].s;
			break;
		case LDB_OTHER:
			r->pv[i] = args[i].s ? args[i].s : "";
			r->len[i] = (int)args[i].n;
			r->fmt[i] = 1;
			break;
		default:
			r->pv[i] = NULL;
			break;
		}
	}
	return EX_OK;
}

/* FETCHes the next rows of st's cursor. 0, or -2 (the error kept). */
static int fetch(struct ldb_stmt *st)
{
	struct pgconn *c = st->l->pg;
	struct pgres *r = st->pg;
	char sql[64];

	PQclear(r->res);
	snprintf(sql, sizeof(sql), "FETCH %d FROM demarche_c%d", FETCH, (int)st->q);
	r->res = PQexec(c->conn, sql);
	if (PQresultStatus(r->res) != PGRES_TUPLES_OK) {
		keep_error(c, r->res);
		r->failed = 1;
		return -2;
	}
	r->nrows = PQntuples(r->res);
	r->row = -1;
	r->more = r->nrows == FETCH;
	return 0;
}

/* Runs st's statement with its parameters: prepared once, or a cursor when streamed. */
static int run(struct ldb_stmt *st)
{
	struct ledger *l = st->l;
	struct pgconn *c = l->pg;
	struct pgres *r = st->pg;
	enum query q = st->q;
	const char *shared = pg_query_sql[q] ? pg_query_sql[q] : ldb_sql(l, q);
	ExecStatusType s;
	int np;

	r->ran = 1;
	r->row = -1;
	r->nrows = 0;
	if (streamed(q)) {
		char *sql = dialect(shared, &np), *decl;

		if (!pg_in_tx(l)) {
			if (pg_exec(l, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL)) {
				free(sql);
				r->failed = 1;
				return -2;
			}
			r->own_tx = 1;
		}
		decl = xasprintf("DECLARE demarche_c%d NO SCROLL CURSOR FOR %s", (int)q, sql);
		free(sql);
		r->res = PQexecParams(c->conn, decl, np < r->n ? np : r->n, NULL, r->pv, r->len,
		                      r->fmt, 0);
		free(decl);
		if (PQresultStatus(r->res) != PGRES_COMMAND_OK) {
			keep_error(c, r->res);
			r->failed = 1;
			return -2;
		}
		r->cursor = 1;
		return fetch(st);
	}
	if (!c->prepared[q]) {
		char *sql = dialect(shared, &c->nparams[q]), name[24];
		PGresult *p;

		snprintf(name, sizeof(name), "demarche_q%d", (int)q);
		p = PQprepare(c->conn, name, sql, 0, NULL);
		free(sql);
		if (PQresultStatus(p) != PGRES_COMMAND_OK) {
			keep_error(c, p);
			PQclear(p);
			r->failed = 1;
			return -2;
		}
		PQclear(p);
		c->prepared[q] = 1;
	}
	{
		char name[24];

		snprintf(name, sizeof(name), "demarche_q%d", (int)q);
		np = c->nparams[q];
		/* parameters the caller left out are NULL, as in SQLite */
		for (int i = r->n; i < np && i < LDB_MAX_ARGS; i++) {
			r->pv[i] = NULL;
			r->len[i] = r->fmt[i] = 0;
		}
		r->res = PQexecPrepared(c->conn, name, np, r->pv, r->len, r->fmt, 0);
	}
	s = PQresultStatus(r->res);
	if (s == PGRES_TUPLES_OK) {
		r->nrows = PQntuples(r->res);
		return 0;
	}
	if (s == PGRES_COMMAND_OK)
		return 0;
	keep_error(c, r->res);
	r->failed = 1;
	return !strncmp(c->state, "23", 2) ? -1 : -2;
}

int pg_step(struct ldb_stmt *st)
{
	struct pgres *r = st->pg;
	int rc;

	if (!r->ran && (rc = run(st)) < 0)
		return rc;
	if (r->failed)
		return -2;
	clear_row(r);
	if (++r->row < r->nrows)
		return 1;
	if (r->cursor && r->more) {
		if ((rc = fetch(st)) < 0)
			return rc;
		if (++r->row < r->nrows)
			return 1;
	}
	r->row = r->nrows;
	return 0;
}

void pg_done(struct ldb_stmt *st)
{
	struct pgres *r = st->pg;
	char sql[48];

	if (!r)
		return;
	clear_row(r);
	PQclear(r->res);
	r->res = NULL;
	if (r->cursor && PQtransactionStatus(st->l->pg->conn) == PQTRANS_INTRANS) {
		snprintf(sql, sizeof(sql), "CLOSE demarche_c%d", (int)st->q);
		pg_exec(st->l, sql, NULL);
	}
	if (r->own_tx)
		pg_exec(st->l,
		        PQtransactionStatus(st->l->pg->conn) == PQTRANS_INTRANS ? "COMMIT"
		                                                                : "ROLLBACK",
		        NULL);
	r->ran = r->failed = r->cursor = r->own_tx = r->more = 0;
	r->row = r->nrows = 0;
	r->n = 0;
}

static int valid(struct pgres *r, int i)
{
	return r && r->res && r->row >= 0 && r->row < r->nrows && i >= 0 && i < PQnfields(r->res);
}

int pg_col_type(struct ldb_stmt *st, int i)
{
	struct pgres *r = st->pg;

	if (!valid(r, i) || PQgetisnull(r->res, r->row, i))
		return LDB_NULL;
	switch (PQftype(r->res, i)) {
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
		return LDB_INT;
	case 17: /* bytea */
		return LDB_OTHER;
	default:
		return LDB_TEXT;
	}
}

int64_t pg_col_int64(struct ldb_stmt *st, int i)
{
	struct pgres *r = st->pg;

	if (!valid(r, i) || PQgetisnull(r->res, r->row, i))
		return 0;
	return strtoll(PQgetvalue(r->res, r->row, i), NULL, 10);
}

const char *pg_col_text(struct ldb_stmt *st, int i)
{
	struct pgres *r = st->pg;

	if (!valid(r, i) || PQgetisnull(r->res, r->row, i))
		return NULL;
	return PQgetvalue(r->res, r->row, i);
}

/* A bytea column comes as text ("\x6162"): decoded once per row. */
static int decode(struct pgres *r, int i)
{
	if (PQftype(r->res, i) != 17)
		return 0;
	if (r->blob_col != i) {
		PQfreemem(r->blob);
		r->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(r->res, r->row, i),
		                          &r->blob_len);
		r->blob_col = r->blob ? i : -1;
	}
	return 1;
}

const void *pg_col_blob(struct ldb_stmt *st, int i)
{
	struct pgres *r = st->pg;

	if (!valid(r, i) || PQgetisnull(r->res, r->row, i))
		return NULL;
	if (decode(r, i))
		return r->blob;
	return PQgetvalue(r->res, r->row, i);
}

size_t pg_col_bytes(struct ldb_stmt *st, int i)
{
	struct pgres *r = st->pg;

	if (!valid(r, i) || PQgetisnull(r->res, r->row, i))
		return 0;
	if (decode(r, i))
		return r->blob ? r->blob_len : 0;
	return (size_t)PQgetlength(r->res, r->row, i);
}

/* --- COPY FROM STDIN: ledger copy's bulk load ------------------------------------------ */

/* Flush the rows to the server once this many bytes wait: memory stays flat. */
#define COPY_CHUNK 65536

int pg_copy_begin(struct ledger *l, const char *target, const char *what, char **errstr)
{
	char *sql = xasprintf("COPY %s FROM STDIN", target);
	PGresult *res = PQexec(l->pg->conn, sql);
	int rc = EX_OK;

	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		keep_error(l->pg, res);
		rc = pg_fail(l, errstr, what);
	}
	PQclear(res);
	buf_reset(&l->pg->copy);
	return rc;
}

/*
 * Text-format COPY: the server undoes exactly these escapes, so backslash, tab (the
 * delimiter), newline and CR (row ends) are written as \\, \t, \n, \r and every other byte
 * as it is. A value "\N" or "\." thus arrives as written, never as NULL or the end of data.
 */
static void copy_escape(struct buf *b, const char *s, size_t n)
{
	const char *run = s;

	for (const char *p = s; p < s + n; p++) {
		char e;

		switch (*p) {
		case '\\':
			e = '\\';
			break;
		case '\t':
			e = 't';
			break;
		case '\n':
			e = 'n';
			break;
		case '\r':
			e = 'r';
			break;
		default:
			continue;
		}
		buf_add(b, run, (size_t)(p - run));
		buf_addc(b, '\\');
		buf_addc(b, e);
		run = p + 1;
	}
	buf_add(b, run, (size_t)(s + n - run));
}

static int copy_flush(struct ledger *l, const char *what, char **errstr)
{
	struct pgconn *c = l->pg;

	if (c->copy.len && PQputCopyData(c->conn, c->copy.data, (int)c->copy.len) != 1) {
		keep_error(c, NULL);
		return pg_fail(l, errstr, what);
	}
	buf_reset(&c->copy);
	return EX_OK;
}

int pg_copy_row(struct ledger *l, const struct ldb_arg *a, int n, const char *what, char **errstr)
{
	static const char hex[] = "0123456789abcdef";
	struct buf *b = &l->pg->copy;

	for (int i = 0; i < n; i++) {
		if (i)
			buf_addc(b, '\t');
		switch (a[i].type) {
		case LDB_INT:
			buf_addf(b, "%lld", (long long)a[i].i);
			break;
		case LDB_TEXT:
			/* as a bound parameter would: a text ends at its first NUL */
			copy_escape(b, a[i].s, strnlen(a[i].s, a[i].n));
			break;
		case LDB_OTHER: /* bytea's hex form, its backslash escaped for COPY */
			buf_grow(b, 3 + 2 * a[i].n);
			buf_adds(b, "\\\\x");
			for (size_t k = 0; k < a[i].n; k++) {
				unsigned char ch = (unsigned char)a[i].s[k];

				buf_addc(b, hex[ch >> 4]);
				buf_addc(b, hex[ch & 15]);
			}
			break;
		default:
			buf_adds(b, "\\N");
			break;
		}
	}
	buf_addc(b, '\n');
	return b->len >= COPY_CHUNK ? copy_flush(l, what, errstr) : EX_OK;
}

int pg_copy_end(struct ledger *l, int ok, const char *what, char **errstr)
{
	struct pgconn *c = l->pg;
	PGresult *res;
	int rc = EX_OK;

	if (ok && (rc = copy_flush(l, what, errstr)))
		ok = 0;
	buf_reset(&c->copy);
	/* a COPY stopped halfway fails on the server, and the transaction with it */
	if (PQputCopyEnd(c->conn, ok ? NULL : "ledger copy stopped") != 1 && !rc) {
		keep_error(c, NULL);
		rc = pg_fail(l, errstr, what);
	}
	while ((res = PQgetResult(c->conn))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc && ok) {
			keep_error(c, res);
			rc = pg_fail(l, errstr, what);
		}
		PQclear(res);
	}
	return rc;
}

/* --- Connecting -------------------------------------------------------------------------- */

static char *password_command;

void ledger_set_password_command(const char *command)
{
	free(password_command);
	password_command = command && *command ? xstrdup(command) : NULL;
}

/* Server notices ("relation already exists, skipping") are not the user's business. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * No password in the store's URL or key=value string: it would be shown, logged and kept
 * (integrity issue). EX_OK, or EX_CONFIG with the string redacted.
 */
static int check_no_password(const char *conninfo, char **errstr)
{
	PQconninfoOption *opts;
	char *perr = NULL;
	int rc = EX_OK;

	if (!strncmp(conninfo, "postgres", 8) &&
	    (rc = url_check_no_password(conninfo, "[store] url", errstr)))
		return rc;
	if (!(opts = PQconninfoParse(conninfo, &perr))) {
		rc = error_set(errstr, EX_CONFIG,
		               "[store] url: not a PostgreSQL connection string: %s",
		               perr ? perr : "cannot parse");
		PQfreemem(perr);
		return rc;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && *o->val)
			rc =
			    error_set(errstr, EX_CONFIG,
			              "[store] url holds a password: it would be shown and kept; "
			              "remove it and give [store] password_command, or a ~/.pgpass "
			              "line, instead");
	PQconninfoFree(opts);
	return rc;
}

int pg_open(struct ledger *l, const char *conninfo, int flags, char **errstr)
{
	const char *keys[] = {"dbname", "password", "fallback_application_name", NULL};
	const char *vals[] = {conninfo, NULL, "demarche", NULL};
	char *pw = NULL;
	int rc, v;

	free(l->path);
	l->path = url_redact(conninfo);
	if ((rc = check_no_password(conninfo, errstr)))
		return rc;
	if (password_command &&
	    (rc = secret_command(password_command, 0, "[store] password_command", &pw, errstr)))
		return rc;
	vals[1] = pw;
	l->pg = xcalloc(1, sizeof(*l->pg));
	l->pg->conn = PQconnectdbParams(keys, vals, 1);
	secret_free(pw);
	if (!l->pg->conn || PQstatus(l->pg->conn) != CONNECTION_OK) {
		keep_error(l->pg, NULL);
		return error_set(errstr, EX_UNAVAILABLE, "ledger %s: cannot connect: %s", l->path,
		                 l->pg->error);
	}
	PQsetNoticeProcessor(l->pg->conn, quiet, NULL);
	if ((rc = pg_exec(l, "SET client_min_messages = warning", errstr)) ||
	    (l->readonly && (rc = pg_exec(l, "SET default_transaction_read_only = on", errstr))) ||
	    (rc = pg_schema_version(l, &v, errstr)))
		return rc;
	if (v > LEDGER_SCHEMA_VERSION)
		return error_set(errstr, EX_CONFIG,
		                 "ledger %s was written by a newer demarche (schema %d; this one "
		                 "knows up to %d): upgrade demarche; nothing was changed",
		                 l->path, v, LEDGER_SCHEMA_VERSION);
	if (v == 0 && (l->readonly || !(flags & LEDGER_CREATE)))
		return error_set(
		    errstr, EX_NOINPUT,
		    "ledger %s: no ledger in this database (nothing has been sent with "
		    "this store)",
		    l->path);
	l->schema = v;
	if (v < LEDGER_SCHEMA_VERSION) {
		if (l->readonly)
			return error_set(
			    errstr, EX_CONFIG,
			    "ledger %s has schema %d, too old to be read without being "
			    "upgraded (this demarche writes %d): run demarche send or "
			    "verify with a role that may write",
			    l->path, v, LEDGER_SCHEMA_VERSION);
		if ((rc = pg_schema_migrate(l, errstr)))
			return rc;
		l->schema = LEDGER_SCHEMA_VERSION;
	}
	return EX_OK;
}

void pg_close(struct ledger *l)
{
	if (!l->pg)
		return;
	for (int i = 0; i < Q__COUNT; i++) {
		if (l->st[i].pg) {
			clear_row(l->st[i].pg);
			PQclear(l->st[i].pg->res);
			free(l->st[i].pg);
			l->st[i].pg = NULL;
		}
	}
	PQfinish(l->pg->conn);
	buf_free(&l->pg->copy);
	free(l->pg->error);
	free(l->pg);
	l->pg = NULL;
}

/* --- doctor -------------------------------------------------------------------------- */

int ledger_describe(struct ledger *l, char **text)
{
	struct buf b = BUF_INIT;
	PGconn *c;
	PGresult *res;
	int may = 0, tls;

	*text = NULL;
	if (!l->pg) {
		*text = xasprintf("SQLite file %s, schema %d", l->path, l->schema);
		return EX_OK;
	}
	c = l->pg->conn;
	buf_addf(&b, "PostgreSQL %d.%d at %s, database %s as role %s, schema %d",
	         PQserverVersion(c) / 10000, PQserverVersion(c) % 10000,
	         PQhost(c) && *PQhost(c) == '/' ? "a local socket" : PQhost(c), PQdb(c), PQuser(c),
	         l->schema);
	if (PQsslInUse(c))
		buf_addf(&b, ", TLS %s",
		         PQsslAttribute(c, "protocol") ? PQsslAttribute(c, "protocol") : "on");
	else
		buf_adds(&b, ", no TLS");
	res = PQexec(c, "SELECT has_table_privilege('events', 'INSERT')"
	                " AND has_table_privilege('deliveries', 'INSERT, UPDATE')"
	                " AND has_table_privilege('campaigns', 'INSERT, UPDATE')"
	                " AND has_table_privilege('leases', 'INSERT, UPDATE'),"
	                " has_table_privilege('events', 'UPDATE')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		may = *PQgetvalue(res, 0, 0) == 't';
		buf_addf(&b, "; the role %s",
		         may ? "may append events and write deliveries"
		             : "may NOT append events or write deliveries");
	}
	PQclear(res);
	*text = buf_detach(&b);
	/* a local socket needs no TLS; a network connection does */
	tls = PQsslInUse(c) || (PQhost(c) && *PQhost(c) == '/');
	return (tls ? 0 : 1) | (may ? 0 : 2);
}
