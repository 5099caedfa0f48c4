/* The review server's HTTP side on libmicrohttpd: loopback only, token, cookie, CSRF, CSP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "review/http.h"

#define SECRET_BYTES 32
#define SECRET_HEX   (2 * SECRET_BYTES + 1)
#define COOKIE       "demarche_review"
#define MAX_BODY     (64 * 1024) /* a form here is a token and a button */

struct review_server {
	struct MHD_Daemon *d;
	unsigned port;
	review_route_fn route;
	void *user;
	char token[SECRET_HEX];   /* the URL's; "" once spent */
	char session[SECRET_HEX]; /* the cookie's; "" until the token is used */
	char csrf[SECRET_HEX];
	char host_ip[32], host_name[32]; /* the Host headers accepted */
	char *url;
	unsigned long refused;
};

/* What one request accumulates across libmicrohttpd's calls: the POST body. */
struct conn {
	struct buf body;
	int too_big;
};

static int random_hex(char out[SECRET_HEX])
{
	unsigned char b[SECRET_BYTES];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	digest_to_hex(b, sizeof(b), out);
	return 0;
}

/* Equal secrets, in a time that does not depend on where they differ. */
static int secret_eq(const char *given, const char *secret)
{
	size_t n = strlen(secret);
	unsigned char diff = 0;

	if (!given || !*secret || strlen(given) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(given[i] ^ secret[i]);
	return diff == 0;
}

char *review_form_value(const char *body, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *p = body, *end = body + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *f = amp ? amp : end;

		if ((size_t)(f - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
			char *v = xstrndup(p + nl + 1, (size_t)(f - p - nl - 1));

			for (char *c = v; *c; c++)
				if (*c == '+')
					*c = ' ';
			MHD_http_unescape(v); /* %XX, in place */
			return v;
		}
		p = f + 1;
	}
	return NULL;
}

static void set_headers(struct MHD_Response *r, const char *csp, int framable)
{
	MHD_add_response_header(r, "Content-Security-Policy", csp ? csp : REVIEW_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", framable ? "SAMEORIGIN" : "DENY");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct review_reply *rp,
                                  const char *cookie)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(rp->body.len, rp->body.data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	set_headers(r, rp->csp, rp->framable);
	MHD_add_response_header(r, "Content-Type",
	                        rp->type ? rp->type : "text/html; charset=utf-8");
	if (rp->location)
		MHD_add_response_header(r, "Location", rp->location);
	if (cookie)
		MHD_add_response_header(r, "Set-Cookie", cookie);
	ret = MHD_queue_response(c, rp->status ? (unsigned)rp->status : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* A refusal: a short page saying why, counted. */
static enum MHD_Result refuse(struct review_server *s, struct MHD_Connection *c, int status,
                              const char *why)
{
	struct review_reply rp = {
	    .status = status, .type = "text/plain; charset=utf-8", .body = BUF_INIT};
	enum MHD_Result ret;

	s->refused++;
	buf_addf(&rp.body, "%d %s\n", status, why);
	ret = send_reply(c, &rp, NULL);
	buf_free(&rp.body);
	return ret;
}

/* The Host header names this server (not a name that resolves here by a rebinding). */
static int host_ok(const struct review_server *s, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	return h && (!strcmp(h, s->host_ip) || !strcmp(h, s->host_name));
}

/* A POST's Origin, when the browser sends one, is this server. */
static int origin_ok(const struct review_server *s, struct MHD_Connection *c)
{
	const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	char want[64];

	if (!o)
		return 1;
	snprintf(want, sizeof(want), "http://%s", s->host_ip);
	if (!strcmp(o, want))
		return 1;
	snprintf(want, sizeof(want), "http://%s", s->host_name);
	return !strcmp(o, want);
}

/* The first request with the token: a session, its cookie, and the same page without it. */
static enum MHD_Result open_session(struct review_server *s, struct MHD_Connection *c,
                                    const char *url)
{
	struct review_reply rp = {.status = MHD_HTTP_SEE_OTHER, .body = BUF_INIT};
	char cookie[SECRET_HEX + 80];
	enum MHD_Result ret;

	if (random_hex(s->session) || random_hex(s->csrf))
		return refuse(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no random bytes");
	s->token[0] = '\0'; /* spent */
	snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
	         s->session);
	rp.location = xstrdup(url[0] == '/' ? url : "/");
	buf_adds(&rp.body, "session opened\n");
	rp.type = "text/plain; charset=utf-8";
	ret = send_reply(c, &rp, cookie);
	free(rp.location);
	buf_free(&rp.body);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
	struct review_server *s = cls;
	struct conn *cn = *con_cls;
	struct review_request rq = {0};
	struct review_reply rp = {.body = BUF_INIT};
	const char *token;
	int post = !strcmp(method, MHD_HTTP_METHOD_POST);
	enum MHD_Result ret;
	char *csrf;

	(void)version;
	if (!cn) {
		cn = xcalloc(1, sizeof(*cn));
		buf_init(&cn->body);
		*con_cls = cn;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (cn->body.len + *upload_data_size > MAX_BODY)
			cn->too_big = 1;
		else
			buf_add(&cn->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!host_ok(s, c))
		return refuse(s, c, MHD_HTTP_MISDIRECTED_REQUEST, "unknown Host");
	if (!post && strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return refuse(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
	if (token && !post && secret_eq(token, s->token))
		return open_session(s, c, url);
	if (!secret_eq(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE), s->session))
		return refuse(s, c, MHD_HTTP_FORBIDDEN,
		              "forbidden: open the URL that demarche review printed");
	if (post) {
		if (cn->too_big)
			return refuse(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "form too large");
		csrf = review_form_value(buf_str(&cn->body), cn->body.len, "csrf");
		if (!secret_eq(csrf, s->csrf) || !origin_ok(s, c)) {
			free(csrf);
			return refuse(s, c, MHD_HTTP_FORBIDDEN, "forbidden: no valid CSRF token");
		}
		free(csrf);
	}
	rq.method = method;
	rq.path = url;
	rq.csrf = s->csrf;
	rq.body = buf_str(&cn->body);
	rq.body_len = cn->body.len;
	s->route(s->user, &rq, &rp);
	if (rp.location && !rp.status)
		rp.status = MHD_HTTP_SEE_OTHER;
	ret = send_reply(c, &rp, NULL);
	free(rp.location);
	buf_free(&rp.body);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (cn) {
		buf_free(&cn->body);
		free(cn);
		*con_cls = NULL;
	}
}

int review_server_start(unsigned port, review_route_fn route, void *user,
                        struct review_server **out, char **errstr)
{
	struct review_server *s = xcalloc(1, sizeof(*s));
	struct sockaddr_in sin = {0};
	const union MHD_DaemonInfo *info;

	*out = NULL;
	if (random_hex(s->token)) {
		free(s);
		return error_set(errstr, EX_OSERR, "no random bytes for the token");
	}
	s->route = route;
	s->user = user;
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* One thread serves every request in turn: the routes need no locks. */
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle,
	                        s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	                        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return error_set(errstr, EX_UNAVAILABLE, "cannot listen on 127.0.0.1:%u", port);
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : port;
	snprintf(s->host_ip, sizeof(s->host_ip), "127.0.0.1:%u", s->port);
	snprintf(s->host_name, sizeof(s->host_name), "localhost:%u", s->port);
	s->url = xasprintf("http://127.0.0.1:%u/?token=%s", s->port, s->token);
	*out = s;
	return EX_OK;
}

const char *review_server_url(const struct review_server *s)
{
	return s->url;
}

unsigned review_server_port(const struct review_server *s)
{
	return s->port;
}

unsigned long review_server_refused(const struct review_server *s)
{
	return s->refused;
}

void review_server_stop(struct review_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s->url);
	free(s);
}
