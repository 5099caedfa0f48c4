/* The transport interface: picks the backend from the URL and checks what callers hand in. */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "base/error.h"
#include "base/net.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "transport/backend.h"

struct transport {
	const struct transport_ops *ops;
	void *impl;
};

int transport_open(const struct transport_opts *o, struct transport **t, char **errstr)
{
	const struct transport_ops *ops;
	void *impl = NULL;
	int rc;

	*t = NULL;
	if (!o->url || !*o->url)
		return error_set(errstr, EX_CONFIG, "no transport URL given");
	if (str_startswith(o->url, "maildir:")) {
		ops = &maildir_ops;
		rc = maildir_open(o->url + strlen("maildir:"), &impl, errstr);
	} else if (str_startswith(o->url, "smtp://") || str_startswith(o->url, "smtps://")) {
		ops = &smtp_ops;
		rc = smtp_open(o, &impl, errstr);
	} else {
		return error_set(errstr, EX_CONFIG,
		                 "unknown transport '%s': use smtp://HOST[:PORT], "
		                 "smtps://HOST[:PORT] or maildir:DIR",
		                 o->url);
	}
	if (rc != EX_OK)
		return rc;
	*t = xcalloc(1, sizeof(**t));
	(*t)->ops = ops;
	(*t)->impl = impl;
	return EX_OK;
}

int transport_run(struct transport *t, transport_next_fn next, transport_done_fn done, void *u,
                  volatile sig_atomic_t *stop, char **errstr)
{
	return t->ops->run(t->impl, next, done, u, stop, errstr);
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	t->ops->free(t->impl);
	free(t);
}

long transport_connections(const struct transport *t)
{
	return t->ops->connections(t->impl);
}

const char *transport_state_name(enum transport_state s)
{
	switch (s) {
	case TX_SENT:
		return "sent";
	case TX_DEFERRED:
		return "deferred";
	case TX_FAILED:
		return "failed";
	case TX_UNKNOWN:
		return "unknown";
	}
	return "?";
}

int transport_exitcode(enum transport_state s)
{
	switch (s) {
	case TX_SENT:
		return EX_OK;
	case TX_FAILED:
		return EX_UNAVAILABLE;
	case TX_DEFERRED:
	case TX_UNKNOWN:
		break;
	}
	return EX_TEMPFAIL;
}

int transport_host_is_loopback(const char *host)
{
	return net_host_is_loopback(host);
}

/* An envelope address goes into an SMTP command line: no CR, LF or other controls
 * (RFC 5321 section 4.1.2), and no brackets of its own (curl adds them). */
static int envelope_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return 0;
	return 1;
}

int transport_msg_check(const struct transport_msg *m, const char **why)
{
	if (!m->from || !envelope_ok(m->from)) {
		*why = "the envelope sender is missing or holds a control character or bracket";
		return -1;
	}
	if (m->nrcpt == 0 || !m->rcpt) {
		*why = "the message has no recipient";
		return -1;
	}
	for (size_t i = 0; i < m->nrcpt; i++)
		if (!m->rcpt[i] || !*m->rcpt[i] || !envelope_ok(m->rcpt[i])) {
			*why = "a recipient is empty or holds a control character or bracket";
			return -1;
		}
	if (!m->data || m->len == 0) {
		*why = "the message is empty";
		return -1;
	}
	/* RFC 5321 section 2.3.8: lines end in CRLF; a bare CR or LF is not allowed. */
	for (size_t i = 0; i < m->len; i++) {
		if (m->data[i] == '\r' && (i + 1 == m->len || m->data[i + 1] != '\n')) {
			*why = "the message holds a bare CR (lines must end in CRLF)";
			return -1;
		}
		if (m->data[i] == '\n' && (i == 0 || m->data[i - 1] != '\r')) {
			*why = "the message holds a bare LF (lines must end in CRLF)";
			return -1;
		}
	}
	return 0;
}

int64_t transport_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
