/* Copies to Sent over IMAP (RFC 3501 6.3.11 APPEND, RFC 4315 UIDPLUS), recorded in the ledger. */
#include "campaign/sentcopy.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/error.h"
#include "base/secret.h"
#include "campaign/account.h"
#include "base/xalloc.h"
#include "imap/imap.h"

struct sentcopy {
	char *url, *user, *password, *ca_file, *folder;
	char *via; /* the account as the ledger names it: URL and user, never the password */
	struct imap_session *s;
	char *down; /* why the server could not be used in this run; NULL while it can */
	size_t kept;
};

static int empty(const char *s)
{
	return !s || !*s;
}

struct sentcopy *sentcopy_open(const struct config *cfg, char **err)
{
	struct account *a = NULL;
	struct sentcopy *sc;

	if (account_resolve(ACCOUNT_IMAP, cfg, NULL, ACCOUNT_SECRET, &a, err) != EX_OK || !a)
		return NULL;
	sc = xcalloc(1, sizeof(*sc));
	sc->url = xstrdup(a->url);
	sc->user = xstrdup(a->user);
	sc->password = a->password;
	a->password = NULL; /* now ours: wiped by sentcopy_close() */
	sc->ca_file = a->ca_file ? xstrdup(a->ca_file) : NULL;
	sc->folder = xstrdup(empty(cfg->imap.sent_folder) ? "Sent" : cfg->imap.sent_folder);
	sc->via = xstrdup(a->id);
	account_free(a);
	return sc;
}

void sentcopy_close(struct sentcopy *sc)
{
	if (!sc)
		return;
	imap_close(sc->s);
	secret_free(sc->password);
	free(sc->url);
	free(sc->user);
	free(sc->ca_file);
	free(sc->folder);
	free(sc->via);
	free(sc->down);
	free(sc);
}

size_t sentcopy_kept(const struct sentcopy *sc)
{
	return sc ? sc->kept : 0;
}

/*
 * One APPEND, connecting first when needed. Returns EX_OK with *uid and *uidvalidity, or an
 * imap.h code with *why set. A server that cannot be reached is not tried again this run.
 */
static int append_one(struct sentcopy *sc, const char *data, size_t len, uint32_t *uid,
                      uint32_t *uidvalidity, char **why)
{
	int rc;

	*uid = *uidvalidity = 0;
	if (sc->down)
		return error_set(why, EX_TEMPFAIL, "%s (earlier in this run)", sc->down);
	if (!sc->s) {
		rc = imap_open(sc->url, sc->user, sc->password, sc->ca_file, &sc->s, why);
		if (rc) {
			sc->down = xstrdup(*why);
			return rc;
		}
	}
	/* NULL date: the internal date is the message's own Date header */
	rc = imap_append(sc->s, sc->folder, data, len, IMAP_SEEN, NULL, uid, uidvalidity, why);
	if (rc == EX_TEMPFAIL || rc == EX_PROTOCOL) {
		/* imap.h: the session is unusable now */
		imap_close(sc->s);
		sc->s = NULL;
		sc->down = xstrdup(*why);
	}
	return rc;
}

/* Appends data and records the outcome; pending is the kept copy it comes from, or 0. */
static int copy(struct sentcopy *sc, struct ledger *l, const char *campaign,
                const int64_t *deliveries, size_t n, const char *data, size_t len, int64_t pending,
                char **err)
{
	uint32_t uid, uidvalidity;
	char *why = NULL, *lerr = NULL;
	int rc;

	rc = append_one(sc, data, len, &uid, &uidvalidity, &why);
	if (rc == EX_OK) {
		rc = ledger_copy_appended(l, campaign, deliveries, n, sc->via, sc->folder,
		                          uidvalidity, uid, pending, &lerr);
	} else {
		rc = ledger_copy_failed(l, campaign, deliveries, n, sc->via, data, len, why,
		                        pending, &lerr);
		if (rc == EX_OK) {
			error_set(err, EX_TEMPFAIL,
			          "copy to %s not appended, kept for a later run: %s", sc->folder,
			          why);
			rc = EX_TEMPFAIL;
		}
	}
	if (lerr) {
		/* a locked ledger is not the IMAP trouble EX_TEMPFAIL means here */
		error_set(err, EX_IOERR, "%s", lerr);
		rc = EX_IOERR;
	}
	free(why);
	free(lerr);
	return rc;
}

int sentcopy_append(struct sentcopy *sc, struct ledger *l, const char *campaign,
                    const int64_t *deliveries, size_t n, const char *data, size_t len, char **err)
{
	int rc;

	if (!sc || !n)
		return EX_OK;
	rc = copy(sc, l, campaign, deliveries, n, data, len, 0, err);
	if (rc == EX_TEMPFAIL)
		sc->kept++;
	return rc;
}

int sentcopy_retry(struct sentcopy *sc, struct ledger *l, size_t *appended, size_t *left,
                   char **err)
{
	struct ledger_copy c = {0};
	int64_t *ids = NULL;
	size_t n = 0, ok = 0, kept = 0;
	char *why = NULL;
	int rc;

	if (!sc)
		goto out_counts;
	if ((rc = ledger_copies_pending(l, &ids, &n, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((rc = ledger_copy_get(l, ids[i], &c, err)))
			goto out;
		rc = copy(sc, l, c.campaign, c.deliveries, c.n, c.data, c.len, c.id, &why);
		ledger_copy_clear(&c);
		if (rc == EX_OK) {
			ok++;
		} else if (rc == EX_TEMPFAIL) {
			kept++;
		} else {
			error_set(err, rc, "%s", why);
			goto out;
		}
	}
	rc = kept ? EX_TEMPFAIL : EX_OK;
	if (kept)
		error_set(err, EX_TEMPFAIL, "%zu Sent cop%s still kept: %s", kept,
		          kept == 1 ? "y" : "ies", why);
out:
	free(ids);
	free(why);
	if (appended)
		*appended = ok;
	if (left)
		*left = kept;
	return rc;
out_counts:
	if (appended)
		*appended = 0;
	if (left)
		*left = 0;
	return EX_OK;
}
