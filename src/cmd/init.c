/* demarche init: make a workspace: demarche.ini, appeals/, outbox/, recipients/. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/datadir.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"

const char usage_init[] =
    "usage: demarche init [-q] [DIR]\n"
    "\n"
    "Makes a workspace in DIR (default: the current folder; made if missing): a commented\n"
    "demarche.ini (mode 0600) with every key and its default, appeals/, outbox/, and the\n"
    "example roster under recipients/. Prints the next commands to run.\n"
    "The example roster is read from $DEMARCHE_RECIPIENTS when set, else the installed share\n"
    "folder (BIN/../share/demarche, then the install prefix's), else the recipients/ of the\n"
    "source tree it was built from (wherever the build directory is).\n"
    "\n"
    "Exit: 0; 64 usage; 66 the example roster is not found; 73 DIR already holds a\n"
    "demarche.ini (nothing is changed) or cannot be written.\n"
    "\n" APP_OPTIONS_USAGE;

/*
 * The configuration every workspace starts with: each key of base/config.c's table, commented
 * out, so the defaults apply and the file loads as it is. Keep in step with config.c.
 */
static const char ini_text[] =
    "; demarche configuration (see 'man demarche', section CONFIGURATION).\n"
    "; Every key is commented out: its default applies. Remove the ';' to set one.\n"
    "; Secrets: prefer password_command (or the DEMARCHE_SMTP_PASSWORD environment\n"
    "; variable) to password; a file holding a password must stay mode 0600. A password is\n"
    "; looked up in this order: DEMARCHE_SMTP_PASSWORD / DEMARCHE_IMAP_PASSWORD, then\n"
    "; password_command, then password. Never put a user or password in a url.\n"
    "\n"
    "[sender]\n"
    "; The display name in From (default: none).\n"
    ";name = Coalition for the International Criminal Court\n"
    "; The From address and envelope sender; needed to send through SMTP\n"
    "; (default: an example address, good only for maildir and preview).\n"
    ";address = secretariat@coalition.example\n"
    "; Reply-To, when replies should go elsewhere (default: none).\n"
    ";reply_to =\n"
    "; The domain of Message-IDs and of EHLO (default: the domain of address).\n"
    ";domain =\n"
    "; Who sends, for approvals: their own approval does not count (default: the login name).\n"
    ";operator =\n"
    "\n"
    "[smtp]\n"
    "; Where send delivers: smtp://HOST[:PORT] (STARTTLS), smtps://HOST[:PORT] (TLS from\n"
    "; the first byte) or maildir:DIR (default: maildir:./outbox, no mail account needed).\n"
    "; Never smtp://user:password@host: refused; use user and password_command.\n"
    ";url = smtps://smtp.example.org\n"
    "; The AUTH user (default: none, no AUTH).\n"
    ";user =\n"
    "; The password itself; prefer password_command (default: none).\n"
    ";password =\n"
    "; A sendmail-compatible program (sendmail, msmtp) to pipe each message to, with its own\n"
    "; arguments, used when url is unset: PROGRAM ARGS -i -f SENDER -- RECIPIENTS...\n"
    ";sendmail = /usr/bin/msmtp -a work\n"
    "; A command whose first output line is the password, run once per send (default: none).\n"
    ";password_command = pass show mail/smtp\n"
    "; A command printing an OAuth 2 bearer token, used (XOAUTH2) instead of the password.\n"
    ";oauth_token_command =\n"
    "; Seconds password_command and oauth_token_command may run before they are killed.\n"
    ";command_timeout = 30\n"
    "; starttls, implicit or none (default: implicit for smtps://; for smtp:// STARTTLS is\n"
    "; required, except on loopback where it is used when offered).\n"
    ";tls =\n"
    "; A PEM file of CA certificates to verify the server with (default: the system's).\n"
    ";ca_file =\n"
    "; The pace of sending, N/minute or N/hour (default: no limit).\n"
    ";rate = 30/minute\n"
    "; Connections at once.\n"
    ";concurrency = 1\n"
    "; At most this many recipients in any 24 hours, counted from the ledger (0: no cap).\n"
    ";daily_cap = 0\n"
    "; Seconds allowed for one message, connection included.\n"
    ";timeout = 60\n"
    "; Seconds before the first retry of a deferred message in the same run (doubled each time).\n"
    ";retry_after = 2\n"
    "; Attempts per message in one run, the first included.\n"
    ";max_attempts = 3\n"
    "\n"
    "[imap]\n"
    "; The mailbox for Sent copies and bounces: imaps://HOST[:PORT] or imap://HOST[:PORT]\n"
    "; (STARTTLS required except on loopback) (default: none, no IMAP).\n"
    ";url = imaps://imap.example.org\n"
    "; The IMAP login (default: none).\n"
    ";user =\n"
    "; The password itself; prefer password_command (default: none).\n"
    ";password =\n"
    "; A command whose first output line is the IMAP password (default: none).\n"
    ";password_command =\n"
    "; Seconds password_command may run before it is killed.\n"
    ";command_timeout = 30\n"
    "; The folder that holds sent messages (default: Sent).\n"
    ";sent_folder = Sent\n"
    "; A PEM file of CA certificates to verify the server with (default: the system's).\n"
    ";ca_file =\n"
    "\n"
    "[store]\n"
    "; The ledger, an SQLite file (default: ./demarche.db, next to this file when run here).\n"
    ";path = demarche.db\n"
    "; A team ledger on PostgreSQL instead (a libpq URL, never with a password in it):\n"
    ";url = postgresql://demarche@db.example.org/demarche?sslmode=verify-full\n"
    "; A command whose first output line is the database password (or use ~/.pgpass).\n"
    ";password_command =\n"
    "; Seconds a sender holds a mission it is sending before it counts as in doubt (300).\n"
    ";lease = 300\n"
    "\n"
    "[approval]\n"
    "; How many approvals (demarche approve) send needs, by approvers other than the sender,\n"
    "; of exactly the letters it sends (default: 0, none).\n"
    ";required = 1\n"
    "; Who may approve: NAME:PUBLICKEY items as demarche keygen prints them.\n"
    ";approvers =\n"
    "; This person's secret key, for approve (default: ~/.config/demarche/approval.key).\n"
    ";key =\n"
    "; A command whose first output line is the passphrase of a sealed key (default: none).\n"
    ";passphrase_command =\n"
    "\n"
    "[letterhead]\n"
    "; The letter as a PDF (demarche letter; an appeal saying Form: pdf). File names are\n"
    "; relative to this file. The organisation, first line of the letterhead.\n"
    ";name = Coalition for the International Criminal Court\n"
    "; Address lines under it, separated by ';'.\n"
    ";address = Bezuidenhoutseweg 99A; 2594 AC The Hague, The Netherlands\n"
    "; A PNG or SVG logo at the top left of page 1.\n"
    ";logo = logo.svg\n"
    "; A line at the foot of every page.\n"
    ";footer = coalitionfortheicc.example\n"
    "; A4 (the default) or Letter.\n"
    ";paper = A4\n"
    "; Millimetres: one number, or four (top right bottom left).\n"
    ";margins = 25\n"
    "; A fontconfig family (fc-list : family lists them).\n"
    ";font = Noto Serif\n"
    "; A PNG or SVG image above the signature block (signature.NAME = FILE: above NAME's line).\n"
    ";signature =\n";

static int is_dir(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The folder holding the example roster, or NULL. The caller frees it. */
static char *find_recipients(void)
{
	const char *env = getenv("DEMARCHE_RECIPIENTS");
	char **dirs = NULL, *found = NULL;
	size_t n;

	if (env && *env)
		return is_dir(env) ? xstrdup(env) : NULL;
	n = datadir_list(&dirs);
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/recipients/missions.example.csv", dirs[i]);

		if (!found && access(p, R_OK) == 0)
			found = xasprintf("%s/recipients", dirs[i]);
		free(p);
		free(dirs[i]);
	}
	free(dirs);
	return found;
}

/* Writes len bytes to a new file (it must not exist) with mode. */
static int write_new(const char *path, const char *data, size_t len, mode_t mode, char **errstr)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t off = 0;

	if (fd < 0)
		return error_set(errstr, EX_CANTCREAT, "cannot create %s: %s", path,
		                 strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_set(errstr, EX_CANTCREAT, "cannot write %s: %s", path,
			          strerror(errno));
			close(fd);
			return EX_CANTCREAT;
		}
		off += (size_t)n;
	}
	/* umask may have taken bits away; the config must be exactly 0600 either way. */
	if (fchmod(fd, mode) != 0 || close(fd) != 0)
		return error_set(errstr, EX_CANTCREAT, "cannot write %s: %s", path,
		                 strerror(errno));
	return EX_OK;
}

static int make_dir(const char *path, char **errstr)
{
	if (mkdir(path, 0755) != 0 && !(errno == EEXIST && is_dir(path)))
		return error_set(errstr, EX_CANTCREAT, "cannot make %s: %s", path, strerror(errno));
	return EX_OK;
}

static int copy_file(const char *from, const char *to, char **errstr)
{
	char *data = NULL;
	size_t len;
	int rc;

	if (access(to, F_OK) == 0)
		return EX_OK; /* the user's own roster stays as it is */
	if (read_file(from, &data, &len) != 0)
		return error_set(errstr, EX_NOINPUT, "cannot read %s: %s", from, strerror(errno));
	rc = write_new(to, data, len, 0644, errstr);
	free(data);
	return rc;
}

int cmd_init(int argc, char **argv, struct app *app)
{
	static const char *const roster_files[] = {"missions.example.csv", "states-parties.csv",
	                                           "README.md"};
	const char *dir = ".";
	char *ini = NULL, *recipients = NULL, *path = NULL, *src = NULL, *err = NULL;
	static const struct option opts[] = {APP_LONG_OPTIONS, {NULL, 0, NULL, 0}};
	int rc, c;

	while ((c = getopt_long(argc, argv, APP_SHORT_OPTIONS, opts, NULL)) != -1) {
		int took = app_option(app, c, optarg);

		if (took <= 0) {
			if (!took)
				fputs(usage_init, stderr);
			return EX_USAGE;
		}
	}
	if (argc - optind > 1) {
		fputs(usage_init, stderr);
		return EX_USAGE;
	}
	if (optind < argc)
		dir = argv[optind];
	ini = xasprintf("%s/demarche.ini", dir);
	if (access(ini, F_OK) == 0) {
		rc = error_set(&err, EX_CANTCREAT,
		               "%s already holds a workspace (%s exists); nothing was changed", dir,
		               ini);
		goto out;
	}
	recipients = find_recipients();
	if (!recipients) {
		rc = error_set(&err, EX_NOINPUT,
		               "the example roster is not found: set DEMARCHE_RECIPIENTS to the "
		               "folder holding missions.example.csv");
		goto out;
	}
	if ((rc = make_dir(dir, &err)) != EX_OK)
		goto out;
	rc = write_new(ini, ini_text, sizeof(ini_text) - 1, 0600, &err);
	if (rc != EX_OK) {
		if (access(ini, F_OK) == 0) /* made by someone else meanwhile */
			rc = error_set(&err, EX_CANTCREAT, "%s already exists; nothing was changed",
			               ini);
		goto out;
	}
	static const char *const dirs[] = {"appeals", "outbox", "recipients"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		free(path);
		path = xasprintf("%s/%s", dir, dirs[i]);
		if ((rc = make_dir(path, &err)) != EX_OK)
			goto out;
	}
	for (size_t i = 0; i < sizeof(roster_files) / sizeof(roster_files[0]); i++) {
		free(src);
		free(path);
		src = xasprintf("%s/%s", recipients, roster_files[i]);
		path = xasprintf("%s/recipients/%s", dir, roster_files[i]);
		if (i > 0 && access(src, R_OK) != 0)
			continue; /* only the roster itself is required */
		if ((rc = copy_file(src, path, &err)) != EX_OK)
			goto out;
	}

	rc = EX_OK;
	if (app->quiet)
		goto out;
	printf("Made a workspace in %s: demarche.ini (mode 0600), appeals/, outbox/, recipients/.\n"
	       "Next:\n",
	       dir);
	if (strcmp(dir, "."))
		printf("  cd %s\n", dir);
	printf("  demarche draft asp-session -o appeals/asp24 --set session=24 ...   "
	       "# see 'demarche templates'\n"
	       "  demarche check appeals/asp24 --to recipients/missions.example.csv "
	       "--join recipients/states-parties.csv\n"
	       "  demarche send appeals/asp24 --to recipients/missions.example.csv "
	       "--join recipients/states-parties.csv --yes\n"
	       "Until [smtp] url is set in demarche.ini, send writes into outbox/; "
	       "'demarche doctor' checks the setup.\n");
	rc = EX_OK;
out:
	if (rc != EX_OK)
		fprintf(stderr, "demarche init: %s\n", err);
	free(err);
	free(ini);
	free(recipients);
	free(path);
	free(src);
	return rc;
}
