/* One SMTP connection on libcurl's easy interface: a message at a time, each RCPT's reply kept. */
#include "transport/smtp_session.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/escape.h"
#include "base/xalloc.h"
#include "transport/backend.h"

#if LIBCURL_VERSION_NUM >= 0x080200
#define OPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define OPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS /* so spelled before curl 8.2 */
#endif

/* The last command curl sent, as its debug callback shows it (one at a time: no PIPELINING). */
enum cmd { CMD_NONE, CMD_HELLO, CMD_AUTH, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_OTHER };

/* What one transaction (MAIL ... final dot) came to. */
struct tx {
	enum transport_state state;
	int code;
	const char *reply; /* one line, owned by the session */
	const char *error; /* local error text, owned by the session */
	int fatal;         /* EX_CONFIG or EX_TEMPFAIL: the session, not the message, failed */
};

struct smtp_session {
	CURL *easy;
	const struct smtp_conf *conf;
	const atomic_int *abort;
	int timeout; /* seconds */
	char errbuf[CURL_ERROR_SIZE];
	long connects;
	long last_connects; /* connections the last transaction opened: 0 when it reused one */

	/* The message: its recipients' entries, their RCPT replies, the strings results hold. */
	const struct transport_msg *msg;
	struct transport_rcpt *rcpt;
	int *rcpt_code; /* each recipient's RCPT reply in its latest transaction, 0: none */
	char **rcpt_text;
	size_t cap;
	char **owned;
	size_t nowned;

	/* The transaction: which recipients, and how far the session got. */
	size_t *tx;
	size_t ntx;
	struct curl_slist *rcpt_list;
	size_t nrcpt_sent; /* RCPT commands sent so far */
	size_t off;        /* bytes of msg->data handed to curl */
	int eof;           /* all of them: from now on a lost connection leaves it in doubt */
	/* The dot gate (transport_run_gated()): asked when DATA is answered 354. */
	int (*gate)(void *arg); /* NULL: no gate */
	void *gate_arg;
	int gate_open;       /* 0 not asked yet, 1 open, -1 shut */
	int held;            /* shut by the caller (not by *abort): the message was held back */
	int reply_after_eof; /* a complete reply arrived after that */
	enum cmd cmd;
	int in_auth; /* a 334 came: the next line out continues AUTH (RFC 4954 section 4) */
	int hello_seen, authenticated;
	int noauth;       /* MAIL was taken without the AUTH we were told to do */
	char *malformed;  /* the protocol error that ended the transfer */
	struct buf line;  /* the reply being read, lines joined by '\n' */
	struct buf reply; /* the last complete reply, on one line */
	int code;         /* its code */
	int verbose;      /* send -v: the dialogue on stderr */
};

/* Keeps s (taken over) until the next message; returns it. */
static const char *keep(struct smtp_session *ss, char *s)
{
	ss->owned = xreallocarray(ss->owned, ss->nowned + 1, sizeof(*ss->owned));
	ss->owned[ss->nowned++] = s;
	return s;
}

/* Asks the dot gate once per message: 1 open, -1 shut (or abandoned on *abort). */
static int gate_pass(struct smtp_session *ss)
{
	if (!ss->gate_open) {
		ss->gate_open = ss->gate(ss->gate_arg) == 0 ? 1 : -1;
		ss->held = ss->gate_open < 0 && !atomic_load(ss->abort);
	}
	return ss->gate_open;
}

/* The message data, from memory. Curl dot-stuffs it and adds the final dot (RFC 5321
 * section 4.5.2). Handing over the last byte counts as the end of the data. */
static size_t read_cb(char *dst, size_t size, size_t nitems, void *arg)
{
	struct smtp_session *ss = arg;
	size_t n = size * nitems, left = ss->msg->len - ss->off;

	if (n > left)
		n = left;
	memcpy(dst, ss->msg->data + ss->off, n);
	ss->off += n;
	if (ss->off == ss->msg->len)
		ss->eof = 1;
	return n;
}

/* 1 when line (n bytes) is the SMTP command verb (4 letters), then a space or the line end. */
static int is_verb(const char *line, size_t n, const char *verb)
{
	return n >= 4 && !strncasecmp(line, verb, 4) &&
	       (n == 4 || line[4] == ' ' || line[4] == '\r' || line[4] == '\n');
}

/*
 * send -v (msmtp -d): one dialogue line on stderr, "< " for the server's, "> " for ours,
 * "* " for curl's notes, escaped for the terminal. An AUTH command keeps only its verb and
 * mechanism, and every line that continues it (after a 334) is masked whole: credentials,
 * even base64'd, never reach the terminal (RFC 4954 section 4). The message itself is not
 * shown. One write per line, so the lines of several connections do not mix.
 */
static void dialogue(const struct smtp_session *ss, curl_infotype type, const char *p, size_t n)
{
	struct buf raw = BUF_INIT, b = BUF_INIT;
	size_t start = 0;

	if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN && type != CURLINFO_TEXT)
		return;
	for (size_t i = 0; i <= n; i++) {
		size_t len;

		if (i < n && p[i] != '\n')
			continue;
		len = i - start;
		while (len && (p[start + len - 1] == '\r' || p[start + len - 1] == '\n'))
			len--;
		if (len || i < n) {
			buf_reset(&raw);
			if (type == CURLINFO_HEADER_OUT && ss->in_auth) {
				buf_adds(&raw, "[AUTH data masked]");
			} else if (type == CURLINFO_HEADER_OUT && len >= 4 &&
			           !strncasecmp(p + start, "AUTH", 4)) {
				/* "AUTH MECH" and nothing after: an initial response is a secret */
				size_t k = 4;

				while (k < len && p[start + k] == ' ')
					k++;
				while (k < len && p[start + k] != ' ')
					k++;
				buf_add(&raw, p + start, k);
				if (k < len)
					buf_adds(&raw, " [masked]");
			} else {
				buf_add(&raw, p + start, len);
			}
			buf_adds(&b, type == CURLINFO_HEADER_OUT  ? "> "
			             : type == CURLINFO_HEADER_IN ? "< "
			                                          : "* ");
			esc_term(&b, buf_str(&raw));
			buf_addc(&b, '\n');
		}
		start = i + 1;
	}
	if (b.len)
		fwrite(b.data, 1, b.len, stderr);
	buf_free(&raw);
	buf_free(&b);
}

/*
 * Every command curl sends reaches us here (CURLINFO_HEADER_OUT), so that each reply can be
 * matched with its command; RCPT replies come back in the order of the RCPT commands. Only
 * the verb is looked at: an AUTH line's credentials are neither read nor kept.
 */
static int debug_cb(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
	struct smtp_session *ss = arg;

	(void)e;
	if (ss->verbose)
		dialogue(ss, type, data, size);
	if (type != CURLINFO_HEADER_OUT)
		return 0;
	if (ss->in_auth)
		ss->cmd = CMD_AUTH;
	else if (is_verb(data, size, "EHLO") || is_verb(data, size, "HELO")) {
		ss->cmd = CMD_HELLO;
		ss->hello_seen = 1;
	} else if (is_verb(data, size, "AUTH"))
		ss->cmd = CMD_AUTH;
	else if (is_verb(data, size, "MAIL"))
		ss->cmd = CMD_MAIL;
	else if (is_verb(data, size, "RCPT")) {
		ss->cmd = CMD_RCPT;
		ss->nrcpt_sent++;
	} else if (is_verb(data, size, "DATA"))
		ss->cmd = CMD_DATA;
	else
		ss->cmd = CMD_OTHER;
	return 0;
}

/* The line a protocol error is about, printable and short, for the error text. */
static char *malformed_text(const struct smtp_session *ss, const char *p, size_t n)
{
	struct buf b = BUF_INIT;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	buf_addf(&b, "protocol error: %s answered '", ss->conf->hostport);
	for (size_t i = 0; i < n && i < 80; i++)
		buf_addc(&b, p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
	buf_adds(&b, n > 80 ? "...'" : "'");
	buf_adds(&b, ", not a reply (a code, then a space or hyphen: RFC 5321 section 4.2)");
	return buf_detach(&b);
}

/* One complete reply, matched with the command it answers. Returns 0 to go on, -1 to abort. */
static int on_reply(struct smtp_session *ss, int code)
{
	if (code == 221)
		return 0; /* the answer to the QUIT curl sends after a refusal: it must not hide it */
	smtp_reply_oneline(buf_str(&ss->line), &ss->reply);
	ss->code = code;
	if (ss->eof)
		ss->reply_after_eof = 1;
	ss->in_auth = code == 334;
	if (code == 235)
		ss->authenticated = 1;
	if (ss->cmd == CMD_RCPT && ss->nrcpt_sent >= 1 && ss->nrcpt_sent <= ss->ntx) {
		size_t i = ss->tx[ss->nrcpt_sent - 1];

		ss->rcpt_code[i] = code;
		free(ss->rcpt_text[i]);
		ss->rcpt_text[i] = xstrdup(buf_str(&ss->reply));
	}
	/*
	 * The dot gate: MAIL, RCPT and DATA went out while the caller committed 'sending'; the
	 * data, and so the final dot, waits here until that commit is durable. Not at the last
	 * byte: curl 7.88 ends an upload of known size when the bytes it wrote, dot-stuffing
	 * included, equal that size, so it may not ask for a byte held back. A shut gate ends
	 * the transfer before any data: the connection closes, the server delivers nothing
	 * (RFC 5321 section 4.1.1.4: no final dot, no message).
	 */
	if (ss->cmd == CMD_DATA && code == 354 && ss->gate && gate_pass(ss) < 0)
		return -1;
	/* curl skips AUTH when the server does not offer it (in cleartext, say); we do not send
	 * as someone else than told: abort before RCPT. Only a new connection greets us. */
	if (ss->cmd == CMD_MAIL && code < 300 && ss->conf->auth && ss->hello_seen &&
	    !ss->authenticated) {
		ss->noauth = 1;
		return -1;
	}
	return 0;
}

/*
 * Every server line reaches us here (curl hands SMTP replies to the header callback) before
 * curl acts on it. A line that is not a reply ends the transfer at once: libcurl 7.88 would
 * wait for a proper one until the timeout.
 */
static size_t header_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct smtp_session *ss = arg;
	size_t n = size * nitems;
	int code = smtp_reply_add(&ss->line, p, n);

	if (code == SMTP_REPLY_BAD) {
		free(ss->malformed);
		ss->malformed = malformed_text(ss, p, n);
		return 0;
	}
	if (code < 0)
		return n;
	code = on_reply(ss, code);
	buf_reset(&ss->line);
	return code < 0 ? 0 : n;
}

/* Called by curl at least once a second, also while it waits for the reply to the final
 * dot (pingpong's blocking wait calls it): a non-zero *abort ends the transfer. */
static int progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct smtp_session *ss = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(ss->abort) != 0;
}

int smtp_session_new(const struct smtp_conf *c, const struct transport_opts *o,
                     const atomic_int *abort, struct smtp_session **out)
{
	struct smtp_session *ss = xcalloc(1, sizeof(*ss));
	CURL *e;
	int bad;

	*out = NULL;
	ss->conf = c;
	ss->abort = abort;
	ss->timeout = o->timeout > 0 ? o->timeout : 60;
	ss->verbose = o->verbose;
	buf_init(&ss->line);
	buf_init(&ss->reply);
	e = ss->easy = curl_easy_init();
	if (!e) {
		smtp_session_free(ss);
		return -1;
	}
	bad = smtp_conf_setopt(e, c, o) < 0;
#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, read_cb);
	SET(CURLOPT_READDATA, ss);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, ss);
	/* The commands curl sends, to match replies with them; nothing is printed. */
	SET(CURLOPT_DEBUGFUNCTION, debug_cb);
	SET(CURLOPT_DEBUGDATA, ss);
	SET(CURLOPT_VERBOSE, 1L);
	SET(CURLOPT_ERRORBUFFER, ss->errbuf);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, progress_cb);
	SET(CURLOPT_XFERINFODATA, ss);
	/* A refused RCPT does not end the transaction: each recipient has its own answer. */
	SET(OPT_RCPT_ALLOWFAILS, 1L);
#undef SET
	if (bad) {
		smtp_session_free(ss);
		return -1;
	}
	*out = ss;
	return 0;
}

/* Forgets the previous message and makes room for m's recipients. */
static void message_reset(struct smtp_session *ss, const struct transport_msg *m)
{
	size_t n = m->nrcpt ? m->nrcpt : 1;

	for (size_t i = 0; i < ss->nowned; i++)
		free(ss->owned[i]);
	ss->nowned = 0;
	for (size_t i = 0; i < ss->cap; i++) {
		free(ss->rcpt_text[i]);
		ss->rcpt_text[i] = NULL;
		ss->rcpt_code[i] = 0;
	}
	if (n > ss->cap) {
		ss->rcpt = xreallocarray(ss->rcpt, n, sizeof(*ss->rcpt));
		ss->rcpt_code = xreallocarray(ss->rcpt_code, n, sizeof(*ss->rcpt_code));
		ss->rcpt_text = xreallocarray(ss->rcpt_text, n, sizeof(*ss->rcpt_text));
		ss->tx = xreallocarray(ss->tx, n, sizeof(*ss->tx));
		for (size_t i = ss->cap; i < n; i++) {
			ss->rcpt_code[i] = 0;
			ss->rcpt_text[i] = NULL;
		}
		ss->cap = n;
	}
	memset(ss->rcpt, 0, n * sizeof(*ss->rcpt));
	ss->msg = m;
	ss->gate_open = ss->held = 0;
	for (size_t i = 0; i < m->nrcpt; i++)
		ss->tx[i] = i;
	ss->ntx = m->nrcpt;
}

/* Runs one transaction for the recipients in ss->tx. Returns curl's result. */
static CURLcode tx_perform(struct smtp_session *ss)
{
	const struct transport_msg *m = ss->msg;
	CURL *e = ss->easy;
	curl_socket_t sock = CURL_SOCKET_BAD;
	CURLcode cc;
	long nc = 0;

	curl_slist_free_all(ss->rcpt_list);
	ss->rcpt_list = NULL;
	for (size_t i = 0; i < ss->ntx; i++) {
		struct curl_slist *l = curl_slist_append(ss->rcpt_list, m->rcpt[ss->tx[i]]);

		if (!l)
			return CURLE_OUT_OF_MEMORY;
		ss->rcpt_list = l;
		ss->rcpt_code[ss->tx[i]] = 0;
	}
	ss->nrcpt_sent = ss->off = 0;
	ss->eof = ss->reply_after_eof = ss->code = 0;
	ss->cmd = CMD_NONE;
	ss->in_auth = ss->hello_seen = ss->authenticated = ss->noauth = 0;
	free(ss->malformed);
	ss->malformed = NULL;
	ss->errbuf[0] = '\0';
	buf_reset(&ss->line);
	buf_reset(&ss->reply);
	/* Curl copies the sender and adds the brackets; "" gives the null sender "<>". SIZE=
	 * (RFC 1870) lets a server refuse a message too big up front. */
	if (curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->from) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, ss->rcpt_list) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len) != CURLE_OK)
		return CURLE_FAILED_INIT;
	cc = curl_easy_perform(e);
	if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc) != CURLE_OK)
		nc = 0;
	ss->connects += nc;
	ss->last_connects = nc;
	/*
	 * libcurl 7.88 keeps a connection whose wait for the reply to the final dot ended by a
	 * timeout or by our abort as if it were idle: its next MAIL would read the late reply
	 * to the dot, and closing it would wait for the answer to QUIT. Such a connection is
	 * not to be trusted: shut it, and curl finds it dead (and sends no QUIT) when it next
	 * looks at it.
	 */
	if (cc != CURLE_OK && curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &sock) == CURLE_OK &&
	    sock != CURL_SOCKET_BAD)
		shutdown(sock, SHUT_RDWR);
	return cc;
}

/* The transaction died on a reused connection before its final dot: worth one retry. */
static int stale(const struct smtp_session *ss, CURLcode cc)
{
	return (cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING) &&
	       ss->last_connects == 0 && !ss->eof && !ss->malformed && ss->code == 0 &&
	       !atomic_load(ss->abort);
}

/* A reply that says our session, not this message, is refused: bad credentials or TLS, or
 * a server that wants AUTH (RFC 4954 section 6: 530, 534, 535, 538). */
static int session_refused(int code)
{
	return code == 530 || code == 534 || code == 535 || code == 538;
}

/* What went wrong, as a sentence after "deferred: " and the like. */
static const char *local_error(struct smtp_session *ss, CURLcode cc)
{
	struct buf b = BUF_INIT;
	const char *s, *after;

	if (ss->held)
		return "held before its final dot: its 'sending' was not committed";
	if (cc == CURLE_ABORTED_BY_CALLBACK || ss->gate_open < 0)
		return "interrupted";
	if (ss->malformed)
		return ss->malformed;
	/* A plain SMTP greeting read as a TLS record: the usual mistake of smtps:// on 25/587. */
	if (ss->conf->implicit && ss->code == 0 && smtp_tls_got_plaintext(cc, ss->errbuf))
		return keep(ss, smtp_tls_plaintext_text(ss->conf));
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return keep(ss,
		            xasprintf("%s did not answer within %d s%s", ss->conf->hostport,
		                      ss->timeout, ss->eof ? " after the end of the data" : ""));
	s = ss->errbuf[0] ? ss->errbuf : curl_easy_strerror(cc);
	/* "Failed to connect to 127.0.0.1 port 2525 after 0 ms: Couldn't connect to server"
	 * without the milliseconds, and without a trailing newline or full stop. */
	after = strstr(s, " after ");
	if (after) {
		const char *d = after + strlen(" after ");

		while (*d >= '0' && *d <= '9')
			d++;
		if (d > after + strlen(" after ") && !strncmp(d, " ms", 3)) {
			buf_add(&b, s, (size_t)(after - s));
			s = d + 3;
		}
	}
	buf_adds(&b, s);
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '.'))
		buf_truncate(&b, b.len - 1);
	return keep(ss, buf_detach(&b));
}

/*
 * Classifies a finished transaction as docs/design.md's table says: what matters is whether
 * a reply arrived after the end of the data. Curl's result code does not tell 4xx from 5xx,
 * and CURLINFO_RESPONSE_CODE is stale after a network error, so the reply we read decides.
 */
static void classify(struct smtp_session *ss, CURLcode cc, struct tx *t)
{
	int code = ss->code;

	memset(t, 0, sizeof(*t));
	t->reply = ss->reply.len ? keep(ss, xstrdup(buf_str(&ss->reply))) : NULL;
	t->code = code;
	if (cc == CURLE_OK) {
		t->state = TX_SENT;
		return;
	}
	t->error = local_error(ss, cc);
	if (ss->malformed) {
		/* A server that does not speak SMTP: this message is lost or in doubt, and so
		 * would the next one be. */
		t->state = ss->eof ? TX_UNKNOWN : TX_DEFERRED;
		t->code = 0;
		t->reply = NULL;
		t->fatal = EX_TEMPFAIL;
		return;
	}
	if (ss->eof) {
		/* RFC 1047: after the final dot and before the reply we cannot know. */
		if (!ss->reply_after_eof || code < 200) {
			t->state = TX_UNKNOWN;
			t->code = 0;
			t->reply = NULL;
		} else if (code < 300) {
			t->state = TX_SENT;
			t->error = NULL;
		} else {
			t->state = code >= 500 ? TX_FAILED : TX_DEFERRED;
		}
		return;
	}
	t->state = TX_DEFERRED;
	if (ss->noauth) {
		t->code = 0;
		t->reply = NULL;
		t->fatal = EX_CONFIG;
		t->error = keep(ss, xasprintf("%s offers no AUTH on this connection (no TLS?): not "
		                              "sending without the configured login",
		                              ss->conf->host));
		return;
	}
	if (cc == CURLE_SEND_ERROR && code >= 400 && !session_refused(code)) {
		/* MAIL, RCPT or DATA refused (curl reports all three as CURLE_SEND_ERROR). */
		if (code >= 500)
			t->state = TX_FAILED;
		return;
	}
	if (code < 400) {
		/* A stale reply from an earlier command; this was a network problem. */
		t->code = 0;
		t->reply = NULL;
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
		t->fatal = EX_CONFIG;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		t->fatal = EX_TEMPFAIL;
		break;
	default:
		if (code >= 500 || session_refused(code))
			t->fatal = EX_CONFIG;
		break;
	}
}

/* The fatal message: the error with the server named (once) and its words, if any. */
static const char *fatal_text(struct smtp_session *ss, const struct tx *t)
{
	const char *host = ss->conf->hostport;
	const char *sep = strstr(t->error, host) || strstr(t->error, ss->conf->host) ? "" : ": ";
	const char *who = *sep ? host : "";

	if (t->reply)
		return keep(
		    ss, xasprintf("%s%s%s (the server said: %s)", who, sep, t->error, t->reply));
	return keep(ss, xasprintf("%s%s%s", who, sep, t->error));
}

/*
 * "Too many recipients" (RFC 5321 section 4.5.3.1.10): 452, or 552 as RFC 821 had it
 * (which the RFC says to treat as temporary) when the text or RFC 3463 code says so.
 */
static int too_many(int code, const char *text)
{
	if (code == 452)
		return 1;
	return code == 552 && text &&
	       (strstr(text, " 5.5.3 ") || strcasestr(text, "too many recipients"));
}

void smtp_session_send(struct smtp_session *ss, const struct transport_msg *m,
                       int (*gate)(void *arg), void *gate_arg, struct transport_result *r,
                       int *fatal, const char **fatal_msg)
{
	struct tx first = {TX_DEFERRED, 0, NULL, NULL, 0};
	int all_refused = 1;

	message_reset(ss, m);
	ss->gate = gate;
	ss->gate_arg = gate_arg;
	*fatal = 0;
	*fatal_msg = NULL;
	for (int round = 0; ss->ntx > 0; round++) {
		struct tx t;
		size_t left = 0;

		if (atomic_load(ss->abort)) {
			/* Stopped between transactions: the rest never left. */
			t = (struct tx){TX_DEFERRED, 0, NULL, "interrupted", 0};
		} else {
			CURLcode cc = tx_perform(ss);

			/*
			 * A reused connection the server closed while it sat idle (servers drop
			 * idle clients): libcurl does not retry SMTP on a fresh one. Nothing of the
			 * message was accepted (the final dot was never sent), so one more try on a
			 * new connection cannot deliver it twice.
			 */
			if (stale(ss, cc))
				cc = tx_perform(ss);
			classify(ss, cc, &t);
		}
		if (round == 0)
			first = t;
		else if (t.error && !first.error)
			first.error =
			    keep(ss, xasprintf("the further transaction for the remaining %zu "
			                       "recipient%s ended: %s",
			                       ss->ntx, ss->ntx == 1 ? "" : "s", t.error));
		if (t.fatal && !*fatal) {
			*fatal = t.fatal;
			*fatal_msg = fatal_text(ss, &t);
		}
		for (size_t k = 0; k < ss->ntx; k++) {
			size_t i = ss->tx[k];
			struct transport_rcpt *e = &ss->rcpt[i];
			int code = ss->rcpt_code[i];

			if (code < 400) {
				/* Accepted, or never asked: the transaction's outcome is its own. */
				e->state = t.state;
				e->code = t.code;
				e->reply = t.reply;
				all_refused = 0;
				continue;
			}
			e->code = code;
			e->reply = ss->rcpt_text[i];
			e->state =
			    code >= 500 && !too_many(code, e->reply) ? TX_FAILED : TX_DEFERRED;
			/* The data went to others: the rest go in a further transaction. */
			if (t.state == TX_SENT && too_many(code, e->reply) && !*fatal)
				ss->tx[left++] = i;
		}
		ss->ntx = left;
	}
	r->state = first.state;
	r->code = first.code;
	r->reply = first.reply;
	r->error = first.error;
	if (all_refused && m->nrcpt > 0) {
		/* Every RCPT refused: deferred if one may pass later, else failed; in words of
		 * the first such refusal. */
		size_t pick = m->nrcpt;

		for (size_t i = 0; i < m->nrcpt && pick == m->nrcpt; i++)
			if (ss->rcpt[i].state == TX_DEFERRED)
				pick = i;
		if (pick == m->nrcpt)
			pick = 0;
		r->state = ss->rcpt[pick].state;
		r->code = ss->rcpt[pick].code;
		r->reply = ss->rcpt[pick].reply;
	}
	r->rcpt = ss->rcpt;
}

long smtp_session_connections(const struct smtp_session *ss)
{
	return ss->connects;
}

void smtp_session_free(struct smtp_session *ss)
{
	if (!ss)
		return;
	/* Closes the cached connection, sending QUIT (RFC 5321 section 4.1.1.10). */
	if (ss->easy)
		curl_easy_cleanup(ss->easy);
	for (size_t i = 0; i < ss->nowned; i++)
		free(ss->owned[i]);
	free(ss->owned);
	for (size_t i = 0; i < ss->cap; i++)
		free(ss->rcpt_text[i]);
	free(ss->rcpt_text);
	free(ss->rcpt_code);
	free(ss->rcpt);
	free(ss->tx);
	curl_slist_free_all(ss->rcpt_list);
	free(ss->malformed);
	buf_free(&ss->line);
	buf_free(&ss->reply);
	free(ss);
}
