/* Mail server URLs through libcurl's URL API; passwords refused and redacted (url.h). */
#include "base/url.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"

void url_free(struct url *u)
{
	if (!u)
		return;
	free(u->scheme);
	free(u->host);
	memset(u, 0, sizeof(*u));
}

/* A part as an allocated string of ours (NULL when absent), curl's copy freed. */
static char *part(CURLU *h, CURLUPart what)
{
	char *v = NULL, *s = NULL;

	if (curl_url_get(h, what, &v, 0) == CURLUE_OK && v)
		s = xstrdup(v);
	curl_free(v);
	return s;
}

int url_parse(const char *url, struct url *u)
{
	CURLU *h = curl_url();
	char *user = NULL, *password = NULL, *options = NULL, *path = NULL, *query = NULL,
	     *fragment = NULL, *zone = NULL, *port = NULL;
	int rc = -1;

	memset(u, 0, sizeof(*u));
	if (!h)
		return -1;
	if (!url || curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
		goto out;
	u->scheme = part(h, CURLUPART_SCHEME);
	u->host = part(h, CURLUPART_HOST);
	if (!u->scheme || !u->host || !*u->host)
		goto out;
	for (char *p = u->scheme; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	user = part(h, CURLUPART_USER);
	password = part(h, CURLUPART_PASSWORD);
	options = part(h, CURLUPART_OPTIONS);
	path = part(h, CURLUPART_PATH);
	query = part(h, CURLUPART_QUERY);
	fragment = part(h, CURLUPART_FRAGMENT);
	zone = part(h, CURLUPART_ZONEID);
	port = part(h, CURLUPART_PORT); /* curl checked it: digits, at most 65535 */
	u->port = port ? strtol(port, NULL, 10) : -1;
	u->password = password != NULL;
	u->userinfo = user || password || options;
	u->path = path && *path && strcmp(path, "/");
	u->query = query || fragment;
	u->zone = zone != NULL;
	rc = 0;
out:
	if (rc)
		url_free(u);
	if (password)
		explicit_bzero(password, strlen(password));
	free(user);
	free(password);
	free(options);
	free(path);
	free(query);
	free(fragment);
	free(zone);
	free(port);
	curl_url_cleanup(h);
	return rc;
}

/*
 * The user information as text: [*start, *at) of url, or 0 when there is none. Taken
 * widely on purpose (up to the last '@', across '/', '?' and '#'): a password holding
 * those characters unencoded must still be found, and hiding too much is harmless.
 */
static int userinfo_span(const char *url, const char **start, const char **at)
{
	const char *s = strstr(url, "://");

	*start = s ? s + 3 : url;
	*at = strrchr(*start, '@');
	return *at != NULL;
}

char *url_redact(const char *url)
{
	const char *start, *at, *colon;
	struct buf b = BUF_INIT;

	if (!url)
		return NULL;
	if (!userinfo_span(url, &start, &at))
		return xstrdup(url);
	colon = memchr(start, ':', (size_t)(at - start));
	if (!colon)
		return xstrdup(url); /* a user, no password */
	buf_add(&b, url, (size_t)(colon - url));
	buf_adds(&b, ":***");
	buf_adds(&b, at);
	return buf_detach(&b);
}

int url_check_no_password(const char *url, const char *what, char **errstr)
{
	const char *start, *at;
	struct url u;
	char *shown;
	int found = 0, rc;

	if (!url)
		return EX_OK;
	if (url_parse(url, &u) == 0) {
		found = u.password;
		url_free(&u);
	}
	/* What curl cannot parse may hold one too ("smtp://alice:S3cret@host:99999"). */
	if (!found && userinfo_span(url, &start, &at))
		found = memchr(start, ':', (size_t)(at - start)) != NULL;
	if (!found)
		return EX_OK;
	shown = url_redact(url);
	rc = error_set(errstr, EX_CONFIG,
	               "%s '%s' holds a password: a URL is printed and stored in the ledger, so "
	               "it must not; remove the password from it and give user and "
	               "password_command in the configuration instead",
	               what, shown);
	free(shown);
	return rc;
}
