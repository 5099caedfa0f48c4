/* imap/ against a real throwaway Dovecot (tests/integration/servers/dovecot.bash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "imap/imap.h"
#include "servers.h"

#define USER "alice"
#define PASS "s3cret pass"

static struct dovecot dv;
static char imap_url[64], imaps_url[64], imaps_localhost_url[64];
static char other_cert[256];

static int start_dovecot(void **state)
{
	(void)state;
	if (dovecot_up(&dv, USER, PASS) != 0 ||
	    servers_run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	                "-keyout %s/other.key -out %s/other.pem -days 2 -subj /CN=127.0.0.1 "
	                "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
	                dv.dir, dv.dir) != 0)
		return -1;
	snprintf(imap_url, sizeof(imap_url), "imap://127.0.0.1:%s", dv.imap_port);
	snprintf(imaps_url, sizeof(imaps_url), "imaps://127.0.0.1:%s/", dv.imaps_port);
	snprintf(imaps_localhost_url, sizeof(imaps_localhost_url), "imaps://localhost:%s",
	         dv.imaps_port);
	snprintf(other_cert, sizeof(other_cert), "%s/other.pem", dv.dir);
	return 0;
}

static int stop_dovecot(void **state)
{
	(void)state;
	dovecot_down(&dv);
	return 0;
}

static struct imap_session *open_plain(void)
{
	struct imap_session *s = NULL;
	char *err = NULL;
	int rc = imap_open(imap_url, USER, PASS, NULL, &s, &err);

	if (rc)
		fail_msg("imap_open %s: %d %s", imap_url, rc, err);
	free(err);
	return s;
}

struct collected {
	size_t n;
	uint32_t uid[16];
	char *data[16];
	size_t len[16];
	int stop_after; /* 0: never */
};

static int collect(void *arg, uint32_t uid, const char *data, size_t len)
{
	struct collected *c = arg;

	assert_true(c->n < 16);
	c->uid[c->n] = uid;
	c->data[c->n] = xstrndup(data, len);
	c->len[c->n] = len;
	c->n++;
	return c->stop_after && c->n == (size_t)c->stop_after ? 42 : 0;
}

static void collected_free(struct collected *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->data[i]);
	memset(c, 0, sizeof(*c));
}

static const char sent_msg[] = "Date: Mon, 24 Nov 2025 10:00:00 +0100\r\n"
                               "From: NGO Coalition <appeals@example.org>\r\n"
                               "To: Mission of Kenya <mission@example.net>\r\n"
                               "Message-ID: <asp24.KEN.abc123@example.org>\r\n"
                               "Subject: 24th session of the Assembly of States Parties\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "\r\n"
                               "Excellency,\r\n"
                               "\r\n"
                               "a line with trailing space \r\n"
                               ".leading dot\r\n";

/* The maildir file Dovecot stored for the only message of folder (".Sent" or ""). */
static void maildir_file(const char *folder, char *out, size_t size)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int found = 0;

	snprintf(path, sizeof(path), "%s/%s/cur", dv.maildir, folder);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int w = snprintf(out, size, "%s/%s", path, de->d_name);
		assert_true(w >= 0 && (size_t)w < size);
		found++;
	}
	closedir(d);
	assert_int_equal(found, 1);
}

static void test_append_to_sent(void **state)
{
	struct imap_session *s = open_plain();
	struct collected c = {0};
	uint32_t uid = 0, validity = 0, now = 0;
	char *err = NULL, file[600];
	struct stat st;
	int exists = -1;

	(void)state;
	assert_int_equal(imap_has_uidplus(s), 1);
	assert_int_equal(imap_folder_exists(s, "Sent", &exists, &err), EX_OK);
	assert_int_equal(exists, 1);
	assert_int_equal(imap_folder_exists(s, "Nonesuch", &exists, &err), EX_OK);
	assert_int_equal(exists, 0);

	assert_int_equal(imap_append(s, "Sent", sent_msg, strlen(sent_msg), IMAP_SEEN, NULL, &uid,
	                             &validity, &err),
	                 EX_OK);
	assert_true(uid >= 1);
	assert_true(validity >= 1);

	/* The exact bytes come back, under the UID APPENDUID named. */
	assert_int_equal(imap_fetch_since(s, "Sent", 0, 0, &now, collect, &c, &err), EX_OK);
	assert_int_equal(now, validity);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uid[0], uid);
	assert_int_equal(c.len[0], strlen(sent_msg));
	assert_memory_equal(c.data[0], sent_msg, strlen(sent_msg));
	collected_free(&c);

	/* \Seen is the maildir "S" info flag; the internal date is the file's mtime. */
	maildir_file(".Sent", file, sizeof(file));
	assert_non_null(strstr(file, ":2,S"));
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal((long long)st.st_mtime, 1763974800LL); /* 2025-11-24T09:00:00Z */

	/* A missing folder is the server's refusal, quoted. */
	assert_int_equal(
	    imap_append(s, "Nonesuch", sent_msg, strlen(sent_msg), 0, NULL, NULL, NULL, &err),
	    EX_UNAVAILABLE);
	assert_non_null(strstr(err, "APPEND to Nonesuch"));
	assert_int_equal(
	    imap_append(s, "Sent", sent_msg, strlen(sent_msg), 0, "not a date", NULL, NULL, &err),
	    EX_DATAERR);
	free(err);
	imap_close(s);
}

static void test_fetch_since(void **state)
{
	struct imap_session *s = open_plain();
	struct collected c = {0};
	uint32_t uid1, uid2, uid3, validity, now = 0;
	char *err = NULL;
	const char *m1 = "Subject: one\r\n\r\n1\r\n", *m2 = "Subject: two\r\n\r\n2\r\n";
	const char *m3 = "Subject: three\r\n\r\n3\r\n";

	(void)state;
	assert_int_equal(imap_append(s, "Drafts", m1, strlen(m1), 0, NULL, &uid1, &validity, &err),
	                 EX_OK);
	assert_int_equal(imap_append(s, "Drafts", m2, strlen(m2), 0, NULL, &uid2, NULL, &err),
	                 EX_OK);

	assert_int_equal(imap_fetch_since(s, "Drafts", validity, 0, &now, collect, &c, &err),
	                 EX_OK);
	assert_int_equal(now, validity);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.uid[0], uid1);
	assert_int_equal(c.uid[1], uid2);
	assert_string_equal(c.data[1], m2);
	collected_free(&c);

	/* Nothing newer than the last UID: "uid2+1:*" would name uid2 itself; it must not. */
	assert_int_equal(imap_fetch_since(s, "Drafts", validity, uid2, &now, collect, &c, &err),
	                 EX_OK);
	assert_int_equal(c.n, 0);

	assert_int_equal(imap_append(s, "Drafts", m3, strlen(m3), 0, NULL, &uid3, NULL, &err),
	                 EX_OK);
	assert_int_equal(imap_fetch_since(s, "Drafts", validity, uid2, &now, collect, &c, &err),
	                 EX_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uid[0], uid3);
	assert_string_equal(c.data[0], m3);
	collected_free(&c);
	assert_int_equal(imap_fetch_since(s, "Drafts", validity, uid3, &now, collect, &c, &err),
	                 EX_OK);
	assert_int_equal(c.n, 0);

	/* Another UIDVALIDITY than recorded: the old last UID means nothing, all come back. */
	assert_int_equal(imap_fetch_since(s, "Drafts", validity + 1, uid3, &now, collect, &c, &err),
	                 EX_OK);
	assert_int_equal(now, validity);
	assert_int_equal(c.n, 3);
	collected_free(&c);

	/* The callback stops the run with its own value. */
	c.stop_after = 1;
	assert_int_equal(imap_fetch_since(s, "Drafts", validity, 0, NULL, collect, &c, &err), 42);
	assert_int_equal(c.n, 1);
	collected_free(&c);

	assert_int_equal(imap_fetch_since(s, "Nonesuch", 0, 0, &now, collect, &c, &err),
	                 EX_UNAVAILABLE);
	assert_int_equal(c.n, 0);
	free(err);
	imap_close(s);
}

static void test_imaps_verification(void **state)
{
	struct imap_session *s = NULL;
	char *err = NULL;
	int exists = 0;

	(void)state;
	assert_int_equal(imap_open(imaps_url, USER, PASS, dv.cert, &s, &err), EX_OK);
	assert_non_null(s);
	assert_int_equal(imap_folder_exists(s, "INBOX", &exists, &err), EX_OK);
	assert_int_equal(exists, 1);
	imap_close(s);

	/* A CA that did not sign the server's certificate. */
	assert_int_equal(imap_open(imaps_url, USER, PASS, other_cert, &s, &err), EX_UNAVAILABLE);
	assert_null(s);
	assert_non_null(strstr(err, "cannot verify"));

	/* The right CA but another name than the certificate's (it holds IP:127.0.0.1 only). */
	assert_int_equal(imap_open(imaps_localhost_url, USER, PASS, dv.cert, &s, &err),
	                 EX_UNAVAILABLE);
	assert_non_null(strstr(err, "cannot verify"));

	/* The system's CAs do not know a throwaway certificate. */
	assert_int_equal(imap_open(imaps_url, USER, PASS, NULL, &s, &err), EX_UNAVAILABLE);

	assert_int_equal(imap_open(imaps_url, USER, PASS, "/nonexistent/ca.pem", &s, &err),
	                 EX_CONFIG);
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	free(err);
}

static void test_login_refused(void **state)
{
	struct imap_session *s = NULL;
	char *err = NULL;

	(void)state;
	assert_int_equal(imap_open(imap_url, USER, "wrong", NULL, &s, &err), EX_CONFIG);
	assert_null(s);
	assert_non_null(strstr(err, "login as alice refused"));
	assert_null(strstr(err, "wrong"));
	free(err);
}

static void test_bad_urls(void **state)
{
	static const char *bad[] = {"smtp://127.0.0.1",
	                            "imap://",
	                            "imap://host:0",
	                            "imap://host:70000",
	                            "imap://u@host",
	                            "imaps://host/INBOX",
	                            "imap://[::1",
	                            "imap://host:12x",
	                            "imaps://host?x=1",
	                            "imap://u:S3cret@host",
	                            "imap://[fe80::1%25eth0]",
	                            "imaps://host#f",
	                            "imap://u:S3cret@host:99999",
	                            NULL};
	struct imap_session *s = NULL;
	char *err = NULL;
	int i;

	(void)state;
	for (i = 0; bad[i]; i++) {
		assert_int_equal(imap_open(bad[i], USER, PASS, NULL, &s, &err), EX_CONFIG);
		assert_null(s);
		assert_non_null(strstr(err, "IMAP URL"));
		assert_null(strstr(err, "S3cret")); /* shown redacted */
	}
	free(err);
	err = NULL;
	imap_close(NULL);
}

/*
 * The loopback rule is the SMTP one (base/net.h; "localhost." is tested there, it does not
 * resolve in every container): "LOCALHOST" stays in cleartext like 127.0.0.1. Without a CA a STARTTLS could not be verified, so a login that
 * succeeds here proves no STARTTLS was attempted; a non-loopback name is refused before.
 */
static void test_loopback_cleartext(void **state)
{
	static const char *hosts[] = {"LOCALHOST", "localhost", "127.0.0.1", NULL};
	struct imap_session *s = NULL;
	char url[128], *err = NULL;

	(void)state;
	for (int i = 0; hosts[i]; i++) {
		snprintf(url, sizeof(url), "imap://%s:%s/", hosts[i], dv.imap_port);
		if (imap_open(url, USER, PASS, NULL, &s, &err) != EX_OK)
			fail_msg("%s: %s", url, err);
		imap_close(s);
		s = NULL;
	}
	free(err);
}

static void test_connection_refused(void **state)
{
	struct imap_session *s = NULL;
	char *err = NULL;

	(void)state;
	/* Port 1 on loopback: nothing listens there in a test container. */
	assert_int_equal(imap_open("imap://127.0.0.1:1", USER, PASS, NULL, &s, &err), EX_TEMPFAIL);
	assert_null(s);
	assert_non_null(err);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_urls),           cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_append_to_sent),     cmocka_unit_test(test_fetch_since),
	    cmocka_unit_test(test_imaps_verification), cmocka_unit_test(test_login_refused),
	    cmocka_unit_test(test_loopback_cleartext),
	};
	return cmocka_run_group_tests(tests, start_dovecot, stop_dovecot);
}
