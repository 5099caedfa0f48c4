/*
 * Unit tests for src/base: buffers, errors and diagnostics, config loading, strings, the
 * loopback check, URLs (redaction, no password), SHA-256, file writing, secret commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/net.h"
#include "base/secret.h"
#include "base/strutil.h"
#include "base/url.h"
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

/* "did you mean": typos, shortened names, a region after a language code; nothing far. */
static void test_nearest(void **state)
{
	static const char *const cols[] = {"iso3", "email", "name", "language", NULL, "salutation"};
	static const char *const langs[] = {"en", "es", "fr"};

	(void)state;
	assert_string_equal(str_nearest("nmae", cols, 6), "name");
	assert_string_equal(str_nearest("lang", cols, 6), "language");
	assert_string_equal(str_nearest("emial", cols, 6), "email");
	assert_null(str_nearest("name", cols, 6)); /* itself is no suggestion */
	assert_null(str_nearest("city", cols, 6));
	assert_string_equal(str_nearest("es-ES", langs, 3), "es");
	assert_string_equal(str_nearest("fr_CA", langs, 3), "fr");
	assert_null(str_nearest("xx", langs, 3)); /* two letters off is not a typo */
	assert_null(str_nearest("French", langs, 3));
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

/* A password in [smtp] url or [imap] url is refused at load, the message redacted; the
 * command timeout has a default and bounds. */
static void test_config_url_password(void **state)
{
	struct config cfg;
	char *err = NULL;
	char *path;

	(void)state;
	config_init(&cfg);
	assert_int_equal(cfg.smtp.command_timeout, 30);
	assert_int_equal(cfg.imap.command_timeout, 30);
	path = write_ini("urlpw.ini", "[smtp]\nurl = smtp://alice:S3cret@127.0.0.1:2525\n", 0600);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	assert_non_null(strstr(err, "urlpw.ini:2: [smtp] url 'smtp://alice:***@127.0.0.1:2525'"));
	assert_non_null(strstr(err, "password_command"));
	assert_null(strstr(err, "S3cret"));
	assert_null(cfg.smtp.url); /* never kept */
	config_free(&cfg);
	free(path);

	config_init(&cfg);
	path =
	    write_ini("imappw.ini", "[imap]\nuser = a\nurl = imaps://a:S3cret@host:99999\n", 0600);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	assert_non_null(strstr(err, "imappw.ini:3: [imap] url"));
	assert_null(strstr(err, "S3cret"));
	config_free(&cfg);
	free(path);

	config_init(&cfg);
	path = write_ini("timeout.ini", "[smtp]\ncommand_timeout = 0\n", 0600);
	assert_int_equal(config_load(&cfg, path, &err), EX_CONFIG);
	assert_non_null(strstr(err, "timeout.ini:2: [smtp] command_timeout must be 1 to 3600"));
	config_free(&cfg);
	free(path);

	config_init(&cfg);
	path = write_ini("timeout2.ini",
	                 "[smtp]\ncommand_timeout = 5\n[imap]\ncommand_timeout = 7\n", 0600);
	assert_int_equal(config_load(&cfg, path, &err), EX_OK);
	assert_int_equal(cfg.smtp.command_timeout, 5);
	assert_int_equal(cfg.imap.command_timeout, 7);
	config_free(&cfg);
	free(path);
	free(err);
}

static void test_loopback(void **state)
{
	static const char *yes[] = {"localhost",
	                            "LocalHost",
	                            "localhost.",
	                            "LOCALHOST.",
	                            "127.0.0.1",
	                            "127.1.2.3",
	                            "127.255.255.254",
	                            "::1",
	                            "[::1]",
	                            "0:0:0:0:0:0:0:1",
	                            "::ffff:127.0.0.1",
	                            "[::ffff:127.9.8.7]",
	                            "::FFFF:7f00:1",
	                            NULL};
	static const char *no[] = {"",
	                           "localhost..",
	                           ".localhost",
	                           "localhost.evil.com",
	                           "localhost.localdomain",
	                           "evil-localhost",
	                           "127.example.com",
	                           "127.0.0.1.evil.com",
	                           "128.0.0.1",
	                           "126.255.255.255",
	                           "0.0.0.0",
	                           "127.1",
	                           "127.0.0.1:25",
	                           "::",
	                           "::2",
	                           "[::1",
	                           "::1]",
	                           "[[::1]]",
	                           "::ffff:128.0.0.1",
	                           "::127.0.0.1",
	                           "fe80::1",
	                           "::1%lo",
	                           "example.org",
	                           NULL};

	(void)state;
	for (int i = 0; yes[i]; i++)
		if (!net_host_is_loopback(yes[i]))
			fail_msg("'%s' should be loopback", yes[i]);
	for (int i = 0; no[i]; i++)
		if (net_host_is_loopback(no[i]))
			fail_msg("'%s' should not be loopback", no[i]);
	assert_false(net_host_is_loopback(NULL));
}

static void test_url_redact(void **state)
{
	static const char *cases[][2] = {
	    {"smtp://alice:S3cret@host:587", "smtp://alice:***@host:587"},
	    {"smtps://host:465", "smtps://host:465"},
	    {"smtp://alice@host", "smtp://alice@host"},
	    {"smtp://:S3cret@host", "smtp://:***@host"},
	    {"imap://alice:S3/c@r:et@host/", "imap://alice:***@host/"}, /* unencoded / and @ */
	    {"smtp://alice:S3cret@host:99999", "smtp://alice:***@host:99999"}, /* curl refuses */
	    {"smtp://a%40b:p%3Aw@[::1]:25", "smtp://a%40b:***@[::1]:25"},
	    {"alice:S3cret@host", "alice:***@host"}, /* no scheme */
	    {"maildir:./outbox", "maildir:./outbox"},
	    {"", ""},
	};
	char *r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = url_redact(cases[i][0]);
		assert_string_equal(r, cases[i][1]);
		free(r);
	}
	assert_null(url_redact(NULL));
}

static void test_url_check(void **state)
{
	static const char *bad[] = {"smtp://alice:S3cret@host",
	                            "smtps://:S3cret@host:465",
	                            "imap://alice:S3cret@host:99999",
	                            "smtp://alice:S3/cret@h",
	                            "alice:S3cret@host",
	                            NULL};
	static const char *good[] = {"smtp://host:587",  "smtp://alice@host", "imaps://[::1]:993",
	                             "maildir:./outbox", "not a url",         NULL};
	char *err = NULL;

	(void)state;
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(url_check_no_password(bad[i], "--via", &err), EX_CONFIG);
		assert_non_null(strstr(err, "--via '"));
		assert_non_null(strstr(err, ":***@"));
		assert_non_null(strstr(err, "user and password_command"));
		assert_null(strstr(err, "S3"));
	}
	for (int i = 0; good[i]; i++)
		assert_int_equal(url_check_no_password(good[i], "--via", &err), EX_OK);
	free(err);
}

static void test_url_parse(void **state)
{
	struct url u;

	(void)state;
	assert_int_equal(url_parse("IMAPS://Mail.Example.org:9993/", &u), 0);
	assert_string_equal(u.scheme, "imaps");
	assert_string_equal(u.host, "Mail.Example.org");
	assert_int_equal(u.port, 9993);
	assert_false(u.userinfo || u.password || u.path || u.query || u.zone);
	url_free(&u);
	assert_int_equal(url_parse("imap://[::1]", &u), 0);
	assert_string_equal(u.host, "[::1]");
	assert_int_equal(u.port, -1);
	url_free(&u);
	assert_int_equal(url_parse("smtp://a;AUTH=PLAIN@h/x?q#f", &u), 0);
	assert_true(u.userinfo && !u.password && u.path && u.query);
	url_free(&u);
	assert_int_equal(url_parse("smtp://u:p@h:0", &u), 0);
	assert_true(u.userinfo && u.password);
	assert_int_equal(u.port, 0);
	url_free(&u);
	assert_int_equal(url_parse("imap://[fe80::1%25eth0]", &u), 0);
	assert_true(u.zone);
	url_free(&u);
	assert_int_equal(url_parse("imap://", &u), -1);
	assert_int_equal(url_parse("imap://h:12x", &u), -1);
	assert_int_equal(url_parse("maildir:./outbox", &u), -1);
	assert_int_equal(url_parse(NULL, &u), -1);
	url_free(&u);
}

static void test_digest(void **state)
{
	/* FIPS 180-2 examples */
	static const char empty[] =
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	static const char abc[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char hex[DIGEST_HEX_SIZE];
	struct digest *d;

	(void)state;
	digest_sha256_hex("", 0, hex);
	assert_string_equal(hex, empty);
	digest_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, abc);
	d = digest_new();
	digest_update(d, "a", 1);
	digest_update(d, "", 0);
	digest_update(d, "bc", 2);
	digest_final_hex(d, hex);
	assert_string_equal(hex, abc);
	digest_final_hex(d, hex); /* reset after final: the digest of nothing */
	assert_string_equal(hex, empty);
	digest_free(d);
	digest_free(NULL);
}

static void test_file_write(void **state)
{
	char *path = xasprintf("%s/atomic.txt", tmpdir), *link = xasprintf("%s/link", tmpdir);
	char *target = xasprintf("%s/target", tmpdir), *err = NULL, buf[64];
	struct stat st;
	FILE *fp;
	int fds[2];

	(void)state;
	assert_int_equal(file_write_atomic(path, "first", 5, 0600, FILE_SYNC, &err), EX_OK);
	assert_int_equal(file_write_atomic(path, "second", 6, 0644, 0, &err), EX_OK);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, "second");
	/* A symlink at the path is replaced, not followed. */
	fp = fopen(target, "w");
	fputs("keep", fp);
	fclose(fp);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(file_write_atomic(link, "new", 3, 0600, 0, &err), EX_OK);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 4);
	/* A folder that does not exist: EX_CANTCREAT naming it. */
	free(path);
	path = xasprintf("%s/no/such/file", tmpdir);
	assert_int_equal(file_write_atomic(path, "x", 1, 0600, 0, &err), EX_CANTCREAT);
	assert_non_null(strstr(err, "no/such/file"));
	/* write_all through a pipe: every byte arrives. */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write_all(fds[1], "0123456789", 10), 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 10);
	close(fds[0]);
	/* A closed descriptor: -1 and errno. */
	assert_int_equal(write_all(fds[1], "x", 1), -1);
	free(path);
	free(link);
	free(target);
	free(err);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 when pid runs (a zombie, dead but not yet reaped by whoever adopted it, does not). */
static int alive(pid_t pid)
{
	char *path = xasprintf("/proc/%ld/stat", (long)pid), line[512], *p;
	FILE *fp = fopen(path, "r");
	int running = 0;

	free(path);
	if (!fp)
		return 0;
	if (fgets(line, sizeof(line), fp) && (p = strrchr(line, ')')))
		running = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	fclose(fp);
	return running;
}

static void test_secret_command(void **state)
{
	char *out = NULL, *err = NULL, *pidfile = xasprintf("%s/grandchild.pid", tmpdir), *cmd;
	double t0;
	FILE *fp;
	long pid = 0;

	(void)state;
	assert_int_equal(secret_command("printf 'S3cret\\nsecond line\\n'", 5,
	                                "[smtp] password_command", &out, &err),
	                 EX_OK);
	assert_string_equal(out, "S3cret");
	secret_free(out);
	/* Our own passwords are not in the command's environment. */
	setenv("DEMARCHE_IMAP_PASSWORD", "leak", 1);
	assert_int_equal(secret_command("echo \"x${DEMARCHE_IMAP_PASSWORD}\"", 5, "c", &out, &err),
	                 EX_OK);
	assert_string_equal(out, "x");
	secret_free(out);
	unsetenv("DEMARCHE_IMAP_PASSWORD");
	/* No other descriptor than 0, 1, 2 reaches it (the ledger's lock, say). */
	assert_int_equal(secret_command("ls /proc/self/fd | wc -l", 5, "c", &out, &err), EX_OK);
	assert_string_equal(out, "4"); /* 0 1 2 and ls's own view of the directory */
	secret_free(out);

	assert_int_equal(secret_command("exit 3", 5, "[imap] password_command", &out, &err),
	                 EX_CONFIG);
	assert_null(out);
	assert_string_equal(err, "[imap] password_command failed (exit status 3)");
	assert_int_equal(secret_command("echo S3cret; exit 1", 5, "c", &out, &err), EX_CONFIG);
	assert_null(strstr(err, "S3cret"));
	assert_int_equal(secret_command("true", 5, "c", &out, &err), EX_CONFIG);
	assert_non_null(strstr(err, "printed nothing"));
	assert_int_equal(secret_command("printf 'a\\0b\\n'", 5, "c", &out, &err), EX_CONFIG);
	assert_non_null(strstr(err, "NUL"));

	/* A command that hangs, with a grandchild holding the pipe: stopped after the timeout,
	 * its whole process group killed. */
	cmd = xasprintf("sleep 30 & echo $! > %s; wait", pidfile);
	t0 = now_s();
	assert_int_equal(secret_command(cmd, 1, "[smtp] password_command", &out, &err), EX_CONFIG);
	assert_true(now_s() - t0 < 5);
	assert_true(now_s() - t0 >= 0.9);
	assert_null(out);
	assert_non_null(strstr(err, "[smtp] password_command did not finish within 1 s"));
	assert_non_null(strstr(err, "command_timeout"));
	fp = fopen(pidfile, "r");
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld", &pid), 1);
	fclose(fp);
	usleep(200000);
	assert_false(alive((pid_t)pid)); /* the sleep is gone too */
	free(cmd);

	/* secret_get: the environment first, then the command. */
	setenv("DEMARCHE_TEST_PW", "from-env", 1);
	assert_int_equal(secret_get("DEMARCHE_TEST_PW", "echo from-command", &out, &err), EX_OK);
	assert_string_equal(out, "from-env");
	secret_free(out);
	unsetenv("DEMARCHE_TEST_PW");
	assert_int_equal(secret_get("DEMARCHE_TEST_PW", "echo from-command", &out, &err), EX_OK);
	assert_string_equal(out, "from-command");
	secret_free(out);
	assert_int_equal(secret_get("DEMARCHE_TEST_PW", NULL, &out, &err), EX_OK);
	assert_null(out);
	free(pidfile);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf),
	    cmocka_unit_test(test_error),
	    cmocka_unit_test(test_diags),
	    cmocka_unit_test(test_distance),
	    cmocka_unit_test(test_nearest),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_config_values),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_password_mode),
	    cmocka_unit_test(test_config_search),
	    cmocka_unit_test(test_config_url_password),
	    cmocka_unit_test(test_loopback),
	    cmocka_unit_test(test_url_redact),
	    cmocka_unit_test(test_url_check),
	    cmocka_unit_test(test_url_parse),
	    cmocka_unit_test(test_digest),
	    cmocka_unit_test(test_file_write),
	    cmocka_unit_test(test_secret_command),
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
