/*
 * demarche send by the send calendar (campaign/schedule.h; docs/design.md, "The send
 * calendar"): each pass is one run (campaign/run.h) of the missions whose time has come;
 * before it, each mission's time is worked out; after it, what waits and whether another
 * pass follows. The command runs the passes, prints, sleeps and picks the exit code.
 */
#ifndef DEMARCHE_SENDRUN_H
#define DEMARCHE_SENDRUN_H

#include <stddef.h>
#include <stdint.h>

#include "campaign/run.h"
#include "campaign/schedule.h"

/* What a pass left for later. */
struct sendrun_wait {
	size_t n;         /* missions whose time has not come */
	int64_t next;     /* the earliest one's time, UTC seconds */
	char *key, *zone; /* its key and time zone (NULL: none given, UTC); owned */
};

/*
 * The calendar's options together with the others (schedule_check(), then: --until goes
 * with --until-done, which goes with --window or --at; --test-to sends now). EX_OK, or
 * EX_USAGE with *errstr.
 */
int sendrun_check(const struct schedule *sc, int until_done, const char *test_to, char **errstr);

/* Before a pass: with --window or --at, each mission's time from now (schedule_plan());
 * without, nothing (EX_OK). */
int sendrun_plan(struct schedule *sc, struct roster_opts *ro, const char *cmd);

/*
 * After a pass of r, with the calendar active and r's ledger and campaign set: the
 * missions that wait for their time, and the next one's key and zone (schedule_waiting()).
 * Returns EX_OK, or the ledger's code with *errstr (w->n then 0). w starts zeroed.
 */
int sendrun_waiting(struct schedule *sc, const struct run *r, const struct roster_opts *ro,
                    struct sendrun_wait *w, char **errstr);

/*
 * After a pass that returned rc and left w: 1 when another pass is to follow at w->next
 * (--until-done, missions wait, no stop, the pass sent or was held back: rc EX_OK,
 * EX_TEMPFAIL or EX_UNAVAILABLE); else 0 with *rc the run's code: EX_TEMPFAIL when missions
 * wait without --until-done (not started yet: run again), or when the next one's time
 * comes after --until (*errstr says so); rc as it was otherwise.
 */
int sendrun_again(const struct schedule *sc, int until_done, int stopped,
                  const struct sendrun_wait *w, int *rc, char **errstr);

void sendrun_wait_free(struct sendrun_wait *w); /* its strings; safe on a zeroed one */

#endif
