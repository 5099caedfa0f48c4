/* Pace: the rate limit and the daily cap, counted across runs and senders from the ledger. */
#include "campaign/pace.h"

#include <string.h>
#include <sysexits.h>
#include <time.h>

#define DAY_MS 86400000

/* Recipients (messages) the ledger shows sent through the account within the last window_ms. */
static int sent_within(const struct pace *pc, struct ledger *l, int64_t window_ms, int messages,
                       long *n, char **errstr)
{
	*n = 0;
	return ledger_count_sent(l, pc->account, time(NULL) - (time_t)(window_ms / 1000), messages,
	                         n, errstr);
}

int pace_setup(struct pace *pc, struct ledger *l, const char *account, const char *rate,
               int daily_cap, char **errstr)
{
	int rc;

	memset(pc, 0, sizeof(*pc));
	pc->cap_left = -1;
	pc->account = account;
	pc->rl = ratelimit_new();
	rc = ratelimit_set_rate(pc->rl, rate, errstr);
	if (rc != EX_OK)
		return rc;
	if (rate && *rate) {
		/* What this account sent within the last period counts. */
		long sent = 0;
		int64_t now = ratelimit_now();

		rc = ratelimit_parse(rate, &pc->rate_count, &pc->rate_per, errstr);
		if (rc == EX_OK)
			rc = sent_within(pc, l, pc->rate_per, 1, &sent, errstr);
		if (rc != EX_OK)
			return rc;
		ratelimit_add_cap(pc->rl, pc->rate_count, pc->rate_per);
		for (long i = 0; i < sent && i < pc->rate_count; i++)
			ratelimit_note(pc->rl, now - pc->rate_per + 1000);
	}
	if (daily_cap > 0) {
		/* daily_cap counts recipients, as providers do, over the last 24 hours. */
		pc->daily_cap = daily_cap;
		rc = sent_within(pc, l, DAY_MS, 0, &pc->sent_today, errstr);
		if (rc != EX_OK)
			return rc;
		pc->cap_left = daily_cap > pc->sent_today ? daily_cap - pc->sent_today : 0;
	}
	return EX_OK;
}

int pace_admit(const struct pace *pc, struct ledger *l, const struct pace_own *own, long cost,
               enum pace_verdict *v, int64_t *wait_ms, char **errstr)
{
	long sent;
	int rc;

	*v = PACE_GO;
	*wait_ms = 0;
	if (pc->daily_cap > 0) {
		if ((rc = sent_within(pc, l, DAY_MS, 0, &sent, errstr)) != EX_OK)
			return rc;
		if (sent + own->rcpts + cost > pc->daily_cap) {
			*v = PACE_CAPPED;
			return EX_OK;
		}
	}
	if (pc->rate_count > 0) {
		if ((rc = sent_within(pc, l, pc->rate_per, 1, &sent, errstr)) != EX_OK)
			return rc;
		if (sent + own->msgs >= pc->rate_count) {
			/* full: look again after one pacing interval */
			*v = PACE_WAIT;
			*wait_ms = (pc->rate_per + pc->rate_count - 1) / pc->rate_count;
		}
	}
	return EX_OK;
}

void pace_free(struct pace *pc)
{
	ratelimit_free(pc->rl);
	memset(pc, 0, sizeof(*pc));
}
