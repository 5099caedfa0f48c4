/* demarche bounces: read DSNs, replies and auto-replies over IMAP into the ledger. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/secret.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "campaign/sentcopy.h"
#include "imap/imap.h"
#include "imap/report.h"
#include "ledger/ledger.h"

const char usage_bounces[] =
    "usage: demarche bounces [--via IMAP-URL] [--folder NAME]\n"
    "\n"
    "Reads the messages that arrived in the folder (default INBOX) since the last run and\n"
    "records in the ledger: delivery status notifications (a failure makes the delivery\n"
    "bounced, a delay is noted), replies naming one of our Message-IDs (replied:\n"
    "acknowledged) and auto-replies (noted). Messages that match no delivery are listed.\n"
    "Reading the folder again never records anything twice. Then appends the Sent copies\n"
    "that earlier runs could not append.\n"
    "\n"
    "  --via URL      imaps://HOST[:PORT] or imap://HOST[:PORT] (default: [imap] url);\n"
    "                 the user and password are [imap] user and password_command (or\n"
    "                 DEMARCHE_IMAP_PASSWORD)\n"
    "  --folder NAME  the folder to read (default INBOX)\n"
    "\n"
    "Exit: 0 done; 75 IMAP trouble (run again later); 78 configuration.\n";

static const struct option bounces_options[] = {
    {"via", required_argument, NULL, 'v'},
    {"folder", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

/* A delivery a received message may be about, copied out of the ledger's callback. */
struct hit {
	int64_t id;
	char *address;
	enum ledger_state state;
};

struct hits {
	struct hit *v;
	size_t n;
};

struct run {
	struct ledger *l;
	const char *account, *folder;
	uint32_t uidvalidity; /* the folder's, set by imap_fetch_since() before any message */
	size_t processed, bounced, delayed, replied, autoreplies, unmatched, malformed;
	struct buf unmatched_list;
	char *err; /* a ledger error that stopped the run */
};

static int collect(const struct ledger_row *r, void *ctx)
{
	struct hits *h = ctx;

	h->v = xreallocarray(h->v, h->n + 1, sizeof(*h->v));
	h->v[h->n].id = r->id;
	h->v[h->n].address = xstrdup(r->address ? r->address : "");
	h->v[h->n].state = r->state;
	h->n++;
	return 0;
}

static void hits_clear(struct hits *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].address);
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

/* The hit sent to addr, else the first still in state sent, else the first; NULL if none. */
static const struct hit *choose(const struct hits *h, const char *addr)
{
	for (size_t i = 0; addr && i < h->n; i++)
		if (str_ieq(h->v[i].address, addr))
			return &h->v[i];
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].state == LS_SENT)
			return &h->v[i];
	return h->n ? &h->v[0] : NULL;
}

static const char *nz(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

static void iso_time(time_t t, char out[32])
{
	struct tm tm;

	if (!t) {
		snprintf(out, 32, "date unknown");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What names the evidence for ledger_observe(): the message's own Message-ID. */
static char *source_of(const struct report *r)
{
	if (r->message_id && *r->message_id)
		return xasprintf("<%s>", r->message_id);
	/* no Message-ID (rare; MTAs add one): what the message says about itself */
	return xasprintf("no-id:%s|%lld|%s", nz(r->from, ""), (long long)r->date,
	                 nz(r->subject, ""));
}

static void list_unmatched(struct run *b, uint32_t uid, const struct report *r, const char *why)
{
	b->unmatched++;
	buf_addf(&b->unmatched_list, "unmatched: UID %lu, %s: From %s, Subject \"%s\"\n",
	         (unsigned long)uid, why, nz(r->from, "(none)"), nz(r->subject, ""));
}

static int observe(struct run *b, const char *kind, int64_t id, int to, const char *source,
                   const struct ledger_outcome *o, size_t *count)
{
	enum ledger_observed what;
	int rc = ledger_observe(b->l, kind, id, to, source, o, &what, &b->err);

	if (rc == EX_OK && what != LEDGER_SEEN_BEFORE)
		(*count)++;
	return rc;
}

/*
 * RFC 3464 2.3: one per-recipient block at a time. The original is found by the Message-ID
 * in the returned message or headers (2.1: text/rfc822-headers or message/rfc822), else by
 * Final-Recipient (or Original-Recipient) within the X-Demarche-Campaign named there.
 */
static int on_dsn(struct run *b, uint32_t uid, const struct report *r, const char *source)
{
	int relevant = 0, matched = 0, rc = EX_OK;

	for (size_t i = 0; i < r->nrcpt && !rc; i++) {
		const struct report_recipient *rc_ = &r->rcpt[i];
		const char *addrs[2] = {rc_->final_recipient, rc_->original_recipient};
		struct hits h = {0};
		const struct hit *hit = NULL;
		struct ledger_outcome o = {0};
		char *detail = NULL, *reply = NULL;
		int failed = rc_->action && !strcmp(rc_->action, "failed");
		int delayed = rc_->action && !strcmp(rc_->action, "delayed");

		if (!failed && !delayed)
			continue; /* delivered, relayed, expanded: nothing to record */
		relevant = 1;
		if (r->orig_message_id &&
		    (rc = ledger_find_message(b->l, r->orig_message_id, collect, &h, &b->err)))
			break;
		for (int a = 0; a < 2 && !hit; a++)
			for (size_t k = 0; addrs[a] && k < h.n && !hit; k++)
				if (str_ieq(h.v[k].address, addrs[a]))
					hit = &h.v[k];
		if (!hit && h.n == 1)
			hit = &h.v[0]; /* the recipient's address was rewritten on the way */
		for (int a = 0; a < 2 && !hit && !h.n; a++) {
			if (!addrs[a])
				continue;
			rc = ledger_find_address(b->l, r->orig_campaign, addrs[a], collect, &h,
			                         &b->err);
			if (rc)
				break;
			hit = choose(&h, NULL);
		}
		if (hit && !rc) {
			matched = 1;
			detail = xasprintf(
			    "DSN %s from %s: Action: %s; Status: %s; Final-Recipient: %s%s%s",
			    source, nz(r->reporting_mta, nz(r->from, "?")), rc_->action,
			    nz(rc_->status, "?"), nz(rc_->final_recipient, "?"),
			    rc_->remote_mta ? "; Remote-MTA: " : "",
			    rc_->remote_mta ? rc_->remote_mta : "");
			o.detail = detail;
			if (failed) {
				/* the receiving side's answer becomes the delivery's last reply */
				const char *d = rc_->diagnostic;

				if (d && strlen(d) >= 3 && d[0] >= '2' && d[0] <= '5' &&
				    d[1] >= '0' && d[1] <= '9' && d[2] >= '0' && d[2] <= '9' &&
				    (d[3] == ' ' || d[3] == '-' || !d[3]))
					o.code =
					    (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
				reply = d ? xasprintf("%s", d)
				          : xasprintf("bounced: Status %s", nz(rc_->status, "?"));
				o.reply = reply;
				rc = observe(b, "bounce", hit->id, LS_BOUNCED, source, &o,
				             &b->bounced);
			} else {
				rc = observe(b, "delayed", hit->id, -1, source, &o, &b->delayed);
			}
		}
		free(detail);
		free(reply);
		hits_clear(&h);
	}
	if (!rc && relevant && !matched)
		list_unmatched(b, uid, r, "a delivery report about no message of ours");
	return rc;
}

/*
 * A reply names our message in In-Reply-To or References (RFC 5322 3.6.4); an auto-reply
 * may not (RFC 3834 3.1.5 asks for it, not every responder does): then its sender is the
 * address we wrote to.
 */
static int on_reply(struct run *b, uint32_t uid, const struct report *r, const char *source)
{
	int automatic = r->kind == REPORT_AUTOREPLY;
	struct ledger_outcome o = {0};
	struct hits h = {0};
	const struct hit *hit;
	char *detail = NULL, *reply = NULL, date[32];
	int rc = EX_OK;

	for (size_t i = 0; i < r->nrefs && !h.n; i++)
		if ((rc = ledger_find_message(b->l, r->refs[i], collect, &h, &b->err)))
			goto out;
	if (!h.n && automatic && r->from &&
	    (rc = ledger_find_address(b->l, NULL, r->from, collect, &h, &b->err)))
		goto out;
	if (!(hit = choose(&h, r->from))) {
		list_unmatched(b, uid, r,
		               automatic ? "an auto-reply to no message of ours"
		                         : "a reply to no message of ours");
		goto out;
	}
	iso_time(r->date, date);
	if (automatic) {
		detail = xasprintf("auto-reply %s from %s on %s (%s): %s", source, nz(r->from, "?"),
		                   date, nz(r->auto_reason, "automatic"), nz(r->subject, ""));
		o.detail = detail;
		rc = observe(b, "auto-reply", hit->id, -1, source, &o, &b->autoreplies);
	} else {
		reply = r->from_name && *r->from_name
		            ? xasprintf("acknowledged by %s <%s> on %s", r->from_name,
		                        nz(r->from, "?"), date)
		            : xasprintf("acknowledged by %s on %s", nz(r->from, "?"), date);
		detail = xasprintf("reply %s: %s", source, nz(r->subject, ""));
		o.reply = reply;
		o.detail = detail;
		rc = observe(b, "reply", hit->id, LS_REPLIED, source, &o, &b->replied);
	}
out:
	free(detail);
	free(reply);
	hits_clear(&h);
	return rc;
}

static int on_message(void *arg, uint32_t uid, const char *data, size_t len)
{
	struct run *b = arg;
	struct report r = {0};
	char *perr = NULL, *source;
	int rc;

	b->processed++;
	if (report_parse(data, len, &r, &perr) != EX_OK) {
		/* reported, and the run goes on: one broken message must not stop the rest */
		b->malformed++;
		fprintf(stderr, "demarche bounces: UID %lu (From %s, Subject \"%s\"): %s\n",
		        (unsigned long)uid, nz(r.from, "(none)"), nz(r.subject, ""),
		        perr ? perr : "unreadable");
		free(perr);
		rc = EX_OK;
		goto done;
	}
	source = source_of(&r);
	switch (r.kind) {
	case REPORT_DSN:
		rc = on_dsn(b, uid, &r, source);
		break;
	case REPORT_REPLY:
	case REPORT_AUTOREPLY:
		rc = on_reply(b, uid, &r, source);
		break;
	default:
		list_unmatched(b, uid, &r, "neither a report nor a reply");
		rc = EX_OK;
	}
	free(source);
done:
	report_free(&r);
	/* committed per message: a run stopped halfway resumes after the last one recorded */
	if (!rc)
		rc = ledger_imap_state_set(b->l, b->account, b->folder, b->uidvalidity, uid,
		                           &b->err);
	return rc;
}

/* IMAP trouble is "try again later", except what only the configuration can fix. */
static int imap_exit(int rc)
{
	return rc == EX_CONFIG ? EX_CONFIG : EX_TEMPFAIL;
}

static int retry_copies(struct app *app, struct ledger *l)
{
	struct sentcopy *sc;
	size_t appended = 0, left = 0;
	char *err = NULL;
	int rc;

	sc = sentcopy_open(&app->cfg, &err);
	if (!sc) {
		if (!err)
			return EX_OK; /* no [imap] url: no copies to Sent */
		fprintf(stderr, "demarche bounces: Sent copies: %s\n", err);
		free(err);
		return EX_CONFIG;
	}
	rc = sentcopy_retry(sc, l, &appended, &left, &err);
	if (appended)
		printf("%zu Sent cop%s appended\n", appended, appended == 1 ? "y" : "ies");
	if (rc)
		fprintf(stderr, "demarche bounces: %s\n", err);
	free(err);
	sentcopy_close(sc);
	return rc;
}

int cmd_bounces(int argc, char **argv, struct app *app)
{
	struct run b = {0};
	struct imap_session *s = NULL;
	const char *via = NULL, *folder = "INBOX";
	char *password = NULL, *account = NULL, *err = NULL;
	uint32_t uidvalidity = 0, last_uid = 0;
	int c, rc, rc2;

	while ((c = getopt_long(argc, argv, "", bounces_options, NULL)) != -1) {
		switch (c) {
		case 'v':
			via = optarg;
			break;
		case 'f':
			folder = optarg;
			break;
		default:
			fputs(usage_bounces, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || !*folder) {
		fputs(usage_bounces, stderr);
		return EX_USAGE;
	}
	if ((rc = app_config(app)))
		return rc;
	if (!via)
		via = app->cfg.imap.url;
	if (!via || !*via || !app->cfg.imap.user || !*app->cfg.imap.user) {
		fprintf(stderr, "demarche bounces: no IMAP account: set [imap] url and user in "
		                "demarche.ini (or give --via URL)\n");
		return EX_CONFIG;
	}
	rc = secret_get("DEMARCHE_IMAP_PASSWORD", app->cfg.imap.password_command, &password, &err);
	if (rc)
		goto fail;
	if (!password && app->cfg.imap.password && *app->cfg.imap.password)
		password = xstrdup(app->cfg.imap.password);
	if (!password) {
		rc = error_set(&err, EX_CONFIG,
		               "no IMAP password: set [imap] password_command or "
		               "DEMARCHE_IMAP_PASSWORD");
		goto fail;
	}
	if ((rc = ledger_open(app_store_path(app), LEDGER_CHECK, &b.l, &err)))
		goto fail;
	account = xasprintf("%s;user=%s", via, app->cfg.imap.user);
	b.account = account;
	b.folder = folder;
	if ((rc = ledger_imap_state(b.l, account, folder, &uidvalidity, &last_uid, &err)))
		goto fail;

	rc = imap_open(via, app->cfg.imap.user, password, app->cfg.imap.ca_file, &s, &err);
	if (rc) {
		rc = imap_exit(rc);
		goto fail;
	}
	rc = imap_fetch_since(s, folder, uidvalidity, last_uid, &b.uidvalidity, on_message, &b,
	                      &err);
	if (rc == EX_OK && b.uidvalidity != uidvalidity && !b.processed)
		/* a new or recreated empty folder: remember its UIDVALIDITY all the same */
		rc = ledger_imap_state_set(b.l, account, folder, b.uidvalidity, 0, &b.err);
	if (b.err) {
		free(err);
		err = b.err;
		b.err = NULL;
	} else if (rc) {
		rc = imap_exit(rc);
	}
	imap_close(s);
	s = NULL;
	if (b.uidvalidity && uidvalidity && b.uidvalidity != uidvalidity)
		fprintf(stderr,
		        "demarche bounces: %s was recreated (UIDVALIDITY %lu, was %lu): read again "
		        "from the start; nothing is recorded twice\n",
		        folder, (unsigned long)b.uidvalidity, (unsigned long)uidvalidity);
	fputs(buf_str(&b.unmatched_list), stdout);
	printf("%zu processed, %zu bounced, %zu delayed, %zu replied, %zu auto-replies, "
	       "%zu unmatched, %zu malformed\n",
	       b.processed, b.bounced, b.delayed, b.replied, b.autoreplies, b.unmatched,
	       b.malformed);
	if (rc)
		goto fail;
	rc2 = retry_copies(app, b.l);
	rc = rc2;
	goto out;
fail:
	fprintf(stderr, "demarche bounces: %s\n", err ? err : exit_name(rc));
out:
	imap_close(s);
	ledger_close(b.l);
	secret_free(password);
	buf_free(&b.unmatched_list);
	free(b.err);
	free(account);
	free(err);
	return rc;
}
