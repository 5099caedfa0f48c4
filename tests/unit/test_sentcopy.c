/*
 * campaign/sentcopy against a real throwaway Dovecot (tests/integration/servers/dovecot.bash):
 * copies land in Sent with \\Seen and the exact bytes, their UIDs and events reach the ledger,
 * and a copy that cannot be appended is kept and appended by sentcopy_retry().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "campaign/sentcopy.h"
#include "imap/imap.h"
#include "ledger/ledger.h"
#include "servers.h"

#define USER "appeals"
#define PASS "copy pass"
#define H1   "1111111111111111111111111111111111111111111111111111111111111111"

static struct dovecot dv;
static char imap_url[64], imaps_url[64];

static const char msg[] = "Date: Mon, 24 Nov 2025 10:00:00 +0100\r\n"
                          "From: NGO Coalition <appeals@coalition.example.org>\r\n"
                          "To: Mission of Kenya <ken@missions.example>\r\n"
                          "Subject: 24th session: priorities\r\n"
                          "Message-ID: <c.KEN.0123456789abcdef@coalition.example.org>\r\n"
                          "\r\n"
                          "Excellency,\r\n";

static int start_dovecot(void **state)
{
	(void)state;
	if (dovecot_up(&dv, USER, PASS) != 0)
		return -1;
	snprintf(imap_url, sizeof(imap_url), "imap://127.0.0.1:%s", dv.imap_port);
	snprintf(imaps_url, sizeof(imaps_url), "imaps://127.0.0.1:%s", dv.imaps_port);
	return 0;
}

static int stop_dovecot(void **state)
{
	(void)state;
	dovecot_down(&dv);
	return 0;
}

static struct ledger *new_ledger(const char *name, int64_t d[2])
{
	char *p = xasprintf("%s/%s", dv.dir, name), *err = NULL;
	struct ledger *l = NULL;
	struct ledger_delivery del;

	if (ledger_open(p, LEDGER_CREATE, &l, &err) != EX_OK)
		fail_msg("ledger_open: %s", err);
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	assert_int_equal(ledger_delivery_get(l, "c", "KEN", "ken@missions.example",
	                                     "<c.KEN.0123456789abcdef@coalition.example.org>", &del,
	                                     &err),
	                 EX_OK);
	d[0] = del.id;
	assert_int_equal(ledger_delivery_get(l, "c", "KEN", "ken.ny@missions.example",
	                                     "<c.KEN.0123456789abcdef@coalition.example.org>", &del,
	                                     &err),
	                 EX_OK);
	d[1] = del.id;
	free(p);
	free(err);
	return l;
}

static void set_config(struct config *cfg, const char *url, const char *folder)
{
	config_init(cfg);
	cfg->imap.url = url ? xstrdup(url) : NULL;
	cfg->imap.user = xstrdup(USER);
	cfg->imap.sent_folder = folder ? xstrdup(folder) : NULL;
	cfg->imap.ca_file = xstrdup(dv.cert);
}

/* How many messages are in maildir folder (".Sent"), and how many carry \Seen (S). */
static void count_folder(const char *folder, int *all, int *seen)
{
	char path[600];
	struct dirent *e;
	DIR *d;

	*all = *seen = 0;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", dv.maildir, folder, i ? "new" : "cur");
		if (!(d = opendir(path)))
			continue;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			(*all)++;
			*seen += strstr(e->d_name, ":2,") && strchr(strstr(e->d_name, ":2,"), 'S');
		}
		closedir(d);
	}
}

struct fetched {
	uint32_t uid;
	struct buf data;
	int n;
};

static int fetch_last(void *arg, uint32_t uid, const char *data, size_t len)
{
	struct fetched *f = arg;

	f->uid = uid;
	buf_reset(&f->data);
	buf_add(&f->data, data, len);
	f->n++;
	return 0;
}

static void test_not_configured(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	config_init(&cfg);
	assert_null(sentcopy_open(&cfg, &err));
	assert_null(err); /* no [imap] url: no copies, not an error */
	config_free(&cfg);

	set_config(&cfg, imap_url, NULL);
	free(cfg.imap.user);
	cfg.imap.user = NULL;
	assert_null(sentcopy_open(&cfg, &err));
	assert_non_null(strstr(err, "user"));
	config_free(&cfg);

	unsetenv("DEMARCHE_IMAP_PASSWORD");
	set_config(&cfg, imap_url, NULL);
	assert_null(sentcopy_open(&cfg, &err));
	assert_non_null(strstr(err, "password"));
	cfg.imap.password_command = xstrdup("exit 3");
	assert_null(sentcopy_open(&cfg, &err));
	config_free(&cfg);

	/* A password in the URL: refused, and the message does not repeat it. */
	set_config(&cfg, "imaps://appeals:S3cret@127.0.0.1:993", NULL);
	cfg.imap.password = xstrdup("x");
	assert_null(sentcopy_open(&cfg, &err));
	assert_non_null(strstr(err, "imaps://appeals:***@127.0.0.1:993"));
	assert_null(strstr(err, "S3cret"));
	config_free(&cfg);
	free(err);
}

/*
 * The order of campaign/account.h, as bounces and doctor use it: DEMARCHE_IMAP_PASSWORD
 * before password_command before password. Each wrong one below would fail the login.
 */
static void test_password_order(void **state)
{
	struct config cfg;
	struct sentcopy *sc;
	struct ledger *l;
	char *err = NULL;
	int64_t d[2];

	(void)state;
	l = new_ledger("order.db", d);
	set_config(&cfg, imap_url, NULL);
	cfg.imap.password_command = xstrdup("echo wrong-command");
	free(cfg.imap.password);
	cfg.imap.password = xstrdup("wrong-file");
	setenv("DEMARCHE_IMAP_PASSWORD", PASS, 1);
	assert_non_null(sc = sentcopy_open(&cfg, &err));
	assert_int_equal(sentcopy_append(sc, l, "c", d, 1, msg, strlen(msg), &err), EX_OK);
	sentcopy_close(sc);
	unsetenv("DEMARCHE_IMAP_PASSWORD");

	free(cfg.imap.password_command);
	cfg.imap.password_command = xstrdup("echo '" PASS "'");
	assert_non_null(sc = sentcopy_open(&cfg, &err));
	assert_int_equal(sentcopy_append(sc, l, "c", d + 1, 1, msg, strlen(msg), &err), EX_OK);
	sentcopy_close(sc);

	/* and the file's password last: the wrong one fails the login, kept for later */
	free(cfg.imap.password_command);
	cfg.imap.password_command = NULL;
	assert_non_null(sc = sentcopy_open(&cfg, &err));
	assert_int_equal(sentcopy_append(sc, l, "c", d, 1, msg, strlen(msg), &err), EX_TEMPFAIL);
	assert_non_null(strstr(err, "refused"));
	sentcopy_close(sc);
	ledger_close(l);
	config_free(&cfg);
	free(err);
}

/* Over IMAPS with the CA file, the password from password_command. */
static void test_append(void **state)
{
	struct config cfg;
	struct sentcopy *sc;
	struct ledger *l;
	struct imap_session *s = NULL;
	struct fetched f = {0};
	char *err = NULL;
	int64_t d[2];
	uint32_t v = 0, u = 0, v1 = 0, u1 = 0;
	int all, seen;

	(void)state;
	unsetenv("DEMARCHE_IMAP_PASSWORD");
	l = new_ledger("append.db", d);
	set_config(&cfg, imaps_url, NULL);
	cfg.imap.password_command = xstrdup("echo '" PASS "'");
	sc = sentcopy_open(&cfg, &err);
	if (!sc)
		fail_msg("sentcopy_open: %s", err);
	assert_int_equal(sentcopy_append(sc, l, "c", d, 2, msg, strlen(msg), &err), EX_OK);
	/* the session is reused: a second copy on the same connection */
	assert_int_equal(sentcopy_append(sc, l, "c", d, 1, msg, strlen(msg), &err), EX_OK);
	assert_int_equal(sentcopy_kept(sc), 0);
	sentcopy_close(sc);

	assert_int_equal(ledger_sent_copy(l, d[1], &v1, &u1), 1);
	assert_int_equal(ledger_sent_copy(l, d[0], &v, &u), 1);
	assert_true(u1 >= 1 && v1 >= 1);
	assert_true(u == u1 + 1 && v == v1);
	count_folder(".Sent", &all, &seen);
	assert_int_equal(all, 2);
	assert_int_equal(seen, 2);

	/* the exact bytes, under the UID the ledger holds */
	assert_int_equal(imap_open(imap_url, USER, PASS, NULL, &s, &err), EX_OK);
	assert_int_equal(imap_fetch_since(s, "Sent", v, u - 1, NULL, fetch_last, &f, &err), EX_OK);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.uid, u);
	assert_int_equal(f.data.len, strlen(msg));
	assert_memory_equal(f.data.data, msg, strlen(msg));
	imap_close(s);
	buf_free(&f.data);
	ledger_close(l);
	config_free(&cfg);
	free(err);
}

/* A folder the server refuses, then a server that is down: kept; the retry appends both. */
static void test_kept_and_retried(void **state)
{
	struct config cfg;
	struct sentcopy *sc;
	struct ledger *l;
	char *err = NULL, down[64];
	int64_t d[2], *ids = NULL;
	size_t n = 0, appended = 9, left = 9;
	uint32_t v, u;
	int all0, all, seen;

	(void)state;
	setenv("DEMARCHE_IMAP_PASSWORD", PASS, 1);
	l = new_ledger("kept.db", d);
	count_folder(".Sent", &all0, &seen);

	set_config(&cfg, imap_url, "Nonesuch");
	assert_non_null(sc = sentcopy_open(&cfg, &err));
	assert_int_equal(sentcopy_append(sc, l, "c", &d[0], 1, msg, strlen(msg), &err),
	                 EX_TEMPFAIL);
	assert_non_null(strstr(err, "Nonesuch"));
	assert_int_equal(sentcopy_kept(sc), 1);
	sentcopy_close(sc);
	config_free(&cfg);

	/* a closed port: refused once, and not tried again in the same run */
	snprintf(down, sizeof(down), "imap://127.0.0.1:1");
	set_config(&cfg, down, NULL);
	assert_non_null(sc = sentcopy_open(&cfg, &err));
	assert_int_equal(sentcopy_append(sc, l, "c", &d[1], 1, msg, strlen(msg), &err),
	                 EX_TEMPFAIL);
	assert_int_equal(sentcopy_append(sc, l, "c", &d[1], 1, msg, strlen(msg), &err),
	                 EX_TEMPFAIL);
	assert_non_null(strstr(err, "earlier in this run"));
	/* retrying against the same dead server keeps them */
	assert_int_equal(sentcopy_retry(sc, l, &appended, &left, &err), EX_TEMPFAIL);
	assert_int_equal(appended, 0);
	assert_int_equal(left, 3);
	sentcopy_close(sc);
	config_free(&cfg);
	assert_int_equal(ledger_sent_copy(l, d[0], &v, &u), 0);

	set_config(&cfg, imap_url, NULL);
	assert_non_null(sc = sentcopy_open(&cfg, &err));
	assert_int_equal(sentcopy_retry(sc, l, &appended, &left, &err), EX_OK);
	assert_int_equal(appended, 3);
	assert_int_equal(left, 0);
	assert_int_equal(ledger_copies_pending(l, &ids, &n, &err), EX_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ledger_sent_copy(l, d[0], &v, &u), 1);
	assert_true(u >= 1);
	sentcopy_close(sc);
	count_folder(".Sent", &all, &seen);
	assert_int_equal(all, all0 + 3);
	free(ids);
	ledger_close(l);
	config_free(&cfg);
	unsetenv("DEMARCHE_IMAP_PASSWORD");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_not_configured), cmocka_unit_test(test_append),
	    cmocka_unit_test(test_kept_and_retried),
	    cmocka_unit_test(test_password_order), /* last: it adds to Sent */
	};

	return cmocka_run_group_tests(tests, start_dovecot, stop_dovecot);
}
