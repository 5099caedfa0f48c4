/*
 * Accounts: the one place where an SMTP or IMAP account's URL, user and secret are resolved,
 * for send, doctor, bounces and the Sent copies alike.
 *
 * The password comes from the first of, in this order (the same for SMTP and IMAP):
 *   1. the environment variable DEMARCHE_SMTP_PASSWORD / DEMARCHE_IMAP_PASSWORD (not empty);
 *   2. [smtp] / [imap] password_command: its first output line, the command run once, in a
 *      process group of its own, killed after command_timeout seconds (default 30);
 *   3. [smtp] / [imap] password in the file (which must then be mode 0600).
 * For SMTP, oauth_token_command (with a user) gives an XOAUTH2 bearer token instead, and the
 * password is then not looked up at all.
 * A URL never holds a password: one that does is refused (EX_CONFIG) before anything else,
 * and no URL this module returns can hold one, so all of them may be printed and stored.
 */
#ifndef DEMARCHE_ACCOUNT_H
#define DEMARCHE_ACCOUNT_H

#include "base/config.h"

enum account_kind { ACCOUNT_SMTP, ACCOUNT_IMAP };

struct account {
	enum account_kind kind;
	/*
	 * The server: --via, else [smtp] / [imap] url; for SMTP "maildir:./outbox" when neither
	 * is set. Checked: no user, password or login options in it. Safe to print and store.
	 */
	char *url;
	int maildir; /* SMTP only: url is "maildir:DIR" (no server, no login, no secret) */
	char *user;  /* [smtp] / [imap] user; NULL for SMTP without AUTH (or maildir) */
	/*
	 * The account as the ledger and the rate windows name it: "URL;user=USER", or "URL"
	 * without a user. Never a password. The same formula as every earlier version, so the
	 * rate windows, daily caps and the IMAP read positions of older ledgers still match.
	 */
	char *id;
	char *ca_file; /* [smtp] / [imap] ca_file, NULL when unset */
	/* Set by account_secret() (or ACCOUNT_SECRET); wiped by account_free(). */
	char *password;    /* NULL when no login is needed or a token is used */
	char *oauth_token; /* SMTP only, from oauth_token_command */
	/* Where the secret came from, for messages: "DEMARCHE_IMAP_PASSWORD", "[imap]
	 * password_command", "[imap] password", "[smtp] oauth_token_command"; NULL before. */
	const char *secret_source;

	/* Private to account.c: the configuration account_secret() needs, copied. */
	struct {
		char *password_command, *password, *oauth_command;
		int timeout, done;
	} priv;
};

#define ACCOUNT_SECRET 1 /* account_resolve(): also look up the secret now */

/*
 * Resolves the account of kind from cfg, with via (--via, or NULL) in place of the URL of
 * the configuration. Runs nothing unless flags has ACCOUNT_SECRET.
 * Returns EX_OK with *out set (free it with account_free()), or, for IMAP without any URL,
 * EX_OK with *out NULL (no IMAP account: not an error here; the caller says what it
 * needs). EX_CONFIG with *out NULL and *errstr (allocated; no secret in it) when:
 *   - the URL holds a password ("[smtp] url" / "--via" named, the URL shown redacted,
 *     pointing at user and password_command), or a user or login options;
 *   - IMAP: a URL without [imap] user;
 *   - with ACCOUNT_SECRET, as account_secret().
 * Call it before anything is written: a refused URL must leave no trace in the ledger.
 */
int account_resolve(enum account_kind kind, const struct config *cfg, const char *via, int flags,
                    struct account **out, char **errstr);

/*
 * Looks up the secret in the order above, once (later calls return EX_OK at once).
 * Nothing is needed for maildir or SMTP without a user: EX_OK, password NULL.
 * EX_CONFIG with *errstr (no secret in it) when a command fails, times out or prints
 * nothing, or when a login is needed and no source gives a secret (the message names the
 * sources to set).
 */
int account_secret(struct account *a, char **errstr);

/* Wipes the secrets and frees everything; NULL is safe. Can't fail. */
void account_free(struct account *a);

#endif
