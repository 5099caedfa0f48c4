/*
 * campaign/account: one credential lookup. The password order (environment, then
 * password_command, then password) is the same for SMTP and IMAP; URLs holding credentials
 * are refused with the password redacted; the account id never holds a password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "base/xalloc.h"
#include "campaign/account.h"

static char tmpdir[] = "/tmp/demarche-test-account-XXXXXX";

/* A config for kind with the given URL, user and password sources (NULL: unset). */
static void set(struct config *cfg, enum account_kind kind, const char *url, const char *user,
                const char *command, const char *password)
{
	char **u = kind == ACCOUNT_SMTP ? &cfg->smtp.url : &cfg->imap.url;
	char **us = kind == ACCOUNT_SMTP ? &cfg->smtp.user : &cfg->imap.user;
	char **c = kind == ACCOUNT_SMTP ? &cfg->smtp.password_command : &cfg->imap.password_command;
	char **p = kind == ACCOUNT_SMTP ? &cfg->smtp.password : &cfg->imap.password;

	free(*u), *u = url ? xstrdup(url) : NULL;
	free(*us), *us = user ? xstrdup(user) : NULL;
	free(*c), *c = command ? xstrdup(command) : NULL;
	free(*p), *p = password ? xstrdup(password) : NULL;
}

static const char *env_of(enum account_kind kind)
{
	return kind == ACCOUNT_SMTP ? "DEMARCHE_SMTP_PASSWORD" : "DEMARCHE_IMAP_PASSWORD";
}

/* Resolves with the secret; returns the password (allocated) or NULL, *source its source. */
static char *password_of(const struct config *cfg, enum account_kind kind, int *rc, char *source,
                         size_t size, char **err)
{
	struct account *a = NULL;
	char *pw = NULL;

	*rc = account_resolve(kind, cfg, NULL, ACCOUNT_SECRET, &a, err);
	if (*rc == EX_OK) {
		assert_non_null(a);
		pw = a->password ? xstrdup(a->password) : NULL;
		snprintf(source, size, "%s", a->secret_source ? a->secret_source : "");
	} else {
		assert_null(a);
	}
	account_free(a);
	return pw;
}

/* The same order for both kinds: environment > password_command > password. */
static void test_precedence(void **state)
{
	enum account_kind kinds[] = {ACCOUNT_SMTP, ACCOUNT_IMAP};
	char source[64], *err = NULL, *pw, *marker = xasprintf("%s/ran", tmpdir);
	char *cmd = xasprintf("touch %s; echo from-command", marker);
	int rc;

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		enum account_kind kind = kinds[k];
		const char *sec = kind == ACCOUNT_SMTP ? "smtp" : "imap";
		const char *url =
		    kind == ACCOUNT_SMTP ? "smtp://127.0.0.1:2525" : "imap://127.0.0.1:1";
		char want[64];
		struct config cfg;

		config_init(&cfg);
		/* 1. The environment wins, and the command is not even run. */
		unlink(marker);
		set(&cfg, kind, url, "alice", cmd, "from-file");
		setenv(env_of(kind), "from-env", 1);
		pw = password_of(&cfg, kind, &rc, source, sizeof(source), &err);
		assert_int_equal(rc, EX_OK);
		assert_string_equal(pw, "from-env");
		assert_string_equal(source, env_of(kind));
		assert_int_not_equal(access(marker, F_OK), 0);
		free(pw);
		/* An empty variable counts as unset. */
		setenv(env_of(kind), "", 1);
		pw = password_of(&cfg, kind, &rc, source, sizeof(source), &err);
		assert_string_equal(pw, "from-command");
		free(pw);
		unsetenv(env_of(kind));
		/* 2. Then password_command, before the file's password. */
		pw = password_of(&cfg, kind, &rc, source, sizeof(source), &err);
		assert_int_equal(rc, EX_OK);
		assert_string_equal(pw, "from-command");
		snprintf(want, sizeof(want), "[%s] password_command", sec);
		assert_string_equal(source, want);
		assert_int_equal(access(marker, F_OK), 0);
		free(pw);
		/* 3. Then the file. */
		set(&cfg, kind, url, "alice", NULL, "from-file");
		pw = password_of(&cfg, kind, &rc, source, sizeof(source), &err);
		assert_int_equal(rc, EX_OK);
		assert_string_equal(pw, "from-file");
		snprintf(want, sizeof(want), "[%s] password", sec);
		assert_string_equal(source, want);
		free(pw);
		/* None: EX_CONFIG naming what to set. */
		set(&cfg, kind, url, "alice", NULL, NULL);
		pw = password_of(&cfg, kind, &rc, source, sizeof(source), &err);
		assert_int_equal(rc, EX_CONFIG);
		assert_null(pw);
		assert_non_null(strstr(err, env_of(kind)));
		assert_non_null(strstr(err, "password_command"));
		/* A failing command is an error, not a fall-through to the file. */
		set(&cfg, kind, url, "alice", "echo oops; exit 2", "from-file");
		pw = password_of(&cfg, kind, &rc, source, sizeof(source), &err);
		assert_int_equal(rc, EX_CONFIG);
		assert_null(pw);
		snprintf(want, sizeof(want), "[%s] password_command failed (exit status 2)", sec);
		assert_string_equal(err, want);
		config_free(&cfg);
	}
	free(marker);
	free(cmd);
	free(err);
}

static void test_urls(void **state)
{
	struct config cfg;
	struct account *a = NULL;
	char *err = NULL;

	(void)state;
	config_init(&cfg);
	/* No URL: SMTP writes to the default Maildir, runs nothing; IMAP is not configured. */
	set(&cfg, ACCOUNT_SMTP, NULL, "alice", "exit 1", NULL);
	assert_int_equal(account_resolve(ACCOUNT_SMTP, &cfg, NULL, ACCOUNT_SECRET, &a, &err),
	                 EX_OK);
	assert_true(a->maildir);
	assert_string_equal(a->url, "maildir:./outbox");
	assert_string_equal(a->id, "maildir:./outbox;user=alice");
	assert_null(a->password);
	account_free(a);
	assert_int_equal(account_resolve(ACCOUNT_IMAP, &cfg, NULL, ACCOUNT_SECRET, &a, &err),
	                 EX_OK);
	assert_null(a);

	/* The id: URL and user, the formula older ledgers hold. */
	set(&cfg, ACCOUNT_SMTP, "smtp://mail.example.org:587", "alice", NULL, "pw");
	assert_int_equal(account_resolve(ACCOUNT_SMTP, &cfg, NULL, 0, &a, &err), EX_OK);
	assert_string_equal(a->id, "smtp://mail.example.org:587;user=alice");
	assert_null(a->password); /* not looked up without ACCOUNT_SECRET */
	assert_int_equal(account_secret(a, &err), EX_OK);
	assert_string_equal(a->password, "pw");
	assert_int_equal(account_secret(a, &err), EX_OK); /* once */
	account_free(a);
	set(&cfg, ACCOUNT_SMTP, "smtp://127.0.0.1:25", NULL, NULL, NULL);
	assert_int_equal(account_resolve(ACCOUNT_SMTP, &cfg, NULL, ACCOUNT_SECRET, &a, &err),
	                 EX_OK);
	assert_string_equal(a->id, "smtp://127.0.0.1:25");
	assert_null(a->user);
	assert_null(a->password);
	account_free(a);

	/* --via wins over [smtp] url; with a password it is refused, redacted, for both. */
	assert_int_equal(account_resolve(ACCOUNT_SMTP, &cfg, "smtps://h:465", 0, &a, &err), EX_OK);
	assert_string_equal(a->url, "smtps://h:465");
	account_free(a);
	assert_int_equal(
	    account_resolve(ACCOUNT_SMTP, &cfg, "smtp://alice:S3cret@127.0.0.1:25", 0, &a, &err),
	    EX_CONFIG);
	assert_null(a);
	assert_non_null(strstr(err, "--via 'smtp://alice:***@127.0.0.1:25' holds a password"));
	assert_null(strstr(err, "S3cret"));
	set(&cfg, ACCOUNT_IMAP, NULL, "alice", NULL, "pw");
	assert_int_equal(
	    account_resolve(ACCOUNT_IMAP, &cfg, "imaps://alice:S3cret@h", ACCOUNT_SECRET, &a, &err),
	    EX_CONFIG);
	assert_non_null(strstr(err, "--via 'imaps://alice:***@h' holds a password"));
	assert_null(strstr(err, "S3cret"));
	/* A user in the URL: refused too, pointing at [x] user. */
	assert_int_equal(account_resolve(ACCOUNT_IMAP, &cfg, "imap://alice@h", 0, &a, &err),
	                 EX_CONFIG);
	assert_non_null(strstr(err, "give [imap] user"));
	/* IMAP needs a user. */
	set(&cfg, ACCOUNT_IMAP, "imap://127.0.0.1:1", NULL, NULL, "pw");
	assert_int_equal(account_resolve(ACCOUNT_IMAP, &cfg, NULL, 0, &a, &err), EX_CONFIG);
	assert_non_null(strstr(err, "[imap] url is set but [imap] user is not"));
	config_free(&cfg);
	free(err);
}

/* oauth_token_command gives a token and the password is not looked up at all. */
static void test_oauth(void **state)
{
	struct config cfg;
	struct account *a = NULL;
	char *err = NULL;

	(void)state;
	config_init(&cfg);
	set(&cfg, ACCOUNT_SMTP, "smtp://127.0.0.1:25", "alice", "exit 1", "pw");
	cfg.smtp.oauth_token_command = xstrdup("echo tok-123");
	setenv("DEMARCHE_SMTP_PASSWORD", "from-env", 1);
	assert_int_equal(account_resolve(ACCOUNT_SMTP, &cfg, NULL, ACCOUNT_SECRET, &a, &err),
	                 EX_OK);
	assert_string_equal(a->oauth_token, "tok-123");
	assert_null(a->password);
	assert_string_equal(a->secret_source, "[smtp] oauth_token_command");
	account_free(a);
	unsetenv("DEMARCHE_SMTP_PASSWORD");
	config_free(&cfg);
	free(err);
}

/* A password_command that hangs is stopped after command_timeout, for both kinds. */
static void test_timeout(void **state)
{
	struct config cfg;
	struct account *a = NULL;
	char *err = NULL;
	time_t t0;

	(void)state;
	config_init(&cfg);
	set(&cfg, ACCOUNT_SMTP, "smtp://127.0.0.1:25", "alice", "sleep 20; echo late", NULL);
	set(&cfg, ACCOUNT_IMAP, "imap://127.0.0.1:1", "alice", "sleep 20; echo late", NULL);
	cfg.smtp.command_timeout = 1;
	cfg.imap.command_timeout = 1;
	t0 = time(NULL);
	assert_int_equal(account_resolve(ACCOUNT_SMTP, &cfg, NULL, ACCOUNT_SECRET, &a, &err),
	                 EX_CONFIG);
	assert_non_null(strstr(err, "[smtp] password_command did not finish within 1 s"));
	assert_int_equal(account_resolve(ACCOUNT_IMAP, &cfg, NULL, ACCOUNT_SECRET, &a, &err),
	                 EX_CONFIG);
	assert_non_null(strstr(err, "[imap] password_command did not finish within 1 s"));
	assert_true(time(NULL) - t0 <= 5);
	assert_null(a);
	config_free(&cfg);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_oauth),
	    cmocka_unit_test(test_timeout),
	};
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	unsetenv("DEMARCHE_SMTP_PASSWORD");
	unsetenv("DEMARCHE_IMAP_PASSWORD");
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char *cmd = xasprintf("rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			rc = 1;
		free(cmd);
	}
	return rc;
}
