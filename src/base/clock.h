/* Clocks in milliseconds: one monotonic clock for waits and backoff, one for wall time. */
#ifndef DEMARCHE_CLOCK_H
#define DEMARCHE_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: for timeouts, waits and backoff. Can't fail. */
int64_t clock_mono_ms(void);

/* Milliseconds since the epoch (CLOCK_REALTIME): what the ledger's times are in. */
int64_t clock_real_ms(void);

#endif
