/*
 * A send, step by step (docs/design.md, "The send pipeline"), for commands that send:
 * run_prepare() resolves the account, locks and opens the ledger, validates the whole
 * appeal and roster (composing each mission once), records the campaign, plans each
 * mission's deliveries and sets up the pace -- nothing leaves before it returns; run_send()
 * hands the plan to the engine. Printing, prompts and exit codes stay with the command.
 */
#ifndef DEMARCHE_RUN_H
#define DEMARCHE_RUN_H

#include <signal.h>
#include <time.h>

#include "base/config.h"
#include "campaign/account.h"
#include "campaign/copyq.h"
#include "campaign/engine.h"
#include "campaign/followup.h"
#include "campaign/merge.h"
#include "campaign/message.h"
#include "campaign/pace.h"
#include "campaign/plan.h"

struct run_opts {
	const struct config *cfg;
	const char *store;        /* the ledger file */
	struct merge_opts *mo;    /* appeal, roster and the common options */
	const char *via;          /* --via, or NULL: [smtp] url, else maildir:./outbox */
	const char *rate;         /* --rate, or NULL: [smtp] rate */
	const char *test_to;      /* --test-to: test events, not deliveries */
	const char *not_received; /* --not-received CAMPAIGN */
	int concurrency;          /* 0: [smtp] concurrency, else 1 */
	int limit;                /* --limit; 0: none */
	int amend;
	unsigned retry_flags; /* LEDGER_RETRY_* */
};

struct run {
	struct account *acct; /* its url and id are safe to print */
	const char *rate;
	int concurrency;
	struct ledger *ledger;
	struct merge *m;
	struct message_run mr;
	struct plan p;
	struct pace pace;
	size_t to_send; /* what this run will try (--limit counted) */
	/* run_send()'s */
	struct sentcopy *sc;
	struct transport *t;
	struct copyq *cq;
	struct plan_not_received nr;
	struct followup *fu; /* a reminder (campaign/followup.h) */
};

/*
 * Steps 1 to 3. Returns EX_OK, or: EX_USAGE, EX_NOINPUT (appeal, roster), EX_DATAERR (bad
 * input, every problem printed to stderr and *errstr left NULL; or a damaged ledger),
 * EX_CONFIG (account, sender, [imap]), EX_TEMPFAIL (another send holds the ledger),
 * EX_DATAERR with *errstr (the ledger's quick check found it damaged),
 * EX_CANTCREAT / EX_IOERR (ledger, spool) with *errstr. Free r with run_free() either way.
 */
int run_prepare(struct run *r, const struct run_opts *o, char **errstr);

/*
 * Step 4: the transport opened (the secret looked up now), Sent copies started, the plan
 * sent through the engine (eo: report and stop set by the caller; the rest is filled here).
 * *copies_rc receives the Sent copies' code. Returns engine_run()'s code, or the
 * transport's when it cannot be opened.
 */
int run_send(struct run *r, const struct run_opts *o, struct engine_opts *eo,
             struct engine_stats *st, int *copies_rc, char **errstr);

void run_free(struct run *r); /* safe on a zeroed run */

#endif
