/*
 * Transports: hand messages to an SMTP server (N connections at once, each on its own
 * thread and reused message after message) or write them into a Maildir, behind one
 * interface chosen by URL.
 *
 * The caller drives a run with two callbacks. next() is called only when a connection slot
 * is free; it fills in a message. With transport_run() the caller commits the message's
 * 'sending' to the ledger first, and nothing of the message leaves before next() returns.
 * With transport_run_gated() (SMTP only: transport_gated()) the message starts at once and a
 * third callback, commit(), makes its 'sending' durable while MAIL, RCPT, DATA and the body
 * go out: only the final dot waits for it (the dot gate, docs/design.md). done() is called
 * exactly once for every message next() handed out, with the outcome, before the run
 * returns. All of them are called on the caller's thread only (never from a worker thread),
 * one at a time: the ledger keeps one writer.
 */
#ifndef DEMARCHE_TRANSPORT_H
#define DEMARCHE_TRANSPORT_H

#include <signal.h>
#include <stddef.h>

struct transport_opts {
	/* smtp://HOST[:PORT] (STARTTLS), smtps://HOST[:PORT] (implicit TLS), maildir:DIR,
	 * sendmail:PROGRAM [ARG...] (each message piped to PROGRAM ARG... -i -f FROM -- RCPT...,
	 * never through a shell; exit 0 sent, 75 deferred, other failed) */
	const char *url;
	const char *user;        /* AUTH user, or NULL for no AUTH */
	const char *password;    /* already resolved; never logged */
	const char *oauth_token; /* XOAUTH2 bearer token (with user) instead of password */
	/*
	 * NULL or "": smtps:// implicit TLS; smtp:// STARTTLS required, except on loopback
	 * where it is used when offered. "starttls": required even on loopback. "implicit":
	 * TLS from the first byte (smtp:// is then treated as smtps://). "none": cleartext
	 * (with AUTH only on loopback).
	 */
	const char *tls;
	const char *ca_file; /* CA bundle to verify the server against; NULL: the system's */
	int timeout;         /* seconds for one message, connection included; <= 0: 60 */
	int concurrency;     /* connections at once; <= 0: 1; at most 64 */
	const char *helo;    /* the domain for EHLO; NULL or "": "localhost" */
	/* 1: the SMTP dialogue on stderr, one line a command or reply, escaped for the
	 * terminal, AUTH and what follows it masked (send -v) */
	int verbose;
};

/*
 * One message. The caller owns every pointer and keeps them valid until done() has been
 * called for this message. The transport copies the struct itself.
 */
struct transport_msg {
	void *user;              /* the caller's, handed back to done() */
	const char *from;        /* envelope sender (MAIL FROM), a bare addr-spec or "" */
	const char *const *rcpt; /* envelope recipients (RCPT TO), bare addr-specs */
	size_t nrcpt;            /* >= 1 */
	const char *data;        /* the whole message, CRLF line ends, not dot-stuffed */
	size_t len;
	const char *id; /* Message-ID (for messages and Maildir names); may be NULL */
};

enum transport_state {
	TX_SENT,     /* the server accepted it (2xx after the data) */
	TX_DEFERRED, /* temporary failure (4xx, or lost before the data ended): retry later */
	TX_FAILED,   /* permanent failure (5xx) or a message we refuse to send */
	TX_UNKNOWN,  /* lost after the data ended and before the reply: in doubt (RFC 1047) */
};

/* One recipient's outcome. */
struct transport_rcpt {
	enum transport_state state;
	int code;          /* as in transport_result */
	const char *reply; /* on one line as in transport_result; NULL when none */
};

struct transport_result {
	/*
	 * TX_SENT when the data was accepted for at least one recipient; otherwise the
	 * message's fate (deferred when any recipient may pass later).
	 */
	enum transport_state state;
	int code; /* the server's reply code (250, 450, ...), 0 when none applies */
	/* The server's final reply on ONE line, without CRLF: a multi-line reply's lines joined
	 * by single spaces, their repeated codes dropped ("250 2.0.0 Ok: queued as X"); for
	 * maildir "maildir: new/NAME"; NULL when there was none. */
	const char *reply;
	/* Local error text, a phrase to follow "deferred: " ("Failed to connect to 127.0.0.1
	 * port 2525: Couldn't connect to server", "interrupted"), NULL when none. */
	const char *error;
	/*
	 * One entry per recipient, in the order of transport_msg.rcpt (nrcpt of them), never
	 * NULL. A recipient refused at RCPT has its own state (TX_FAILED for 5xx, TX_DEFERRED
	 * for 4xx) and RCPT reply; the others share their transaction's outcome and final
	 * reply. After "too many recipients" (452, RFC 5321 section 4.5.3.1.10) the rest go in
	 * further transactions on the same connection, and their entries tell how that went.
	 * Maildir: every recipient has the message's outcome.
	 */
	const struct transport_rcpt *rcpt;
};
/* The strings and the rcpt array in a result belong to the transport and live until done()
 * returns. */

/*
 * Returns 1 (m filled in), 0 (no more messages), or -1 with *wait_ms set: nothing may start
 * now (rate limit, backoff); the transport asks again after that many milliseconds while it
 * goes on with the messages in flight.
 */
typedef int (*transport_next_fn)(void *u, struct transport_msg *m, long *wait_ms);
typedef void (*transport_done_fn)(void *u, const struct transport_msg *m,
                                  const struct transport_result *r);
/*
 * The dot gate (transport_run_gated()): m was handed out by next() and may already be on
 * the wire, but its final dot has not left. Returns 1 when m's 'sending' is durable (the dot
 * may go), 0 when it must not be delivered (the commit failed, another sender took it): then
 * no final dot is sent, and done() reports m deferred with the error "held before its final
 * dot". Called once per message, before done() for it (the messages that start together
 * are asked about one after the other): a caller may make all their intents durable in one
 * commit at the first call and answer the others from memory.
 */
typedef int (*transport_commit_fn)(void *u, const struct transport_msg *m);

struct transport;

/*
 * Checks the options and prepares a transport; connects to nothing. On success *t is set
 * (free it with transport_close()). Returns EX_OK, or EX_CONFIG with *errstr (bad URL,
 * unknown tls value, TLS settings that contradict the URL, credentials in the URL, AUTH over
 * cleartext to a host that is not loopback), or EX_IOERR when a maildir's folders cannot be
 * made (*errstr names the folder).
 */
int transport_open(const struct transport_opts *o, struct transport **t, char **errstr);

/*
 * Sends messages until next() returns 0 and every message in flight is done. stop (may be
 * NULL; set by a signal handler) is polled on the caller's thread at least every 200 ms: at
 * 1 no new message is asked for and those in flight are finished; at 2 or more those in
 * flight are abandoned within about a second, also while waiting for the reply to the final
 * dot (reported unknown when their data had all been handed over, deferred otherwise).
 *
 * May be called again on the same transport (a retry pass, say): open connections are kept
 * between runs. next() should answer 0, not -1, when nothing may ever start (a cap of 0).
 *
 * Concurrency: each of the N connections runs on its own thread and waits for its own
 * replies, so N slow servers' waits (after the final dot, say) overlap. The threads live
 * only during transport_run() and block signals, which reach the caller's thread.
 *
 * Returns EX_OK when next() ran dry; EX_TEMPFAIL when stopped by *stop ("interrupted"), or
 * when the server cannot be reached or does not speak SMTP (a malformed reply line fails at
 * once as a protocol error); EX_CONFIG when the server refused our credentials or
 * its certificate did not verify (*errstr carries the server's words or the TLS error);
 * EX_IOERR for a maildir write error; EX_SOFTWARE for an internal error (no thread). On any
 * non-OK return no new message was asked for after the problem, and done() has been called
 * for every message handed out (those that never left are reported deferred).
 */
int transport_run(struct transport *t, transport_next_fn next, transport_done_fn done, void *u,
                  volatile sig_atomic_t *stop, char **errstr);

/*
 * 1 when t keeps the dot gate, so that transport_run_gated() may be used: SMTP, where a
 * message the server has not seen the final dot of is not delivered (RFC 5321 section
 * 4.1.1.4: a connection lost before it delivers nothing). 0 for maildir: and sendmail:,
 * which hand the whole message over at once: their callers commit in next().
 */
int transport_gated(const struct transport *t);

/*
 * transport_run() with the dot gate: next() hands out a message whose 'sending' is not yet
 * durable; the transport starts it (MAIL, RCPT, DATA, the body) and calls commit() for it on
 * the caller's thread, and the final dot leaves only once commit() answered 1. A message's
 * data is never complete on the server before its intent is in the ledger, so after a crash
 * a message is either never delivered (no intent: the ledger still has it pending) or in
 * doubt (intent, no outcome), and at most the messages in flight are in doubt, as with
 * transport_run(). Returns as transport_run(); EX_SOFTWARE when !transport_gated(t).
 */
int transport_run_gated(struct transport *t, transport_next_fn next, transport_commit_fn commit,
                        transport_done_fn done, void *u, volatile sig_atomic_t *stop,
                        char **errstr);

/* Closes connections (QUIT) and frees t. t may be NULL. */
void transport_close(struct transport *t);

/* How many connections the transport has opened so far (0 for maildir). Can't fail. */
long transport_connections(const struct transport *t);

/*
 * 1 when t (or the transport url names) is a staging channel, a local outbox (maildir:):
 * a message it takes (TX_SENT) is written there, not sent to its recipients
 * (docs/design.md, "Staging is not delivery"). 0 for smtp://, smtps://, sendmail: and NULL.
 */
int transport_staging(const struct transport *t);
int transport_url_staging(const char *url);

/* "sent", "deferred", "failed", "unknown". Static, never NULL. */
const char *transport_state_name(enum transport_state s);

/* The exit code a message in this state calls for: EX_OK, EX_TEMPFAIL (deferred, unknown)
 * or EX_UNAVAILABLE (failed). */
int transport_exitcode(enum transport_state s);

/* 1 when host (as in a URL: name, IPv4, or [IPv6]) is this machine's loopback. */
int transport_host_is_loopback(const char *host);

#endif
