/* The one door: delivery states, creating deliveries, transitions, events, observations. */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/ident.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

const char *const ledger_state_names[LS__COUNT] = {
    "pending", "sending", "sent", "deferred", "failed", "unknown", "bounced", "replied", "staged",
};

/* ledger_legal[from][to]: 1 always, or the LEDGER_RETRY_* flag the caller must pass (as 0x100|f). */
#define NEEDS(flag) (0x100 | (flag))
const int ledger_legal[LS__COUNT][LS__COUNT] = {
    [LS_PENDING] = {[LS_SENDING] = 1},
    [LS_SENDING] =
        {[LS_SENT] = 1, [LS_DEFERRED] = 1, [LS_FAILED] = 1, [LS_UNKNOWN] = 1, [LS_STAGED] = 1},
    [LS_DEFERRED] = {[LS_SENDING] = 1},
    [LS_UNKNOWN] = {[LS_SENDING] = NEEDS(LEDGER_RETRY_UNKNOWN)},
    [LS_FAILED] = {[LS_SENDING] = NEEDS(LEDGER_RETRY_FAILED)},
    [LS_SENT] = {[LS_BOUNCED] = 1, [LS_REPLIED] = 1},
    /* staged in a local outbox: a real transport sends it later */
    [LS_STAGED] = {[LS_SENDING] = 1},
};

const char *ledger_state_name(enum ledger_state s)
{
	if ((int)s < 0 || s >= LS__COUNT)
		return "?";
	return ledger_state_names[s];
}

int ledger_state_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < LS__COUNT; i++)
		if (!strcmp(s, ledger_state_names[i]))
			return i;
	return -1;
}

int ledger_state_received(enum ledger_state s)
{
	return s == LS_SENT || s == LS_REPLIED;
}

/* --- Deliveries and the one door ------------------------------------------------------ */

/* EX_OK with *out set, -1 when there is no such delivery, or an error code. */
static int find_delivery(struct ledger *l, const char *campaign, const char *key_norm,
                         const char *address_norm, struct ledger_delivery *out, char **errstr)
{
	static const char what[] = "reading deliveries";
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_FIND_DELIVERY, &st, what, errstr, "ttt", campaign, key_norm,
	                    address_norm)))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr)) {
		out->id = ldb_col_int64(st, 0);
		out->state = ledger_state_parse(ldb_col_text(st, 1));
		out->attempts = ldb_col_int(st, 2);
	} else if (!rc) {
		rc = -1;
	}
	ldb_done(st);
	return rc;
}

/*
 * A delivery of this identity was created once (its creation event is in the chain) but
 * its row is gone or was edited: creating it again would send the letter twice. Returns
 * EX_OK when no creation event exists, EX_DATAERR naming the delivery, or an SQLite error.
 */
static int check_never_created(struct ledger *l, const char *campaign, const char *key,
                               const char *address, const char *key_norm, const char *address_norm,
                               char **errstr)
{
	static const char what[] = "reading creation events";
	char *lo = rec_identity(key_norm, address_norm), *hi = xasprintf("%s\x7f", lo);
	struct ldb_stmt *st;
	int rc;

	/* every creation detail goes on with " key ..." (0x20) after the identity */
	if (!(rc = ldb_query(l, Q_CREATE_SEEN, &st, what, errstr, "ttt", campaign, lo, hi))) {
		if (ldb_next(l, st, &rc, what, errstr))
			rc =
			    error_set(errstr, EX_DATAERR,
			              "ledger damaged: delivery %lld (%s, %s) of campaign %s is in "
			              "the chain but its row is missing or was edited; nothing was "
			              "sent to it again; run demarche verify",
			              (long long)ldb_col_int64(st, 0), key, address, campaign);
		ldb_done(st);
	}
	free(lo);
	free(hi);
	return rc;
}

int ledger_delivery_get(struct ledger *l, const char *campaign, const char *key,
                        const char *address, const char *message_id, struct ledger_delivery *out,
                        char **errstr)
{
	char *kn = NULL, *an = NULL, *detail = NULL;
	int64_t ordinal = 0;
	struct ledger_outcome o = {0};
	struct ldb_stmt *st;
	char t[32];
	int rc, step = 0, open = 0;

	if (!campaign || !key || !address)
		return error_set(errstr, EX_SOFTWARE, "internal error: delivery without a key");
	if (l->readonly)
		return error_set(errstr, EX_SOFTWARE, "internal error: ledger opened read-only");
	kn = ident_fold(key);
	an = ident_fold(address);
	if ((rc = find_delivery(l, campaign, kn, an, out, errstr)) != -1)
		goto out;
	/* Not there: look again, check and create under the write lock, as one change. */
	if ((rc = ldb_tx_begin(l, errstr)))
		goto out;
	open = 1;
	if ((rc = find_delivery(l, campaign, kn, an, out, errstr)) != -1) {
		if (!rc) /* another demarche created it just now: nothing written */
			rc = ldb_tx_commit(l, errstr);
		goto out;
	}
	if ((rc = check_never_created(l, campaign, key, address, kn, an, errstr)))
		goto out;
	ldb_now(l, t);
	/* PostgreSQL: a refused INSERT ends the whole transaction, so ask first */
	if (l->pg && ledger_campaign_exists(l, campaign) == 0) {
		rc = error_set(errstr, EX_DATAERR, "no campaign '%s' in ledger %s", campaign,
		               l->path);
		goto out;
	}
	if ((rc = ldb_query(l, Q_INSERT_DELIVERY, &st, "recording a delivery", errstr, "ttttttt",
	                    campaign, key, address, message_id, t, kn, an)))
		goto out;
	if ((step = ldb_step(st)) >= 0)
		out->id = ldb_insert_id(st);
	if (step == -2)
		rc = ldb_fail(l, errstr, "recording a delivery");
	ldb_done(st);
	if (step == -1 && ledger_campaign_exists(l, campaign) == 0) {
		rc = error_set(errstr, EX_DATAERR, "no campaign '%s' in ledger %s", campaign,
		               l->path);
		goto out;
	}
	if (step < 0) {
		if (!rc)
			rc = ldb_fail(l, errstr, "recording a delivery");
		goto out;
	}
	out->state = LS_PENDING;
	out->attempts = 0;
	if ((rc = rec_last_ordinal(l, &ordinal, errstr)))
		goto out;
	detail = rec_delivery(key, address, message_id, 0, 0, ordinal + 1);
	o.detail = detail;
	if ((rc = chain_append(l, t, "create", campaign, out->id, NULL, NULL, &o, errstr)))
		goto out;
	rc = ldb_tx_commit(l, errstr);
out:
	if (open && rc)
		ldb_tx_rollback(l);
	free(kn);
	free(an);
	free(detail);
	return rc;
}

int ledger_delivery_find(struct ledger *l, const char *campaign, const char *key,
                         const char *address, struct ledger_delivery *out, char **errstr)
{
	char *kn = ident_fold(key), *an = ident_fold(address);
	int rc = find_delivery(l, campaign, kn, an, out, errstr);

	free(kn);
	free(an);
	return rc;
}

/*
 * Reads delivery id's state, attempts and (when wanted, allocated) campaign and key.
 * EX_OK, EX_DATAERR (no such delivery) or an SQLite error.
 */
int door_read_delivery(struct ledger *l, int64_t id, int *state, int *attempts, char **campaign,
                       char **key, char **errstr)
{
	static const char what[] = "reading a delivery";
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_DELIVERY, &st, what, errstr, "i", id)))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr)) {
		*state = ledger_state_parse(ldb_col_text(st, 0));
		if (attempts)
			*attempts = ldb_col_int(st, 1);
		if (campaign)
			*campaign = xstrdup(ldb_col_text(st, 2) ? ldb_col_text(st, 2) : "");
		if (key)
			*key = xstrdup(ldb_col_text(st, 3) ? ldb_col_text(st, 3) : "");
	} else if (!rc) {
		rc = error_set(errstr, EX_DATAERR, "ledger %s: no delivery %lld", l->path,
		               (long long)id);
	}
	ldb_done(st);
	return rc;
}

/* The one door's work, inside the caller's write transaction. */
/*
 * A copy of s with every CR and LF made a space, or NULL when s has none (or is NULL): a
 * reply is stored on one line, so no later reader (a terminal, a CSV) sees a forged row.
 */
static char *one_line(const char *s)
{
	char *c;

	if (!s || !s[strcspn(s, "\r\n")])
		return NULL;
	c = xstrdup(s);
	for (char *p = c; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return c;
}

int door_transition_locked(struct ledger *l, int64_t delivery, enum ledger_state to, unsigned flags,
                           const struct ledger_outcome *o, struct ledger_delivery *state_out,
                           char **errstr)
{
	static const struct ledger_outcome none = {0};
	char *campaign = NULL, *key = NULL, *line;
	struct ledger_outcome so;
	int from, attempts, need, rc;
	char t[32];

	so = o ? *o : none;
	if ((line = one_line(so.reply)))
		so.reply = line;
	o = &so;
	if ((int)to < 0 || to >= LS__COUNT) {
		rc = error_set(errstr, EX_SOFTWARE,
		               "internal error: illegal transition to state %d of delivery %lld",
		               (int)to, (long long)delivery);
		goto out;
	}
	if ((rc = door_read_delivery(l, delivery, &from, &attempts, &campaign, &key, errstr)))
		goto out;

	need = from < 0 ? 0 : ledger_legal[from][to];
	if (!need || ((need & 0x100) && !(flags & (need & 0xff)))) {
		rc = error_set(errstr, EX_SOFTWARE,
		               "internal error: illegal transition %s -> %s of delivery %lld "
		               "(campaign %s, key %s)%s",
		               ledger_state_name(from),
		               to < LS__COUNT ? ledger_state_names[to] : "?", (long long)delivery,
		               campaign, key,
		               need ? (need & LEDGER_RETRY_UNKNOWN ? ": needs --retry-unknown"
		                                                   : ": needs retry-failed")
		                    : "");
		goto out;
	}

	ldb_now(l, t);
	if ((rc = chain_append(l, t, "transition", campaign, delivery, ledger_state_names[from],
	                       ledger_state_names[to], o, errstr)) ||
	    (rc = ldb_run(l, Q_UPDATE_DELIVERY, "updating a delivery", errstr, "itizttt", delivery,
	                  ledger_state_names[to], (int64_t)(to == LS_SENDING), (int64_t)o->code,
	                  o->reply, o->via, t)))
		goto out;
	if (to == LS_SENT &&
	    (rc = ldb_run(l, Q_CAMPAIGN_SENT, "updating a campaign", errstr, "tt", campaign, t)))
		goto out;
	if (state_out) {
		state_out->id = delivery;
		state_out->state = to;
		state_out->attempts = attempts + (to == LS_SENDING);
	}
out:
	free(campaign);
	free(key);
	free(line);
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
	if ((rc = ldb_tx_begin(l, errstr)))
		return rc;
	rc = door_transition_locked(l, delivery, to, flags, o, state_out, errstr);
	if (!rc)
		rc = ldb_tx_commit(l, errstr);
	if (rc)
		ldb_tx_rollback(l);
	return rc;
}

/* Kinds only the ledger itself writes. */
int door_kind_reserved(const char *kind)
{
	return !kind || !*kind || !strcmp(kind, "transition") || !strcmp(kind, "campaign") ||
	       !strcmp(kind, "amend") || !strcmp(kind, "create") || !strcmp(kind, "adopt") ||
	       !strcmp(kind, "approval");
}

int ledger_record(struct ledger *l, const char *kind, const char *campaign, int64_t delivery,
                  const struct ledger_outcome *o, char **errstr)
{
	char t[32];
	int rc;

	if (door_kind_reserved(kind))
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: event kind '%s' is not for ledger_record()",
		                 kind ? kind : "(null)");
	if ((rc = ldb_tx_begin(l, errstr)))
		return rc;
	ldb_now(l, t);
	rc = chain_append(l, t, kind, campaign, delivery, NULL, NULL, o, errstr);
	if (!rc)
		rc = ldb_tx_commit(l, errstr);
	if (rc)
		ldb_tx_rollback(l);
	return rc;
}

int ledger_note_last(struct ledger *l, const char *campaign, const char *kind, char **detail,
                     char **errstr)
{
	static const char what[] = "reading a campaign's notes";
	struct ldb_stmt *st;
	int rc;

	*detail = NULL;
	if ((rc = ldb_query(l, Q_NOTE_LAST, &st, what, errstr, "tt", campaign, kind)))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr) && ldb_col_text(st, 0))
		*detail = xstrdup(ldb_col_text(st, 0));
	ldb_done(st);
	return rc;
}

int ledger_observe(struct ledger *l, const char *kind, int64_t delivery, int to, const char *source,
                   const struct ledger_outcome *o, enum ledger_observed *what, char **errstr)
{
	static const struct ledger_outcome none = {0};
	struct ledger_outcome eo;
	struct ldb_stmt *st;
	char *campaign = NULL, *detail = NULL, *line = NULL, t[32];
	enum ledger_observed did;
	int rc, seen, from;

	if (!o)
		o = &none;
	if (door_kind_reserved(kind) || !source || !*source || to >= LS__COUNT)
		return error_set(errstr, EX_SOFTWARE,
		                 "internal error: ledger_observe(%s, %lld, %d) without a kind or "
		                 "source",
		                 kind ? kind : "(null)", (long long)delivery, to);
	if ((rc = ldb_tx_begin(l, errstr)))
		return rc;
	if ((rc = ldb_query(l, Q_OBSERVED, &st, "reading observations", errstr, "tit", kind,
	                    delivery, source)))
		goto out;
	seen = ldb_next(l, st, &rc, "reading observations", errstr);
	ldb_done(st);
	if (rc)
		goto out;
	if (seen) {
		did = LEDGER_SEEN_BEFORE;
		goto commit;
	}
	if ((rc = door_read_delivery(l, delivery, &from, NULL, &campaign, NULL, errstr)))
		goto out;

	if (to >= 0 && from >= 0 && ledger_legal[from][to] == 1) {
		did = LEDGER_CHANGED;
		rc = door_transition_locked(l, delivery, to, 0, o, NULL, errstr);
	} else {
		/* a bounce for a delivery in doubt, a second reply...: evidence, not a state */
		did = LEDGER_EVENT;
		eo = *o;
		if ((line = one_line(eo.reply)))
			eo.reply = line;
		detail = xasprintf("%s%sdelivery was %s", o->detail ? o->detail : "",
		                   o->detail ? "; " : "", ledger_state_name(from));
		eo.detail = detail;
		ldb_now(l, t);
		rc = chain_append(l, t, kind, campaign, delivery, NULL, NULL, &eo, errstr);
	}
	/* seq: the event just appended (the door's UPDATEs come after it) */
	if (rc || (rc = ldb_run(l, Q_INSERT_OBSERVED, "recording an observation", errstr, "titi",
	                        kind, delivery, source, l->last_seq)))
		goto out;
commit:
	rc = ldb_tx_commit(l, errstr);
	if (!rc && what)
		*what = did;
out:
	if (rc)
		ldb_tx_rollback(l);
	free(campaign);
	free(detail);
	free(line);
	return rc;
}
