/* An SMTP check that sends nothing: greeting, EHLO extensions, TLS, AUTH (for doctor). */
#include "transport/probe.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"

struct probe_run {
	struct transport_probe *p;
	struct buf line;  /* the reply being read, lines joined by '\n' */
	int next_is_ehlo; /* the reply after a 220 answers EHLO (RFC 5321 4.1.1.1, RFC 3207 4.2) */
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
	free(p->reply);
	p->reply = xstrdup(reply);
}

/* curl hands every server line to the header callback. */
static size_t header_cb(char *s, size_t size, size_t nitems, void *arg)
{
	struct probe_run *r = arg;
	size_t n = size * nitems, len = n;
	int code;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (r->line.len)
		buf_addc(&r->line, '\n');
	buf_add(&r->line, s, len);
	if (len >= 4 && s[3] == '-')
		return n;
	code = len >= 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	               s[2] >= '0' && s[2] <= '9'
	           ? (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0')
	           : 0;
	on_reply(r, code, buf_str(&r->line));
	buf_reset(&r->line);
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

/* scheme://HOST[:PORT] with nothing else; *host and *hostport are allocated. */
static int parse_url(const char *url, int *implicit, char **host, char **hostport, char **errstr)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL, *user = NULL, *path = NULL, *query = NULL;
	int rc = EX_CONFIG;

	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    (strcmp(scheme, "smtp") && strcmp(scheme, "smtps"))) {
		error_set(errstr, rc, "bad SMTP URL '%s': use smtp://HOST[:PORT] or smtps://...",
		          url);
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (user || (path && *path && strcmp(path, "/")) || query) {
		error_set(errstr, rc, "SMTP URL '%s' has more than HOST[:PORT]", url);
		goto out;
	}
	*implicit = !strcmp(scheme, "smtps");
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	*host = xstrdup(h);
	*hostport = xasprintf("%s:%s", h, port ? port : (*implicit ? "465" : "25"));
	rc = EX_OK;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_free(user);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

int transport_probe(const struct transport_opts *o, struct transport_probe **out, char **errstr)
{
	const char *tls = o->tls ? o->tls : "";
	const char *helo = o->helo && *o->helo ? o->helo : "localhost";
	struct probe_run r = {NULL, BUF_INIT, 0};
	struct transport_probe *p = NULL;
	char *host = NULL, *hostport = NULL, *url = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int implicit = 0, loopback, auth, rc, bad = 0;
	long usessl, timeout = o->timeout > 0 ? o->timeout : 60;
	CURL *e = NULL;
	CURLcode cc;

	*out = NULL;
	rc = parse_url(o->url, &implicit, &host, &hostport, errstr);
	if (rc != EX_OK)
		goto out;
	rc = EX_CONFIG;
	loopback = transport_host_is_loopback(host);
	auth = o->user && *o->user;
	if (strcmp(tls, "") && strcmp(tls, "starttls") && strcmp(tls, "implicit") &&
	    strcmp(tls, "none")) {
		error_set(errstr, rc, "tls must be starttls, implicit or none, not '%s'", tls);
		goto out;
	}
	if (implicit && (!strcmp(tls, "starttls") || !strcmp(tls, "none"))) {
		error_set(errstr, rc, "%s: smtps:// is implicit TLS, but tls = %s", o->url, tls);
		goto out;
	}
	if (!strcmp(tls, "implicit"))
		implicit = 1;
	/* The rules of transport/smtp.c: STARTTLS required (RFC 3207) except on loopback. */
	if (implicit || !strcmp(tls, "starttls") || (strcmp(tls, "none") && !loopback))
		usessl = CURLUSESSL_ALL;
	else if (!strcmp(tls, "none"))
		usessl = CURLUSESSL_NONE;
	else
		usessl = CURLUSESSL_TRY;
	if (auth && usessl == CURLUSESSL_NONE && !loopback) {
		error_set(errstr, rc,
		          "refusing AUTH over cleartext to %s: use STARTTLS or smtps://", host);
		goto out;
	}
	if (auth && (!o->password || !*o->password) && (!o->oauth_token || !*o->oauth_token)) {
		error_set(errstr, rc, "[smtp] user is set but there is no password");
		goto out;
	}

	curl_global_init(CURL_GLOBAL_DEFAULT);
	p = xcalloc(1, sizeof(*p));
	p->hostport = hostport;
	hostport = NULL;
	p->implicit_tls = implicit;
	r.p = p;
	/* RFC 5321 section 4.1.1.1: the path of an smtp:// URL is curl's EHLO domain. */
	url = xasprintf("%s://%s/%s", implicit ? "smtps" : "smtp", p->hostport, helo);
	e = curl_easy_init();
	if (!e) {
		p->stage = PROBE_CONNECT;
		p->error = xstrdup("libcurl could not start");
		rc = EX_OK;
		goto done;
	}
#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_NOSIGNAL, 1L);
	/* No MAIL: curl sends this command instead, then QUIT. */
	SET(CURLOPT_CUSTOMREQUEST, "NOOP");
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, &r);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_TIMEOUT, timeout);
	SET(CURLOPT_CONNECTTIMEOUT, timeout);
	SET(CURLOPT_USE_SSL, usessl);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file && *o->ca_file)
		SET(CURLOPT_CAINFO, o->ca_file);
	if (auth) {
		SET(CURLOPT_USERNAME, o->user);
		if (o->oauth_token && *o->oauth_token) {
			SET(CURLOPT_XOAUTH2_BEARER, o->oauth_token);
			SET(CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
		} else {
			SET(CURLOPT_PASSWORD, o->password);
		}
	}
#undef SET
	if (bad) {
		p->stage = PROBE_CONNECT;
		p->error = xstrdup("libcurl refused an option");
		rc = EX_OK;
		goto done;
	}
	cc = curl_easy_perform(e);
	if (cc != CURLE_OK)
		p->error = xstrdup(*errbuf ? errbuf : curl_easy_strerror(cc));
	if (!p->greeting)
		p->stage = implicit && is_tls_error(cc) ? PROBE_TLS : PROBE_CONNECT;
	else if (cc == CURLE_USE_SSL_FAILED)
		p->stage = PROBE_STARTTLS;
	else if (is_tls_error(cc))
		p->stage = PROBE_TLS;
	else if (!p->ehlo_seen)
		p->stage = PROBE_EHLO;
	else if (cc == CURLE_LOGIN_DENIED || (auth && !p->auth_ok))
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
done:
	*out = p;
	p = NULL;
out:
	if (e)
		curl_easy_cleanup(e);
	buf_free(&r.line);
	free(url);
	free(host);
	free(hostport);
	transport_probe_free(p);
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
