/*
 * Pace (docs/design.md, "The send pipeline"): the rate limit and the daily cap, both counted
 * across runs from what the ledger says this account already sent, so that two runs together
 * stay under them.
 */
#ifndef DEMARCHE_PACE_H
#define DEMARCHE_PACE_H

#include "ledger/ledger.h"
#include "transport/ratelimit.h"

struct pace {
	struct ratelimit *rl; /* always set on EX_OK; free with pace_free() */
	long cap_left;        /* recipients the daily cap still allows; -1: no cap */
	long sent_today;      /* recipients sent in the last 24 hours (with a cap) */
};

/*
 * rate: "N/minute" etc. or NULL/"" for none; daily_cap: recipients in any 24 hours, <= 0 for
 * none; account: what the ledger's sends are counted by. Returns EX_OK, EX_USAGE (a bad
 * rate, *errstr) or the ledger's code.
 */
int pace_setup(struct pace *pc, struct ledger *l, const char *account, const char *rate,
               int daily_cap, char **errstr);
void pace_free(struct pace *pc); /* safe on a zeroed one */

#endif
