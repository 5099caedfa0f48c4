/*
 * The SMTP transport (RFC 5321) over libcurl's multi interface: N easy handles, each reused
 * for message after message so that its connection stays open (curl's connection cache).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "transport/backend.h"
#include "transport/smtp_opts.h"

#define SMTP_MAX_CONCURRENCY 64
#define POLL_MS              200 /* how often *stop is looked at, at most */

struct smtp;

/* One connection slot: an easy handle and the message it carries, if any. */
struct slot {
	struct smtp *s;
	CURL *easy;
	int busy;
	struct transport_msg msg;
	struct curl_slist *rcpt;
	size_t off;          /* bytes of msg.data handed to curl */
	int eof;             /* all of msg.data handed to curl */
	int reply_after_eof; /* a complete reply arrived after that */
	struct buf line;     /* the reply being read (multi-line replies) */
	struct buf reply;    /* the last complete reply */
	int code;            /* its code */
	/* Following the session (RFC 5321 section 3.1, RFC 4954): a 220 (greeting or STARTTLS)
	 * is followed by the EHLO reply, and that by the reply to STARTTLS, AUTH or MAIL. */
	int next_is_ehlo, after_ehlo, authenticated;
	int noauth; /* the server let us to MAIL without the AUTH we were told to do */
	char errbuf[CURL_ERROR_SIZE];
};

struct smtp {
	CURLM *multi;
	struct slot *slots;
	int nslots;
	int active;
	struct smtp_conf conf; /* URL, TLS and AUTH, checked */
	long connects;
	volatile sig_atomic_t *stop; /* during smtp_run() */
};

/* Set once a server reply or a TLS failure shows the run cannot go on. */
struct fatal {
	int code;
	char *msg;
};

static void slot_reset(struct slot *sl)
{
	curl_slist_free_all(sl->rcpt);
	sl->rcpt = NULL;
	sl->busy = 0;
	sl->off = 0;
	sl->eof = 0;
	sl->reply_after_eof = 0;
	sl->code = 0;
	sl->next_is_ehlo = sl->after_ehlo = sl->authenticated = sl->noauth = 0;
	sl->errbuf[0] = '\0';
	buf_reset(&sl->line);
	buf_reset(&sl->reply);
	memset(&sl->msg, 0, sizeof(sl->msg));
}

/* The message data, from memory. Curl dot-stuffs it and adds the final dot (RFC 5321
 * section 4.5.2). Handing over the last byte counts as the end of the data: from then on a
 * lost connection leaves the message in doubt. */
static size_t read_cb(char *dst, size_t size, size_t nitems, void *arg)
{
	struct slot *sl = arg;
	size_t n = size * nitems, left = sl->msg.len - sl->off;

	if (n > left)
		n = left;
	memcpy(dst, sl->msg.data + sl->off, n);
	sl->off += n;
	if (sl->off == sl->msg.len)
		sl->eof = 1;
	return n;
}

/*
 * Every server reply line reaches us here (curl passes SMTP responses to the header
 * callback). A reply is one or more lines "NNN-text" ended by "NNN text" (RFC 5321 section
 * 4.2.1); we keep the last complete one and note whether it came after the data.
 */
static size_t header_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct slot *sl = arg;
	size_t n = size * nitems;
	int code = smtp_reply_add(&sl->line, p, n);

	if (code < 0)
		return n;
	if (code == 221) {
		/* The answer to the QUIT curl sends after a refusal (RFC 5321 section 4.1.1.10):
		 * it must not hide the refusal. */
		buf_reset(&sl->line);
		return n;
	}
	buf_reset(&sl->reply);
	buf_add(&sl->reply, sl->line.data, sl->line.len);
	buf_reset(&sl->line);
	sl->code = code;
	if (sl->eof)
		sl->reply_after_eof = 1;
	if (code == 235)
		sl->authenticated = 1;
	if (sl->after_ehlo) {
		sl->after_ehlo = 0;
		/* curl skips AUTH when the server does not offer it (in cleartext, say); we do
		 * not send as someone else than told: abort before RCPT. */
		if (code == 250 && sl->s->conf.auth && !sl->authenticated) {
			sl->noauth = 1;
			return 0;
		}
	}
	if (sl->next_is_ehlo) {
		sl->next_is_ehlo = 0;
		sl->after_ehlo = 1;
	}
	if (code == 220)
		sl->next_is_ehlo = 1;
	return n;
}

/*
 * Called by curl while a transfer runs: a second interrupt (*stop >= 2) aborts it. Not
 * called while libcurl 7.88 waits for the reply to the final dot: that wait blocks inside
 * curl_multi_perform() (curl issue 8555, "More non-blocking" in curl's TODO), so it ends only
 * with the reply or the timeout, and other connections wait meanwhile.
 */
static int progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct slot *sl = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return sl->s->stop && *sl->s->stop >= 2;
}

static void smtp_free(void *impl);

/* The options every message on a slot shares. Returns 0, or -1 when curl refuses one. */
static int slot_setup(struct slot *sl, const struct transport_opts *o)
{
	CURL *e = sl->easy;
	int bad = smtp_conf_setopt(e, &sl->s->conf, o) < 0;

#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, read_cb);
	SET(CURLOPT_READDATA, sl);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, sl);
	SET(CURLOPT_ERRORBUFFER, sl->errbuf);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, progress_cb);
	SET(CURLOPT_XFERINFODATA, sl);
#undef SET
	return bad ? -1 : 0;
}

int smtp_open(const struct transport_opts *o, void **impl, char **errstr)
{
	struct smtp *s = xcalloc(1, sizeof(*s));
	int rc;

	smtp_curl_init();
	rc = smtp_conf_init(&s->conf, o, errstr);
	if (rc != EX_OK)
		goto out;
	s->nslots = o->concurrency > 0 ? o->concurrency : 1;
	if (s->nslots > SMTP_MAX_CONCURRENCY)
		s->nslots = SMTP_MAX_CONCURRENCY;
	s->multi = curl_multi_init();
	if (!s->multi) {
		rc = error_set(errstr, EX_SOFTWARE, "curl_multi_init failed");
		goto out;
	}
	/* At most N connections, all kept for reuse between messages. */
	curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)s->nslots);
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->nslots);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->nslots);
	s->slots = xcalloc((size_t)s->nslots, sizeof(*s->slots));
	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		sl->s = s;
		buf_init(&sl->line);
		buf_init(&sl->reply);
		sl->easy = curl_easy_init();
		if (!sl->easy || slot_setup(sl, o) < 0) {
			rc = error_set(errstr, EX_SOFTWARE,
			               "libcurl refused an SMTP option (built without %s?)",
			               s->conf.usessl != CURLUSESSL_NONE ? "TLS" : "SMTP");
			goto out;
		}
	}
	*impl = s;
	s = NULL;
	rc = EX_OK;
out:
	smtp_free(s);
	return rc;
}

/* Hands a message to a free slot. Returns 0, or -1 when curl will not take it. */
static int slot_start(struct slot *sl, const struct transport_msg *m)
{
	CURL *e = sl->easy;
	int bad = 0;

	slot_reset(sl);
	sl->msg = *m;
	for (size_t i = 0; i < m->nrcpt; i++) {
		struct curl_slist *l = curl_slist_append(sl->rcpt, m->rcpt[i]);

		if (!l)
			return -1;
		sl->rcpt = l;
	}
	/* Curl copies it and adds the brackets; "" gives the null sender "<>". */
	bad |= curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->from) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_MAIL_RCPT, sl->rcpt) != CURLE_OK;
	/* Announces SIZE= (RFC 1870), so a server can refuse a message too big up front. */
	bad |= curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len) != CURLE_OK;
	if (bad || curl_multi_add_handle(sl->s->multi, e) != CURLM_OK)
		return -1;
	sl->busy = 1;
	sl->s->active++;
	return 0;
}

/* A reply that says our session, not this message, is refused: bad credentials or TLS, or
 * a server that wants AUTH (RFC 4954 section 6: 530, 534, 535, 538). */
static int session_refused(int code)
{
	return code == 530 || code == 534 || code == 535 || code == 538;
}

/*
 * Classifies a finished transfer as DESIGN.md's table says: what matters is whether a reply
 * arrived after the end of the data. Curl's result code does not tell 4xx from 5xx, and
 * CURLINFO_RESPONSE_CODE is stale after a network error, so the reply we read decides.
 * Sets *fatal when the problem is with the session (credentials, TLS, unreachable server)
 * rather than the message: such a message never left and is deferred.
 */
static void classify(struct slot *sl, CURLcode cc, struct transport_result *r, struct fatal *fatal)
{
	const char *why = cc == CURLE_ABORTED_BY_CALLBACK ? "interrupted"
	                  : sl->errbuf[0]                 ? sl->errbuf
	                                                  : curl_easy_strerror(cc);
	int code = sl->code;

	r->reply = sl->reply.len ? buf_str(&sl->reply) : NULL;
	r->code = code;
	r->error = NULL;
	if (cc == CURLE_OK) {
		r->state = TX_SENT;
		return;
	}
	r->error = why;
	if (sl->eof) {
		/* RFC 1047: after the final dot and before the reply we cannot know. */
		if (!sl->reply_after_eof || code < 200) {
			r->state = TX_UNKNOWN;
			r->code = 0;
			r->reply = NULL;
		} else if (code < 300) {
			r->state = TX_SENT;
			r->error = NULL;
		} else {
			r->state = code >= 500 ? TX_FAILED : TX_DEFERRED;
		}
		return;
	}
	r->state = TX_DEFERRED;
	if (sl->noauth) {
		r->code = 0;
		r->reply = NULL;
		fatal->code = EX_CONFIG;
		if (!fatal->msg)
			fatal->msg =
			    xasprintf("%s offers no AUTH on this connection (no TLS?): not "
			              "sending without the configured login",
			              sl->s->conf.host);
		r->error = fatal->msg;
		return;
	}
	if (cc == CURLE_SEND_ERROR && code >= 400 && !session_refused(code)) {
		/* MAIL, RCPT or DATA refused (curl reports all three as CURLE_SEND_ERROR). */
		if (code >= 500)
			r->state = TX_FAILED;
		return;
	}
	if (code < 400) {
		/* A stale reply from an earlier command; this was a network problem. */
		r->code = 0;
		r->reply = NULL;
	}
	switch (cc) {
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_AUTH_ERROR:
		fatal->code = EX_CONFIG;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		fatal->code = EX_TEMPFAIL;
		break;
	default:
		if (code >= 500 || session_refused(code))
			fatal->code = EX_CONFIG;
		break;
	}
	if (fatal->code && !fatal->msg)
		fatal->msg = r->reply ? xasprintf("%s: %s (server said: %s)", sl->s->conf.host, why,
		                                  r->reply)
		                      : xasprintf("%s: %s", sl->s->conf.host, why);
}

static void slot_finish(struct slot *sl, CURLcode cc, transport_done_fn done, void *u,
                        struct fatal *fatal)
{
	struct smtp *s = sl->s;
	struct transport_result r = {0};
	struct transport_msg m = sl->msg;
	long nc = 0;

	if (curl_easy_getinfo(sl->easy, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
		s->connects += nc;
	curl_multi_remove_handle(s->multi, sl->easy);
	classify(sl, cc, &r, fatal);
	s->active--;
	done(u, &m, &r);
	slot_reset(sl);
}

/* Abandons every transfer in flight after a libcurl failure. */
static void abandon_all(struct smtp *s, transport_done_fn done, void *u)
{
	struct fatal ignored = {0, NULL};

	for (int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		if (!sl->busy)
			continue;
		slot_finish(sl, CURLE_ABORTED_BY_CALLBACK, done, u, &ignored);
	}
	free(ignored.msg);
}

static struct slot *free_slot(struct smtp *s)
{
	for (int i = 0; i < s->nslots; i++)
		if (!s->slots[i].busy)
			return &s->slots[i];
	return NULL;
}

static int smtp_run(void *impl, transport_next_fn next, transport_done_fn done, void *u,
                    volatile sig_atomic_t *stop, char **errstr)
{
	struct smtp *s = impl;
	struct fatal fatal = {0, NULL};
	int64_t ask_at = 0;
	int dry = 0, rc = EX_OK;

	s->stop = stop; /* for progress_cb(): at 2 it aborts every transfer */
	for (;;) {
		struct slot *sl;
		CURLMsg *cm;
		int running, left, timeout = POLL_MS;
		int64_t now = transport_now_ms();

		while (!dry && !fatal.code && !transport_stopping(stop) && now >= ask_at &&
		       (sl = free_slot(s))) {
			struct transport_msg m = {0};
			struct transport_result r = {TX_FAILED, 0, NULL, NULL, NULL};
			long wait_ms = 0;
			int n = next(u, &m, &wait_ms);

			if (n == 0) {
				dry = 1;
				break;
			}
			if (n < 0) {
				ask_at = now + (wait_ms > 0 ? wait_ms : 1);
				break;
			}
			if (transport_msg_check(&m, &r.error) < 0) {
				done(u, &m, &r);
				continue;
			}
			if (slot_start(sl, &m) < 0) {
				slot_reset(sl);
				r.state = TX_DEFERRED;
				r.error = "libcurl would not start the transfer";
				done(u, &m, &r);
				fatal.code = EX_SOFTWARE;
				fatal.msg = xstrdup(r.error);
			}
		}
		if (s->active == 0 && (dry || fatal.code || transport_stopping(stop)))
			break;
		if (curl_multi_perform(s->multi, &running) != CURLM_OK) {
			abandon_all(s, done, u);
			rc = error_set(errstr, EX_SOFTWARE, "curl_multi_perform failed");
			goto out;
		}
		while ((cm = curl_multi_info_read(s->multi, &left))) {
			if (cm->msg != CURLMSG_DONE)
				continue;
			for (int i = 0; i < s->nslots; i++)
				if (s->slots[i].busy && s->slots[i].easy == cm->easy_handle) {
					slot_finish(&s->slots[i], cm->data.result, done, u, &fatal);
					break;
				}
		}
		if (s->active < s->nslots && !dry && !fatal.code && !transport_stopping(stop)) {
			int64_t w = ask_at - transport_now_ms();

			if (w <= 0)
				continue; /* a slot is free and next() may be asked now */
			if (w < timeout)
				timeout = (int)w;
		}
		curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
	}
	if (fatal.code)
		rc = error_set(errstr, fatal.code, "%s", fatal.msg);
	else if (transport_stopping(stop) && !dry)
		rc = error_set(errstr, EX_TEMPFAIL, "interrupted");
out:
	s->stop = NULL;
	free(fatal.msg);
	return rc;
}

static long smtp_connections(const void *impl)
{
	return ((const struct smtp *)impl)->connects;
}

static void smtp_free(void *impl)
{
	struct smtp *s = impl;

	if (!s)
		return;
	for (int i = 0; i < s->nslots && s->slots; i++) {
		struct slot *sl = &s->slots[i];

		if (sl->easy) {
			if (sl->busy)
				curl_multi_remove_handle(s->multi, sl->easy);
			curl_easy_cleanup(sl->easy);
		}
		curl_slist_free_all(sl->rcpt);
		buf_free(&sl->line);
		buf_free(&sl->reply);
	}
	/* Closes the cached connections, sending QUIT (RFC 5321 section 4.1.1.10). */
	if (s->multi)
		curl_multi_cleanup(s->multi);
	free(s->slots);
	smtp_conf_free(&s->conf);
	free(s);
}

const struct transport_ops smtp_ops = {"smtp", smtp_run, smtp_connections, smtp_free};
