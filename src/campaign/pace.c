/* Pace: the rate limit and the daily cap, counted across runs from the ledger. */
#include "campaign/pace.h"

#include <string.h>
#include <sysexits.h>
#include <time.h>

int pace_setup(struct pace *pc, struct ledger *l, const char *account, const char *rate,
               int daily_cap, char **errstr)
{
	int rc;

	memset(pc, 0, sizeof(*pc));
	pc->cap_left = -1;
	pc->rl = ratelimit_new();
	rc = ratelimit_set_rate(pc->rl, rate, errstr);
	if (rc != EX_OK)
		return rc;
	if (rate && *rate) {
		/* What this account sent within the last period counts. */
		long count = 0, sent = 0;
		int64_t per = 0, now = ratelimit_now();

		rc = ratelimit_parse(rate, &count, &per, errstr);
		if (rc == EX_OK)
			rc = ledger_count_sent(l, account, time(NULL) - (time_t)(per / 1000), &sent,
			                       errstr);
		if (rc != EX_OK)
			return rc;
		ratelimit_add_cap(pc->rl, count, per);
		for (long i = 0; i < sent && i < count; i++)
			ratelimit_note(pc->rl, now - per + 1000);
	}
	if (daily_cap > 0) {
		/* daily_cap counts recipients, as providers do, over the last 24 hours. */
		rc = ledger_count_sent(l, account, time(NULL) - 86400, &pc->sent_today, errstr);
		if (rc != EX_OK)
			return rc;
		pc->cap_left = daily_cap > pc->sent_today ? daily_cap - pc->sent_today : 0;
	}
	return EX_OK;
}

void pace_free(struct pace *pc)
{
	ratelimit_free(pc->rl);
	memset(pc, 0, sizeof(*pc));
}
