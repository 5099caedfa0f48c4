/* What demarche send prints: the plan before, progress during, the summary after. */
#ifndef DEMARCHE_CMD_SEND_H
#define DEMARCHE_CMD_SEND_H

#include <stdint.h>

#include "campaign/engine.h"
#include "campaign/merge.h"
#include "campaign/message.h"
#include "campaign/plan.h"
#include "campaign/run.h"
#include "campaign/sendrun.h"

struct send_view {
	const struct merge *m;
	const struct message_run *mr;
	const struct plan *p;
	const char *via; /* as it may be shown: never a password */
	const char *rate;
	int concurrency;
	size_t to_send; /* what this run will send (--limit counted) */
	int progress;   /* stderr is a terminal: one status line */
	int64_t t0;
	struct engine_stats st;
	/* a staging channel (a local outbox, maildir:DIR): nothing reaches the missions */
	int staging;
	int json; /* --format json: the summary as one JSON object on stdout */
};

/* The view of a prepared run (campaign/run.h); json: --format json. */
void send_view_init(struct send_view *v, const struct run *r, int json);

/* How the transport is described, plainly: "real send through smtp://HOST:PORT" or
 * "written to the local outbox DIR; nothing was sent to the missions". Caller frees. */
char *send_channel(const struct send_view *v, int past);

void send_print_plan(const struct send_view *v);
/*
 * send --dry-run: one line per mission the run would send, in its order (key, language,
 * transport, addresses, escaped for the terminal), then the counts; on stdout. Returns
 * EX_OK, or EX_IOERR when the spool cannot be read back.
 */
int send_print_dry(const struct send_view *v);

/*
 * What changed since the last letter (plan_changes()), printed to fp: with the ledger l, or
 * (l NULL) the one at store opened read-only when the file exists. For send's plan and for
 * check. filtered: --only, --where or --not-received (no "removed"). Returns EX_OK, or the
 * ledger's code having said why on stderr (the caller goes on: this is information).
 */
int print_changes(FILE *fp, struct ledger *l, const char *store, struct merge *m, int filtered);
/* The engine's report callback: progress on a terminal, else one line per problem. */
void send_print_outcome(void *u, const char *key, const struct transport_result *r, int will_retry);
/*
 * The summary: this run's messages, then the campaign's selected missions by state.
 * Returns the exit code those call for: 69 when any selected mission failed, 75 when any is
 * deferred, in doubt or not started, 0 when all are sent.
 */
int send_print_summary(const struct send_view *v, int test, int interrupted);
/* The daily cap reached before anything was sent: one line on stdout. */
void send_print_capped(const struct send_view *v, int daily_cap, long sent_today);
/* After the summary, on stderr: stopped by a signal (interrupted), or by the daily cap. */
void send_print_stopped(const struct send_view *v, int interrupted, int daily_cap);
/* What the send calendar left for later (nothing when w->n is 0): a line on stdout. */
void send_print_waiting(const struct sendrun_wait *w);

#endif
