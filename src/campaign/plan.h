/*
 * The plan of a send (docs/design.md, "The send pipeline"). Pass 1 renders and composes
 * every selected mission exactly once, while validating, into a spool (an unlinked
 * temporary file: the roster is read once and memory does not grow with the messages).
 * Pass 2 reads the spool's envelopes, finds or makes each address's delivery in the ledger
 * and decides what this run sends. The engine then reads each message back from the spool.
 */
#ifndef DEMARCHE_PLAN_H
#define DEMARCHE_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "campaign/merge.h"
#include "campaign/message.h"
#include "ledger/ledger.h"

/*
 * A mission's state for the summary, worked out from its addresses' deliveries: in doubt
 * when any is unknown, else deferred when any is deferred, else failed when any failed, else
 * not started when any is still pending, else staged when any is staged (written to a local
 * outbox, not sent), else sent (every address sent, replied or bounced).
 */
enum mission_state {
	MS_SENT,
	MS_DEFERRED,
	MS_FAILED,
	MS_UNKNOWN,
	MS_NOT_STARTED,
	MS_STAGED,
	MS__COUNT
};

/* The state a mission is in when one more of its addresses is in delivery state s. */
enum mission_state mission_state_add(enum mission_state m, enum ledger_state s);
/* The worse of two mission states (in doubt, deferred, failed, not started, sent). */
enum mission_state mission_state_worse(enum mission_state a, enum mission_state b);
/* "sent", "deferred", "failed", "in doubt", "not started", "staged". Static. */
const char *mission_state_name(enum mission_state m);

/* --not-received CAMPAIGN: the roster leaves out missions that already received campaign
 * (sent or replied). nr (ledger and campaign set, error 0) must outlive the roster; its
 * error becomes 1 when the ledger could not answer. Can't fail. */
struct plan_not_received {
	struct ledger *ledger;
	const char *campaign;
	int error;
};
void plan_not_received(struct roster_opts *ro, struct plan_not_received *nr);

/*
 * Records the merge's campaign (ledger_campaign_begin()), as amend when asked or while none
 * of its deliveries went further than pending (an appeal may change until a letter left).
 * Same codes as ledger_campaign_begin().
 */
int plan_campaign_begin(struct ledger *l, const struct merge *m, int amend, char **errstr);

/* One mission this run sends. */
struct plan_mission {
	off_t off;               /* its record in the spool */
	uint32_t n;              /* addresses this run sends */
	uint32_t *idx;           /* which of the record's addresses, n of them */
	int64_t *deliv;          /* their deliveries, n of them (NULL in a test) */
	enum mission_state rest; /* the state of the addresses it does not send (MS_SENT if none) */
	enum mission_state state; /* before this run, then after it: the engine keeps it */
};

struct plan {
	int fd; /* the spool, when spool is 1 */
	int spool;
	off_t end; /* its size */
	struct plan_mission *m;
	size_t n;
	/* selected missions this run does not send, by the reason */
	size_t already_sent, skipped_failed, skipped_unknown;
	size_t skipped[MS__COUNT]; /* the same, by mission state */
	/* Set before plan_deliveries(): this run writes to a staging channel (a local outbox),
	 * which does not take staged deliveries again; a real transport sends them. */
	int staging;
	size_t already_staged; /* selected missions a staging run leaves (staged already) */
	int dry; /* set before plan_deliveries(): send --dry-run, the ledger only read */
};

/*
 * Pass 1: merge_validate() with every selected mission composed (message_build()) and
 * written to the spool; the spool lives in $TMPDIR (default /tmp), mode 0600, unlinked from
 * the start. Returns EX_OK, EX_DATAERR (every problem printed, prefixed by cmd; nothing
 * written anywhere else), or EX_CANTCREAT / EX_IOERR (the spool; *errstr).
 */
int plan_compose(struct plan *p, struct merge *m, struct message_run *mr, time_t date,
                 const char *cmd, char **errstr);

/* One composed mission added to the spool by hand (tests, imports). EX_OK or EX_IOERR. */
int plan_add(struct plan *p, const char *key, const char *message_id, const char *const *rcpt,
             size_t nrcpt, const char *data, size_t len, char **errstr);

/*
 * Pass 2, for a real send: in one transaction, every composed mission's deliveries found
 * or made (pending) in the ledger; a delivery a killed run left 'sending' becomes unknown
 * (recorded with via); pending and deferred ones are sent, failed and unknown ones only
 * with retry_flags (LEDGER_RETRY_*), sent/bounced/replied ones never, staged ones unless
 * p->staging (a later real send takes them). Returns EX_OK or the
 * ledger's code (*errstr). For a test (--test-to) use plan_all() instead.
 * With p->dry (send --dry-run) nothing is written: l may be read-only or NULL (no ledger
 * yet: every delivery would be new), a delivery not there counts as pending and one left
 * 'sending' as unknown, as a real run would find them.
 */
int plan_deliveries(struct plan *p, struct ledger *l, const char *campaign, unsigned retry_flags,
                    const char *via, char **errstr);

/* For a test: every composed mission, to one address. Can't fail. */
void plan_all(struct plan *p);

/* One spool record, read back: everything owned by it (plan_record_free()). */
struct plan_record {
	char *key, *message_id;
	char **rcpt;
	uint32_t nrcpt;
	char *data;
	size_t len;
	off_t next;     /* where the next record starts */
	char *document; /* the attached PDF letter's SHA-256 (message.h), or NULL */
};

/* Reads the record at off (with the message when with_data). EX_OK or EX_IOERR. */
int plan_read(const struct plan *p, off_t off, int with_data, struct plan_record *r, char **errstr);
void plan_record_free(struct plan_record *r); /* safe on a zeroed one */

/* Selected missions by state: those skipped plus those planned (their .state). */
void plan_count(const struct plan *p, size_t counts[MS__COUNT]);

void plan_free(struct plan *p); /* closes the spool; safe on a zeroed plan */

/*
 * What changed since the last letter (docs/design.md, "What changed since the last
 * letter"): the missions m's roster selects compared with the deliveries of the ledger's
 * newest other campaign (else the campaign's own, when it has some): new and removed missions (removed only when not filtered: with
 * --only, --where or --not-received the roster is a part), changed addresses, changed names
 * (those plan_record_names() kept for that campaign). Appends the
 * block (a line of counts, then up to 50 changes, escaped for the terminal) to out; nothing
 * when l is NULL or the ledger has no other campaign. Reads the roster once more. Returns
 * EX_OK or the ledger's code (*errstr).
 */
struct buf;
/*
 * Keeps, once per campaign, the names ("name, title") of the missions it writes to: one
 * 'roster' event ("KEY<TAB>NAME" lines) in the chain, for plan_changes() of a later
 * campaign. Nothing when the campaign has one already. EX_OK or the ledger's code.
 */
int plan_record_names(struct ledger *l, struct merge *m, char **errstr);
int plan_changes(struct ledger *l, struct merge *m, int filtered, struct buf *out, char **errstr);

#endif
