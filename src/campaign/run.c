/* A send, step by step: prepare (validate, plan, pace), then send through the engine. */
#include "campaign/run.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "base/address.h"
#include "campaign/approval.h"
#include "base/clock.h"

/* The account (a URL with a password is refused here, before anything is written), the
 * rate and the concurrency: the start of a send, a real one or a dry run. */
static int run_account(struct run *r, const struct run_opts *o, char **errstr)
{
	const struct config *cfg = o->cfg;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = account_resolve(ACCOUNT_SMTP, cfg, o->via, 0, &r->acct, errstr);
	if (rc != EX_OK)
		return rc;
	r->rate = o->rate ? o->rate : cfg->smtp.rate;
	r->concurrency = o->concurrency              ? o->concurrency
	                 : cfg->smtp.concurrency > 0 ? cfg->smtp.concurrency
	                                             : 1;
	return EX_OK;
}

/* Once the sender is known, a send and a dry run alike: no example sender through a server
 * (a local outbox may have one), and a --test-to that is an address. */
static int run_check_sender(const struct run *r, const struct run_opts *o, char **errstr)
{
	if (r->mr.example_sender && !r->acct->maildir)
		return error_set(errstr, EX_CONFIG,
		                 "set [sender] name and address in demarche.ini before sending "
		                 "through %s",
		                 r->acct->url);
	if (o->test_to && address_check(o->test_to, strlen(o->test_to), 0))
		return error_set(errstr, EX_USAGE, "--test-to '%s' is not an address", o->test_to);
	return EX_OK;
}

int run_prepare(struct run *r, const struct run_opts *o, char **errstr)
{
	const struct config *cfg = o->cfg;
	time_t date = time(NULL);
	int rc;

	if ((rc = run_account(r, o, errstr)) != EX_OK)
		return rc;
	/* One send at a time per ledger (the lock is on the file, whatever path reaches it),
	 * and never on a damaged one: a deleted row must not become a new delivery. */
	rc = ledger_open(o->store, LEDGER_CREATE | LEDGER_EXCLUSIVE | LEDGER_CHECK, &r->ledger,
	                 errstr);
	if (rc == EX_OK && !o->test_to && !(r->sc = sentcopy_open(cfg, errstr)) && *errstr)
		rc = EX_CONFIG;
	if (rc != EX_OK)
		return rc;
	if (o->not_received) {
		r->nr.ledger = r->ledger;
		r->nr.campaign = o->not_received;
		plan_not_received(&o->mo->ro, &r->nr);
	}

	r->fu = followup_new(r->ledger, &o->mo->ro); /* a reminder (Follows:) */

	/* 1. Validate everything, composing each mission's message once into the spool. */
	rc = merge_open(o->mo, "send", &r->m);
	if (rc != EX_OK)
		return rc;
	rc = message_run_init(&r->mr, cfg, r->m, errstr);
	if (rc == EX_OK && r->fu)
		rc = followup_bind(r->fu, r->m, &r->mr, clock_real_ms() / 1000, errstr);
	r->mr.test_to = o->test_to;
	if (rc == EX_OK)
		rc = run_check_sender(r, o, errstr);
	if (rc == EX_OK)
		rc = plan_compose(&r->p, r->m, &r->mr, date, "send", errstr);
	if (rc == EX_OK && r->nr.error)
		rc = error_set(errstr, EX_IOERR, "the ledger could not answer --not-received");
	/* Two-person approval: exactly these messages, before anything is recorded (77). */
	if (rc == EX_OK && !o->test_to)
		rc = approval_gate(r->ledger, cfg, o->mo, r->m, &r->mr, &r->p, errstr);
	if (rc != EX_OK)
		return rc;

	/* 2. The campaign and its deliveries: each mission's state decides what is sent. */
	/* A local outbox stages: it does not take staged missions again, a real send does. */
	r->p.staging = transport_url_staging(r->acct->url);
	if (o->test_to)
		plan_all(&r->p);
	else if ((rc = plan_campaign_begin(r->ledger, r->m, o->amend, errstr)) != EX_OK ||
	         (rc = plan_deliveries(&r->p, r->ledger, r->m->campaign, o->retry_flags,
	                               r->acct->id, errstr)) != EX_OK ||
	         (rc = plan_record_names(r->ledger, r->m, errstr)) != EX_OK)
		return rc;
	r->to_send = o->limit && (size_t)o->limit < r->p.n ? (size_t)o->limit : r->p.n;

	/* 3. Pace: the rate and the daily cap, counting what this account sent already. */
	return pace_setup(&r->pace, r->ledger, r->acct->id, r->rate, cfg->smtp.daily_cap, errstr);
}

int run_send(struct run *r, const struct run_opts *o, struct engine_opts *eo,
             struct engine_stats *st, int *copies_rc, char **errstr)
{
	const struct config *cfg = o->cfg;
	int rc = EX_OK;

	memset(st, 0, sizeof(*st));
	*copies_rc = EX_OK;
	if (r->p.n)
		rc = engine_transport_open(cfg, r->acct, r->concurrency, r->mr.domain, o->verbose,
		                           &r->t, errstr);
	if (rc == EX_OK && r->sc) { /* copies earlier runs kept go first, even with nothing new */
		rc = copyq_start(r->sc, o->store, &r->p, &r->cq, errstr);
		r->sc = NULL;
	}
	if (rc != EX_OK)
		return rc;
	eo->ledger = r->ledger;
	eo->campaign = r->m->campaign;
	eo->account = r->acct->id;
	eo->t = r->t;
	eo->rl = r->pace.rl;
	eo->pace = &r->pace;
	eo->limit = (size_t)o->limit;
	eo->max_attempts = cfg->smtp.max_attempts > 0 ? cfg->smtp.max_attempts : 1;
	eo->retry_after = cfg->smtp.retry_after;
	eo->retry_flags = o->retry_flags;
	eo->from = r->mr.from_addr;
	eo->test_to = o->test_to;
	eo->copies = r->cq;
	eo->staging = transport_staging(r->t);
	rc = r->p.n ? engine_run(eo, &r->p, st, errstr) : EX_OK;
	{
		char *err = NULL;
		int stopped = eo->stop && *eo->stop;

		*copies_rc = copyq_finish(r->cq, stopped || rc != EX_OK, NULL, NULL, &err);
		r->cq = NULL;
		if (*copies_rc != EX_OK && rc == EX_OK) {
			free(*errstr);
			*errstr = err;
			err = NULL;
		}
		free(err);
	}
	return rc;
}

/* A recorded campaign of this id whose appeal differs, and which has left: as the ledger
 * would refuse it (ledger_campaign_begin()) unless --amend. */
struct changed {
	const char *id, *hash;
	char *err;
};

static int campaign_changed(const struct ledger_campaign *c, void *ctx)
{
	struct changed *ch = ctx;

	if (strcmp(c->id, ch->id) || !strcmp(c->content_hash, ch->hash) ||
	    c->counts[LS_PENDING] == c->total)
		return 0;
	ch->err = xasprintf("campaign '%s' was recorded with another appeal (content sha256 "
	                    "%.12s, now %.12s): use a new campaign id or --amend",
	                    c->id, c->content_hash, ch->hash);
	return 1;
}

int run_dry(struct run *r, const struct run_opts *o, char **errstr)
{
	const struct config *cfg = o->cfg;
	int rc;

	if ((rc = run_account(r, o, errstr)) != EX_OK)
		return rc;
	/* Read only, and only when it exists: a dry run creates, migrates and locks nothing. */
	if (access(o->store, F_OK) == 0 &&
	    (rc = ledger_open(o->store, LEDGER_READONLY | LEDGER_CHECK, &r->ledger, errstr)) !=
	        EX_OK)
		return rc;
	if (o->not_received && r->ledger) {
		r->nr.ledger = r->ledger;
		r->nr.campaign = o->not_received;
		plan_not_received(&o->mo->ro, &r->nr);
	}
	rc = merge_open(o->mo, "send", &r->m);
	if (rc != EX_OK)
		return rc;
	rc = message_run_init(&r->mr, cfg, r->m, errstr);
	r->mr.test_to = o->test_to;
	if (rc == EX_OK)
		rc = run_check_sender(r, o, errstr);
	if (rc == EX_OK)
		rc = plan_compose(&r->p, r->m, &r->mr, time(NULL), "send", errstr);
	if (rc == EX_OK && r->nr.error)
		rc = error_set(errstr, EX_IOERR, "the ledger could not answer --not-received");
	if (rc != EX_OK)
		return rc;
	/* the approval a real send would ask for: a dry run says the send would be refused */
	if (!o->test_to && cfg->approval.required > 0)
		rc = r->ledger
		         ? approval_gate(r->ledger, cfg, o->mo, r->m, &r->mr, &r->p, errstr)
		         : error_set(errstr, EX_NOPERM,
		                     "not approved: campaign %s needs %d approval%s and there is "
		                     "no ledger yet (demarche approve)",
		                     r->m->campaign, cfg->approval.required,
		                     cfg->approval.required == 1 ? "" : "s");
	if (rc != EX_OK)
		return rc;
	if (r->ledger && !o->amend) {
		struct changed ch = {r->m->campaign, letter_hash(r->m->letter), NULL};

		rc = ledger_campaigns(r->ledger, campaign_changed, &ch, errstr);
		if (ch.err) {
			free(*errstr);
			*errstr = ch.err;
			return EX_DATAERR;
		}
		if (rc != EX_OK)
			return rc;
	}
	r->p.staging = transport_url_staging(r->acct->url);
	r->p.dry = 1;
	if (o->test_to)
		plan_all(&r->p);
	else if ((rc = plan_deliveries(&r->p, r->ledger, r->m->campaign, o->retry_flags,
	                               r->acct->id, errstr)) != EX_OK)
		return rc;
	r->to_send = o->limit && (size_t)o->limit < r->p.n ? (size_t)o->limit : r->p.n;
	r->pace.cap_left = -1;
	return EX_OK;
}

void run_free(struct run *r)
{
	copyq_finish(r->cq, 1, NULL, NULL, NULL);
	transport_close(r->t);
	sentcopy_close(r->sc);
	pace_free(&r->pace);
	plan_free(&r->p);
	message_run_free(&r->mr);
	ledger_close(r->ledger);
	account_free(r->acct);
	merge_free(r->m);
	followup_free(r->fu);
	memset(r, 0, sizeof(*r));
}
