/* Read-only questions to the ledger: audit's rows and counts, the rate window, IMAP look-ups. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

/* For the matrix: which of several deliveries of one key tells most (best first). */
static const enum ledger_state best_order[LS__COUNT] = {
    LS_REPLIED, LS_SENT,   LS_BOUNCED, LS_UNKNOWN, LS_DEFERRED,
    LS_SENDING, LS_FAILED, LS_STAGED,  LS_PENDING,
};

int ledger_count_sent(struct ledger *l, const char *via, time_t since, int messages, long *count,
                      char **errstr)
{
	static const char what[] = "counting sent messages";
	struct ldb_stmt *st;
	char t[32];
	int rc;

	ldb_format_time(since, 0, t);
	if ((rc = ldb_query(l, messages ? Q_COUNT_SENT_MSGS : Q_COUNT_SENT, &st, what, errstr, "tt",
	                    via, t)))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr))
		*count = ldb_col_int64(st, 0);
	else if (!rc)
		rc = ldb_fail(l, errstr, what);
	ldb_done(st);
	return rc;
}

static void fill_row(struct ldb_stmt *st, struct ledger_row *r)
{
	r->id = ldb_col_int64(st, 0);
	r->campaign = ldb_col_text(st, 1);
	r->key = ldb_col_text(st, 2);
	r->address = ldb_col_text(st, 3);
	r->message_id = ldb_col_text(st, 4);
	r->state = ledger_state_parse(ldb_col_text(st, 5));
	r->attempts = ldb_col_int(st, 6);
	r->last_code = ldb_col_int(st, 7);
	r->last_reply = ldb_col_text(st, 8);
	r->via = ldb_col_text(st, 9);
	r->created = ldb_col_text(st, 10);
	r->updated = ldb_col_text(st, 11);
	r->operator_name = st->q == Q_DELIVERIES_WHO ? ldb_col_text(st, 12) : NULL;
}

/* Calls fn for each row of st (a query of ROW_COLUMNS), then hands st back. */
static int walk_rows(struct ledger *l, struct ldb_stmt *st, ledger_row_fn fn, void *ctx,
                     char **errstr)
{
	struct ledger_row r;
	int rc = EX_OK;

	while (ldb_next(l, st, &rc, "reading deliveries", errstr)) {
		fill_row(st, &r);
		if ((rc = fn(&r, ctx)))
			break;
	}
	ldb_done(st);
	return rc;
}

void ledger_want_operator(struct ledger *l, int want)
{
	l->want_operator = want;
}

int ledger_deliveries(struct ledger *l, const char *campaign, ledger_row_fn fn, void *ctx,
                      char **errstr)
{
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, l->want_operator && l->schema >= 5 ? Q_DELIVERIES_WHO : Q_DELIVERIES,
	                    &st, "reading deliveries", errstr, "t", campaign)))
		return rc;
	return walk_rows(l, st, fn, ctx, errstr);
}

int ledger_delivery_widths(struct ledger *l, const char *campaign, struct ledger_widths *w,
                           char **errstr)
{
	static const char what[] = "reading deliveries";
	struct ldb_stmt *st;
	int rc;

	memset(w, 0, sizeof(*w));
	if ((rc = ldb_query(l, Q_WIDTHS, &st, what, errstr, "t", campaign)))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr)) {
		w->key = ldb_col_int(st, 0);
		w->address = ldb_col_int(st, 1);
		w->reply = ldb_col_int(st, 2);
	} else if (!rc) {
		rc = ldb_fail(l, errstr, what);
	}
	ldb_done(st);
	return rc;
}

/* Fills c's counts by state. */
static int count_states(struct ledger *l, struct ledger_campaign *c, char **errstr)
{
	static const char what[] = "counting deliveries";
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_STATE_COUNTS, &st, what, errstr, "t", c->id)))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		int s = ledger_state_parse(ldb_col_text(st, 0));
		long n = ldb_col_int64(st, 1);

		if (s >= 0)
			c->counts[s] = n;
		c->total += n;
	}
	ldb_done(st);
	return rc;
}

int ledger_campaigns(struct ledger *l, ledger_campaign_fn fn, void *ctx, char **errstr)
{
	static const char what[] = "reading campaigns";
	struct ldb_stmt *st;
	struct ledger_campaign c;
	int rc;

	if ((rc = ldb_query(l, Q_CAMPAIGNS, &st, what, errstr, "")))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		memset(&c, 0, sizeof(c));
		c.id = ldb_col_text(st, 0);
		c.title = ldb_col_text(st, 1);
		c.subject = ldb_col_text(st, 2);
		c.content_hash = ldb_col_text(st, 3);
		c.created = ldb_col_text(st, 4);
		c.first_sent = ldb_col_text(st, 5);
		c.last_sent = ldb_col_text(st, 6);
		if ((rc = count_states(l, &c, errstr)) || (rc = fn(&c, ctx)))
			break;
	}
	ldb_done(st);
	return rc;
}

int ledger_missing(struct ledger *l, const char *campaign, const char *const *keys, size_t n,
                   int (*fn)(const char *key, void *ctx), void *ctx, char **errstr)
{
	static const char what[] = "reading deliveries";
	struct ldb_stmt *st;
	int rc = EX_OK, received;

	for (size_t i = 0; i < n && !rc; i++) {
		if ((rc = ldb_query(l, Q_MISSING, &st, what, errstr, "tt", campaign, keys[i])))
			break;
		received = ldb_next(l, st, &rc, what, errstr);
		ldb_done(st);
		if (!rc && !received)
			rc = fn(keys[i], ctx);
	}
	return rc;
}

int ledger_matrix(struct ledger *l, const char *const *keys, size_t n, const char *const *campaigns,
                  size_t ncampaigns, int *states, char **errstr)
{
	static const char what[] = "reading deliveries";
	struct ldb_stmt *st;
	int rc = EX_OK;
	int rank[LS__COUNT];

	for (int i = 0; i < LS__COUNT; i++)
		rank[best_order[i]] = i;
	for (size_t i = 0; i < n && !rc; i++) {
		for (size_t j = 0; j < ncampaigns && !rc; j++) {
			int *cell = &states[i * ncampaigns + j];

			*cell = -1;
			if ((rc = ldb_query(l, Q_MATRIX, &st, what, errstr, "tt", campaigns[j],
			                    keys[i])))
				break;
			while (ldb_next(l, st, &rc, what, errstr)) {
				int s = ledger_state_parse(ldb_col_text(st, 0));

				if (s >= 0 && (*cell < 0 || rank[s] < rank[*cell]))
					*cell = s;
			}
			ldb_done(st);
		}
	}
	return rc;
}

/* --- What comes back over IMAP ----------------------------------------------------------- */

int ledger_find_message(struct ledger *l, const char *message_id, ledger_row_fn fn, void *ctx,
                        char **errstr)
{
	struct ldb_stmt *st;
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
	if (!(rc = ldb_query(l, Q_FIND_MESSAGE, &st, "reading deliveries", errstr, "tt", angled,
	                     bare)))
		rc = walk_rows(l, st, fn, ctx, errstr);
	free(bare);
	free(angled);
	return rc;
}

int ledger_find_address(struct ledger *l, const char *campaign, const char *address,
                        ledger_row_fn fn, void *ctx, char **errstr)
{
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_FIND_ADDRESS, &st, "reading deliveries", errstr, "tt", campaign,
	                    address)))
		return rc;
	return walk_rows(l, st, fn, ctx, errstr);
}

int ledger_events(struct ledger *l, const char *campaign, const char *kind,
                  int (*fn)(const struct ledger_event *e, void *ctx), void *ctx, char **errstr)
{
	static const char what[] = "reading events";
	struct ledger_event e;
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_EVENTS_OF_KIND, &st, what, errstr, "tt", campaign, kind)))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		e.time = ldb_col_text(st, 0);
		e.delivery = ldb_col_int64(st, 1);
		e.detail = ldb_col_text(st, 2);
		if ((rc = fn(&e, ctx)))
			break;
	}
	ldb_done(st);
	return rc;
}
