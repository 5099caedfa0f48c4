/* The ledger's hash chain: appending an event, and verify replaying it against the rows. */
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

#include <openssl/evp.h>

void chain_field_int(struct field *f, int64_t v, int null_if_zero)
{
	f->type = (null_if_zero && !v) ? SQLITE_NULL : SQLITE_INTEGER;
	f->i = v;
}

void chain_field_text(struct field *f, const char *s)
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
int chain_hash(struct ledger *l, const char *prev, const struct field *f, char out[65])
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
int chain_append(struct ledger *l, const char *time, const char *kind, const char *campaign,
                 int64_t delivery, const char *from, const char *to, const struct ledger_outcome *o,
                 char **errstr)
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
	if ((rc = ldb_query(l, Q_LAST_EVENT, &st, "reading the last event", errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, "reading the last event", errstr)) {
		seq = sqlite3_column_int64(st, 0) + 1;
		if (ldb_col_text(st, 1))
			snprintf(prev, sizeof(prev), "%s", ldb_col_text(st, 1));
	}
	ldb_done(st);
	if (rc)
		return rc;

	chain_field_int(&f[F_SEQ], seq, 0);
	chain_field_text(&f[F_TIME], time);
	chain_field_text(&f[F_CAMPAIGN], campaign);
	chain_field_int(&f[F_DELIVERY], delivery, 1);
	chain_field_text(&f[F_KIND], kind);
	chain_field_text(&f[F_FROM], from);
	chain_field_text(&f[F_TO], to);
	chain_field_int(&f[F_CODE], o->code, 1);
	chain_field_text(&f[F_REPLY], o->reply);
	chain_field_text(&f[F_VIA], o->via);
	chain_field_text(&f[F_DETAIL], o->detail);
	if (chain_hash(l, prev, f, hash))
		return error_set(errstr, EX_SOFTWARE, "SHA-256 failed (libcrypto)");

	if ((rc = ldb_query(l, Q_INSERT_EVENT, &st, what, errstr, "")))
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	for (int i = F_TIME; i < F__COUNT; i++) {
		if (f[i].type == SQLITE_INTEGER)
			sqlite3_bind_int64(st, i + 1, f[i].i);
		else
			ldb_bind_text(st, i + 1, f[i].type == SQLITE_TEXT ? f[i].s : NULL);
	}
	ldb_bind_text(st, 12, prev);
	ldb_bind_text(st, 13, hash);
	return ldb_finish(l, st, what, errstr);
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

	if ((rc = ldb_query(l, Q_VERIFY_DELIVERIES, &st, what, errstr, "")))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		int64_t id = sqlite3_column_int64(st, 0);
		int s = ledger_state_parse(ldb_col_text(st, 1));
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
			    (long long)id, ldb_col_text(st, 1) ? ldb_col_text(st, 1) : "NULL",
			    ledger_state_names[want]);
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
	ldb_done(st);
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
	if ((rc = ldb_exec(l, "BEGIN", errstr)))
		return rc;
	if ((rc = ldb_query(l, Q_EVENTS, &st, what, errstr, "")))
		goto out;
	while (ldb_next(l, st, &rc, what, errstr)) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const char *sprev = ldb_col_text(st, 11), *shash = ldb_col_text(st, 12);

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
		if (chain_hash(l, prev, f, hash)) {
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
			int from = ledger_state_parse(ldb_col_text(st, 5));
			int to = ledger_state_parse(ldb_col_text(st, 6));
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
			if (from != cur || !ledger_legal[from][to]) {
				rc = error_set(errstr, EX_DATAERR,
				               "event %lld: delivery %lld goes %s -> %s but was %s",
				               (long long)seq, (long long)d,
				               ledger_state_names[from], ledger_state_names[to],
				               ledger_state_names[cur]);
				goto out;
			}
			tr[d].state = (signed char)to;
			tr[d].sendings += to == LS_SENDING;
		}
		memcpy(prev, hash, sizeof(prev));
		last_seq = seq;
		expect = seq + 1;
	}
	ldb_done(st);
	st = NULL;
	if (rc)
		goto out;
	/* AUTOINCREMENT remembers the highest seq ever used: a shorter chain lost its tail */
	if (!ldb_query(l, Q_EVENTS_HIGHEST, &st, what, NULL, "") &&
	    ldb_next(l, st, &rc, what, NULL) && sqlite3_column_int64(st, 0) > last_seq) {
		rc = error_set(errstr, EX_DATAERR,
		               "event %lld: the events after event %lld are missing (deleted)",
		               (long long)last_seq + 1, (long long)last_seq);
		goto out;
	}
	ldb_done(st);
	st = NULL;
	rc = EX_OK; /* as before: a failure to read sqlite_sequence is not a broken chain */
	if ((rc = verify_deliveries(l, tr, ntr, errstr)))
		goto out;
	*nevents = (long)last_seq;
	memcpy(head, prev, 65);
out:
	ldb_done(st);
	sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
	free(tr);
	return rc;
}
