/* demarche send by the send calendar: the plan before a pass, what waits after it. */
#include "campaign/sendrun.h"

#include <stdlib.h>
#include <sysexits.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/xalloc.h"

int sendrun_check(const struct schedule *sc, int until_done, const char *test_to, char **errstr)
{
	int rc = schedule_check(sc, errstr);

	if (rc == EX_OK && sc->until && !until_done)
		rc = error_set(errstr, EX_USAGE, "--until goes with --until-done");
	if (rc == EX_OK && until_done && !schedule_active(sc))
		rc = error_set(errstr, EX_USAGE, "--until-done goes with --window or --at");
	if (rc == EX_OK && test_to && schedule_active(sc))
		rc = error_set(errstr, EX_USAGE, "--test-to sends now: no --window or --at");
	return rc;
}

int sendrun_plan(struct schedule *sc, struct roster_opts *ro, const char *cmd)
{
	if (!schedule_active(sc))
		return EX_OK;
	return schedule_plan(sc, ro, clock_real_ms() / 1000, cmd);
}

int sendrun_waiting(struct schedule *sc, const struct run *r, const struct roster_opts *ro,
                    struct sendrun_wait *w, char **errstr)
{
	const char *key = NULL;
	int rc;

	rc = schedule_waiting(sc, r->ledger, r->m->campaign, ro, &w->n, &w->next, &key, errstr);
	if (rc != EX_OK) {
		w->n = 0;
		return rc;
	}
	if (w->n && key) {
		w->key = xstrdup(key);
		/* key points into its own entry (schedule.h), which has the zone */
		for (size_t i = 0; i < sc->n; i++)
			if (sc->e[i].key == key && sc->e[i].zone)
				w->zone = xstrdup(sc->e[i].zone);
	}
	return EX_OK;
}

int sendrun_again(const struct schedule *sc, int until_done, int stopped,
                  const struct sendrun_wait *w, int *rc, char **errstr)
{
	if (!w->n || stopped || (*rc != EX_OK && *rc != EX_TEMPFAIL && *rc != EX_UNAVAILABLE))
		return 0;
	if (!until_done) {
		if (*rc == EX_OK)
			*rc = EX_TEMPFAIL; /* not started yet: run again (or --until-done) */
		return 0;
	}
	if (sc->until && w->next >= sc->until) {
		*rc = error_set(errstr, EX_TEMPFAIL,
		                "%zu missions left: the next time comes after --until", w->n);
		return 0;
	}
	return 1;
}

void sendrun_wait_free(struct sendrun_wait *w)
{
	free(w->key);
	free(w->zone);
	w->key = w->zone = NULL;
}
