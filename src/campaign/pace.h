/*
 * Pace (docs/design.md, "The send pipeline"): the rate limit and the daily cap, both counted
 * from what the ledger says this account sent -- earlier runs, and the other senders of a
 * team ledger while this run goes on -- so that runs together stay under them.
 */
#ifndef DEMARCHE_PACE_H
#define DEMARCHE_PACE_H

#include <stdint.h>

#include "ledger/ledger.h"
#include "transport/ratelimit.h"

struct pace {
	struct ratelimit *rl; /* always set on EX_OK; free with pace_free() */
	long cap_left;        /* recipients the daily cap still allows; -1: no cap */
	long sent_today;      /* recipients sent in the last 24 hours (with a cap) */
	/* the windows pace_admit() counts again at each start */
	const char *account; /* not owned */
	long daily_cap;      /* 0: none */
	long rate_count;     /* at most this many in any rate_per ms; 0: no rate */
	int64_t rate_per;
};

/*
 * rate: "N/minute" etc. or NULL/"" for none; daily_cap: recipients in any 24 hours, <= 0 for
 * none; account: what the ledger's sends are counted by (kept, not copied). Returns EX_OK,
 * EX_USAGE (a bad rate, *errstr) or the ledger's code.
 */
int pace_setup(struct pace *pc, struct ledger *l, const char *account, const char *rate,
               int daily_cap, char **errstr);

enum pace_verdict { PACE_GO, PACE_WAIT, PACE_CAPPED };

/* What this run started or sent that the ledger does not show as sent yet. */
struct pace_own {
	long rcpts, msgs;
};

/*
 * Before each start: may a message of cost recipients go now? Counts again what the ledger
 * shows the account sent, by every sender, within the rate's window (messages) and the last
 * 24 hours (recipients), and adds own. The other
 * senders' messages in flight are not seen until they are recorded: together the senders may
 * pass a limit by those (at most each one's concurrency). Returns EX_OK with *v (PACE_WAIT:
 * ask again in *wait_ms), or the ledger's code with *errstr.
 */
int pace_admit(const struct pace *pc, struct ledger *l, const struct pace_own *own, long cost,
               enum pace_verdict *v, int64_t *wait_ms, char **errstr);

void pace_free(struct pace *pc); /* safe on a zeroed one */

#endif
