/* Sending pace: one message per interval (token bucket of capacity 1) and sliding-window caps. */
#include "transport/ratelimit.h"

#include "base/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "base/error.h"
#include "base/xalloc.h"

/* At most max starts in any window: the newest max start times, oldest first. */
struct cap {
	long max;
	int64_t window;
	int64_t *t;
	long n;
};

struct ratelimit {
	int64_t interval; /* ms between starts; 0: no pacing */
	int64_t last;     /* the latest start seen */
	int have_last;
	struct cap *caps;
	size_t ncaps;
};

int ratelimit_parse(const char *spec, long *count, int64_t *per_ms, char **errstr)
{
	static const struct {
		const char *name;
		int64_t ms;
	} units[] = {{"second", 1000}, {"minute", 60000}, {"hour", 3600000}, {"day", 86400000}};
	const char *p = spec;
	char *end;
	long n;

	if (!spec || *spec < '0' || *spec > '9')
		goto bad;
	errno = 0;
	n = strtol(p, &end, 10);
	if (errno || n < 1 || n > 1000000 || *end != '/')
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end + 1, units[i].name)) {
			*count = n;
			*per_ms = units[i].ms;
			return EX_OK;
		}
bad:
	return error_set(errstr, EX_USAGE,
	                 "bad rate '%s': use N/minute or N/hour (N from 1 to 1000000)",
	                 spec ? spec : "");
}

struct ratelimit *ratelimit_new(void)
{
	return xcalloc(1, sizeof(struct ratelimit));
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < rl->ncaps; i++)
		free(rl->caps[i].t);
	free(rl->caps);
	free(rl);
}

int ratelimit_set_rate(struct ratelimit *rl, const char *spec, char **errstr)
{
	long count = 0;
	int64_t per = 0;
	int rc;

	if (!spec || !*spec) {
		rl->interval = 0;
		return EX_OK;
	}
	rc = ratelimit_parse(spec, &count, &per, errstr);
	if (rc == EX_OK)
		rl->interval = (per + count - 1) / count; /* round up: never faster than asked */
	return rc;
}

void ratelimit_add_cap(struct ratelimit *rl, long max, int64_t window_ms)
{
	struct cap *c;

	rl->caps = xreallocarray(rl->caps, rl->ncaps + 1, sizeof(*rl->caps));
	c = &rl->caps[rl->ncaps++];
	c->max = max < 0 ? 0 : max;
	c->window = window_ms > 0 ? window_ms : 1;
	c->t = xcalloc(c->max ? (size_t)c->max : 1, sizeof(*c->t));
	c->n = 0;
}

/* Keeps the newest max times in order; an older one than all of a full list changes nothing
 * that matters (the cap is decided by the max-th newest start). */
static void cap_note(struct cap *c, int64_t t)
{
	long i;

	if (c->max == 0)
		return;
	if (c->n == c->max) {
		if (t <= c->t[0])
			return;
		memmove(c->t, c->t + 1, (size_t)(c->n - 1) * sizeof(*c->t));
		c->n--;
	}
	for (i = c->n; i > 0 && c->t[i - 1] > t; i--)
		c->t[i] = c->t[i - 1];
	c->t[i] = t;
	c->n++;
}

void ratelimit_note(struct ratelimit *rl, int64_t t)
{
	if (!rl->have_last || t > rl->last)
		rl->last = t;
	rl->have_last = 1;
	for (size_t i = 0; i < rl->ncaps; i++)
		cap_note(&rl->caps[i], t);
}

int64_t ratelimit_wait_ms(const struct ratelimit *rl, int64_t now)
{
	int64_t wait = 0;

	if (rl->interval && rl->have_last && rl->last + rl->interval > now)
		wait = rl->last + rl->interval - now;
	for (size_t i = 0; i < rl->ncaps; i++) {
		const struct cap *c = &rl->caps[i];

		if (c->max == 0)
			return -1;
		/* Full when the oldest kept start is still inside the window: wait until it
		 * leaves (a start at t counts
		 * during [t, t + window)). */
		if (c->n == c->max && c->t[0] + c->window > now && c->t[0] + c->window - now > wait)
			wait = c->t[0] + c->window - now;
	}
	return wait;
}

int ratelimit_take(struct ratelimit *rl, int64_t now)
{
	if (ratelimit_wait_ms(rl, now) != 0)
		return 0;
	ratelimit_note(rl, now);
	return 1;
}

int64_t ratelimit_now(void)
{
	return clock_real_ms();
}
