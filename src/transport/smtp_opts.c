/* The URL, TLS and AUTH rules shared by the SMTP transport and the probe (smtp_opts.h). */
#include "transport/smtp_opts.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/error.h"
#include "base/xalloc.h"

void smtp_curl_init(void)
{
	static int done;

	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = 1;
	}
}

/* smtp:// or smtps://HOST[:PORT] with nothing else; *host and *hostport are allocated. */
static int parse_url(const char *url, int *implicit, char **host, char **hostport, char **errstr)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL, *user = NULL, *pass = NULL, *path = NULL,
	     *query = NULL;
	int rc = EX_CONFIG;

	if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    (strcmp(scheme, "smtp") && strcmp(scheme, "smtps"))) {
		error_set(errstr, rc, "bad SMTP URL '%s': use smtp://HOST[:PORT] or smtps://...",
		          url ? url : "");
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (user || pass) {
		error_set(errstr, rc,
		          "SMTP URL '%s' holds credentials: give [smtp] user and "
		          "password_command instead",
		          url);
		goto out;
	}
	if ((path && *path && strcmp(path, "/")) || query) {
		error_set(errstr, rc, "SMTP URL '%s' has a path or query: use smtp://HOST[:PORT]",
		          url);
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
	curl_free(pass);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

int smtp_conf_init(struct smtp_conf *c, const struct transport_opts *o, char **errstr)
{
	const char *tls = o->tls ? o->tls : "";
	const char *helo = o->helo && *o->helo ? o->helo : "localhost";
	int loopback, rc;

	memset(c, 0, sizeof(*c));
	rc = parse_url(o->url, &c->implicit, &c->host, &c->hostport, errstr);
	if (rc != EX_OK)
		goto out;
	rc = EX_CONFIG;
	loopback = transport_host_is_loopback(c->host);
	c->auth = o->user && *o->user;
	if (strcmp(tls, "") && strcmp(tls, "starttls") && strcmp(tls, "implicit") &&
	    strcmp(tls, "none")) {
		error_set(errstr, rc, "tls must be starttls, implicit or none, not '%s'", tls);
		goto out;
	}
	if (c->implicit && (!strcmp(tls, "starttls") || !strcmp(tls, "none"))) {
		error_set(errstr, rc, "%s: smtps:// is implicit TLS, but tls = %s", o->url, tls);
		goto out;
	}
	if (!strcmp(tls, "implicit"))
		c->implicit = 1;
	/* RFC 3207: STARTTLS is required, not hoped for, except on this machine. */
	if (c->implicit)
		c->usessl = CURLUSESSL_ALL;
	else if (!strcmp(tls, "none"))
		c->usessl = CURLUSESSL_NONE;
	else if (!strcmp(tls, "starttls") || !loopback)
		c->usessl = CURLUSESSL_ALL;
	else
		c->usessl = CURLUSESSL_TRY;
	if (c->auth && c->usessl == CURLUSESSL_NONE && !loopback) {
		error_set(errstr, rc,
		          "refusing AUTH over cleartext to %s: use STARTTLS or smtps:// "
		          "(tls = none is only for loopback or for relays without AUTH)",
		          c->host);
		goto out;
	}
	if (c->auth && (!o->password || !*o->password) && (!o->oauth_token || !*o->oauth_token)) {
		error_set(errstr, rc, "[smtp] user is set but no password or OAuth token");
		goto out;
	}
	/* RFC 5321 section 4.1.1.1: the path of an smtp:// URL is curl's EHLO domain. */
	c->url = xasprintf("%s://%s/%s", c->implicit ? "smtps" : "smtp", c->hostport, helo);
	rc = EX_OK;
out:
	if (rc != EX_OK)
		smtp_conf_free(c);
	return rc;
}

void smtp_conf_free(struct smtp_conf *c)
{
	if (!c)
		return;
	free(c->host);
	free(c->hostport);
	free(c->url);
	memset(c, 0, sizeof(*c));
}

int smtp_conf_setopt(CURL *e, const struct smtp_conf *c, const struct transport_opts *o)
{
	long timeout = o->timeout > 0 ? o->timeout : 60;
	int bad = 0;

#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_URL, c->url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, timeout);
	SET(CURLOPT_CONNECTTIMEOUT, timeout);
	SET(CURLOPT_USE_SSL, c->usessl);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file && *o->ca_file)
		SET(CURLOPT_CAINFO, o->ca_file);
	if (c->auth) {
		SET(CURLOPT_USERNAME, o->user);
		if (o->oauth_token && *o->oauth_token) {
			SET(CURLOPT_XOAUTH2_BEARER, o->oauth_token);
			SET(CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
		} else {
			SET(CURLOPT_PASSWORD, o->password);
		}
	}
#undef SET
	return bad ? -1 : 0;
}

int smtp_tls_got_plaintext(CURLcode cc, const char *errbuf)
{
	return (cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_RECV_ERROR) && errbuf &&
	       (strstr(errbuf, "unexpected TLS packet") || strstr(errbuf, "unexpected length") ||
	        strstr(errbuf, "wrong version number"));
}

char *smtp_tls_plaintext_text(const struct smtp_conf *c)
{
	return xasprintf("the server at %s did not speak TLS: is the port for STARTTLS (smtp://)?",
	                 c->hostport);
}

/* 1 when p[0..n) starts like a reply line: a code from 200 to 599 (RFC 5321 section 4.2). */
static int reply_code_ok(const char *p, size_t n)
{
	return n >= 3 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
	       p[2] <= '9';
}

int smtp_reply_add(struct buf *line, const char *p, size_t n)
{
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (line->len)
		buf_addc(line, '\n');
	buf_add(line, p, n);
	if (!reply_code_ok(p, n) || (n > 3 && p[3] != ' ' && p[3] != '-'))
		return SMTP_REPLY_BAD;
	if (n > 3 && p[3] == '-')
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* The length of an enhanced status code and its space at s ("5.1.1 "), 0 when none. */
static size_t enhanced_len(const char *s, size_t n)
{
	size_t i = 2;

	if (n < 6 || s[0] < '2' || s[0] > '5' || s[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t start = i;

		while (i < n && i - start < 3 && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i < n && s[i] == ' ' ? i + 1 : 0;
}

void smtp_reply_oneline(const char *reply, struct buf *out)
{
	const char *l = reply, *enh = NULL;
	size_t enhn = 0;

	buf_reset(out);
	for (int first = 1; l && *l; first = 0) {
		const char *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) : strlen(l);
		const char *text = n > 4 ? l + 4 : l + n;
		size_t tn = n > 4 ? n - 4 : 0;

		if (first) {
			buf_add(out, l, n < 3 ? n : 3);
			enh = text;
			enhn = enhanced_len(text, tn);
		} else if (enhn && tn >= enhn && !memcmp(text, enh, enhn)) {
			text += enhn;
			tn -= enhn;
		}
		if (tn) {
			buf_addc(out, ' ');
			buf_add(out, text, tn);
		}
		l = end ? end + 1 : NULL;
	}
}
