/*
 * Copies to Sent: each message SMTP accepted is appended to the [imap] account's Sent folder
 * (IMAP APPEND with \Seen and the message's own Date), over one session per run, and the
 * result is recorded in the ledger. A copy that cannot be appended is kept in the ledger
 * (table outbox_copies) and appended by sentcopy_retry() on the next send or `bounces`.
 * A copy never changes a delivery's state.
 */
#ifndef DEMARCHE_SENTCOPY_H
#define DEMARCHE_SENTCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "ledger/ledger.h"

struct sentcopy;

/*
 * Prepares the copies for one run from cfg's [imap] section: the account as
 * account_resolve() gives it (url, user, password in the order of campaign/account.h),
 * ca_file and sent_folder (default "Sent"). It does not connect: the first append does.
 * Returns NULL with *err untouched (pass it NULL) when [imap] url is not set (no copies:
 * not an error); NULL with *err set (allocated; the caller frees) when the section is unusable: a URL
 * holding credentials, no user, no password, or a password_command that failed or timed
 * out (exit code 78, EX_CONFIG).
 * Otherwise a struct the caller frees with sentcopy_close().
 */
struct sentcopy *sentcopy_open(const struct config *cfg, char **err);

/*
 * Appends one message (data, len: the exact bytes sent, CRLF line ends) to the Sent folder
 * and records, for each of deliveries[0..n) of campaign, an 'append' event with the UID
 * (UIDPLUS) or, when the append fails, an 'append-failed' event and the bytes kept for a
 * later retry. The session is opened on first use and reused; once the server could not be
 * reached in this run, later copies are kept without trying again.
 * Returns EX_OK (appended), EX_TEMPFAIL (not appended, kept and recorded: *err says why; a
 * warning, go on), or EX_IOERR (the ledger could not record it; *err).
 */
int sentcopy_append(struct sentcopy *sc, struct ledger *l, const char *campaign,
                    const int64_t *deliveries, size_t n, const char *data, size_t len, char **err);

/*
 * Appends the copies kept by earlier runs, oldest first; each one appended leaves the
 * ledger. *appended and *left (either may be NULL) count them. Returns EX_OK (none left),
 * EX_TEMPFAIL (some left: *err says why) or EX_IOERR (ledger).
 */
int sentcopy_retry(struct sentcopy *sc, struct ledger *l, size_t *appended, size_t *left,
                   char **err);

/* Copies kept for later in this run (sentcopy_append() returned EX_TEMPFAIL). Can't fail. */
size_t sentcopy_kept(const struct sentcopy *sc);

/* Logs out and frees everything; NULL is safe. Can't fail. */
void sentcopy_close(struct sentcopy *sc);

#endif
