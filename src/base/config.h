/*
 * Configuration: demarche.ini read with inih. Found at --config FILE, else ./demarche.ini,
 * else $XDG_CONFIG_HOME/demarche/config.ini (~/.config when XDG_CONFIG_HOME is unset);
 * none at all gives the defaults (send writes to maildir:./outbox).
 */
#ifndef DEMARCHE_CONFIG_H
#define DEMARCHE_CONFIG_H

#include <stddef.h>

struct config {
	char *path; /* the file read, or NULL when none was found */

	struct {
		char *name, *address, *reply_to, *domain;
		/* who sends, for approvals and in every ledger event (NULL: the login name) */
		char *operator;
	} sender;
	struct {
		char *url, *user, *password, *password_command, *oauth_token_command;
		char *tls; /* "", "starttls", "implicit" or "none" */
		char *ca_file;
		char *rate; /* "N/minute" or "N/hour", or NULL */
		int concurrency, daily_cap, timeout, retry_after, max_attempts;
		int command_timeout; /* seconds for password_command and oauth_token_command */
		char *sendmail;      /* "PROGRAM [ARG...]": send through it when url is unset */
	} smtp;
	struct {
		char *url, *user, *password, *password_command, *sent_folder, *ca_file;
		int command_timeout; /* seconds for password_command */
	} imap;
	struct {
		char *path;
		/* a PostgreSQL ledger instead of the file (libpq URL or key=value string, never
		 * with a password), the command printing its password, the seconds a sender's
		 * lease on a mission lasts (0: the default) */
		char *url, *password_command;
		int lease;
	} store;
	/* Two-person approval (docs/design.md, "Two-person approval") */
	struct {
		int required;    /* approvals send needs; 0: none */
		char *approvers; /* "NAME:PUBKEY NAME:PUBKEY ..." */
		char *key;       /* this person's secret key file */
		char *passphrase_command;
	} approval;
	/* The pairs of the sections whose whole content is hashed (config_section_hash()), in
	 * file order. */
	struct config_pair {
		char *section, *name, *value;
	} * pairs;
	size_t npairs;
	/* The letter as a PDF (src/pdf/pdf.h): file names relative to the configuration's
	 * folder; signature.NAME = FILE keys give sig_names[i] and sig_files[i]. */
	struct {
		char *name, *address, *logo, *footer, *paper, *margins, *font, *signature;
		char **sig_names, **sig_files;
		size_t nsigs;
	} letterhead;
};

/* Fills cfg with the defaults. Can't fail. */
void config_init(struct config *cfg);

/*
 * Finds and reads the configuration (explicit is --config or NULL). Returns EX_OK,
 * EX_NOINPUT (explicit file missing), or EX_CONFIG (unreadable, syntax error, unknown key,
 * bad value, or a file holding a password that group or others can read); *errstr then
 * names the file, the line and the fix.
 */
int config_load(struct config *cfg, const char *explicit, char **errstr);

/* Reads one given file into cfg (which holds defaults or earlier values). Same codes. */
int config_read_file(struct config *cfg, const char *path, char **errstr);

void config_free(struct config *cfg); /* safe on a config_init'ed one */

/*
 * What section ([letterhead]) says, as a whole: hex SHA-256 over its names and values (each
 * NUL-terminated) in file order. Returns 1 with hex set, or 0 when the file has no such section (hex empty).
 * Only sections whose pairs are kept can be asked (letterhead). Can't fail.
 */
int config_section_hash(const struct config *cfg, const char *section, char hex[65]);

#endif
