/* Campaigns: recording one, checking a rerun's appeal against it, --amend. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

int ledger_campaign_exists(struct ledger *l, const char *id)
{
	struct ldb_stmt *st;
	int rc, found = 0;

	if ((rc = ldb_query(l, Q_CAMPAIGN_EXISTS, &st, "", NULL, "t", id)))
		return -1;
	found = ldb_next(l, st, &rc, "", NULL);
	ldb_done(st);
	return rc ? -1 : found;
}

int ledger_campaign_begin(struct ledger *l, const char *id, const char *title, const char *subject,
                          const char *content_hash, int amend, char **errstr)
{
	static const char what[] = "recording the campaign";
	struct ldb_stmt *st;
	struct ledger_outcome o = {0};
	char *old = NULL, *detail = NULL;
	char t[32];
	int rc;

	if (!id || !*id || !content_hash)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: campaign without id or hash");
	if ((rc = ldb_tx_begin(l, errstr)))
		return rc;
	ldb_now(l, t);
	if ((rc = ldb_query(l, Q_CAMPAIGN_HASH, &st, "reading campaigns", errstr, "t", id)))
		goto out;
	if (ldb_next(l, st, &rc, "reading campaigns", errstr))
		old = xstrdup(ldb_col_text(st, 0) ? ldb_col_text(st, 0) : "");
	ldb_done(st);
	if (rc)
		goto out;

	if (old && !strcmp(old, content_hash)) {
		rc = ldb_tx_commit(l, errstr); /* the same appeal again: a rerun */
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
	/* the event holds the whole row, so verify can tell an edited row from a true one */
	if (old)
		rc = ldb_run(l, Q_CAMPAIGN_AMEND, what, errstr, "tttt", id, content_hash, title,
		             subject);
	else
		rc = ldb_run(l, Q_CAMPAIGN_INSERT, what, errstr, "ttttt", id, content_hash, title,
		             subject, t);
	detail = rec_campaign(content_hash, title, subject, old, 0);
	if (rc)
		goto out;
	o.detail = detail;
	if ((rc = chain_append(l, t, old ? "amend" : "campaign", id, 0, NULL, NULL, &o, errstr)))
		goto out;
	rc = ldb_tx_commit(l, errstr);
out:
	if (rc)
		ldb_tx_rollback(l);
	free(old);
	free(detail);
	return rc;
}
