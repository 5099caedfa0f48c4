/* The transport interface: picks the backend from the URL and checks what callers hand in. */
#include "transport/transport.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

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
	} else if (str_startswith(o->url, "sendmail:")) {
		ops = &sendmail_ops;
		rc = sendmail_open(o, &impl, errstr);
	} else {
		return error_set(errstr, EX_CONFIG,
		                 "unknown transport '%s': use smtp://HOST[:PORT], "
		                 "smtps://HOST[:PORT], maildir:DIR or sendmail:PROGRAM",
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

int transport_gated(const struct transport *t)
{
	return t && t->ops->run_gated;
}

int transport_run_gated(struct transport *t, transport_next_fn next, transport_commit_fn commit,
                        transport_done_fn done, void *u, volatile sig_atomic_t *stop, char **errstr)
{
	if (!t->ops->run_gated)
		return error_set(errstr, EX_SOFTWARE, "the %s transport keeps no dot gate",
		                 t->ops->name);
	return t->ops->run_gated(t->impl, next, commit, done, u, stop, errstr);
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	t->ops->free(t->impl);
	free(t);
}

int transport_staging(const struct transport *t)
{
	return t && t->ops->staging;
}

int transport_url_staging(const char *url)
{
	return url && str_startswith(url, "maildir:");
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
