/* The ledger's hash chain: appending an event, and verify replaying it against the rows. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/ident.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

void chain_field_int(struct field *f, int64_t v, int null_if_zero)
{
	f->type = (null_if_zero && !v) ? LDB_NULL : LDB_INT;
	f->i = v;
}

void chain_field_text(struct field *f, const char *s)
{
	f->type = s ? LDB_TEXT : LDB_NULL;
	f->s = s;
	f->n = s ? strlen(s) : 0;
}

/* Writes v in decimal at p; returns the end. */
static char *put_int(char *p, int64_t v)
{
	char tmp[24], *q = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--q = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--q = '-';
	memcpy(p, q, (size_t)(tmp + sizeof(tmp) - q));
	return p + (tmp + sizeof(tmp) - q);
}

/*
 * hash = SHA-256(HASH_DOMAIN || prev_hash || encoding), as lowercase hex. The encoding is
 * written straight into a buffer sized first: verify hashes millions of events.
 */
int chain_hash(struct ledger *l, const char *prev, const struct field *f, char out[65])
{
	struct buf *b = &l->scratch;
	size_t need = sizeof(HASH_DOMAIN) + strlen(prev), np = need - sizeof(HASH_DOMAIN);
	/* schema 5's operator and host only when set: every older event hashes as it did */
	int nf = f[F_OPERATOR].type == LDB_NULL && f[F_HOST].type == LDB_NULL ? F__V4 : F__COUNT;
	char *p;

	for (int i = 0; i < nf; i++)
		need += 48 + (f[i].type == LDB_NULL || f[i].type == LDB_INT ? 0 : f[i].n);
	buf_reset(b);
	buf_grow(b, need);
	p = b->data;
	memcpy(p, HASH_DOMAIN, sizeof(HASH_DOMAIN) - 1);
	p += sizeof(HASH_DOMAIN) - 1;
	memcpy(p, prev, np);
	p += np;
	for (int i = 0; i < nf; i++) {
		switch (f[i].type) {
		case LDB_NULL:
			*p++ = 'N';
			*p++ = ';';
			continue;
		case LDB_INT:
			*p++ = 'i';
			p = put_int(p, f[i].i);
			*p++ = ';';
			continue;
		case LDB_TEXT:
			*p++ = 's';
			break;
		default:
			*p++ = 'x';
			break;
		}
		p = put_int(p, (int64_t)f[i].n);
		*p++ = ':';
		memcpy(p, f[i].s, f[i].n);
		p += f[i].n;
		*p++ = ';';
	}
	digest_update(l->md, b->data, (size_t)(p - b->data));
	digest_final_hex(l->md, out);
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
	struct ldb_stmt *st;
	int rc;

	if (!o)
		o = &none;
	if ((rc = ldb_query(l, Q_LAST_EVENT, &st, "reading the last event", errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, "reading the last event", errstr)) {
		seq = ldb_col_int64(st, 0) + 1;
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
	chain_field_text(&f[F_OPERATOR], NULL);
	chain_field_text(&f[F_HOST], NULL);
	if (l->schema >= 5) /* not while migrating to it */
		ldb_who(&f[F_OPERATOR], &f[F_HOST]);
	if (chain_hash(l, prev, f, hash))
		return error_set(errstr, EX_SOFTWARE, "SHA-256 failed (libcrypto)");

	l->last_seq = seq;
	return ldb_run(l, l->schema >= 5 ? Q_INSERT_EVENT_WHO : Q_INSERT_EVENT, what, errstr,
	               "ittztttzttttttt", seq, time, campaign, (int64_t)delivery, kind, from, to,
	               (int64_t)o->code, o->reply, o->via, o->detail, prev, hash, f[F_OPERATOR].s,
	               f[F_HOST].s);
}

/* --- What an event's detail says about a row ---------------------------------------------- */

void rec_add(struct buf *b, const char *name, const char *v)
{
	if (!v)
		return;
	buf_addf(b, "%s%s %zu:", b->len ? " " : "", name, strlen(v));
	buf_adds(b, v);
	buf_addc(b, ';');
}

void rec_add_int(struct buf *b, const char *name, int64_t v)
{
	buf_addf(b, "%s%s %lld;", b->len ? " " : "", name, (long long)v);
}

int rec_get(const char *d, size_t len, const char *name, const char **v, size_t *n)
{
	const char *p = d, *end = d + len;
	size_t nl = strlen(name);

	while (p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p)), *val, *q, *semi;
		size_t vl = 0;

		if (!sp)
			return -1;
		val = q = sp + 1;
		while (q < end && *q >= '0' && *q <= '9' && vl < ((size_t)1 << 40))
			vl = vl * 10 + (size_t)(*q++ - '0');
		if (q > val && q < end && *q == ':') {
			/* "LEN:bytes;": the bytes may hold anything, ';' and ' ' included */
			val = q + 1;
			if (vl >= (size_t)(end - val) || val[vl] != ';')
				return -1;
		} else {
			if (!(semi = memchr(val, ';', (size_t)(end - val))))
				return -1;
			vl = (size_t)(semi - val);
		}
		if ((size_t)(sp - p) == nl && !memcmp(p, name, nl)) {
			*v = val;
			*n = vl;
			return 1;
		}
		p = val + vl + 1;
		if (p < end && *p == ' ')
			p++;
	}
	return 0;
}

int rec_is(const char *d, size_t len, const char *name, const char *want)
{
	const char *v;
	size_t n;
	int r = rec_get(d, len, name, &v, &n);

	if (r < 0)
		return 0;
	if (r == 0)
		return want == NULL;
	return want && strlen(want) == n && !memcmp(v, want, n);
}

char *rec_identity(const char *key_norm, const char *address_norm)
{
	struct buf b = BUF_INIT;

	rec_add(&b, "key_norm", key_norm);
	rec_add(&b, "address_norm", address_norm);
	return buf_detach(&b);
}

char *rec_delivery(const char *key, const char *address, const char *message_id,
                   int64_t merged_into, int adopted, int64_t ordinal)
{
	char *kn = ident_fold(key), *an = ident_fold(address);
	struct buf b = BUF_INIT;

	rec_add(&b, "key_norm", kn);
	rec_add(&b, "address_norm", an);
	rec_add(&b, "key", key);
	rec_add(&b, "address", address);
	rec_add(&b, "message_id", message_id);
	if (merged_into)
		rec_add_int(&b, "merged_into", merged_into);
	if (adopted)
		rec_add(&b, "adopted", "schema 4");
	rec_add_int(&b, "ordinal", ordinal);
	free(kn);
	free(an);
	return buf_detach(&b);
}

int rec_last_ordinal(struct ledger *l, int64_t *n, char **errstr)
{
	static const char what[] = "reading the last creation";
	struct ldb_stmt *st;
	const char *v;
	size_t len;
	int rc;

	*n = 0;
	if ((rc = ldb_query(l, Q_LAST_CREATE, &st, what, errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr) && ldb_col_text(st, 0) &&
	    rec_get(ldb_col_text(st, 0), ldb_col_bytes(st, 0), "ordinal", &v, &len) == 1)
		*n = strtoll(v, NULL, 10);
	ldb_done(st);
	return rc;
}

char *rec_campaign(const char *content_hash, const char *title, const char *subject,
                   const char *previous, int adopted)
{
	struct buf b = BUF_INIT;

	rec_add(&b, "content_hash", content_hash);
	rec_add(&b, "title", title);
	rec_add(&b, "subject", subject);
	rec_add(&b, "previous", previous);
	if (adopted)
		rec_add(&b, "adopted", "schema 4");
	return buf_detach(&b);
}
