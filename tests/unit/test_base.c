/* Unit tests for src/base: buffers, errors and diagnostics, config loading, strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/utf8.h"
#include "base/xalloc.h"

static void test_buf(void **state)
{
	struct buf b = BUF_INIT;
	char *s;

	(void)state;
	assert_string_equal(buf_str(&b), "");
	buf_adds(&b, "Your ");
	buf_addf(&b, "%s, %d", "Excellency", 125);
	buf_addc(&b, '!');
	assert_string_equal(buf_str(&b), "Your Excellency, 125!");
	assert_int_equal(b.len, strlen("Your Excellency, 125!"));
	buf_truncate(&b, 4);
	assert_string_equal(b.data, "Your");
	for (int i = 0; i < 10000; i++)
		buf_addc(&b, 'x');
	assert_int_equal(b.len, 10004);
	s = buf_detach(&b);
	assert_null(b.data);
	assert_int_equal(strlen(s), 10004);
	free(s);
	buf_free(&b);
	s = buf_detach(&b);
	assert_string_equal(s, "");
	free(s);
}

static void test_error(void **state)
{
	char *err = NULL;

	(void)state;
	assert_int_equal(error_set(&err, EX_DATAERR, "row %d", 3), EX_DATAERR);
	assert_string_equal(err, "row 3");
	assert_int_equal(error_set(&err, EX_CONFIG, "again"), EX_CONFIG);
	assert_string_equal(err, "again");
	free(err);
	assert_int_equal(error_set(NULL, EX_USAGE, "ignored"), EX_USAGE);
	assert_string_equal(exit_name(EX_TEMPFAIL), "temporary failure");
}

static void test_diags(void **state)
{
	struct diags d = DIAGS_INIT;
	char *s;

	(void)state;
	diags_add(&d, DIAG_ERROR, "missions.csv", 12, "email", "invalid address '%s'", "x@");
	diags_add(&d, DIAG_WARNING, NULL, 0, NULL, "unknown language");
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.warnings, 1);
	s = diag_format(&d.v[0]);
	assert_string_equal(s, "missions.csv:12: column 'email': error: invalid address 'x@'");
	free(s);
	s = diag_format(&d.v[1]);
	assert_string_equal(s, "warning: unknown language");
	free(s);
	diags_free(&d);
	diags_free(&d);
	d.max = 2;
	for (int i = 0; i < 5; i++)
		diags_add(&d, DIAG_ERROR, "f", i + 1, NULL, "e%d", i);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.errors, 5);
	diags_free(&d);
}

static void test_distance(void **state)
{
	(void)state;
	assert_int_equal(str_distance("send", "send"), 0);
	assert_int_equal(str_distance("sned", "send"), 1); /* a swap */
	assert_int_equal(str_distance("audti", "audit"), 1);
	assert_int_equal(str_distance("", "abc"), 3);
	assert_int_equal(str_distance("kitten", "sitting"), 3);
}

/* One UTF-8 check serves letters, templates, rosters and mail (RFC 3629 section 4). */
static void test_utf8(void **state)
{
	const char *ok = "Côte d'Ivoire São Tomé 𝄞 and a long ASCII run to take the fast path";

	(void)state;
	assert_int_equal(utf8_scan(ok, strlen(ok)), strlen(ok));
	assert_true(utf8_valid("", 0));
	assert_int_equal(utf8_scan("C\xf4te", 5), 1);          /* no continuation */
	assert_int_equal(utf8_scan("\xed\xa0\x80", 3), 0);     /* a surrogate */
	assert_int_equal(utf8_scan("\xe0\x80\xaf", 3), 0);     /* overlong */
	assert_int_equal(utf8_scan("\xc0\xaf", 2), 0);         /* overlong, C0 */
	assert_int_equal(utf8_scan("ab\xc3", 3), 2);           /* cut short */
	assert_int_equal(utf8_scan("\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
	assert_int_equal(utf8_scan("abcdefghij\x80", 11), 10); /* stray, after 8+ ASCII */
	assert_int_equal(utf8_seq("\xf0\x9d\x84\x9e", 4), 4);
	assert_int_equal(utf8_seq("\xf0\x9d\x84", 3), 0);
}

static char tmpdir[] = "/tmp/demarche-test-base-XXXXXX";

static char *write_ini(const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void test_config_values(void **state)
{
	struct config cfg;
	char *err = NULL;
	char *path = write_ini("ok.ini",
	                       "; comment\n[sender]\nname = CICC Secretariat\naddress = "
	                       "cicc@ngo.example\ndomain = ngo.example\n[smtp]\nurl = "
	                       "smtp://127.0.0.1:2525\nconcurrency = 4\nrate = 60/minute\n"
	                       "password_command = pass show smtp\n[store]\npath = x.db\n",
	                       0644);

	(void)state;
	config_init(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), EX_OK);
	assert_null(err);
	assert_string_equal(cfg.sender.name, "CICC Secretariat");
	assert_string_equal(cfg.sender.domain, "ngo.example");
	assert_string_equal(cfg.smtp.url, "smtp://127.0.0.1:2525");
	assert_int_equal(cfg.smtp.concurrency, 4);
	assert_int_equal(cfg.smtp.timeout, 60); /* default kept */
	assert_string_equal(cfg.smtp.rate, "60/minute");
	assert_string_equal(cfg.store.path, "x.db");
	assert_string_equal(cfg.path, path);
	config_free(&cfg);
	free(path);
}

static void test_config_errors(void **state)
{
	struct config cfg;
	char *err = NULL;
	char *path;

	(void)state;
	config_init(&cfg);
	path = write_ini("unknown.ini", "[smtp]\nurl = smtp://x\n\nspeed = 3\n", 0600);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	assert_non_null(strstr(err, "unknown.ini:4: unknown key 'speed'"));
	config_free(&cfg);
	free(path);

	config_init(&cfg);
	path = write_ini("num.ini", "[smtp]\nconcurrency = many\n", 0600);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	assert_non_null(strstr(err, "num.ini:2: [smtp] concurrency must be a whole number"));
	config_free(&cfg);
	free(path);

	config_init(&cfg);
	path = xasprintf("%s/absent.ini", tmpdir);
	assert_int_equal(config_load(&cfg, path, &err), EX_NOINPUT);
	config_free(&cfg);
	free(path);
	free(err);
}

/* A file holding a password is refused when group or others can read it, accepted at 0600. */
static void test_config_password_mode(void **state)
{
	struct config cfg;
	char *err = NULL;
	const char *text = "[smtp]\nuser = cicc\npassword = s3cret\n";
	char *path = write_ini("secret.ini", text, 0644);

	(void)state;
	config_init(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	assert_non_null(strstr(err, "can be read by others"));
	assert_non_null(strstr(err, "chmod 600"));
	assert_non_null(strstr(err, path));
	config_free(&cfg);

	assert_int_equal(chmod(path, 0640), 0);
	config_init(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	config_free(&cfg);

	assert_int_equal(chmod(path, 0600), 0);
	config_init(&cfg);
	free(err);
	err = NULL;
	assert_int_equal(config_load(&cfg, path, &err), EX_OK);
	assert_string_equal(cfg.smtp.password, "s3cret");
	config_free(&cfg);
	free(path);

	/* No password: a world-readable file is fine. */
	path = write_ini("public.ini", "[smtp]\nuser = cicc\npassword_command = pass smtp\n", 0644);
	config_init(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), EX_OK);
	config_free(&cfg);
	free(path);
}

/* Without --config: ./demarche.ini first, then $XDG_CONFIG_HOME/demarche/config.ini. */
static void test_config_search(void **state)
{
	struct config cfg;
	char *err = NULL;
	char cwd[4096];
	char *xdg = xasprintf("%s/xdg", tmpdir);
	char *dir = xasprintf("%s/xdg/demarche", tmpdir);
	char *work = xasprintf("%s/work", tmpdir);
	char *path;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(mkdir(xdg, 0700), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(work, 0700), 0);
	path = write_ini("xdg/demarche/config.ini", "[store]\npath = from-xdg.db\n", 0600);
	free(path);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	assert_int_equal(chdir(work), 0);

	config_init(&cfg);
	assert_int_equal(config_load(&cfg, NULL, &err), EX_OK);
	assert_string_equal(cfg.store.path, "from-xdg.db");
	config_free(&cfg);

	path = write_ini("work/demarche.ini", "[store]\npath = local.db\n", 0600);
	free(path);
	config_init(&cfg);
	assert_int_equal(config_load(&cfg, NULL, &err), EX_OK);
	assert_string_equal(cfg.store.path, "local.db");
	assert_string_equal(cfg.path, "demarche.ini");
	config_free(&cfg);

	assert_int_equal(chdir(cwd), 0);
	free(xdg);
	free(dir);
	free(work);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf),
	    cmocka_unit_test(test_error),
	    cmocka_unit_test(test_diags),
	    cmocka_unit_test(test_distance),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_config_values),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_password_mode),
	    cmocka_unit_test(test_config_search),
	};
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char *cmd = xasprintf("rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			rc = 1;
		free(cmd);
	}
	return rc;
}
