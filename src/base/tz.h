/*
 * Time zones by IANA name (Debian tzdata) through the C library, and working weeks.
 * docs/design.md, "The send calendar": the C library converts for one zone at a time (TZ
 * and tzset() are process-wide), so tz_local() and tz_utc() set TZ, convert and put it
 * back under a lock. They must be called while no other thread of the process reads the
 * local time or the environment: send works out its calendar before any worker thread
 * starts, audit and followup have none. tz_known() only reads a file and may run anywhere.
 */
#ifndef DEMARCHE_TZ_H
#define DEMARCHE_TZ_H

#include <stdint.h>
#include <time.h>

/*
 * 1 when name is a zone of the tz database: a relative name of letters, digits, '_', '+',
 * '-' and '/' components (no "..", no leading '/'), whose file under $TZDIR (default
 * /usr/share/zoneinfo) is a TZif file. 0 otherwise. Can't fail.
 */
int tz_known(const char *name);

/* The wall time in zone at utc (seconds since the epoch), into *out (tm_gmtoff set).
 * Returns 0, or -1 when zone is not tz_known(). */
int tz_local(const char *zone, int64_t utc, struct tm *out);

/* The UTC second of wall time *local in zone (tm_isdst ignored; a time skipped by a
 * change to summer time counts as the one after it). Returns 0, or -1 as tz_local(). */
int tz_utc(const char *zone, const struct tm *local, int64_t *utc);

/* Weekend days as a bit mask over tm_wday (bit 0 Sunday ... bit 6 Saturday). */
#define TZ_WEEKEND_DEFAULT ((1u << 6) | (1u << 0)) /* Saturday and Sunday */

/*
 * Parses a weekend: day names (mon, tue, ... sun, or whole English names, any case)
 * separated by ',', ';', '+', spaces, or a range "fri-sat"; "none" for a seven-day week;
 * empty: TZ_WEEKEND_DEFAULT. Returns 0 with *mask set, or -1 (not a weekend).
 */
int tz_weekend_parse(const char *s, unsigned *mask);

#endif
