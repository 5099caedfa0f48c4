/* imap/report: classification of DSNs, replies and auto-replies from tests/data/imap/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "imap/report.h"

/* Loads tests/data/imap/NAME; with crlf, LF line ends become CRLF as IMAP delivers them. */
static char *fixture(const char *name, int crlf, size_t *len)
{
	const char *dir = getenv("TESTDATA");
	char *path, *data;
	struct buf b = BUF_INIT;
	size_t i;

	if (!dir)
		fail_msg("TESTDATA is not set (run through ctest)");
	path = xasprintf("%s/imap/%s", dir, name);
	if (read_file(path, &data, len) != 0)
		fail_msg("cannot read %s", path);
	free(path);
	if (!crlf)
		return data;
	for (i = 0; i < *len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			buf_addc(&b, '\r');
		buf_addc(&b, data[i]);
	}
	free(data);
	*len = b.len;
	return buf_detach(&b);
}

/* Parses a fixture in both line-end forms; the checks run on each. */
#define EACH_FORM(name, r)                                                                         \
	for (int crlf_ = 0; crlf_ < 2; crlf_++)                                                    \
		for (int once_ = parse_ok(name, crlf_, &(r)); once_; once_ = 0, report_free(&(r)))

static int parse_ok(const char *name, int crlf, struct report *r)
{
	size_t len;
	char *err = NULL, *data = fixture(name, crlf, &len);
	int rc = report_parse(data, len, r, &err);

	if (rc)
		fail_msg("%s (crlf %d): %d %s", name, crlf, rc, err);
	free(data);
	return 1;
}

static void test_postfix_bounce(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("postfix-bounce.eml", r)
	{
		assert_int_equal(r.kind, REPORT_DSN);
		assert_string_equal(r.reporting_mta, "mail.coalition.example.org");
		assert_int_equal(r.nrcpt, 1);
		assert_string_equal(r.rcpt[0].final_recipient, "mission.kenya@gov.example");
		assert_string_equal(r.rcpt[0].original_recipient, "mission.kenya@gov.example");
		assert_string_equal(r.rcpt[0].action, "failed");
		assert_string_equal(r.rcpt[0].status, "5.1.1");
		assert_string_equal(r.rcpt[0].remote_mta, "mx1.gov.example");
		assert_string_equal(r.rcpt[0].diagnostic,
		                    "550 5.1.1 <mission.kenya@gov.example>: Recipient address "
		                    "rejected: User unknown in virtual mailbox table");
		assert_string_equal(r.orig_message_id,
		                    "asp24-priorities.KEN.9a8b7c6d@coalition.example.org");
		assert_string_equal(r.orig_campaign, "asp24-priorities");
		assert_string_equal(r.from, "MAILER-DAEMON@mail.coalition.example.org");
		assert_string_equal(r.subject, "Undelivered Mail Returned to Sender");
		assert_string_equal(r.message_id, "4XkQ2n1Jz9z9sWQ@mail.coalition.example.org");
		assert_int_equal((long long)r.date, 1763974809LL);
	}
}

static void test_postfix_delayed_headers_only(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("postfix-delayed.eml", r)
	{
		assert_int_equal(r.kind, REPORT_DSN);
		assert_int_equal(r.nrcpt, 1);
		assert_string_equal(r.rcpt[0].action, "delayed");
		assert_string_equal(r.rcpt[0].status, "4.4.1");
		assert_string_equal(r.rcpt[0].diagnostic,
		                    "connect to mx.rree.example[203.0.113.25]:25: Connection timed "
		                    "out");
		assert_null(r.rcpt[0].remote_mta);
		/* text/rfc822-headers part */
		assert_string_equal(r.orig_message_id,
		                    "asp24-priorities.PER.5e6f7a8b@coalition.example.org");
		assert_string_equal(r.orig_campaign, "asp24-priorities");
	}
}

static void test_exchange_ndr(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("exchange-ndr.eml", r)
	{
		/* A DSN, though it also carries In-Reply-To and Auto-Submitted. */
		assert_int_equal(r.kind, REPORT_DSN);
		assert_string_equal(r.reporting_mta,
		                    "AM0PR01MB1234.eurprd01.prod.exchangelabs.com");
		assert_int_equal(r.nrcpt, 1);
		assert_string_equal(r.rcpt[0].final_recipient, "conseiller.cpi@mfa.example.gov");
		assert_null(r.rcpt[0].original_recipient);
		assert_string_equal(r.rcpt[0].status, "5.1.10");
		assert_string_equal(
		    r.rcpt[0].diagnostic,
		    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found "
		    "by SMTP address lookup");
		assert_string_equal(r.orig_message_id,
		                    "asp24-priorities.FRA.0badc0de@coalition.example.org");
		assert_string_equal(r.orig_campaign, "asp24-priorities");
		assert_string_equal(r.subject, "Undeliverable: 24th session of the Assembly of "
		                               "States Parties: priorities");
		assert_int_equal(r.nrefs, 1);
	}
}

static void test_rfc3464_two_recipients(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("rfc3464-multi.eml", r)
	{
		assert_int_equal(r.kind, REPORT_DSN);
		assert_int_equal(r.nrcpt, 2);
		assert_string_equal(r.rcpt[0].final_recipient, "registry@mission-a.example");
		assert_string_equal(r.rcpt[0].action, "failed");
		assert_string_equal(r.rcpt[0].diagnostic,
		                    "550 5.1.1 <registry@mission-a.example>... User unknown");
		assert_string_equal(r.rcpt[1].final_recipient, "delegation@mission-b.example");
		assert_string_equal(r.rcpt[1].action, "delayed"); /* "Delayed" in the file */
		assert_string_equal(r.rcpt[1].status, "4.2.2");
		assert_string_equal(r.orig_message_id,
		                    "asp24-priorities.AAA.1f2e3d4c@coalition.example.org");
	}
}

static void test_reply(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("reply.eml", r)
	{
		assert_int_equal(r.kind, REPORT_REPLY); /* Auto-Submitted: no is a person */
		assert_null(r.auto_reason);
		assert_int_equal(r.nrefs, 2);
		assert_string_equal(r.refs[0],
		                    "asp24-priorities.KEN.9a8b7c6d@coalition.example.org");
		assert_string_equal(r.refs[1],
		                    "asp23-priorities.KEN.11112222@coalition.example.org");
		assert_string_equal(r.from, "mission.kenya@gov.example");
		assert_string_equal(r.from_name, "Mission Permanente du K\xc3\xa9nya");
		assert_string_equal(
		    r.subject, "Re: 24th session of the Assembly of States Parties: priorities");
		assert_int_equal((long long)r.date, 1764251112LL); /* 2025-11-27T13:45:12Z */
		assert_int_equal(r.nrcpt, 0);
	}
}

static void test_autoreplies(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("autoreply-rfc3834.eml", r)
	{
		assert_int_equal(r.kind, REPORT_AUTOREPLY);
		assert_string_equal(r.auto_reason, "Auto-Submitted: auto-replied");
		assert_int_equal(r.nrefs, 1);
		assert_string_equal(r.refs[0],
		                    "asp24-priorities.PER.5e6f7a8b@coalition.example.org");
	}
	EACH_FORM("autoreply-exchange.eml", r)
	{
		assert_int_equal(r.kind, REPORT_AUTOREPLY);
		assert_true(str_startswith(r.subject, "R\xc3\xa9ponse automatique"));
		assert_true(str_startswith(r.auto_reason, "Subject: R\xc3\xa9ponse automatique"));
		assert_string_equal(r.refs[0],
		                    "asp24-priorities.FRA.0badc0de@coalition.example.org");
	}
	EACH_FORM("autoreply-x-autoreply.eml", r)
	{
		assert_int_equal(r.kind, REPORT_AUTOREPLY);
		assert_string_equal(r.auto_reason, "X-Autoreply: yes");
		assert_int_equal(r.nrefs, 0);
	}
}

static void test_other(void **state)
{
	struct report r;

	(void)state;
	EACH_FORM("other.eml", r)
	{
		assert_int_equal(r.kind, REPORT_OTHER);
		assert_string_equal(r.from, "newsletter@asp.example.int");
		assert_string_equal(r.from_name, "ASP Secretariat");
		assert_string_equal(report_kind_name(r.kind), "other");
	}
}

static void test_inline_markers(void **state)
{
	static const struct {
		const char *msg;
		enum report_kind kind;
	} cases[] = {
	    {"From: a@b.example\nSubject: Out of Office: away\nIn-Reply-To: <x@y>\n\nbody\n",
	     REPORT_AUTOREPLY},
	    {"From: a@b.example\nSubject: Automatic reply: x\n\nbody\n", REPORT_AUTOREPLY},
	    {"From: a@b.example\nPrecedence: auto_reply\nIn-Reply-To: <x@y>\n\nb\n",
	     REPORT_AUTOREPLY},
	    {"From: a@b.example\nX-Autorespond: vacation\n\nb\n", REPORT_AUTOREPLY},
	    {"From: a@b.example\nPrecedence: bulk\nReferences: <x@y>\n\nb\n", REPORT_REPLY},
	    {"From: a@b.example\nSubject: Re: out of office hours\nIn-Reply-To: <x@y>\n\nb\n",
	     REPORT_REPLY},
	    /* A DSN nested in multipart/mixed by a gateway. */
	    {"From: m@b.example\nContent-Type: multipart/mixed; boundary=o\n\n--o\n"
	     "Content-Type: multipart/report; report-type=delivery-status; boundary=i\n\n"
	     "--i\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; b\n\n"
	     "Final-Recipient: rfc822; x@y.example\nAction: failed\nStatus: 5.0.0\n\n--i--\n"
	     "\n--o--\n",
	     REPORT_DSN},
	    /* multipart/report of another type (RFC 8098 read receipt) is not a DSN. */
	    {"From: m@b.example\nContent-Type: multipart/report; "
	     "report-type=disposition-notification; boundary=i\n\n--i\nContent-Type: "
	     "text/plain\n\nread\n--i--\n",
	     REPORT_OTHER},
	};
	struct report r;
	char *err = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (report_parse(cases[i].msg, strlen(cases[i].msg), &r, &err) != 0)
			fail_msg("case %zu: %s", i, err);
		if (r.kind != cases[i].kind)
			fail_msg("case %zu: kind %s", i, report_kind_name(r.kind));
		report_free(&r);
	}
	free(err);
}

static void test_malformed(void **state)
{
	static const char *bad_dsns[] = {
	    /* no per-recipient block */
	    "From: m@b\nContent-Type: multipart/report; report-type=delivery-status; "
	    "boundary=i\n\n--i\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; "
	    "b\n\n--i--\n",
	    /* no delivery-status part at all */
	    "From: m@b\nContent-Type: multipart/report; report-type=delivery-status; "
	    "boundary=i\n\n--i\nContent-Type: text/plain\n\nsorry\n--i--\n",
	    /* an Action that RFC 3464 does not define */
	    "From: m@b\nContent-Type: multipart/report; report-type=delivery-status; "
	    "boundary=i\n\n--i\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; "
	    "b\n\nFinal-Recipient: rfc822; x@y\nAction: exploded\nStatus: 5.0.0\n--i--\n",
	    /* no Final-Recipient */
	    "From: m@b\nContent-Type: multipart/report; report-type=delivery-status; "
	    "boundary=i\n\n--i\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; "
	    "b\n\nAction: failed\nStatus: 5.0.0\n--i--\n",
	};
	struct report r;
	size_t len, i;
	char *err = NULL, *data = fixture("malformed-dsn.eml", 1, &len), *big;

	(void)state;
	assert_int_equal(report_parse(data, len, &r, &err), EX_DATAERR);
	assert_non_null(strstr(err, "not a field"));
	/* What was read stays available to list the message. */
	assert_int_equal(r.kind, REPORT_DSN);
	assert_string_equal(r.from, "MAILER-DAEMON@broken.example");
	assert_string_equal(r.subject, "failure notice");
	report_free(&r);
	free(data);

	for (i = 0; i < sizeof(bad_dsns) / sizeof(bad_dsns[0]); i++) {
		if (report_parse(bad_dsns[i], strlen(bad_dsns[i]), &r, &err) != EX_DATAERR)
			fail_msg("bad DSN %zu accepted", i);
		assert_non_null(err);
		report_free(&r);
	}

	assert_int_equal(report_parse("", 0, &r, &err), EX_DATAERR);
	assert_int_equal(report_parse("\x01\x02\xff\xfe garbage", 12, &r, &err), EX_DATAERR);
	report_free(&r);
	assert_int_equal(report_parse("\n\nno headers at all\n", 20, &r, &err), EX_DATAERR);
	report_free(&r);

	big = xmalloc(REPORT_MAX_SIZE + 1);
	memset(big, 'a', REPORT_MAX_SIZE + 1);
	assert_int_equal(report_parse(big, REPORT_MAX_SIZE + 1, &r, &err), EX_DATAERR);
	assert_non_null(strstr(err, "limit"));
	free(big);
	report_free(&r);
	report_free(NULL);
	free(err);
}

/* Every prefix of every fixture: no crash, no leak, either parsed or a clean error. */
static void test_truncations(void **state)
{
	static const char *names[] = {"postfix-bounce.eml", "exchange-ndr.eml", "rfc3464-multi.eml",
	                              "reply.eml", "malformed-dsn.eml"};
	struct report r;
	char *err = NULL;
	size_t i, n, len;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *data = fixture(names[i], 1, &len);
		for (n = 1; n <= len; n += 7) {
			int rc = report_parse(data, n, &r, &err);
			assert_true(rc == 0 || rc == EX_DATAERR);
			report_free(&r);
		}
		free(data);
	}
	free(err);
}

/* A DSN (head, then one delivery-status block) whose returned headers (text/rfc822-headers)
 * are headers then X-Demarche-Campaign: asp24: the original's Message-ID is want_id. */
static void returned_headers_read(const char *head, const char *headers, const char *want_id)
{
	struct report r;
	struct buf b = BUF_INIT;
	char *err = NULL;

	buf_adds(&b, head);
	buf_adds(&b, "\nFinal-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n\n"
	             "--B\nContent-Type: text/rfc822-headers\n\n");
	buf_adds(&b, headers);
	buf_adds(&b, "X-Demarche-Campaign: asp24\n\n--B--\n");
	assert_int_equal(report_parse(b.data, b.len, &r, &err), 0);
	assert_string_equal(r.orig_message_id, want_id);
	assert_string_equal(r.orig_campaign, "asp24");
	report_free(&r);
	buf_free(&b);
	free(err);
}

/*
 * Found by tests/fuzz/fuzz_report: a delivery-status part holding a NUL byte (8bit or in
 * base64) was copied up to the NUL but parsed to its full length, reading past the copy.
 * The part must be read whole: the block after the NUL line is still a recipient.
 */
static void test_nul_in_delivery_status(void **state)
{
	static const char head[] =
	    "From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\nBounced.\n\n"
	    "--B\nContent-Type: message/delivery-status\n";
	static const char plain[] = "\nReporting-MTA: dns; mx.example\nX-Junk: \0zz\n\n"
	                            "Final-Recipient: rfc822; a@b.example\nAction: failed\n"
	                            "Status: 5.1.1\n\n--B--\n";
	static const char b64[] =
	    "Content-Transfer-Encoding: base64\n\n"
	    "UmVwb3J0aW5nLU1UQTogZG5zOyBteC5leGFtcGxlCgpGaW5hbC1SZWNpcGllbnQ6IH"
	    "JmYzgyMjsgYUBiLmV4YW1wbGUKQWN0aW9uOiBmYWlsZWQKU3RhdHVzOiA1LjEuMQpY"
	    "LUp1bms6IAB6ego=\n\n--B--\n";
	struct report r;
	struct buf b = BUF_INIT;
	char *err = NULL;

	(void)state;
	buf_add(&b, head, sizeof(head) - 1);
	buf_add(&b, plain, sizeof(plain) - 1);
	assert_int_equal(report_parse(b.data, b.len, &r, &err), 0);
	assert_int_equal(r.kind, REPORT_DSN);
	assert_int_equal(r.nrcpt, 1);
	assert_string_equal(r.rcpt[0].final_recipient, "a@b.example");
	assert_string_equal(r.rcpt[0].status, "5.1.1");
	report_free(&r);

	buf_reset(&b);
	buf_add(&b, head, sizeof(head) - 1);
	buf_add(&b, b64, sizeof(b64) - 1);
	assert_int_equal(report_parse(b.data, b.len, &r, &err), 0);
	assert_int_equal(r.nrcpt, 1);
	assert_string_equal(r.rcpt[0].action, "failed");
	report_free(&r);

	/* Also found by the fuzzer: libetpan leaked a malformed Return-Path of the returned
	 * headers (LeakSanitizer and valgrind catch it); the fields we read are still read. */
	returned_headers_read(head,
	                      "Return-Path: <a@b]c.example\n"
	                      "Message-ID: <asp24.PER.1@ngo.example>\n",
	                      "asp24.PER.1@ngo.example");
	/* ... also with blanks before the colon (CI's fuzzer); a folded Message-ID still read */
	returned_headers_read(head,
	                      "Return-Path : <a@b]c\nreturn-path\t:<x@y]z\n"
	                      "Resent-From: <q@r]s\nMessage-ID:\n <asp24.PER.2@ngo.example>\n",
	                      "asp24.PER.2@ngo.example");

	/* Found by the fuzzer: a zone of "+19088742" overflowed int arithmetic (UBSan). */
	assert_int_equal(report_parse("From: a@b.example\nSubject: x\n"
	                              "Date: Tue, 25 Nov 2025 14:00:11 +19088742\n\nx\n",
	                              74, &r, &err),
	                 0);
	assert_int_equal(r.date, 0);
	report_free(&r);
	assert_int_equal(report_parse("From: a@b.example\nSubject: x\n"
	                              "Date: Tue, 25 Nov 2025 14:00:11 +0100\n\nx\n",
	                              70, &r, &err),
	                 0);
	assert_int_equal(r.date, 1764075611);
	report_free(&r);
	buf_free(&b);
	free(err);
}

/*
 * Hostile text in a DSN or reply is kept byte for byte (it is evidence, stored in the
 * ledger as received); escaping is the printer's job (base/escape). Only line folding,
 * which would break a stored reply over lines, is undone, even inside an encoded word.
 */
static void test_hostile_text_kept(void **state)
{
	static const char msg[] =
	    "From: =?UTF-8?Q?=1B[2J_Mission?= <x@attacker.example>\n"
	    "Subject: =?UTF-8?Q?Re=3A_=1B]0;owned=07_=E2=80=AE_a=0D=0Ab?=\n"
	    "Message-ID: <dsn.1@mx.example>\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
	    "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
	    "Final-Recipient: rfc822; deu@missions.example\nAction: failed\nStatus: 5.1.1\n"
	    "Diagnostic-Code: smtp; =HYPERLINK(\"http://evil\",\"\033[8m\007\342\200\256 "
	    "\377\")\n\n"
	    "--B--\n";
	struct report r = {0};
	char *err = NULL;

	(void)state;
	assert_int_equal(report_parse(msg, sizeof(msg) - 1, &r, &err), 0);
	assert_int_equal(r.kind, REPORT_DSN);
	assert_string_equal(r.rcpt[0].diagnostic,
	                    "=HYPERLINK(\"http://evil\",\"\033[8m\007\342\200\256 \377\")");
	assert_non_null(r.subject);
	assert_non_null(strstr(r.subject, "\033]0;owned\007 \342\200\256"));
	assert_null(strpbrk(r.subject, "\r\n"));
	assert_string_equal(r.from, "x@attacker.example");
	report_free(&r);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_postfix_bounce),
	    cmocka_unit_test(test_postfix_delayed_headers_only),
	    cmocka_unit_test(test_exchange_ndr),
	    cmocka_unit_test(test_rfc3464_two_recipients),
	    cmocka_unit_test(test_reply),
	    cmocka_unit_test(test_autoreplies),
	    cmocka_unit_test(test_other),
	    cmocka_unit_test(test_inline_markers),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_nul_in_delivery_status),
	    cmocka_unit_test(test_hostile_text_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
