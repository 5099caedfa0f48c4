/* The ledger: one SQLite file of campaigns, deliveries and hash-chained events. */
#ifndef DEMARCHE_LEDGER_H
#define DEMARCHE_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Delivery states (docs/design.md, "The ledger"). Stored by name. The only legal changes:
 *   pending -> sending; sending -> sent | deferred | failed | unknown; deferred -> sending;
 *   unknown -> sending (LEDGER_RETRY_UNKNOWN); failed -> sending (LEDGER_RETRY_FAILED);
 *   sent -> bounced | replied; sending -> staged; staged -> sending.
 * staged: written to a staging channel (a Maildir outbox), not sent to the mission: a later
 * send through a real transport takes it like a pending one (docs/design.md, "Staging").
 */
enum ledger_state {
	LS_PENDING,
	LS_SENDING,
	LS_SENT,
	LS_DEFERRED,
	LS_FAILED,
	LS_UNKNOWN,
	LS_BOUNCED,
	LS_REPLIED,
	LS_STAGED,
	LS__COUNT
};

/* "pending", "sending", ...; "?" out of range. Static, never NULL. Can't fail. */
const char *ledger_state_name(enum ledger_state s);
/* The state named s, or -1. */
int ledger_state_parse(const char *s);
/* 1 when the delivery reached the mission (sent or replied); 0 otherwise. */
int ledger_state_received(enum ledger_state s);

/* The schema version this program writes (PRAGMA user_version). */
/* 2: IMAP (Sent copies, bounces, replies); 3: indexes for audit's column widths;
 * 4: identity without case, every row in the chain (creation and adoption events);
 * 5: the state 'staged' allowed in deliveries.state;
 * 6: events name their operator and host; leases (several senders, PostgreSQL) */
#define LEDGER_SCHEMA_VERSION 6

struct ledger; /* opaque; one SQLite connection, used by one thread at a time (NOMUTEX) */

#define LEDGER_CREATE    0x1 /* create the file (mode 0600) when it does not exist */
#define LEDGER_READONLY  0x2 /* never write: no migration, works on a read-only file system */
#define LEDGER_EXCLUSIVE 0x4 /* one writer per ledger file (its inode): see below */
#define LEDGER_CHECK     0x8 /* run ledger_quick_check() once open */

/*
 * Opens (and with LEDGER_CREATE creates, mode 0600) the ledger at path and migrates its
 * schema forward. Returns EX_OK with *out set (free with ledger_close()), or:
 * EX_NOINPUT  the file does not exist and LEDGER_CREATE was not given;
 * EX_CONFIG   the file was written by a newer demarche (its user_version is higher than
 *             LEDGER_SCHEMA_VERSION), or (LEDGER_READONLY) its schema is too old to be read
 *             without an upgrade; the file is left exactly as it was;
 * EX_DATAERR  the file is not an SQLite database; two rows became one identity and cannot
 *             be merged (schema 4 migration; the file is left as it was); with LEDGER_CHECK,
 *             the quick check found the ledger damaged;
 * EX_TEMPFAIL LEDGER_EXCLUSIVE and another process holds the file's lock ("another
 *             demarche send is using this ledger (FILE)"), or SQLite stayed locked;
 * EX_IOERR / EX_CANTCREAT  SQLite or the file system failed.
 * LEDGER_EXCLUSIVE takes a non-blocking flock() on the database file's own descriptor, held
 * until ledger_close(): any path, symlink or hard link to the same file shares the lock.
 * LEDGER_READONLY opens for reading only (audit, verify); a ledger of schema 3 opens but is
 * not migrated (ledger_schema() tells), and the functions that write must not be called.
 * Every function below that writes may also return EX_TEMPFAIL (locked past the timeout).
 * *errstr names the file and the fix.
 */
int ledger_open(const char *path, int flags, struct ledger **out, char **errstr);
/*
 * A path that is "postgresql://...", "postgres://..." or a libpq "key=value ..." string
 * opens a PostgreSQL ledger instead (docs/design.md, "A team ledger on PostgreSQL"): the
 * same API, schema and chain. There LEDGER_EXCLUSIVE takes no lock (several senders share
 * a campaign through leases), LEDGER_CREATE creates the tables in an existing database, and
 * more codes: EX_CONFIG (a password in the string: use password_command or ~/.pgpass),
 * EX_UNAVAILABLE (cannot connect), EX_TEMPFAIL (the connection broke: try again).
 */
/* 1 when store names a PostgreSQL ledger (see above), not a file. Can't fail. */
int ledger_store_is_remote(const char *store);
/* The schema version of the open file (LEDGER_SCHEMA_VERSION unless opened read-only). */
int ledger_schema(struct ledger *l);
void ledger_close(struct ledger *l); /* NULL is safe */

/*
 * Who writes: every event of schema 5 records the operator ([sender] operator; NULL or ""
 * restores the default, the login name) and the host name. Process-wide; set it before the
 * first write. ledger_operator(): the name in use (static; never NULL).
 */
void ledger_set_operator(const char *operator_name);
const char *ledger_operator(void);

/* PostgreSQL stores: the command whose first output line is the role's password ([store]
 * password_command; NULL: none, libpq reads ~/.pgpass itself). Process-wide. */
void ledger_set_password_command(const char *command);

/*
 * For doctor: what the ledger is (backend, server version, database, role, TLS, schema,
 * whether the role may append events and write deliveries), in *text (caller frees).
 * Returns 0, or the sum of 1 (a PostgreSQL connection over the network without TLS) and 2
 * (the role may not write what a send writes). Can't fail.
 */
int ledger_describe(struct ledger *l, char **text);

/*
 * ledger copy: every campaign, delivery, event, observation, IMAP state and Sent copy of
 * `from` into `to` (both open for writing; `to` must hold no event), in one transaction of
 * `to`, rows and ids as they are: the copy's chain is the original's. Verifies `from` first
 * (nothing is copied from a damaged ledger) and the copy after; their heads must agree.
 * Works between any two backends. EX_OK with *r filled, EX_DATAERR (a chain does not
 * verify), EX_CANTCREAT (`to` is not empty), EX_IOERR, EX_TEMPFAIL.
 */
struct ledger_copy_report {
	long campaigns, deliveries, events;
	char head_from[65], head_to[65];
};
int ledger_copy_all(struct ledger *from, struct ledger *to, struct ledger_copy_report *r,
                    char **errstr);

/* Tests and benchmarks only: the clock events are stamped with (0: the real clock). */
void ledger_set_clock(struct ledger *l, time_t fixed);

/*
 * Records a campaign, or checks it against the recorded one. content_hash is the appeal's
 * SHA-256 (hex). First time: inserts it and a 'campaign' event. Same id and hash: EX_OK,
 * nothing written. Same id, other hash: EX_DATAERR ("use a new campaign id or --amend")
 * unless amend, which records an 'amend' event and the new hash, title and subject.
 * Other codes: EX_IOERR.
 */
int ledger_campaign_begin(struct ledger *l, const char *id, const char *title, const char *subject,
                          const char *content_hash, int amend, char **errstr);

/* 1 when the campaign exists, 0 when not, -1 on an SQLite error. */
int ledger_campaign_exists(struct ledger *l, const char *id);

struct ledger_delivery {
	int64_t id;
	enum ledger_state state;
	int attempts;
};

/*
 * Gets or creates (in state pending) the delivery of campaign to (key, address). Its
 * identity is (campaign, key, address) with key and address compared without ASCII case
 * (base/ident.h), as roster validation compares them: "ALB" finds "alb", and
 * "KEN@Missions.Example" finds "ken@missions.example". The campaign must have been begun.
 * message_id is stored on creation; an existing delivery keeps its own (and its key and
 * address as first recorded). A creation is a 'create' event in the chain, in the same
 * transaction. Before creating, the chain is asked (one index look-up) whether this identity
 * was created before: if so its row was deleted or edited, and EX_DATAERR ("ledger damaged:
 * ...; run demarche verify") is returned instead, so a damaged ledger never resends.
 * Returns EX_OK, EX_DATAERR (unknown campaign, or damaged) or EX_IOERR.
 */
int ledger_delivery_get(struct ledger *l, const char *campaign, const char *key,
                        const char *address, const char *message_id, struct ledger_delivery *out,
                        char **errstr);

/*
 * Finds, never creates, the delivery of campaign to (key, address) (compared as
 * ledger_delivery_get() does); works on a read-only ledger (send --dry-run). Returns EX_OK
 * with *out set, -1 when there is none, or EX_IOERR.
 */
int ledger_delivery_find(struct ledger *l, const char *campaign, const char *key,
                         const char *address, struct ledger_delivery *out, char **errstr);

/* What happened, recorded with a transition; every field may be 0/NULL. Never a secret. */
struct ledger_outcome {
	int code;           /* SMTP reply code */
	const char *reply;  /* the server's reply text, e.g. "250 2.0.0 Ok: queued as 4Xb2" */
	const char *via;    /* transport or account id, e.g. "smtp://user@host:587" */
	const char *detail; /* anything else worth keeping */
};

#define LEDGER_RETRY_UNKNOWN 0x1 /* allow unknown -> sending */
#define LEDGER_RETRY_FAILED  0x2 /* allow failed -> sending */

/*
 * THE ONLY WAY TO CHANGE A DELIVERY'S STATE. In one IMMEDIATE transaction: checks that
 * the change from the delivery's current state to `to` is legal, appends a 'transition'
 * event (with o's fields) to the chain, and updates the delivery (attempts + 1 on
 * -> sending; last code/reply when given; campaign first/last sent on -> sent). Durable
 * when it returns EX_OK (synchronous=FULL). o may be NULL.
 * EX_SOFTWARE: the transition is illegal -- a bug in the caller; *errstr says which
 * ("internal error: illegal transition unknown -> sending of delivery 7 ...").
 * EX_DATAERR: no such delivery. EX_IOERR: SQLite failed (nothing was written).
 * EX_TEMPFAIL: another demarche held the ledger past the busy timeout (10 s).
 * On success, *state_out (when not NULL) receives the new delivery (id, state, attempts).
 */
int ledger_transition(struct ledger *l, int64_t delivery, enum ledger_state to, unsigned flags,
                      const struct ledger_outcome *o, struct ledger_delivery *state_out,
                      char **errstr);

/*
 * Appends an event that changes no state: kind is "test" (a --test-to send), "bounce",
 * "reply", "append", "note"... but never "transition", "campaign" or "amend" (EX_SOFTWARE).
 * campaign and delivery (0: none) are what it is about. Returns EX_OK or EX_IOERR.
 */
int ledger_record(struct ledger *l, const char *kind, const char *campaign, int64_t delivery,
                  const struct ledger_outcome *o, char **errstr);

/*
 * The detail of campaign's latest event of kind (one ledger_record() wrote), allocated in
 * *detail (NULL when there is none). Works on a read-only ledger. EX_OK or EX_IOERR.
 */
int ledger_note_last(struct ledger *l, const char *campaign, const char *kind, char **detail,
                     char **errstr);

/*
 * How many deliveries (messages: with messages set, the distinct Message-IDs) became sent
 * through `via` at or after `since`, by any sender (rate windows and daily caps across runs
 * and senders). Returns EX_OK with *count set, or EX_IOERR.
 */
int ledger_count_sent(struct ledger *l, const char *via, time_t since, int messages, long *count,
                      char **errstr);

/* One delivery as the queries below see it; the strings belong to the ledger and live
 * only during the callback; NULL when not recorded. */
struct ledger_row {
	int64_t id;
	const char *campaign, *key, *address, *message_id;
	enum ledger_state state;
	int attempts;
	int last_code;
	const char *last_reply, *via;
	const char *created, *updated; /* ISO 8601 UTC */
	const char *operator_name;     /* who wrote its last event (ledger_want_operator()) */
};

/* A callback returning non-zero stops the walk; that value is then returned. It must not
 * start the same walk again (each query has one prepared statement per ledger). */
typedef int (*ledger_row_fn)(const struct ledger_row *row, void *ctx);

/*
 * Calls fn for every delivery of campaign, ordered by key then address: read in the order
 * of the (campaign, key, address) index, so a million rows stream without a sort and
 * without being held. Returns EX_OK, fn's non-zero value, or EX_IOERR.
 */
int ledger_deliveries(struct ledger *l, const char *campaign, ledger_row_fn fn, void *ctx,
                      char **errstr);
/* Makes ledger_deliveries() fill each row's operator_name too (schema 5; one index look-up
 * a row, so only when asked). Can't fail. */
void ledger_want_operator(struct ledger *l, int want);

/*
 * Widest key, address and last reply (in characters, 0 when none) among campaign's
 * deliveries, from indexes: as cheap for a million deliveries as for ten. EX_OK or EX_IOERR.
 */
struct ledger_widths {
	int key, address, reply;
};
int ledger_delivery_widths(struct ledger *l, const char *campaign, struct ledger_widths *w,
                           char **errstr);

struct ledger_campaign {
	const char *id, *title, *subject, *content_hash;
	const char *created, *first_sent, *last_sent; /* NULL when never sent */
	long counts[LS__COUNT];                       /* deliveries by state */
	long total;
};
typedef int (*ledger_campaign_fn)(const struct ledger_campaign *c, void *ctx);

/* Calls fn for every campaign, oldest first (strings live during the call). Same codes. */
int ledger_campaigns(struct ledger *l, ledger_campaign_fn fn, void *ctx, char **errstr);

/*
 * For --not-received and audit --missing: calls fn(key, ctx) for each of keys[0..n) that
 * has no delivery of campaign in a received state (sent or replied), in the given order.
 * Returns EX_OK, fn's non-zero value, or EX_IOERR.
 */
int ledger_missing(struct ledger *l, const char *campaign, const char *const *keys, size_t n,
                   int (*fn)(const char *key, void *ctx), void *ctx, char **errstr);

/*
 * For audit --matrix: fills states[i * ncampaigns + j] with the best state (replied, sent,
 * bounced, unknown, deferred, sending, failed, staged, pending, in that order) of keys[i]'s
 * deliveries in campaigns[j], or -1 when it has none. states has n * ncampaigns entries.
 * Returns EX_OK or EX_IOERR.
 */
int ledger_matrix(struct ledger *l, const char *const *keys, size_t n, const char *const *campaigns,
                  size_t ncampaigns, int *states, char **errstr);

/*
 * Recomputes the hash chain, replays it, and compares the result with every row of
 * deliveries and campaigns: each delivery must have its creation event and match it (key,
 * address, message_id, campaign, identity), its state must be the to_state of its last
 * transition, its attempts the number of -> sending, its last_code, last_reply and via those
 * of its last transitions; each campaign's content_hash, title, subject and sent times must
 * be those of its events; a row without events (inserted) or events without a row (deleted)
 * is named. EX_OK: *nevents and head (65 bytes: hex SHA-256, or 64 zeros for an empty
 * chain) are set. EX_DATAERR: *errstr names the first broken event, or every damaged row (up
 * to 20, one a line, "delivery 7 (KEN, ken@...): address edited"). EX_IOERR: SQLite failed.
 * A read-only ledger of schema 3 gets the checks of schema 3 (chain, states, attempts).
 */
int ledger_verify(struct ledger *l, long *nevents, char head[65], char **errstr);

/*
 * The quick integrity check, cheap at a million deliveries (one index count, a few rows):
 * as many deliveries as the chain created (each creation event carries its ordinal, so the
 * last one counts them all, even when a row was deleted with its event); the chain's head
 * (its last event) hashes right, links to the event before it, is the highest event ever
 * written, and agrees with the row it changed. Returns EX_OK (also for a read-only ledger of
 * schema 3, whose rows are not in the chain yet), EX_DATAERR ("ledger damaged: ...; run
 * demarche verify", naming what is wrong) or EX_IOERR. ledger_verify() is the full check.
 */
int ledger_quick_check(struct ledger *l, char **errstr);

/*
 * 1 when the ledger file at path can be read or written by its group or others, with
 * *warning (caller frees) naming the file, its mode and the fix; 0 otherwise (also when
 * it does not exist), *warning NULL. Can't fail.
 */
int ledger_file_mode_check(const char *path, char **warning);

/* --- What comes back over IMAP (schema 2) ---------------------------------------------- */

/*
 * Calls fn for every delivery whose Message-ID is message_id, compared without case and
 * with or without its angle brackets ("a@b" finds "<a@b>"), ordered by id: all the
 * addresses (To and Cc) one message went to. Returns EX_OK, fn's non-zero value, or
 * EX_IOERR. The row's strings live during the callback only; do not write from fn.
 */
int ledger_find_message(struct ledger *l, const char *message_id, ledger_row_fn fn, void *ctx,
                        char **errstr);

/*
 * Calls fn for every delivery to address (without case), of campaign (NULL: of any
 * campaign), newest (highest id) first. Same codes and rules as ledger_find_message().
 */
int ledger_find_address(struct ledger *l, const char *campaign, const char *address,
                        ledger_row_fn fn, void *ctx, char **errstr);

/* What ledger_observe() did. */
enum ledger_observed {
	LEDGER_SEEN_BEFORE, /* (kind, delivery, source) was recorded earlier: nothing written */
	LEDGER_EVENT,       /* an event of `kind` was appended; the state did not change */
	LEDGER_CHANGED,     /* the delivery went to the state asked for (a transition event) */
};

/*
 * Records something learnt later about a delivery (a bounce, a reply, an auto-reply, a
 * delayed notice), at most once per (kind, delivery, source): source names the evidence,
 * normally the received message's Message-ID, so reading a folder again records nothing
 * new. In one transaction: when `to` is a state (LS_BOUNCED, LS_REPLIED; -1: none) and the
 * delivery may go there from its current state (only sent may), the transition through the
 * one door (with o, see ledger_transition()); otherwise an event of kind on the delivery
 * (kind as for ledger_record()), whose detail is o->detail plus the state it was in.
 * *what (may be NULL) says which. Returns EX_OK, EX_DATAERR (no such delivery), EX_SOFTWARE
 * (bad kind or source), EX_IOERR or EX_TEMPFAIL.
 */
int ledger_observe(struct ledger *l, const char *kind, int64_t delivery, int to, const char *source,
                   const struct ledger_outcome *o, enum ledger_observed *what, char **errstr);

/*
 * The last UID read in folder of account (any string naming the server and user, never a
 * password) and the folder's UIDVALIDITY then; both 0 when never read. EX_OK or EX_IOERR.
 */
int ledger_imap_state(struct ledger *l, const char *account, const char *folder,
                      uint32_t *uidvalidity, uint32_t *last_uid, char **errstr);
/* Stores them (committed when it returns EX_OK). EX_OK, EX_IOERR or EX_TEMPFAIL. */
int ledger_imap_state_set(struct ledger *l, const char *account, const char *folder,
                          uint32_t uidvalidity, uint32_t last_uid, char **errstr);

/*
 * Sent copies. A copy appended to the IMAP Sent folder: in one transaction, an 'append'
 * event per delivery (detail: folder, UID and UIDVALIDITY when known, i.e. with UIDPLUS;
 * via: the account), the copy's UID per delivery (see ledger_sent_copy()), and the removal
 * of pending copy `pending` (0: none). A copy that could not be appended: an
 * 'append-failed' event per delivery (detail: why) and the message bytes kept in the ledger
 * (table outbox_copies) until an append succeeds: a new pending copy when pending is 0,
 * else pending's attempts + 1. Neither changes a delivery's state.
 * Returns EX_OK, EX_DATAERR (n = 0), EX_IOERR or EX_TEMPFAIL.
 */
int ledger_copy_appended(struct ledger *l, const char *campaign, const int64_t *deliveries,
                         size_t n, const char *via, const char *folder, uint32_t uidvalidity,
                         uint32_t uid, int64_t pending, char **errstr);
int ledger_copy_failed(struct ledger *l, const char *campaign, const int64_t *deliveries, size_t n,
                       const char *via, const char *data, size_t len, const char *why,
                       int64_t pending, char **errstr);

/* The ids of the pending copies, oldest first, in *ids (caller frees; NULL when none). */
int ledger_copies_pending(struct ledger *l, int64_t **ids, size_t *n, char **errstr);

/* One pending copy; everything owned by the struct (ledger_copy_clear()). */
struct ledger_copy {
	int64_t id;
	char *campaign;
	int64_t *deliveries;
	size_t n;
	char *data; /* the message, NUL-terminated */
	size_t len;
	int attempts;
};
/* Reads pending copy id into *out. EX_OK, EX_DATAERR (no such copy) or EX_IOERR. */
int ledger_copy_get(struct ledger *l, int64_t id, struct ledger_copy *out, char **errstr);
void ledger_copy_clear(struct ledger_copy *c); /* safe on a zeroed struct */

/*
 * Where the Sent copy of delivery is: *uid and *uidvalidity (0 when the server has no
 * UIDPLUS). Returns 1 when a copy was appended, 0 when not, -1 on an SQLite error.
 */
int ledger_sent_copy(struct ledger *l, int64_t delivery, uint32_t *uidvalidity, uint32_t *uid);

/* --- The send calendar ------------------------------------------------------------------ */

/* An event that changed no state, as ledger_events() gives it; strings live during the call. */
struct ledger_event {
	const char *time; /* ISO 8601 UTC */
	int64_t delivery; /* 0: about the campaign */
	const char *detail;
};

/*
 * Calls fn for every event of kind ("schedule", "followup", ...: see ledger_record()) about
 * campaign, oldest first (a walk of the events: for reports, not per message). fn returns
 * non-zero to stop. Returns EX_OK, fn's value or EX_IOERR.
 */
int ledger_events(struct ledger *l, const char *campaign, const char *kind,
                  int (*fn)(const struct ledger_event *e, void *ctx), void *ctx, char **errstr);

/*
 * Groups writes in one transaction, durable only at ledger_batch_end(commit = 1); end with
 * commit = 0 rolls the whole batch back. Batches nest, and every function that writes opens
 * its own SAVEPOINT inside the batch: a transition that fails inside one is undone alone
 * (its error returned), and the batch may go on. Returns EX_OK, EX_IOERR or EX_TEMPFAIL.
 */
int ledger_batch_begin(struct ledger *l, char **errstr);
int ledger_batch_end(struct ledger *l, int commit, char **errstr);

/* --- Approvals (docs/design.md, "Two-person approval") --------------------------------- */

/*
 * One approval: approver (a name of [approval] approvers) signed, with public_key's secret
 * half, that the batch (campaign/batch.h) of campaign is to be sent. components are the
 * batch's parts ("HASH NAME" lines), kept to say what changed since. Strings are borrowed.
 */
struct ledger_approval {
	int64_t seq;      /* its event; 0 before it is recorded */
	const char *time; /* when it was recorded (ISO 8601 UTC); NULL before */
	const char *campaign, *approver, *public_key, *batch, *date, *components;
	const char *signature; /* base64 Ed25519 of ledger_approval_statement() */
	int valid;             /* ledger_approvals(): the signature verifies */
};

/* The bytes an approver signs: every field but seq, time, signature and valid, in one
 * unambiguous encoding (caller frees; *len gets the length). Can't fail. */
char *ledger_approval_statement(const struct ledger_approval *a, size_t *len);

/*
 * Records an approval as an 'approval' event of a->campaign (which must have been begun),
 * in the chain. The signature is checked first: EX_DATAERR when it does not verify. Returns
 * EX_OK, EX_DATAERR, EX_IOERR or EX_TEMPFAIL.
 */
int ledger_approval_add(struct ledger *l, const struct ledger_approval *a, char **errstr);

/*
 * Calls fn for every approval of campaign (NULL: of every campaign), oldest first, its
 * signature checked (a->valid). An event whose detail cannot be read comes with valid 0
 * and NULL for what it lacks. Returns EX_OK, fn's non-zero value, or EX_IOERR.
 */
int ledger_approvals(struct ledger *l, const char *campaign,
                     int (*fn)(const struct ledger_approval *a, void *ctx), void *ctx,
                     char **errstr);
/* --- A team ledger (schema 5) ---------------------------------------------------------- */

/*
 * Several senders on one campaign (docs/design.md, "A team ledger on PostgreSQL").
 * ledger_claim(): deliveries[0..n) (one mission's) to sending through the one door, all or
 * none: on PostgreSQL only when each may still go there (another sender may have taken or
 * sent it since this run planned), with a lease (holder: operator@host pid, since, until
 * now + ledger_set_lease() seconds, default 300); *claimed 1 when taken, 0 when another
 * sender has it (nothing written). SQLite (one sender per file) transitions them as
 * ledger_transition() does. Codes as ledger_transition().
 * ledger_settle_sending(): a delivery found in state sending when a run plans: in doubt
 * (unknown, with o) unless, on PostgreSQL, another sender's lease on it is still running
 * (then *d says sending and nothing is written). Codes as ledger_transition().
 */
void ledger_set_lease(int seconds);
int ledger_claim(struct ledger *l, const char *campaign, const int64_t *deliveries, size_t n,
                 unsigned flags, const struct ledger_outcome *o, int *claimed, char **errstr);
int ledger_settle_sending(struct ledger *l, int64_t delivery, const struct ledger_outcome *o,
                          struct ledger_delivery *d, char **errstr);

#endif
