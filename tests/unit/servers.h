/*
 * For unit tests that need a real server: a throwaway Dovecot started through
 * tests/integration/servers/dovecot.bash in a temp dir. Include after <cmocka.h>; the
 * functions are static inline so that a test may use only some of them.
 */
#ifndef DEMARCHE_TESTS_SERVERS_H
#define DEMARCHE_TESTS_SERVERS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"

/* What dovecot_up() set up; the strings are filled in place. */
struct dovecot {
	char dir[64];                       /* the temp dir (Dovecot's files under dir/dovecot) */
	char imap_port[16], imaps_port[16]; /* on 127.0.0.1 */
	char cert[256];                     /* the certificate it presents (a CA file for us) */
	char maildir[256];                  /* the user's maildir; folders are .Name subdirs */
};

/* Runs a shell command made from fmt; returns system()'s status. */
static inline int servers_run(const char *fmt, ...)
{
	va_list ap;
	struct buf cmd = BUF_INIT;
	int rc;

	va_start(ap, fmt);
	buf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	rc = system(buf_str(&cmd));
	buf_free(&cmd);
	return rc;
}

/* Reads NAME=value from the env file the harness wrote; fails the test when it is missing. */
static inline void servers_env_value(const char *file, const char *name, char *out, size_t size)
{
	char line[512];
	FILE *fp = fopen(file, "r");
	size_t n = strlen(name);

	out[0] = 0;
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, name, n) == 0 && line[n] == '=') {
			line[strcspn(line, "\n")] = 0;
			int w = snprintf(out, size, "%s", line + n + 1);
			assert_true(w >= 0 && (size_t)w < size); /* the value fits */
		}
	}
	fclose(fp);
	assert_true(out[0] != 0);
}

/*
 * Makes a temp dir and starts Dovecot there with one user (dovecot_start of dovecot.bash).
 * Needs SRCDIR (ctest sets it). Returns 0, or -1 with a message on stderr.
 */
static inline int dovecot_up(struct dovecot *d, const char *user, const char *pass)
{
	const char *src = getenv("SRCDIR");
	char env[128];

	memset(d, 0, sizeof(*d));
	if (!src) {
		fprintf(stderr, "SRCDIR is not set (run through ctest)\n");
		return -1;
	}
	strcpy(d->dir, "/tmp/demarche-imap-XXXXXX");
	if (!mkdtemp(d->dir) || chmod(d->dir, 0755) != 0)
		return -1;
	if (servers_run("bash -c '. \"%s/tests/integration/servers/dovecot.bash\" && "
	                "dovecot_start %s/dovecot %s \"%s\" && env | grep ^DOVECOT_ >%s/env'",
	                src, d->dir, user, pass, d->dir) != 0)
		return -1;
	snprintf(env, sizeof(env), "%s/env", d->dir);
	servers_env_value(env, "DOVECOT_IMAP_PORT", d->imap_port, sizeof(d->imap_port));
	servers_env_value(env, "DOVECOT_IMAPS_PORT", d->imaps_port, sizeof(d->imaps_port));
	servers_env_value(env, "DOVECOT_CERT", d->cert, sizeof(d->cert));
	servers_env_value(env, "DOVECOT_MAILDIR", d->maildir, sizeof(d->maildir));
	return 0;
}

/* Stops the Dovecot of dovecot_up() and removes its temp dir. Safe when it did not start. */
static inline void dovecot_down(struct dovecot *d)
{
	const char *src = getenv("SRCDIR");

	if (src && d->dir[0])
		servers_run("bash -c '. \"%s/tests/integration/servers/dovecot.bash\" && "
		            "dovecot_stop %s/dovecot'; rm -rf %s",
		            src, d->dir, d->dir);
}

#endif
