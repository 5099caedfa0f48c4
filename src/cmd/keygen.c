/* demarche keygen: make an approver's Ed25519 key pair. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/secret.h"
#include "base/sign.h"
#include "base/xalloc.h"
#include "campaign/approval.h"
#include "cmd/cmd.h"

const char usage_keygen[] =
    "usage: demarche keygen [--out FILE] [--name NAME] [--passphrase]\n"
    "\n"
    "Makes an Ed25519 key pair for approving batches (demarche approve). The secret key is\n"
    "written to FILE (default [approval] key, else ~/.config/demarche/approval.key), mode\n"
    "0600, never over an existing file; it is never printed. The public key is printed with\n"
    "the line to add to [approval] approvers in the sending configuration.\n"
    "\n"
    "  --out FILE     where to write the secret key\n"
    "  --name NAME    the approver's name in that line (default the login name)\n"
    "  --passphrase   seal the key with a passphrase (Argon2id): from\n"
    "                 DEMARCHE_KEY_PASSPHRASE, else [approval] passphrase_command\n"
    "\n"
    "Exit: 0 written; 64 usage; 73 FILE exists or cannot be created; 74 it cannot be\n"
    "written; 78 --passphrase without a passphrase.\n";

/* The folders of a default key file, made (0700) where missing, as mkdir -p. */
static void make_folder(const char *path)
{
	char *dir = xstrdup(path);

	for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (access(dir, F_OK) != 0)
			mkdir(dir, 0700);
		*p = '/';
	}
	free(dir);
}

int cmd_keygen(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
	                                     {"name", required_argument, NULL, 'n'},
	                                     {"passphrase", no_argument, NULL, 'p'},
	                                     {NULL, 0, NULL, 0}};
	const char *out = NULL, *name = NULL;
	char *path = NULL, *pass = NULL, *err = NULL, *login = NULL;
	char pub[SIGN_PUBLIC_B64];
	struct sign_key *k = NULL;
	int c, rc, seal = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 'n')
			name = optarg;
		else if (c == 'p')
			seal = 1;
		else {
			fputs(usage_keygen, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || (name && (!*name || strpbrk(name, ": \t,\n")))) {
		if (name)
			fprintf(stderr, "demarche keygen: a name has no colon, comma or space\n");
		fputs(usage_keygen, stderr);
		return EX_USAGE;
	}
	if ((rc = app_config(app)) != EX_OK)
		return rc;
	path = out ? xstrdup(out) : approval_key_path(&app->cfg);
	if (!out)
		make_folder(path);
	if (seal) {
		rc = secret_get("DEMARCHE_KEY_PASSPHRASE", app->cfg.approval.passphrase_command,
		                &pass, &err);
		if (rc == EX_OK && !pass)
			rc = error_set(&err, EX_CONFIG,
			               "--passphrase: set DEMARCHE_KEY_PASSPHRASE or [approval] "
			               "passphrase_command");
	}
	if (rc == EX_OK)
		rc = sign_key_new(&k, &err);
	if (rc == EX_OK)
		rc = sign_key_save(k, path, pass, &err);
	if (rc != EX_OK)
		goto out;
	sign_key_public(k, pub);
	if (!name) {
		struct passwd *pw = getpwuid(geteuid());

		login = xstrdup(pw && pw->pw_name ? pw->pw_name : "approver");
		name = login;
	}
	{
		char *p = esc_term_dup(path), *n = esc_term_dup(name);

		printf("wrote the secret key %s (mode 0600, %s)\n", p,
		       seal ? "sealed with the passphrase"
		            : "not sealed: whoever can read it can approve as you");
		printf("public key: %s\n", pub);
		printf("add this to [approval] approvers in the sending configuration:\n  %s:%s\n",
		       n, pub);
		free(p);
		free(n);
	}
out:
	if (err)
		fprintf(stderr, "demarche keygen: %s\n", err);
	secret_free(pass);
	sign_key_free(k);
	free(login);
	free(path);
	free(err);
	return rc;
}
