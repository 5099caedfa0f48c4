/*
 * Sending pace: a token bucket of capacity 1 (one message every interval, never a burst),
 * plus caps of "at most N in any window of W" (daily_cap), which count what the ledger says
 * was already sent through the account, so that two runs together stay under the cap.
 * Times are milliseconds since the epoch, given by the caller (tests inject them).
 */
#ifndef DEMARCHE_RATELIMIT_H
#define DEMARCHE_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/*
 * Parses "N/minute" or "N/hour" (also "N/second", "N/day"; N from 1 to 1000000). Returns
 * EX_OK with *count and *per_ms set, or EX_USAGE with *errstr (the caller may turn it into
 * EX_CONFIG when it came from the configuration).
 */
int ratelimit_parse(const char *spec, long *count, int64_t *per_ms, char **errstr);

/* A limiter that lets everything through until told otherwise. Can't fail. */
struct ratelimit *ratelimit_new(void);
void ratelimit_free(struct ratelimit *rl); /* NULL-safe */

/* Paces starts to spec (as ratelimit_parse(); NULL or "" for no pacing). Same codes. */
int ratelimit_set_rate(struct ratelimit *rl, const char *spec, char **errstr);

/* Adds a cap: at most max starts in any window_ms (max >= 0, window_ms > 0). Can't fail. */
void ratelimit_add_cap(struct ratelimit *rl, long max, int64_t window_ms);

/*
 * Records one start at time t: call it for every message this run starts (or use
 * ratelimit_take()), and before the run for each one the ledger shows within the longest
 * window, in any order. A past start also delays the next by the pacing interval.
 */
void ratelimit_note(struct ratelimit *rl, int64_t t);

/*
 * Milliseconds from now until the next message may start: 0 means now; -1 means never
 * (a cap of 0). Does not change the limiter.
 */
int64_t ratelimit_wait_ms(const struct ratelimit *rl, int64_t now);

/* If a message may start now, records it and returns 1; else returns 0. */
int ratelimit_take(struct ratelimit *rl, int64_t now);

/* Milliseconds since the epoch (CLOCK_REALTIME), the clock ledger times are in. */
int64_t ratelimit_now(void);

#endif
