/* SMTP and IMAP accounts resolved once: URL checked, user, secret in one order (account.h). */
#include "campaign/account.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/error.h"
#include "base/secret.h"
#include "base/strutil.h"
#include "base/url.h"
#include "base/xalloc.h"

static int empty(const char *s)
{
	return !s || !*s;
}

static char *dup_or_null(const char *s)
{
	return empty(s) ? NULL : xstrdup(s);
}

static const char *section(const struct account *a)
{
	return a->kind == ACCOUNT_SMTP ? "smtp" : "imap";
}

/* No credentials of any kind in the URL: the password is refused, a user sent to [x] user. */
static int check_url(enum account_kind kind, const char *url, const char *what, char **errstr)
{
	const char *sec = kind == ACCOUNT_SMTP ? "smtp" : "imap";
	struct url u;
	int rc;

	rc = url_check_no_password(url, what, errstr);
	if (rc != EX_OK)
		return rc;
	if (url_parse(url, &u) != 0)
		return EX_OK; /* not a URL: the transport or imap_open() says so, naming it */
	if (u.userinfo)
		rc = error_set(
		    errstr, EX_CONFIG,
		    "%s '%s' holds a user name or login options: remove them from the URL "
		    "and give [%s] user (and password_command) instead",
		    what, url, sec);
	url_free(&u);
	return rc;
}

int account_resolve(enum account_kind kind, const struct config *cfg, const char *via, int flags,
                    struct account **out, char **errstr)
{
	const char *url, *user, *what;
	struct account *a = NULL;
	int rc;

	*out = NULL;
	if (kind == ACCOUNT_SMTP) {
		char *sm = NULL;

		url = !empty(via)             ? via
		      : !empty(cfg->smtp.url) ? cfg->smtp.url
		      : !empty(cfg->smtp.sendmail)
		          ? (sm = xasprintf("sendmail:%s", cfg->smtp.sendmail))
		          : "maildir:./outbox";
		what = !empty(via) ? "--via" : "[smtp] url";
		user = cfg->smtp.user;
		/* a sendmail program logs in itself: nothing of ours to look up */
		if (str_startswith(url, "sendmail:")) {
			a = xcalloc(1, sizeof(*a));
			a->kind = kind;
			a->url = sm ? sm : xstrdup(url);
			a->id = xstrdup(a->url);
			*out = a;
			return EX_OK;
		}
	} else {
		url = !empty(via) ? via : cfg->imap.url;
		what = !empty(via) ? "--via" : "[imap] url";
		user = cfg->imap.user;
		if (empty(url))
			return EX_OK;
	}
	a = xcalloc(1, sizeof(*a));
	a->kind = kind;
	a->maildir = kind == ACCOUNT_SMTP && str_startswith(url, "maildir:");
	if (!a->maildir && (rc = check_url(kind, url, what, errstr)))
		goto fail;
	if (kind == ACCOUNT_IMAP && empty(user)) {
		rc = error_set(errstr, EX_CONFIG, "%s is set but [imap] user is not%s%s", what,
		               cfg->path ? ": add it to " : "", cfg->path ? cfg->path : "");
		goto fail;
	}
	a->url = xstrdup(url);
	a->user = dup_or_null(user);
	/* The formula of every earlier version: older ledgers' windows and positions match. */
	a->id = a->user ? xasprintf("%s;user=%s", a->url, a->user) : xstrdup(a->url);
	if (kind == ACCOUNT_SMTP) {
		a->ca_file = dup_or_null(cfg->smtp.ca_file);
		a->priv.password_command = dup_or_null(cfg->smtp.password_command);
		a->priv.password = dup_or_null(cfg->smtp.password);
		a->priv.oauth_command = dup_or_null(cfg->smtp.oauth_token_command);
		a->priv.timeout = cfg->smtp.command_timeout;
	} else {
		a->ca_file = dup_or_null(cfg->imap.ca_file);
		a->priv.password_command = dup_or_null(cfg->imap.password_command);
		a->priv.password = dup_or_null(cfg->imap.password);
		a->priv.timeout = cfg->imap.command_timeout;
	}
	if ((flags & ACCOUNT_SECRET) && (rc = account_secret(a, errstr)))
		goto fail;
	*out = a;
	return EX_OK;
fail:
	account_free(a);
	return rc;
}

int account_secret(struct account *a, char **errstr)
{
	const char *env =
	    a->kind == ACCOUNT_SMTP ? "DEMARCHE_SMTP_PASSWORD" : "DEMARCHE_IMAP_PASSWORD";
	const char *v = getenv(env);
	char *what = NULL;
	int rc = EX_OK;

	if (a->priv.done || a->maildir || !a->user)
		goto done; /* no login: nothing to look up, nothing run */
	if (a->priv.oauth_command) {
		rc = secret_command(a->priv.oauth_command, a->priv.timeout,
		                    "[smtp] oauth_token_command", &a->oauth_token, errstr);
		a->secret_source = "[smtp] oauth_token_command";
	} else if (!empty(v)) {
		a->password = xstrdup(v);
		a->secret_source = env;
	} else if (a->priv.password_command) {
		what = xasprintf("[%s] password_command", section(a));
		rc = secret_command(a->priv.password_command, a->priv.timeout, what, &a->password,
		                    errstr);
		a->secret_source =
		    a->kind == ACCOUNT_SMTP ? "[smtp] password_command" : "[imap] password_command";
	} else if (a->priv.password) {
		a->password = xstrdup(a->priv.password);
		a->secret_source = a->kind == ACCOUNT_SMTP ? "[smtp] password" : "[imap] password";
	} else {
		rc = error_set(errstr, EX_CONFIG,
		               "no %s password: [%s] user is %s but no password is given: set "
		               "[%s] password_command, or %s in the environment",
		               a->kind == ACCOUNT_SMTP ? "SMTP" : "IMAP", section(a), a->user,
		               section(a), env);
	}
	free(what);
	if (rc != EX_OK) {
		a->secret_source = NULL;
		return rc;
	}
done:
	a->priv.done = 1;
	return EX_OK;
}

void account_free(struct account *a)
{
	if (!a)
		return;
	secret_free(a->password);
	secret_free(a->oauth_token);
	secret_free(a->priv.password);
	free(a->url);
	free(a->user);
	free(a->id);
	free(a->ca_file);
	free(a->priv.password_command);
	free(a->priv.oauth_command);
	free(a);
}
