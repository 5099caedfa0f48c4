/* What audit reports, per mission: a roster read once, and each campaign's deliveries folded
 * into one status per mission (the missions-first rule), by group. Only the public ledger and
 * roster APIs. */
#ifndef DEMARCHE_REPORT_MODEL_H
#define DEMARCHE_REPORT_MODEL_H

#include <stddef.h>

#include "base/error.h"
#include "ledger/ledger.h"
#include "roster/roster.h"

/*
 * The rule (README, man page): a mission is one roster key. Its main address is the roster's
 * email (the To of its message); when the ledger has no delivery to that address, the
 * mission's first delivery (lowest id: send records the To first). The mission is
 *   received  when its main address was accepted (sent or replied);
 *   partial   when it was not, but another of its addresses (a Cc) was;
 *   missing   otherwise: no address accepted, or never tried.
 */
enum rp_mstate { RP_RECEIVED, RP_PARTIAL, RP_MISSING };
const char *rp_mstate_name(enum rp_mstate m); /* "received", "partial", "missing"; static */

/* Why a mission is not received, from its main address's state (-1: no delivery). */
const char *rp_reason(int main_state); /* "never tried", "deferred", "failed", "in doubt",
                                          "bounced", "staged, not sent"; "" when received; static */

/* One roster row as kept: copies, owned by the roster. */
struct rp_mission {
	char *key, *name, *email; /* name: the roster's "state" column (NULL when none) */
	char *group;              /* the --by column's value; NULL when none or no --by */
	char **extra;             /* values of rp_roster.extra_names (NULL: none) */
};

struct rp_roster {
	struct rp_mission *v; /* in roster order */
	size_t n, cap;
	size_t *by_key; /* indexes of v sorted by key (strcmp: the ledger's order) */
	const char *by; /* the --by column or NULL (borrowed) */
	const char *const *extra_names; /* borrowed; NULL-terminated; may be NULL */
	size_t nextra;
	char **groups; /* distinct group values, sorted, "(none)" for a missing value */
	size_t ngroups;
	size_t *group_of; /* group index of each mission */
};

/*
 * Reads the roster (with joins and filters) into r: problems go to d with file, row and
 * column. by and extra name roster or joined columns to keep (borrowed). Returns EX_OK or
 * roster_open()/roster_each()'s codes (EX_NOINPUT, EX_USAGE, EX_DATAERR, EX_IOERR); a by or
 * extra column that the roster and its joins do not have: EX_USAGE, named in d. Free with
 * rp_roster_free() (safe on a zeroed struct).
 */
int rp_roster_read(const struct roster_opts *ro, const char *by, const char *const *extra,
                   struct rp_roster *r, struct diags *d);
void rp_roster_free(struct rp_roster *r);
/* The index of key in r, or -1. */
long rp_roster_find(const struct rp_roster *r, const char *key);

/* One mission's status in one campaign; strings owned (rp_status_free()). */
struct rp_status {
	int main_state; /* the main address's state; -1: no delivery */
	int naddr, naccepted;
	int code;      /* the main address's last SMTP code (0: none) */
	char *reply;   /* its last server reply; NULL when none */
	char *updated; /* when its state last changed */
	char *address; /* the main address as the ledger has it */
	long long main_id;
	int main_is_email; /* the main address is the roster's email */
};
enum rp_mstate rp_status_mstate(const struct rp_status *s);
void rp_status_free(struct rp_status *s, size_t n); /* frees the strings of n statuses */

/* Bounces and replies recorded per day (the day a delivery last changed state). */
struct rp_day {
	char day[11]; /* YYYY-MM-DD */
	long bounced, replied;
};

/* A campaign folded into missions. */
struct rp_campaign {
	char *id, *title, *hash, *first_sent, *last_sent; /* owned */
	long by_state[LS__COUNT];                         /* addresses by state */
	long addresses;
	long missions, received, partial, missing; /* with a roster: of the roster's missions */
	struct rp_status *status; /* with a roster: one per roster mission; else NULL */
	size_t nstatus;
	struct rp_day *days; /* sorted */
	size_t ndays;
};

/*
 * Folds campaign id's deliveries (one pass, streamed) into c: with a roster (r not NULL),
 * one status per roster mission (deliveries of keys outside the roster are left out of the
 * mission counts but not of by_state/addresses); without, missions are the ledger's keys.
 * c's id, title, hash and times come from meta (may be NULL: then only id is set).
 * Returns EX_OK or EX_IOERR (*err set). Free with rp_campaign_free().
 */
int rp_campaign_fold(struct ledger *l, const char *id, const struct ledger_campaign *meta,
                     const struct rp_roster *r, struct rp_campaign *c, char **err);
void rp_campaign_free(struct rp_campaign *c);

/* Counts of one group in one campaign. */
struct rp_counts {
	long missions, received, partial, missing, addresses, accepted;
};
/* Sums c's statuses per group of r into out[r->ngroups] (zeroed first) and *total. */
void rp_group_counts(const struct rp_roster *r, const struct rp_campaign *c, struct rp_counts *out,
                     struct rp_counts *total);

/* All campaigns (or only `only`, which must exist), folded, oldest first. */
struct rp_ledger {
	struct rp_campaign *v;
	size_t n;
};
int rp_ledger_fold(struct ledger *l, const char *only, const struct rp_roster *r,
                   struct rp_ledger *out, char **err);
void rp_ledger_free(struct rp_ledger *lg);

/*
 * Which version of the appeal a delivery was made for, from its Message-ID: send derives the
 * Message-ID from the campaign, the key and the appeal's content hash (mail_message_id()),
 * and the ledger keeps the one of the delivery's first attempt. Returns 1 when message_id
 * was made from hash (the current version), 0 when from another content (an earlier one,
 * before an --amend), -1 when it is not a Message-ID that demarche makes (or is NULL).
 * The amend events that would name the earlier hash are not readable through the public
 * ledger API, and a delivery first tried before an --amend and retried after it keeps its
 * first Message-ID: it says 0 though it carried the new version. Can't fail.
 */
int rp_carried(const char *campaign, const char *key, const char *message_id, const char *hash);

/* The first 12 hex digits of a content hash, written into out; NULL for NULL. */
const char *rp_short_hash(const char *hash, char out[13]);

#endif
