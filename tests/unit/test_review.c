/*
 * Unit tests of review's pages and form parsing (src/review/site.c, http.c): hostile values
 * are escaped in text and attributes, a letter's HTML part is only served framed under its own
 * policy, missions are found by index only, a form field is decoded and matched by its whole
 * name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "review/http.h"
#include "review/site.h"

#define EVIL "<script>alert(1)</script>\"><img src=x onerror=alert(2)>"

static const char eml[] = "Date: Sat, 1 Jun 2024 12:00:00 +0000\r\n"
                          "From: Coalition <sec@coalition.example>\r\n"
                          "To: =?UTF-8?Q?Mission_=3Cscript=3E?= <m@missions.example>\r\n"
                          "Subject: =?UTF-8?Q?Appel_=C3=A0?=\r\n"
                          " =?UTF-8?Q?_la_Cour?=\r\n"
                          "MIME-Version: 1.0\r\n"
                          "Content-Type: text/plain\r\n"
                          "\r\n"
                          "body\r\n";

static int setup(void **state)
{
	struct review_site *s = calloc(1, sizeof(*s));
	char *err = NULL;

	s->campaign = "camp";
	s->appeal = "appeal";
	s->roster = "roster.csv";
	s->by = "group";
	assert_int_equal(review_site_init(s, &err), EX_OK);
	review_site_add(s, "K\"1", EVIL, "en", EVIL, "Subject", "Text " EVIL "\n",
	                "<p>html part</p>", eml, sizeof(eml) - 1, REVIEW_SEND, "send");
	review_site_add(s, "K2", "Two", "fr", NULL, "Sujet", "Texte\n", "<p>deux</p>", eml,
	                sizeof(eml) - 1, REVIEW_SENT, "skip: already sent");
	review_site_language(s, "en", "Subject");
	review_site_language(s, "fr", "Sujet");
	review_site_warning(s, "roster.csv:3: warning: " EVIL);
	review_site_parity(s, "en.md has 8 asks, fr.md has " EVIL);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	review_site_free(*state);
	free(*state);
	return 0;
}

/* GETs path; the reply's body is left in rp (free it). */
static void get(struct review_site *s, const char *method, const char *path,
                struct review_reply *rp)
{
	struct review_request rq = {method, path, "c5rf", "", 0};

	memset(rp, 0, sizeof(*rp));
	buf_init(&rp->body);
	review_site_route(s, &rq, rp);
}

static void no_raw_markup(const char *body)
{
	assert_null(strstr(body, "<script"));
	assert_null(strstr(body, "<img"));
	assert_null(strstr(body, "onerror=alert(2)>"));
}

static void test_campaign_escapes(void **state)
{
	struct review_reply rp;

	get(*state, "GET", "/", &rp);
	assert_int_equal(rp.status, 0); /* 200 */
	assert_null(rp.csp);            /* the default, strict policy */
	no_raw_markup(buf_str(&rp.body));
	assert_non_null(strstr(buf_str(&rp.body), "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(buf_str(&rp.body), "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
	assert_non_null(strstr(buf_str(&rp.body), "data-key=\"K&quot;1\""));
	assert_non_null(strstr(buf_str(&rp.body), "<a href=\"/m/1\">"));
	assert_non_null(strstr(buf_str(&rp.body), "skip: already sent"));
	/* a mission without a group is counted under (none) */
	assert_non_null(strstr(buf_str(&rp.body), "(none)"));
	buf_free(&rp.body);

	get(*state, "GET", "/languages", &rp);
	no_raw_markup(buf_str(&rp.body));
	assert_non_null(strstr(buf_str(&rp.body), "fr.md has &lt;script&gt;"));
	buf_free(&rp.body);
}

static void test_mission(void **state)
{
	struct review_reply rp;

	get(*state, "GET", "/m/1", &rp);
	assert_int_equal(rp.status, 0);
	no_raw_markup(buf_str(&rp.body));
	/* headers decoded (RFC 2047, folded), then escaped */
	assert_non_null(strstr(buf_str(&rp.body), "Appel à la Cour"));
	assert_non_null(strstr(buf_str(&rp.body), "Mission &lt;script&gt;"));
	assert_null(strstr(buf_str(&rp.body), "Content-Type"));
	/* the HTML part only by reference, in a sandboxed frame */
	assert_non_null(strstr(buf_str(&rp.body), "<iframe class=\"letter\" sandbox=\"\""));
	assert_null(strstr(buf_str(&rp.body), "html part"));
	assert_non_null(strstr(buf_str(&rp.body), "rel=\"next\" href=\"/m/2\""));
	assert_null(strstr(buf_str(&rp.body), "rel=\"prev\""));
	buf_free(&rp.body);

	get(*state, "GET", "/m/1/html", &rp);
	assert_string_equal(buf_str(&rp.body), "<p>html part</p>");
	assert_non_null(rp.csp);
	assert_non_null(strstr(rp.csp, "sandbox"));
	assert_non_null(strstr(rp.csp, "default-src 'none'"));
	assert_int_equal(rp.framable, 1);
	buf_free(&rp.body);
}

static void test_not_found(void **state)
{
	static const char *const paths[] = {
	    "/m/0",  "/m/3",   "/m/01",          "/m/1x",      "/m/-1", "/m/99999999999999999999",
	    "/m/K2", "/audit", "/../etc/passwd", "/m/1/html/", ""};
	struct review_reply rp;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		get(*state, "GET", paths[i], &rp);
		assert_int_equal(rp.status, 404);
		buf_free(&rp.body);
	}
	/* a POST that passed the CSRF check to anything but /approve is 404 */
	get(*state, "POST", "/", &rp);
	assert_int_equal(rp.status, 404);
	buf_free(&rp.body);
	get(*state, "GET", "/style.css", &rp);
	assert_string_equal(rp.type, "text/css; charset=utf-8");
	buf_free(&rp.body);
}

/* The changes page: plan_changes()'s lines, escaped. */
static void test_changes(void **state)
{
	struct review_site *s = *state;
	struct review_reply rp;

	get(s, "GET", "/changes", &rp);
	assert_non_null(strstr(buf_str(&rp.body), "No ledger yet"));
	buf_free(&rp.body);
	review_site_changes(s, "since the last letter (campaign c1 in the ledger): 1 new\n"
	                       "  new      XYZ\n"
	                       "  name     FRA: a -> " EVIL "\n");
	get(s, "GET", "/changes", &rp);
	assert_int_equal(rp.status, 0);
	no_raw_markup(buf_str(&rp.body));
	assert_non_null(strstr(buf_str(&rp.body), "campaign c1 in the ledger): 1 new</p>"));
	assert_non_null(strstr(buf_str(&rp.body), "<li><code>new      XYZ</code></li>"));
	assert_non_null(strstr(buf_str(&rp.body), "FRA: a -&gt; &lt;script&gt;"));
	buf_free(&rp.body);
}

static const char *approved;

static int fake_approve(void *user, const char *hash, struct buf *msg)
{
	(void)user;
	approved = hash;
	buf_adds(msg, "ok\n");
	return strcmp(hash, "abc") ? 409 : 303;
}

static void post(struct review_site *s, const char *path, const char *body, struct review_reply *rp)
{
	struct review_request rq = {"POST", path, "c5rf", body, strlen(body)};

	memset(rp, 0, sizeof(*rp));
	buf_init(&rp->body);
	review_site_route(s, &rq, rp);
}

/* Approving: no form and 403 unless the server allows it; the form carries the hash shown. */
static void test_approve(void **state)
{
	struct review_site *s = *state;
	struct review_reply rp;

	review_site_approval(s, "abc", "2026-12-02", 2, 1, 0, NULL, NULL);
	get(s, "GET", "/", &rp);
	assert_null(strstr(buf_str(&rp.body), "approve-form"));
	buf_free(&rp.body);
	post(s, "/approve", "csrf=c5rf&batch=abc", &rp);
	assert_int_equal(rp.status, 403);
	assert_null(approved);
	buf_free(&rp.body);

	s->approve = fake_approve;
	s->approver = EVIL;
	review_site_approval(s, "abc", "2026-12-02", 2, 1, 0, NULL, NULL); /* replaces */
	get(s, "GET", "/", &rp);
	no_raw_markup(buf_str(&rp.body));
	assert_non_null(strstr(buf_str(&rp.body), "<form method=\"post\" action=\"/approve\""));
	assert_non_null(strstr(buf_str(&rp.body), "name=\"csrf\" value=\"c5rf\""));
	assert_non_null(strstr(buf_str(&rp.body), "name=\"batch\" value=\"abc\""));
	assert_null(strstr(buf_str(&rp.body), "approver-is-sender"));
	buf_free(&rp.body);
	s->approver_is_sender = 1;
	get(s, "GET", "/", &rp);
	no_raw_markup(buf_str(&rp.body));
	assert_non_null(strstr(buf_str(&rp.body), "approver-is-sender"));
	buf_free(&rp.body);
	post(s, "/approve", "csrf=c5rf", &rp);
	assert_int_equal(rp.status, 400);
	buf_free(&rp.body);
	post(s, "/approve", "csrf=c5rf&batch=abd", &rp);
	assert_int_equal(rp.status, 409);
	assert_null(rp.location);
	buf_free(&rp.body);
	post(s, "/approve", "csrf=c5rf&batch=abc", &rp);
	assert_int_equal(rp.status, 303);
	assert_string_equal(rp.location, "/#approval");
	free(rp.location);
	buf_free(&rp.body);
	post(s, "/other", "csrf=c5rf&batch=abc", &rp);
	assert_int_equal(rp.status, 404);
	buf_free(&rp.body);
}

static void test_form_value(void **state)
{
	static const char body[] = "a=1&csrfx=no&csrf=ab%41+c%2&x&empty=";
	char *v;

	(void)state;
	v = review_form_value(body, strlen(body), "csrf");
	assert_string_equal(v, "abA c%2"); /* a broken escape stays as it is */
	free(v);
	v = review_form_value(body, strlen(body), "empty");
	assert_string_equal(v, "");
	free(v);
	assert_null(review_form_value(body, strlen(body), "x"));
	assert_null(review_form_value(body, strlen(body), "csr"));
	assert_null(review_form_value("", 0, "csrf"));
	/* the length is obeyed: no field past it */
	assert_null(review_form_value(body, 4, "csrf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_campaign_escapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mission, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_approve, setup, teardown),
	    cmocka_unit_test(test_form_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
