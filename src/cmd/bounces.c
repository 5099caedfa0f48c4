/* demarche bounces: read DSNs, replies and auto-replies over IMAP into the ledger. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "campaign/account.h"
#include "campaign/sentcopy.h"
#include "imap/imap.h"
#include "imap/report.h"
#include "ledger/ledger.h"
#include "roster/roster.h"

const char usage_bounces[] =
    "usage: demarche bounces [--via IMAP-URL] [--folder NAME] [--to ROSTER.csv [--key COL]]\n"
    "\n"
    "Reads the messages that arrived in the folder (default INBOX) since the last run and\n"
    "records in the ledger: delivery status notifications (a failure makes the delivery\n"
    "bounced, a delay is noted), replies naming one of our Message-IDs (replied:\n"
    "acknowledged) and auto-replies (noted). A reply counts only when its From domain is\n"
    "the domain of one of the addresses that message went to, or is listed in the roster's\n"
    "reply_domains column (--to); any other reply quoting our Message-ID is listed and\n"
    "recorded as an unmatched reply (event reply-unmatched), changing no state. Messages\n"
    "that match no delivery are listed. Reading the folder again never records anything\n"
    "twice. Then appends the Sent copies that earlier runs could not append.\n"
    "Text from the messages is printed with control and bidi characters escaped (\\x1b).\n"
    "\n"
    "  --via URL      imaps://HOST[:PORT] or imap://HOST[:PORT] (default: [imap] url);\n"
    "                 the user and password are [imap] user and password_command (or\n"
    "                 DEMARCHE_IMAP_PASSWORD)\n"
    "  --folder NAME  the folder to read (default INBOX)\n"
    "  --to ROSTER    the roster whose reply_domains column (domains separated by\n"
    "                 spaces, commas or semicolons) names more domains a mission may\n"
    "                 reply from, e.g. its ministry's\n"
    "  --key COL      the roster's key column (default iso3)\n"
    "\n"
    "Exit: 0 done; 65 a bad reply_domains value; 66 no roster; 75 IMAP trouble (run again\n"
    "later); 78 configuration.\n";

static const struct option bounces_options[] = {
    {"via", required_argument, NULL, 'v'},
    {"folder", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"key", required_argument, NULL, 'k'},
    {NULL, 0, NULL, 0},
};

/* A delivery a received message may be about, copied out of the ledger's callback. */
struct hit {
	int64_t id;
	char *key, *address;
	enum ledger_state state;
};

struct hits {
	struct hit *v;
	size_t n;
};

/* A mission's reply_domains from the roster (--to): lower case, without a leading '@'. */
struct replydom {
	char *key;
	char **domains;
	size_t n;
};

struct run {
	struct ledger *l;
	struct replydom *rd; /* from --to, in roster order */
	size_t nrd;
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
	h->v[h->n].key = xstrdup(r->key ? r->key : "");
	h->v[h->n].address = xstrdup(r->address ? r->address : "");
	h->v[h->n].state = r->state;
	h->n++;
	return 0;
}

static void hits_clear(struct hits *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].key);
		free(h->v[i].address);
	}
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

/* Lists a message that changed nothing; why is ours, the rest the sender's (escaped). */
static void list_unmatched(struct run *b, uint32_t uid, const struct report *r, const char *why)
{
	char *from = esc_term_dup(nz(r->from, "(none)")),
	     *subject = esc_term_dup(nz(r->subject, ""));

	b->unmatched++;
	buf_addf(&b->unmatched_list, "unmatched: UID %lu, %s: From %s, Subject \"%s\"\n",
	         (unsigned long)uid, why, from, subject);
	free(from);
	free(subject);
}

/* The domain of an address (after its last '@': a quoted local part may hold one), or NULL. */
static const char *domain_of(const char *address)
{
	const char *at = address ? strrchr(address, '@') : NULL;

	return at && at[1] ? at + 1 : NULL;
}

static const struct replydom *replydom_find(const struct run *b, const char *key)
{
	for (size_t i = 0; i < b->nrd; i++)
		if (str_ieq(b->rd[i].key, key))
			return &b->rd[i];
	return NULL;
}

/*
 * 1 when a reply from address `from` may speak for the mission h's deliveries went to: its
 * domain is the domain of one of them (To and Cc of the message it quotes) or one of the
 * roster's reply_domains of their key. Anyone can quote a Message-ID; only the mission's
 * own mail system should be able to send from its domain. Otherwise 0, with the domains
 * that would have counted in *allowed (escaped, for the operator).
 */
static int reply_allowed(const struct run *b, const struct hits *h, const char *from,
                         struct buf *allowed)
{
	const char *dom = domain_of(from);

	buf_reset(allowed);
	for (size_t i = 0; i < h->n; i++) {
		const char *d = domain_of(h->v[i].address);
		const struct replydom *rd = replydom_find(b, h->v[i].key);
		int seen_d = 0, seen_key = 0;

		if (d && dom && str_ieq(d, dom))
			return 1;
		for (size_t j = 0; j < i; j++) {
			seen_d |= d && domain_of(h->v[j].address) &&
			          str_ieq(domain_of(h->v[j].address), d);
			seen_key |= str_ieq(h->v[j].key, h->v[i].key);
		}
		if (d && !seen_d) {
			buf_adds(allowed, allowed->len ? ", " : "");
			esc_term(allowed, d);
		}
		for (size_t k = 0; rd && !seen_key && k < rd->n; k++) {
			if (dom && str_ieq(rd->domains[k], dom))
				return 1;
			buf_adds(allowed, allowed->len ? ", " : "");
			esc_term(allowed, rd->domains[k]);
		}
	}
	return 0;
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
	struct hits h = {0}, stranger = {0};
	struct buf allowed = BUF_INIT;
	const struct hit *hit;
	char *detail = NULL, *reply = NULL, date[32];
	int rc = EX_OK;

	/*
	 * The first message of ours it names whose mission it may speak for (a reply's
	 * References may name several). Auto-replies change no state: any one will do.
	 */
	for (size_t i = 0; i < r->nrefs && !h.n; i++) {
		if ((rc = ledger_find_message(b->l, r->refs[i], collect, &h, &b->err)))
			goto out;
		if (h.n && !automatic && !reply_allowed(b, &h, r->from, &allowed)) {
			if (!stranger.n)
				stranger = h;
			else
				hits_clear(&h);
			h = (struct hits){0};
		}
	}
	if (!h.n && stranger.n) {
		/* evidence that someone quoted our message, kept without changing its state */
		char *to, *why;

		reply_allowed(b, &stranger, r->from, &allowed);
		hit = choose(&stranger, NULL);
		to = esc_term_dup(hit->address);
		why = xasprintf("a reply quoting our message to %s from a domain that is not "
		                "the mission's (%s)",
		                to, buf_str(&allowed));
		detail =
		    xasprintf("reply %s from %s, not from a domain of the mission (%s): %s", source,
		              nz(r->from, "(none)"), buf_str(&allowed), nz(r->subject, ""));
		o.detail = detail;
		rc = observe(b, "reply-unmatched", hit->id, -1, source, &o, &(size_t){0});
		if (!rc)
			list_unmatched(b, uid, r, why);
		free(to);
		free(why);
		goto out;
	}
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
	hits_clear(&stranger);
	buf_free(&allowed);
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
		char *from = esc_term_dup(nz(r.from, "(none)"));
		char *subject = esc_term_dup(nz(r.subject, ""));
		char *why = esc_term_dup(perr ? perr : "unreadable");

		b->malformed++;
		fprintf(stderr, "demarche bounces: UID %lu (From %s, Subject \"%s\"): %s\n",
		        (unsigned long)uid, from, subject, why);
		free(from);
		free(subject);
		free(why);
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

/* --- reply_domains from the roster (--to) ------------------------------------------- */

struct rd_load {
	struct run *b;
	struct diags *d;
	const char *path;
	int seen; /* a row had the column */
};

/* A domain name as DNS writes it (LDH labels; non-ASCII allowed for IDNs), n > 0 bytes. */
static int domain_ok(const char *s, size_t n)
{
	if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || (c == '.' && s[i + 1] != '.')))
			return 0;
	}
	return 1;
}

static int load_domains(void *user, const struct roster_row *row)
{
	struct rd_load *ld = user;
	struct replydom rd = {0};
	const char *v = roster_get(row, "reply_domains");

	if (!v)
		return 0;
	ld->seen = 1;
	while (*v) {
		size_t n;
		char *dom;

		v += strspn(v, " \t,;");
		n = strcspn(v, " \t,;");
		if (!n)
			break;
		if (*v == '@') /* "@ministry.example" reads as meant */
			v++, n--;
		if (!n || !domain_ok(v, n)) {
			char *bad = xstrndup(v, n), *shown = esc_term_dup(bad);

			diags_add(ld->d, DIAG_ERROR, ld->path, roster_row_line(row),
			          "reply_domains", "'%s' is not a domain name", shown);
			free(bad);
			free(shown);
			v += n;
			continue;
		}
		dom = xstrndup(v, n);
		for (char *p = dom; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		rd.domains = xreallocarray(rd.domains, rd.n + 1, sizeof(char *));
		rd.domains[rd.n++] = dom;
		v += n;
	}
	if (!rd.n)
		return 0;
	rd.key = xstrdup(roster_key(row));
	ld->b->rd = xreallocarray(ld->b->rd, ld->b->nrd + 1, sizeof(*ld->b->rd));
	ld->b->rd[ld->b->nrd++] = rd;
	return 0;
}

/*
 * Reads the reply_domains of every mission of the roster into b. EX_OK (a roster without
 * the column: a warning, only the addresses' domains count), EX_DATAERR (a bad roster or
 * value: each named with file, row and column), EX_NOINPUT (no roster).
 */
static int read_reply_domains(const struct roster_opts *ro, struct run *b)
{
	struct diags d = DIAGS_INIT;
	struct roster *r = NULL;
	struct rd_load ld = {b, &d, ro->path, 0};
	int rc;

	if ((rc = roster_open(ro, &r, &d)) == EX_OK)
		rc = roster_each(r, load_domains, &ld, &d);
	if (rc == EX_OK && d.errors)
		rc = EX_DATAERR;
	if (rc == EX_OK && !ld.seen)
		diags_add(
		    &d, DIAG_WARNING, ro->path, 0, "reply_domains",
		    "no such column: a reply counts only from the domain of an address it was "
		    "sent to");
	diags_print(&d, stderr);
	diags_free(&d);
	roster_free(r);
	return rc;
}

static void replydom_free(struct run *b)
{
	for (size_t i = 0; i < b->nrd; i++) {
		for (size_t k = 0; k < b->rd[i].n; k++)
			free(b->rd[i].domains[k]);
		free(b->rd[i].domains);
		free(b->rd[i].key);
	}
	free(b->rd);
}

/* An error on stderr: it may quote a server's reply, so it is escaped like the rest. */
static void print_error(const char *prefix, const char *msg)
{
	char *shown = esc_term_dup(msg);

	fprintf(stderr, "demarche bounces: %s%s\n", prefix, shown);
	free(shown);
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
		print_error("Sent copies: ", err);
		free(err);
		return EX_CONFIG;
	}
	rc = sentcopy_retry(sc, l, &appended, &left, &err);
	if (appended)
		printf("%zu Sent cop%s appended\n", appended, appended == 1 ? "y" : "ies");
	if (rc)
		print_error("", err);
	free(err);
	sentcopy_close(sc);
	return rc;
}

int cmd_bounces(int argc, char **argv, struct app *app)
{
	struct run b = {0};
	struct roster_opts ro = {0};
	struct imap_session *s = NULL;
	const char *via = NULL, *folder = "INBOX";
	struct account *acct = NULL;
	const char *account;
	char *err = NULL;
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
		case 't':
			ro.path = optarg;
			break;
		case 'k':
			ro.key = optarg;
			break;
		default:
			fputs(usage_bounces, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || !*folder || (ro.key && !ro.path)) {
		fputs(usage_bounces, stderr);
		return EX_USAGE;
	}
	if ((rc = app_config(app)))
		return rc;
	/* before any IMAP: a roster error must not leave half a folder read */
	if (ro.path && (rc = read_reply_domains(&ro, &b)))
		goto out;
	rc = account_resolve(ACCOUNT_IMAP, &app->cfg, via, ACCOUNT_SECRET, &acct, &err);
	if (rc)
		goto fail;
	if (!acct) {
		fprintf(stderr, "demarche bounces: no IMAP account: set [imap] url and user in "
		                "demarche.ini (or give --via URL)\n");
		rc = EX_CONFIG;
		goto out;
	}
	if ((rc = ledger_open(app_store_path(app), LEDGER_CHECK, &b.l, &err)))
		goto fail;
	account = acct->id;
	b.account = account;
	b.folder = folder;
	if ((rc = ledger_imap_state(b.l, account, folder, &uidvalidity, &last_uid, &err)))
		goto fail;

	rc = imap_open(acct->url, acct->user, acct->password, acct->ca_file, &s, &err);
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
	print_error("", err ? err : exit_name(rc));
out:
	imap_close(s);
	ledger_close(b.l);
	account_free(acct);
	buf_free(&b.unmatched_list);
	replydom_free(&b);
	free(b.err);
	free(err);
	return rc;
}
