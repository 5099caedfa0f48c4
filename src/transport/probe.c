/* An SMTP check that sends nothing: greeting, EHLO extensions, TLS, AUTH (for doctor). */
#include "transport/probe.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "transport/smtp_opts.h"

struct probe_run {
	struct transport_probe *p;
	struct buf line;  /* the reply being read, lines joined by '\n' */
	int next_is_ehlo; /* the reply after a 220 answers EHLO (RFC 5321 4.1.1.1, RFC 3207 4.2) */
	int malformed;    /* a server line was not a reply (RFC 5321 section 4.2) */
};

/* One EHLO reply: "250-name greets", "250-SIZE 10240000", ..., "250 SMTPUTF8". */
static void parse_ehlo(struct transport_probe *p, const char *reply)
{
	const char *l = reply;

	p->ehlo_seen = 1;
	p->has_size = p->smtputf8 = p->pipelining = p->eightbitmime = 0;
	p->size = 0;
	free(p->auth);
	p->auth = NULL;
	/* The first line is the server's name (RFC 5321 section 4.1.1.1): skip it. */
	l = strchr(l, '\n');
	while (l) {
		const char *kw = ++l, *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) : strlen(l);
		char *s;

		l = end;
		if (n < 4)
			continue;
		s = xstrndup(kw + 4, n - 4);
		if (!strncasecmp(s, "SIZE", 4) && (s[4] == ' ' || !s[4])) {
			p->has_size = 1;
			p->size = s[4] ? strtol(s + 5, NULL, 10) : 0; /* RFC 1870 section 4 */
		} else if (!strcasecmp(s, "STARTTLS")) {
			if (!p->tls)
				p->starttls_offered = 1;
		} else if (!strncasecmp(s, "AUTH", 4) && (s[4] == ' ' || s[4] == '=')) {
			/* RFC 4954 section 3; "AUTH=" is the old form some servers still add. */
			if (!p->auth)
				p->auth = xstrdup(s + 5);
		} else if (!strcasecmp(s, "SMTPUTF8")) {
			p->smtputf8 = 1;
		} else if (!strcasecmp(s, "PIPELINING")) {
			p->pipelining = 1;
		} else if (!strcasecmp(s, "8BITMIME")) {
			p->eightbitmime = 1;
		}
		free(s);
	}
}

/* One complete reply (RFC 5321 section 4.2.1) with its code. */
static void on_reply(struct probe_run *r, int code, const char *reply)
{
	struct transport_probe *p = r->p;
	struct buf one = BUF_INIT;

	if (code == 221)
		return; /* the answer to QUIT */
	if (code == 220) {
		if (!p->greeting) {
			p->greeting = xstrdup(reply);
			if (p->implicit_tls)
				p->tls = 1; /* the handshake came first */
		} else {
			p->tls = 1; /* "220 Ready to start TLS" (RFC 3207 section 4) */
		}
		r->next_is_ehlo = 1;
		return;
	}
	if (r->next_is_ehlo) {
		r->next_is_ehlo = 0;
		if (code == 250) {
			parse_ehlo(p, reply);
			return;
		}
	}
	if (code == 334 || code == 235)
		p->auth_tried = 1;
	if (code == 235) {
		p->auth_ok = 1;
		return;
	}
	/* On one line, as the transport keeps replies. */
	smtp_reply_oneline(reply, &one);
	free(p->reply);
	p->reply = buf_detach(&one);
}

/* curl hands every server line to the header callback. */
static size_t header_cb(char *s, size_t size, size_t nitems, void *arg)
{
	struct probe_run *r = arg;
	size_t n = size * nitems;
	int code = smtp_reply_add(&r->line, s, n);

	if (code == SMTP_REPLY_BAD) {
		/* Not a reply line: libcurl would wait for one until the timeout. */
		r->malformed = 1;
		return 0;
	}
	if (code >= 0) {
		on_reply(r, code, buf_str(&r->line));
		buf_reset(&r->line);
	}
	return n;
}

/* The reply to NOOP arrives as "body": nothing to keep. */
static size_t write_cb(char *s, size_t size, size_t nitems, void *arg)
{
	(void)s;
	(void)arg;
	return size * nitems;
}

static int is_tls_error(CURLcode cc)
{
	switch (cc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CLIENTCERT:
		return 1;
	default:
		return 0;
	}
}

int transport_probe(const struct transport_opts *o, struct transport_probe **out, char **errstr)
{
	struct smtp_conf c;
	struct probe_run r = {NULL, BUF_INIT, 0, 0};
	struct transport_probe *p = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc, bad = 0;
	CURL *e = NULL;
	CURLcode cc;

	*out = NULL;
	rc = smtp_conf_init(&c, o, errstr);
	if (rc != EX_OK)
		return rc;
	smtp_curl_init();
	p = xcalloc(1, sizeof(*p));
	p->hostport = xstrdup(c.hostport);
	p->implicit_tls = c.implicit;
	r.p = p;
	e = curl_easy_init();
	if (!e) {
		p->stage = PROBE_CONNECT;
		p->error = xstrdup("libcurl could not start");
		rc = EX_OK;
		goto out;
	}
	bad = smtp_conf_setopt(e, &c, o) < 0;
#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	/* No MAIL: curl sends this command instead, then QUIT. */
	SET(CURLOPT_CUSTOMREQUEST, "NOOP");
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, &r);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
	if (bad) {
		p->stage = PROBE_CONNECT;
		p->error = xstrdup("libcurl refused an option");
		rc = EX_OK;
		goto out;
	}
	cc = curl_easy_perform(e);
	if (c.implicit && !p->greeting && smtp_tls_got_plaintext(cc, errbuf))
		p->error = smtp_tls_plaintext_text(&c);
	else if (cc != CURLE_OK && r.malformed)
		p->error = xasprintf("protocol error: %s sent a line that is not an SMTP reply",
		                     c.hostport);
	else if (cc != CURLE_OK)
		p->error = xstrdup(*errbuf ? errbuf : curl_easy_strerror(cc));
	if (!p->greeting)
		p->stage = c.implicit && is_tls_error(cc) && !smtp_tls_got_plaintext(cc, errbuf)
		               ? PROBE_TLS
		               : PROBE_CONNECT;
	else if (cc == CURLE_USE_SSL_FAILED)
		p->stage = PROBE_STARTTLS;
	else if (is_tls_error(cc))
		p->stage = PROBE_TLS;
	else if (!p->ehlo_seen)
		p->stage = PROBE_EHLO;
	else if (cc == CURLE_LOGIN_DENIED || (c.auth && !p->auth_ok))
		p->stage = PROBE_AUTH;
	else
		p->stage = PROBE_DONE; /* a refused NOOP tells nothing about sending */
	if (p->stage == PROBE_AUTH && !p->auth && !p->error)
		p->error = xstrdup("the server offers no AUTH");
	if (p->stage == PROBE_DONE) {
		free(p->error);
		p->error = NULL;
	}
	rc = EX_OK;
out:
	*out = p;
	if (e)
		curl_easy_cleanup(e);
	buf_free(&r.line);
	smtp_conf_free(&c);
	return rc;
}

void transport_probe_free(struct transport_probe *p)
{
	if (!p)
		return;
	free(p->hostport);
	free(p->greeting);
	free(p->auth);
	free(p->reply);
	free(p->error);
	free(p);
}
