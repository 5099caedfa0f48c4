/* Clocks in milliseconds: one monotonic clock for waits and backoff, one for wall time. */
#ifndef DEMARCHE_CLOCK_H
#define DEMARCHE_CLOCK_H

#include <signal.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: for timeouts, waits and backoff. Can't fail. */
int64_t clock_mono_ms(void);

/*
 * Milliseconds since the epoch (CLOCK_REALTIME): what the ledger's times are in.
 * For tests (docs/design.md, "The send calendar"): when DEMARCHE_NOW is set (ISO 8601
 * UTC, "2026-12-01T12:00:00Z", or seconds since the epoch) the wall clock starts there and
 * runs at the real pace, and clock_sleep_until() jumps instead of waiting (or, with
 * DEMARCHE_SPEED=N, waits one N-th of the time). Read once, on the first call.
 */
int64_t clock_real_ms(void);

/* 1 when the wall clock is the fake one of DEMARCHE_NOW. */
int clock_is_fake(void);

/*
 * Waits until clock_real_ms() reaches until_ms, in slices of at most a second, returning
 * early (0) as soon as *stop (may be NULL) is non-zero; 1 when the time came. With
 * DEMARCHE_NOW the fake clock is moved to until_ms. Can't fail.
 */
int clock_sleep_until(int64_t until_ms, const volatile sig_atomic_t *stop);

#endif
