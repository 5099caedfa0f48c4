/* What the transport's backends share, below them and the dispatcher (common.h). */
#include "transport/common.h"

#include "base/clock.h"
#include "base/xalloc.h"

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

void transport_report_all(struct transport_rcpt **rcpt, size_t *cap, const struct transport_msg *m,
                          struct transport_result *r, transport_done_fn done, void *u)
{
	size_t n = m->nrcpt ? m->nrcpt : 1;

	if (n > *cap) {
		*rcpt = xreallocarray(*rcpt, n, sizeof(**rcpt));
		*cap = n;
	}
	for (size_t i = 0; i < n; i++)
		(*rcpt)[i] = (struct transport_rcpt){r->state, r->code, r->reply};
	r->rcpt = *rcpt;
	done(u, m, r);
}

long transport_no_connections(const void *impl)
{
	(void)impl;
	return 0;
}

int64_t transport_now_ms(void)
{
	return clock_mono_ms();
}
