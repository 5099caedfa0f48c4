/*
 * The send calendar (docs/design.md, "The send calendar"): when each mission may be sent.
 * --window HH:MM-HH:MM opens each mission's sending in its own local hours on its working
 * days (roster columns timezone and weekend), --at a time (UTC, or each mission's own with
 * --local) holds everything until then, --until stops a scheduled send. Before each pass of
 * send, schedule_plan() reads the roster once and works out every mission's next time
 * (main thread, before any worker: base/tz.h); the roster hook then leaves out the missions
 * whose time has not come, and schedule_waiting() says when the next one comes and records
 * the plan in the ledger ('schedule' events), so a killed run's plan can be read back.
 */
#ifndef DEMARCHE_SCHEDULE_H
#define DEMARCHE_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ledger/ledger.h"
#include "roster/roster.h"

struct schedule_entry {
	char *key, *zone; /* zone NULL: none given (UTC) */
	unsigned weekend;
	int64_t when; /* UTC seconds: the first moment at or after the plan's now it may go */
	long line;
};

struct schedule {
	int window;           /* --window given */
	int win_from, win_to; /* minutes of the day, from < to */
	char win_text[48];    /* "09:00-17:00" */
	int at_set, local;    /* --at, --local */
	struct tm at_tm;      /* --at as written */
	int64_t at;           /* --at in UTC (without --local) */
	int64_t until;        /* --until in UTC seconds; 0: none */
	/* the plan of the current pass */
	struct schedule_entry *e;
	size_t n;
	int64_t now;
};

/* Option parsers: EX_OK, or EX_USAGE with *errstr. */
int schedule_parse_window(struct schedule *s, const char *arg, char **errstr); /* 09:00-17:00 */
int schedule_parse_at(struct schedule *s, const char *arg, char **errstr); /* 2026-12-01T09:00 */
/* --until: YYYY-MM-DD (its first second, UTC) or YYYY-MM-DDTHH:MM[:SS][Z] (UTC). */
int schedule_parse_until(struct schedule *s, const char *arg, char **errstr);
/* --local without --at (or the like): EX_USAGE with *errstr; EX_OK when consistent. */
int schedule_check(const struct schedule *s, char **errstr);

/* 1 when --window or --at was given: send goes by the calendar. */
int schedule_active(const struct schedule *s);

/*
 * The first moment at or after from (UTC seconds) a mission in zone (NULL: UTC) with
 * weekend (tz.h mask) may be sent: not before --at, and with --window inside its local
 * window on a working day. Returns 0 with *when, or -1 (an unknown zone; no working day).
 */
int schedule_next(const struct schedule *s, const char *zone, unsigned weekend, int64_t from,
                  int64_t *when);

/*
 * Reads the roster of ro (its filters applied, not its hooks) and works out each
 * mission's time from now (UTC seconds); then sets ro's exclude_row hook, which leaves out
 * the missions whose time has not come. Returns EX_OK; EX_DATAERR when a mission needs a
 * time zone and has none (printed to stderr, file, row and column, prefixed by cmd); the
 * roster's own problems are left to the merge, which reports them.
 */
int schedule_plan(struct schedule *s, struct roster_opts *ro, int64_t now, const char *cmd);

/*
 * After a pass: the missions left out whose campaign deliveries have not all been
 * received (ledger_missing()) and that ro's exclude hook (--not-received, a reminder's
 * missions; may be NULL) keeps, how many (*nwait), the earliest time (*next, UTC seconds)
 * and its mission (*next_key, owned by s). Each one's plan is recorded once as a
 * 'schedule' event of campaign (detail: "KEY at TIME zone ZONE window W"). Returns EX_OK
 * or the ledger's code with *errstr.
 */
int schedule_waiting(struct schedule *s, struct ledger *l, const char *campaign,
                     const struct roster_opts *ro, size_t *nwait, int64_t *next,
                     const char **next_key, char **errstr);

/* "2026-12-01 09:00 America/New_York" for t in zone into out (size >= 64). Can't fail. */
void schedule_format_local(const char *zone, int64_t t, char *out, size_t size);

void schedule_free(struct schedule *s); /* the plan and hook state; safe on a zeroed one */

#endif
