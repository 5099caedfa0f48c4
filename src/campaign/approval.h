/*
 * Two-person approval (docs/design.md, "Two-person approval"): who may approve ([approval]
 * approvers), who sends (the sender's identity), which recorded approvals count for a batch,
 * and the gate a real send passes: [approval] required approvals of exactly this batch by
 * distinct approvers other than the sender, each with a signature that verifies.
 */
#ifndef DEMARCHE_APPROVAL_H
#define DEMARCHE_APPROVAL_H

#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "campaign/batch.h"
#include "ledger/ledger.h"

struct approver {
	char *name, *key; /* key: base64 Ed25519 public key */
};

struct approvers {
	struct approver *v;
	size_t n;
};

/*
 * Reads [approval] approvers ("NAME:PUBKEY NAME:PUBKEY ...", spaces or commas between).
 * Returns EX_OK with a filled (approvers_free()), or EX_CONFIG with *errstr naming the bad
 * item (no colon, an empty name, a key that is not a public key, a name or key twice).
 */
int approvers_parse(const struct config *cfg, struct approvers *a, char **errstr);
/* The approver holding public key key, or NULL. */
const struct approver *approvers_find(const struct approvers *a, const char *key);
void approvers_free(struct approvers *a); /* safe on a zeroed one */

/* Who sends: [sender] operator, else the login name (of the effective user); allocated. */
char *approval_sender(const struct config *cfg);

/* This person's secret key file: [approval] key, else $XDG_CONFIG_HOME/demarche/approval.key
 * (~/.config when unset). Allocated. */
char *approval_key_path(const struct config *cfg);

struct sign_key;
struct merge;

/*
 * The approver's secret key from file (NULL: approval_key_path()), unsealed with the
 * passphrase from DEMARCHE_KEY_PASSPHRASE or [approval] passphrase_command when it is sealed.
 * EX_OK with *k (sign_key_free()), or a code with *errstr.
 */
int approval_key_load(const struct config *cfg, const char *file, struct sign_key **k,
                      char **errstr);

/*
 * Records approver's approval of batch b of m's campaign, signed with key (whose public half
 * is the approver's), in l's hash chain; the campaign is begun first when it is new (as send
 * would). demarche approve's and review's one way to approve. EX_OK or the ledger's code.
 */
int approval_record(struct ledger *l, struct merge *m, const struct batch *b,
                    const struct sign_key *key, const char *approver, char **errstr);

/* What the ledger's approvals of a campaign say about one batch. */
struct approval_tally {
	size_t counted;   /* distinct approvers, not the sender, valid, of this very batch */
	struct buf names; /* theirs, ", " between */
	struct buf notes; /* the approvals that do not count and why, a line each ("  ...") */
	int64_t last_seq; /* the last valid approval by a listed key (0: none) */
	char *last_by, *last_time, *last_batch, *last_date, *last_components;
	int64_t other_seq; /* the last valid one of another batch (0: none), for a diff */
	char *other_by, *other_time, *other_date, *other_components;
};

/*
 * Walks campaign's approvals for batch b. sender NULL: none is left out as the sender.
 * Returns EX_OK with t filled (approval_tally_free()), or the ledger's code with *errstr.
 */
int approval_tally(struct ledger *l, const struct approvers *ap, const char *sender,
                   const char *campaign, const struct batch *b, struct approval_tally *t,
                   char **errstr);
void approval_tally_free(struct approval_tally *t);

/*
 * For a real send (not --test-to), after plan_compose(): EX_OK when [approval] required is 0
 * or enough approvals cover this batch; EX_NOPERM (77) with *errstr "not approved: ..."
 * saying how many are needed and found, why others do not count and what changed since the
 * last approved batch; EX_CONFIG for a bad [approval]; the ledger's or the spool's codes.
 */
int approval_gate(struct ledger *l, const struct config *cfg, const struct merge_opts *mo,
                  struct merge *m, const struct message_run *mr, const struct plan *p,
                  char **errstr);

#endif
