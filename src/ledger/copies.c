/* IMAP bookkeeping in the ledger: how far a folder was read, and the Sent copies. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

int ledger_imap_state(struct ledger *l, const char *account, const char *folder,
                      uint32_t *uidvalidity, uint32_t *last_uid, char **errstr)
{
	static const char what[] = "reading the IMAP state";
	struct ldb_stmt *st;
	int rc;

	*uidvalidity = *last_uid = 0;
	if ((rc = ldb_query(l, Q_IMAP_STATE, &st, what, errstr, "tt", account, folder)))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr)) {
		*uidvalidity = (uint32_t)ldb_col_int64(st, 0);
		*last_uid = (uint32_t)ldb_col_int64(st, 1);
	}
	ldb_done(st);
	return rc;
}

int ledger_imap_state_set(struct ledger *l, const char *account, const char *folder,
                          uint32_t uidvalidity, uint32_t last_uid, char **errstr)
{
	char t[32];

	ldb_now(l, t);
	return ldb_run(l, Q_IMAP_STATE_SET, "recording the IMAP state", errstr, "ttiit", account,
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
	if ((rc = ldb_tx_begin(l, errstr)))
		goto out;
	ldb_now(l, t);
	for (size_t i = 0; i < n; i++) {
		/* without UIDPLUS, uid and uidvalidity stay NULL */
		if ((rc = chain_append(l, t, "append", campaign, deliveries[i], NULL, NULL, &o,
		                       errstr)) ||
		    (rc =
		         uid ? ldb_run(l, Q_SENT_COPY_SET, "recording a Sent copy", errstr, "itiit",
		                       deliveries[i], folder, (int64_t)uidvalidity, (int64_t)uid, t)
		             : ldb_run(l, Q_SENT_COPY_SET, "recording a Sent copy", errstr, "it--t",
		                       deliveries[i], folder, t)))
			goto out;
	}
	if (pending &&
	    (rc = ldb_run(l, Q_COPY_DELETE, "removing a pending copy", errstr, "i", pending)))
		goto out;
	rc = ldb_tx_commit(l, errstr);
out:
	if (rc)
		ldb_tx_rollback(l);
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
	if ((rc = ldb_tx_begin(l, errstr)))
		goto out;
	ldb_now(l, t);
	for (size_t i = 0; i < n; i++)
		if ((rc = chain_append(l, t, "append-failed", campaign, deliveries[i], NULL, NULL,
		                       &o, errstr)))
			goto out;
	if (pending)
		rc = ldb_run(l, Q_COPY_RETRY, what, errstr, "itt", pending, why, t);
	else
		rc = ldb_run(l, Q_COPY_INSERT, what, errstr, "ttttb", why, t, campaign,
		             buf_str(&ids), data, len);
	if (!rc)
		rc = ldb_tx_commit(l, errstr);
out:
	if (rc)
		ldb_tx_rollback(l);
	buf_free(&ids);
	return rc;
}

int ledger_copies_pending(struct ledger *l, int64_t **ids, size_t *n, char **errstr)
{
	static const char what[] = "reading pending copies";
	struct ldb_stmt *st;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((rc = ldb_query(l, Q_COPIES, &st, what, errstr, "")))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		*ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
		(*ids)[(*n)++] = ldb_col_int64(st, 0);
	}
	ldb_done(st);
	return rc;
}

int ledger_copy_get(struct ledger *l, int64_t id, struct ledger_copy *out, char **errstr)
{
	static const char what[] = "reading a pending copy";
	struct ldb_stmt *st;
	const char *p;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ldb_query(l, Q_COPY, &st, what, errstr, "i", id)))
		return rc;
	if (!ldb_next(l, st, &rc, what, errstr)) {
		if (!rc)
			rc = error_set(errstr, EX_DATAERR, "ledger %s: no pending copy %lld",
			               l->path, (long long)id);
		goto out;
	}
	out->id = id;
	out->campaign = ldb_col_text(st, 0) ? xstrdup(ldb_col_text(st, 0)) : NULL;
	for (p = ldb_col_text(st, 1); p && *p;) {
		char *end;
		long long v = strtoll(p, &end, 10);

		if (end == p)
			break;
		out->deliveries = xreallocarray(out->deliveries, out->n + 1, sizeof(int64_t));
		out->deliveries[out->n++] = v;
		p = end;
	}
	out->len = ldb_col_bytes(st, 2);
	out->data = xmalloc(out->len + 1);
	if (out->len)
		memcpy(out->data, ldb_col_blob(st, 2), out->len);
	out->data[out->len] = '\0';
	out->attempts = ldb_col_int(st, 3);
out:
	ldb_done(st);
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
	struct ldb_stmt *st;
	int rc, found;

	*uidvalidity = *uid = 0;
	if ((rc = ldb_query(l, Q_SENT_COPY, &st, "", NULL, "i", delivery)))
		return -1;
	if ((found = ldb_next(l, st, &rc, "", NULL))) {
		*uidvalidity = (uint32_t)ldb_col_int64(st, 0);
		*uid = (uint32_t)ldb_col_int64(st, 1);
	}
	ldb_done(st);
	return rc ? -1 : found;
}
