/* Approvals in the chain: recorded as signed 'approval' events, read back and checked. */
#include "ledger/ledger.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/sign.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

/* Part of every signed statement: bumped only with a new encoding. */
#define STATEMENT_DOMAIN "demarche-approval-v1\n"

/* The detail's items but the signature, in their fixed order (rec_add(): NULL is left out). */
static void unsigned_detail(struct buf *b, const struct ledger_approval *a)
{
	rec_add(b, "campaign", a->campaign);
	rec_add(b, "approver", a->approver);
	rec_add(b, "public_key", a->public_key);
	rec_add(b, "batch", a->batch);
	rec_add(b, "date", a->date);
	rec_add(b, "components", a->components);
}

char *ledger_approval_statement(const struct ledger_approval *a, size_t *len)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, STATEMENT_DOMAIN);
	unsigned_detail(&b, a);
	*len = b.len;
	return buf_detach(&b);
}

static int signature_ok(const struct ledger_approval *a)
{
	size_t len;
	char *st = ledger_approval_statement(a, &len);
	int ok = sign_verify(a->public_key, a->signature, st, len);

	free(st);
	return ok;
}

int ledger_approval_add(struct ledger *l, const struct ledger_approval *a, char **errstr)
{
	struct ledger_outcome o = {0};
	struct buf d = BUF_INIT;
	char t[32];
	int rc;

	if (!a->campaign || !a->approver || !a->batch || !signature_ok(a))
		return error_set(errstr, EX_DATAERR,
		                 "the approval's signature does not verify for the key %s",
		                 a->public_key ? a->public_key : "(none)");
	unsigned_detail(&d, a);
	rec_add(&d, "signature", a->signature);
	o.detail = d.data;
	if ((rc = ldb_tx_begin(l, errstr)) == EX_OK) {
		ldb_now(l, t);
		rc = chain_append(l, t, "approval", a->campaign, 0, NULL, NULL, &o, errstr);
		if (!rc)
			rc = ldb_tx_commit(l, errstr);
		if (rc)
			ldb_tx_rollback(l);
	}
	buf_free(&d);
	return rc;
}

/* The detail's items into a (allocated: approval_clear()). 1 when every one is there. */
struct parsed {
	struct ledger_approval a;
	char *f[7];
};

static int parse(const char *d, size_t len, struct parsed *p)
{
	static const char *const names[7] = {"campaign", "approver",   "public_key", "batch",
	                                     "date",     "components", "signature"};
	int complete = 1;

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 7; i++) {
		const char *v;
		size_t n;

		if (d && rec_get(d, len, names[i], &v, &n) == 1)
			p->f[i] = xstrndup(v, n);
		else if (i != 4) /* date may be absent */
			complete = 0;
	}
	p->a.campaign = p->f[0];
	p->a.approver = p->f[1];
	p->a.public_key = p->f[2];
	p->a.batch = p->f[3];
	p->a.date = p->f[4];
	p->a.components = p->f[5];
	p->a.signature = p->f[6];
	return complete;
}

static void parsed_free(struct parsed *p)
{
	for (int i = 0; i < 7; i++)
		free(p->f[i]);
}

char *approval_event_problem(const char *campaign, size_t clen, const char *detail, size_t len)
{
	struct parsed p;
	char *why = NULL;

	if (!parse(detail, len, &p))
		why = xstrdup("an approval whose detail cannot be read (edited)");
	else if (!campaign || strlen(p.a.campaign) != clen || memcmp(campaign, p.a.campaign, clen))
		why =
		    xasprintf("the approval by %s names campaign %s but is recorded under another "
		              "(edited)",
		              p.a.approver, p.a.campaign);
	else if (!signature_ok(&p.a))
		why = xasprintf("the signature of the approval by %s (key %s) does not verify "
		                "(edited or forged)",
		                p.a.approver, p.a.public_key);
	parsed_free(&p);
	return why;
}

int ledger_approvals(struct ledger *l, const char *campaign,
                     int (*fn)(const struct ledger_approval *a, void *ctx), void *ctx,
                     char **errstr)
{
	static const char what[] = "reading approvals";
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_APPROVALS, &st, what, errstr, "t", campaign)))
		return rc;
	while (!rc && ldb_next(l, st, &rc, what, errstr)) {
		const char *col = ldb_col_text(st, 2), *d = ldb_col_text(st, 3);
		size_t len = ldb_col_bytes(st, 3);
		struct parsed p;
		int complete = parse(d, len, &p);

		p.a.seq = ldb_col_int64(st, 0);
		p.a.time = ldb_col_text(st, 1);
		p.a.valid = complete && col && !strcmp(col, p.a.campaign) && signature_ok(&p.a);
		if (!complete) { /* the row says it is one, but nothing of it can be used */
			p.a.campaign = col;
		}
		rc = fn(&p.a, ctx);
		parsed_free(&p);
	}
	ldb_done(st);
	return rc;
}
