/*
 * Reminders (docs/design.md, "The send calendar"): an appeal whose header says
 * "Follows: CAMPAIGN" goes only to the missions that received CAMPAIGN and neither replied
 * nor bounced, once their first letter is old enough ('followup' event of `demarche
 * followup`: --after), and as a reply to it: In-Reply-To and References name the first
 * message's Message-ID, and the letter's context has first_date (the day the first letter
 * was sent, in the letter's language) and first_message_id.
 */
#ifndef DEMARCHE_FOLLOWUP_H
#define DEMARCHE_FOLLOWUP_H

#include <stddef.h>
#include <stdint.h>

#include "campaign/merge.h"
#include "ledger/ledger.h"
#include "roster/roster.h"

/* A mission of the followed campaign that received it and neither replied nor bounced. */
struct followup_mission {
	char *key, *message_id;
	int64_t sent; /* UTC seconds its first address was accepted */
};

/*
 * The missions of campaign awaiting an answer, in *out (sorted by key without case; free
 * with followup_missions_free()), *n of them; *answered receives how many replied or
 * bounced (may be NULL). Returns EX_OK or EX_IOERR with *errstr.
 */
int followup_missions(struct ledger *l, const char *campaign, struct followup_mission **out,
                      size_t *n, size_t *answered, char **errstr);
void followup_missions_free(struct followup_mission *m, size_t n);

/* "10d", "36h", "90m" or a number of days: seconds, or -1. */
int64_t followup_parse_after(const char *s);

/* The --after recorded by the latest 'followup' event of campaign (0 when none). */
int followup_recorded_after(struct ledger *l, const char *campaign, int64_t *after, char **errstr);

struct followup;
struct message_run;

/* Before merge_open(): installs ro's exclude hook (keeping the one there: --not-received).
 * l must outlive it. Can't fail; free with followup_free(). */
struct followup *followup_new(struct ledger *l, struct roster_opts *ro);

/*
 * After merge_open(): when the appeal says "Follows: CAMPAIGN", loads CAMPAIGN's missions
 * awaiting an answer and hooks m (context) and mr (threading); otherwise does nothing.
 * now is UTC seconds. Returns EX_OK, EX_DATAERR (no such campaign, or a Follows value that
 * is not an id) or EX_IOERR, with *errstr.
 */
int followup_bind(struct followup *f, struct merge *m, struct message_run *mr, int64_t now,
                  char **errstr);

/*
 * For check and preview, which hold no ledger: followup_new() on the ledger at store,
 * opened read-only when it exists (owned, closed by followup_free()); without one, a
 * reminder's followup_bind() is EX_NOINPUT. mr may then be NULL in followup_bind().
 */
struct followup *followup_new_readonly(const char *store, struct roster_opts *ro);

/* The first message's Message-ID for key, or NULL (not a reminder, or no such mission). */
const char *followup_thread(const struct followup *f, const char *key);

void followup_free(struct followup *f); /* NULL is safe */

#endif
