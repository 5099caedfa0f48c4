/*
 * The send engine (docs/design.md, "The send pipeline"): takes a plan and hands its
 * messages to a transport in windows, one ledger writer on the caller's thread. A message's
 * 'sending' is committed before it can be delivered: through SMTP (transport_gated()) while
 * MAIL, RCPT, DATA and the body go out, before the final dot (the dot gate); through the
 * others before any byte of it leaves. Outcomes are group-committed with the next messages'
 * 'sending', so after a crash at most the messages in flight are in doubt, and a message
 * whose 'sending' never committed was never delivered (its dot never left).
 * Deferred messages are retried within the run with exponential backoff (monotonic clock);
 * the rate limit, --limit and the daily cap (recipients) are honoured; each address's own
 * RCPT answer decides its delivery; Sent copies are queued only after their 'sent' commits.
 */
#ifndef DEMARCHE_ENGINE_H
#define DEMARCHE_ENGINE_H

#include <signal.h>
#include <stddef.h>

#include "campaign/copyq.h"
#include "campaign/pace.h"
#include "campaign/plan.h"
#include "ledger/ledger.h"
#include "transport/ratelimit.h"
#include "transport/transport.h"

/* transport_run()'s shape: the engine calls it; tests give a fake transport. */
typedef int (*engine_run_fn)(struct transport *t, transport_next_fn next, transport_done_fn done,
                             void *u, volatile sig_atomic_t *stop, char **errstr);

/* Each message's outcome as it comes, on the caller's thread (for the terminal). */
typedef void (*engine_report_fn)(void *u, const char *key, const struct transport_result *r,
                                 int will_retry);

struct engine_opts {
	struct ledger *ledger;
	const char *campaign;
	const char *account; /* recorded as the events' via: never a password */
	struct transport *t;
	engine_run_fn run;    /* NULL: transport_run(), or transport_run_gated() when gated */
	struct ratelimit *rl; /* NULL: no pacing */
	struct pace *pace;    /* NULL: no shared windows; else pace_admit() before each start */
	size_t limit;         /* messages this run may start (--limit); 0: no limit */
	int max_attempts;     /* tries of a deferred message within the run, >= 1 */
	int retry_after;      /* seconds before the first retry (doubles each time); >= 0 */
	unsigned retry_flags; /* LEDGER_RETRY_*: what 'sending' may come from */
	const char *from;     /* the envelope sender */
	const char *test_to;  /* --test-to: every message goes there; 'test' events only */
	struct copyq *copies; /* Sent copies; NULL: none */
	volatile sig_atomic_t *stop;
	engine_report_fn report; /* may be NULL */
	void *report_u;
	/* t is a staging channel (transport_staging()): what it takes is recorded staged, not
	 * sent, and has no Sent copy (docs/design.md, "Staging is not delivery") */
	int staging;
};

struct engine_stats {
	size_t started;                         /* messages handed to the transport */
	size_t sent, deferred, failed, unknown; /* messages, by their final outcome */
	size_t rcpt_failed;                     /* addresses refused while others took it */
	int capped;                             /* stopped by the daily cap */
	int tx_rc;                              /* what the transport said when it stopped */
	size_t elsewhere; /* missions another sender of a team ledger took first (ledger_claim) */
};

/*
 * Sends the plan's missions (plan_deliveries() or plan_all() done), keeping each planned
 * mission's .state. Returns EX_OK when everything planned was tried (see the stats for how
 * it went), the transport's code when it stopped early (EX_TEMPFAIL interrupted or
 * unreachable, EX_CONFIG credentials or TLS, EX_IOERR), or the ledger's (EX_IOERR,
 * EX_TEMPFAIL, EX_DATAERR, EX_SOFTWARE) with *errstr. The ledger is consistent either way.
 */
int engine_run(const struct engine_opts *o, struct plan *p, struct engine_stats *st, char **errstr);

/*
 * Opens the SMTP (or maildir) transport of acct, looking up its secret now (not before it is
 * needed). Returns EX_OK with *t, or EX_CONFIG (the secret, TLS or AUTH settings) or
 * EX_IOERR (a maildir's folders) with *errstr.
 */
struct account;
struct config;
int engine_transport_open(const struct config *cfg, struct account *acct, int concurrency,
                          const char *helo, int verbose, struct transport **t, char **errstr);

#endif
