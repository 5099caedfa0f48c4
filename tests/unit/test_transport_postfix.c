/*
 * SMTP transport against a real Postfix (STARTTLS, implicit TLS, AUTH through Dovecot),
 * driven by tests/integration/smtp_postfix.sh, which starts Postfix and sets POSTFIX_PORT,
 * POSTFIX_SMTPS_PORT, POSTFIX_CA, POSTFIX_OTHER_CA, POSTFIX_USER and POSTFIX_PASSWORD.
 * Without them every test is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/strutil.h"
#include "base/xalloc.h"
#include "transport/transport.h"

#include "outcome.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		skip();
	return v;
}

struct harness {
	size_t n, next;
	struct outcome out[3];
};

static const char *const rcpt[] = {"mission@example.org", "cc@example.net"};
static const char msg[] = "Message-ID: <asp24.ken.1@coalition.example>\r\n"
                          "From: appeals@coalition.example\r\nTo: mission@example.org\r\n"
                          "Subject: appeal\r\n\r\nYour Excellency,\r\n";

static int h_next(void *u, struct transport_msg *m, long *wait_ms)
{
	struct harness *h = u;

	(void)wait_ms;
	if (h->next >= h->n)
		return 0;
	m->user = &h->out[h->next++];
	m->from = "appeals@coalition.example";
	m->rcpt = rcpt;
	m->nrcpt = 2;
	m->data = msg;
	m->len = strlen(msg);
	return 1;
}

static void h_done(void *u, const struct transport_msg *m, const struct transport_result *r)
{
	(void)u;
	outcome_record(m->user, m, r);
}

/* Runs n messages; returns transport_run()'s code, *err its message. */
static int run(const char *url, const char *tls, const char *ca, const char *password,
               struct harness *h, size_t n, long *conns, char **err)
{
	struct transport_opts o = {0};
	struct transport *t = NULL;
	int rc;

	o.url = url;
	o.tls = tls;
	o.ca_file = ca;
	o.user = password ? env("POSTFIX_USER") : NULL;
	o.password = password;
	o.timeout = 20;
	o.helo = "coalition.example";
	memset(h, 0, sizeof(*h));
	h->n = n;
	*err = NULL;
	assert_int_equal(transport_open(&o, &t, err), EX_OK);
	rc = transport_run(t, h_next, h_done, h, NULL, err);
	if (conns)
		*conns = transport_connections(t);
	transport_close(t);
	return rc;
}

static void harness_free(struct harness *h)
{
	for (size_t i = 0; i < 3; i++)
		outcome_free(&h->out[i]);
}

static char *url(const char *scheme, const char *portvar)
{
	return xasprintf("%s://127.0.0.1:%s", scheme, env(portvar));
}

static void sent_ok(const char *scheme, const char *portvar, const char *tls)
{
	struct harness h;
	char *u = url(scheme, portvar), *err;
	long conns = 0;

	assert_int_equal(
	    run(u, tls, env("POSTFIX_CA"), env("POSTFIX_PASSWORD"), &h, 3, &conns, &err), EX_OK);
	assert_null(err);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(h.out[i].calls, 1);
		assert_int_equal(h.out[i].state, TX_SENT);
		assert_int_equal(h.out[i].code, 250);
		assert_non_null(strstr(h.out[i].reply, "250 2.0.0 Ok: queued as "));
	}
	assert_int_equal(conns, 1);
	harness_free(&h);
	free(u);
}

/* STARTTLS required (RFC 3207) + AUTH PLAIN (RFC 4954); Postfix offers AUTH only after
 * STARTTLS here (smtpd_tls_auth_only), so success also proves TLS was on. */
static void test_starttls_auth(void **state)
{
	(void)state;
	sent_ok("smtp", "POSTFIX_PORT", "starttls");
}

/* The default on loopback: STARTTLS when offered. */
static void test_default_tls_loopback(void **state)
{
	(void)state;
	sent_ok("smtp", "POSTFIX_PORT", "");
}

/* smtps:// (RFC 8314 implicit TLS). */
static void test_implicit_tls(void **state)
{
	(void)state;
	sent_ok("smtps", "POSTFIX_SMTPS_PORT", "");
}

/* A wrong password: the server's 535 is reported, the run stops, nothing is failed. */
static void test_wrong_password(void **state)
{
	struct harness h;
	char *u = url("smtp", "POSTFIX_PORT"), *err;

	(void)state;
	assert_int_equal(
	    run(u, "starttls", env("POSTFIX_CA"), "not-the-password", &h, 3, NULL, &err),
	    EX_CONFIG);
	assert_non_null(err);
	print_message("wrong password: %s\n", err);
	assert_non_null(strstr(err, "535"));
	assert_null(strstr(err, "not-the-password"));
	assert_int_equal(h.next, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	assert_int_equal(h.out[0].code, 535);
	free(err);
	harness_free(&h);
	free(u);
}

/* A CA that did not sign the server's certificate: verification fails, the run stops. */
static void test_wrong_ca(void **state)
{
	struct harness h;
	char *u = url("smtp", "POSTFIX_PORT"), *err;

	(void)state;
	assert_int_equal(
	    run(u, "starttls", env("POSTFIX_OTHER_CA"), env("POSTFIX_PASSWORD"), &h, 3, NULL, &err),
	    EX_CONFIG);
	assert_non_null(err);
	print_message("wrong CA: %s\n", err);
	assert_true(strstr(err, "certificate") || strstr(err, "SSL"));
	assert_int_equal(h.next, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	free(err);
	harness_free(&h);
	free(u);
	u = url("smtps", "POSTFIX_SMTPS_PORT");
	assert_int_equal(
	    run(u, "", env("POSTFIX_OTHER_CA"), env("POSTFIX_PASSWORD"), &h, 3, NULL, &err),
	    EX_CONFIG);
	free(err);
	harness_free(&h);
	free(u);
}

/* Cleartext on loopback (tls = none): Postfix offers no AUTH without TLS; we must not go on
 * without it. */
static void test_cleartext_no_auth_offered(void **state)
{
	struct harness h;
	char *u = url("smtp", "POSTFIX_PORT"), *err;

	(void)state;
	assert_int_equal(run(u, "none", NULL, env("POSTFIX_PASSWORD"), &h, 2, NULL, &err),
	                 EX_CONFIG);
	print_message("cleartext: %s\n", err);
	assert_non_null(strstr(err, "no AUTH"));
	assert_null(strstr(err, env("POSTFIX_PASSWORD")));
	assert_int_equal(h.next, 1);
	assert_int_equal(h.out[0].state, TX_DEFERRED);
	free(err);
	harness_free(&h);
	free(u);
}

/* Without AUTH the relay refuses the recipients: 554, failed (RFC 5321 section 4.2.5). */
static void test_no_auth_relay_denied(void **state)
{
	struct harness h;
	char *u = url("smtp", "POSTFIX_PORT"), *err;

	(void)state;
	assert_int_equal(run(u, "starttls", env("POSTFIX_CA"), NULL, &h, 2, NULL, &err), EX_OK);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(h.out[i].state, TX_FAILED);
		assert_int_equal(h.out[i].code / 100, 5);
		assert_non_null(strstr(h.out[i].reply, "Recipient address rejected"));
	}
	harness_free(&h);
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_starttls_auth),
	    cmocka_unit_test(test_default_tls_loopback),
	    cmocka_unit_test(test_implicit_tls),
	    cmocka_unit_test(test_wrong_password),
	    cmocka_unit_test(test_wrong_ca),
	    cmocka_unit_test(test_cleartext_no_auth_offered),
	    cmocka_unit_test(test_no_auth_relay_denied),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
