/* The plan of a send: each mission composed once into a spool, then its deliveries planned. */
#include "campaign/plan.h"

#include "campaign/document.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "roster/diff.h"

/* --- mission states --------------------------------------------------------------------- */

static const int severity[MS__COUNT] = {
    [MS_SENT] = 0,   [MS_STAGED] = 1,   [MS_NOT_STARTED] = 2,
    [MS_FAILED] = 3, [MS_DEFERRED] = 4, [MS_UNKNOWN] = 5,
};

enum mission_state mission_state_worse(enum mission_state a, enum mission_state b)
{
	return severity[b] > severity[a] ? b : a;
}

enum mission_state mission_state_add(enum mission_state m, enum ledger_state s)
{
	enum mission_state a;

	switch (s) {
	case LS_UNKNOWN:
	case LS_SENDING: /* a killed run's: in doubt */
		a = MS_UNKNOWN;
		break;
	case LS_DEFERRED:
		a = MS_DEFERRED;
		break;
	case LS_FAILED:
		a = MS_FAILED;
		break;
	case LS_PENDING:
		a = MS_NOT_STARTED;
		break;
	case LS_STAGED:
		a = MS_STAGED;
		break;
	default:
		a = MS_SENT;
		break;
	}
	return mission_state_worse(m, a);
}

const char *mission_state_name(enum mission_state m)
{
	static const char *const names[MS__COUNT] = {"sent",     "deferred",    "failed",
	                                             "in doubt", "not started", "staged"};
	return m < MS__COUNT ? names[m] : "?";
}

/* --- before the passes ------------------------------------------------------------------ */

static int mark_missing(const char *key, void *ctx)
{
	(void)key;
	*(int *)ctx = 1;
	return 0;
}

static int exclude_received(void *user, const char *key)
{
	struct plan_not_received *nr = user;
	int missing = 0;
	char *err = NULL;

	if (ledger_missing(nr->ledger, nr->campaign, &key, 1, mark_missing, &missing, &err) !=
	    EX_OK) {
		nr->error = 1;
		free(err);
		return 0;
	}
	return !missing;
}

/* Whether campaign id exists with none of its deliveries ever further than pending. */
struct untouched {
	const char *id;
	int untouched;
};

static int untouched(const struct ledger_campaign *c, void *ctx)
{
	struct untouched *u = ctx;

	if (!strcmp(c->id, u->id))
		u->untouched = c->counts[LS_PENDING] == c->total;
	return 0;
}

/* The campaign is recorded (an appeal may still change while nothing of it has left). */
int plan_campaign_begin(struct ledger *l, const struct merge *m, int amend, char **err)
{
	struct untouched u = {m->campaign, 0};

	if (!amend && ledger_campaigns(l, untouched, &u, err) == EX_OK && u.untouched)
		amend = 1;
	return ledger_campaign_begin(l, m->campaign, letter_header_source(m->letter, "en", "Title"),
	                             letter_header_source(m->letter, "en", "Subject"),
	                             letter_hash(m->letter), amend, err);
}

void plan_not_received(struct roster_opts *ro, struct plan_not_received *nr)
{
	ro->exclude = exclude_received;
	ro->exclude_user = nr;
}

/* --- the spool ---------------------------------------------------------------------------- */

#define SPOOL_MAGIC 0x444d5231u /* "DMR1" */

struct rec_head {
	uint32_t magic, keylen, idlen, nrcpt, rcptlen;
	uint32_t doclen; /* the document's SHA-256 after the addresses (0: none) */
	uint64_t datalen;
};

static int spool_open(int *fd, char **errstr)
{
	const char *dir = getenv("TMPDIR");
	char *tmpl;

	if (!dir || !*dir)
		dir = "/tmp";
	*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return EX_OK;
	/* File systems without O_TMPFILE: a named file, unlinked at once. */
	tmpl = xasprintf("%s/demarche-spool.XXXXXX", dir);
	*fd = mkostemp(tmpl, O_CLOEXEC);
	if (*fd >= 0)
		unlink(tmpl);
	free(tmpl);
	if (*fd < 0)
		return error_set(errstr, EX_CANTCREAT, "cannot make a spool file in %s: %s", dir,
		                 strerror(errno));
	return EX_OK;
}

/* Appends one record (header, key, Message-ID, addresses, message) to b. */
static void spool_record(struct buf *b, const char *key, const char *message_id,
                         const char *const *rcpt, size_t nrcpt, const char *data, size_t len,
                         const char *document)
{
	struct rec_head h = {0};

	h.magic = SPOOL_MAGIC;
	h.keylen = (uint32_t)strlen(key);
	h.idlen = (uint32_t)strlen(message_id);
	h.nrcpt = (uint32_t)nrcpt;
	for (size_t i = 0; i < nrcpt; i++)
		h.rcptlen += (uint32_t)strlen(rcpt[i]) + 1;
	h.datalen = len;
	h.doclen = document ? (uint32_t)strlen(document) : 0;
	buf_add(b, &h, sizeof(h));
	buf_add(b, key, h.keylen);
	buf_add(b, message_id, h.idlen);
	for (size_t i = 0; i < nrcpt; i++)
		buf_add(b, rcpt[i], strlen(rcpt[i]) + 1);
	buf_add(b, document, h.doclen);
	buf_add(b, data, len);
}

struct compose {
	struct plan *p;
	struct message_run *mr;
	time_t date;
	struct buf out; /* records waiting to be written */
	int io;         /* a write failed: errno */
};

static void flush(struct compose *c)
{
	if (!c->out.len || c->io)
		return;
	if (file_pwrite_all(c->p->fd, c->out.data, c->out.len, c->p->end) != 0)
		c->io = errno ? errno : EIO;
	else
		c->p->end += (off_t)c->out.len;
	c->out.len = 0;
}

static int compose_row(void *user, struct merge *m, const char *key, long line,
                       struct message *msg_)
{
	struct compose *c = user;
	struct message msg = *msg_; /* taken: freed here */

	(void)line;
	memset(msg_, 0, sizeof(*msg_));
	if (m->d.errors) { /* nothing will be sent: compose to validate, keep nothing */
		message_free(&msg);
		return 0;
	}
	spool_record(&c->out, key, msg.message_id, (const char *const *)msg.rcpt, msg.nrcpt,
	             msg.data.data, msg.data.len, msg.document);
	message_free(&msg);
	if (c->out.len >= (1u << 20))
		flush(c);
	return 0;
}

int plan_compose(struct plan *p, struct merge *m, struct message_run *mr, time_t date,
                 const char *cmd, char **errstr)
{
	struct compose c = {0};
	int rc;

	memset(p, 0, sizeof(*p));
	rc = spool_open(&p->fd, errstr);
	if (rc != EX_OK)
		return rc;
	p->spool = 1;
	c.p = p;
	c.mr = mr;
	c.date = date;
	rc = merge_compose(m, mr, date, cmd, compose_row, &c);
	flush(&c);
	buf_free(&c.out);
	if (rc == EX_OK && c.io)
		rc = error_set(errstr, EX_IOERR, "cannot write the spool: %s", strerror(c.io));
	return rc;
}

int plan_add(struct plan *p, const char *key, const char *message_id, const char *const *rcpt,
             size_t nrcpt, const char *data, size_t len, char **errstr)
{
	struct buf b = {0};
	int rc = EX_OK;

	if (!p->spool) {
		rc = spool_open(&p->fd, errstr);
		if (rc != EX_OK)
			return rc;
		p->spool = 1;
	}
	spool_record(&b, key, message_id, rcpt, nrcpt, data, len, NULL);
	if (file_pwrite_all(p->fd, b.data, b.len, p->end) != 0)
		rc = error_set(errstr, EX_IOERR, "cannot write the spool: %s", strerror(errno));
	else {
		p->end += (off_t)b.len;
	}
	buf_free(&b);
	return rc;
}

int plan_read(const struct plan *p, off_t off, int with_data, struct plan_record *r, char **errstr)
{
	struct rec_head h;
	size_t n;
	char *block = NULL, *q;

	memset(r, 0, sizeof(*r));
	if (file_pread_all(p->fd, &h, sizeof(h), off) != 0 || h.magic != SPOOL_MAGIC)
		goto bad;
	n = (size_t)h.keylen + h.idlen + h.rcptlen + h.doclen;
	block = xmalloc(n + 2);
	if (file_pread_all(p->fd, block, n, off + (off_t)sizeof(h)) != 0)
		goto bad;
	r->key = xstrndup(block, h.keylen);
	r->message_id = xstrndup(block + h.keylen, h.idlen);
	r->nrcpt = h.nrcpt;
	r->rcpt = xcalloc(h.nrcpt ? h.nrcpt : 1, sizeof(char *));
	q = block + h.keylen + h.idlen;
	for (uint32_t i = 0; i < h.nrcpt; i++) {
		size_t len = strnlen(q, (size_t)(block + n - q));
		if (q + len >= block + n)
			goto bad;
		r->rcpt[i] = xstrndup(q, len);
		q += len + 1;
	}
	if (h.doclen)
		r->document = xstrndup(q, h.doclen);
	r->len = (size_t)h.datalen;
	r->next = off + (off_t)sizeof(h) + (off_t)n + (off_t)h.datalen;
	if (with_data) {
		r->data = xmalloc(r->len + 1);
		if (file_pread_all(p->fd, r->data, r->len, off + (off_t)sizeof(h) + (off_t)n) != 0)
			goto bad;
		r->data[r->len] = 0;
	}
	free(block);
	return EX_OK;
bad:
	free(block);
	plan_record_free(r);
	return error_set(errstr, EX_IOERR, "the spool cannot be read back at offset %lld",
	                 (long long)off);
}

void plan_record_free(struct plan_record *r)
{
	free(r->key);
	free(r->message_id);
	free(r->document);
	for (uint32_t i = 0; r->rcpt && i < r->nrcpt; i++)
		free(r->rcpt[i]);
	free(r->rcpt);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

/* --- pass 2 ------------------------------------------------------------------------------- */

static struct plan_mission *add_mission(struct plan *p, off_t off, uint32_t nrcpt)
{
	struct plan_mission *pm;

	p->m = xreallocarray(p->m, p->n + 1, sizeof(*p->m));
	pm = &p->m[p->n++];
	memset(pm, 0, sizeof(*pm));
	pm->off = off;
	pm->idx = xcalloc(nrcpt ? nrcpt : 1, sizeof(uint32_t));
	pm->rest = MS_SENT;
	pm->state = MS_NOT_STARTED;
	return pm;
}

void plan_all(struct plan *p)
{
	struct plan_record r;
	off_t next;

	for (off_t off = 0; off < p->end; off = next) {
		struct plan_mission *pm;

		if (plan_read(p, off, 0, &r, NULL) != EX_OK)
			return; /* plan_read() of the engine will say so */
		next = r.next;
		pm = add_mission(p, off, 1);
		pm->n = 1;
		plan_record_free(&r);
	}
}

/*
 * The document a delivery is about to get (Form: pdf or both): a 'document' event with the
 * PDF's SHA-256 and file name, in the plan's transaction, before anything is sent; audit
 * shows the last one (docs/design.md, "The letter as a PDF").
 */
static int document_record(struct ledger *l, const char *campaign, int64_t delivery,
                           const char *key, const char *sha, char **errstr)
{
	char *name = document_file_name(campaign, key);
	char *detail = xasprintf("sha256=%s file=%s", sha, name);
	struct ledger_outcome o = {0};
	int rc;

	o.detail = detail;
	rc = ledger_record(l, "document", campaign, delivery, &o, errstr);
	free(detail);
	free(name);
	return rc;
}

/* One mission: its deliveries, and which of them this run sends. */
static int plan_one(struct plan *p, struct ledger *l, const char *campaign, unsigned retry_flags,
                    const char *via, const struct plan_record *r, off_t off, char **errstr)
{
	struct plan_mission *pm = NULL;
	enum mission_state skipped = MS_SENT, taken = MS_SENT;
	int failed = 0, unknown = 0, staged = 0;

	for (uint32_t i = 0; i < r->nrcpt; i++) {
		struct ledger_delivery d;
		int take = 0, rc;

		/* The Message-ID is stable across runs: it is kept with each delivery. */
		if (p->dry) {
			rc = l ? ledger_delivery_find(l, campaign, r->key, r->rcpt[i], &d, errstr)
			       : -1;
			if (rc == -1)
				d = (struct ledger_delivery){0, LS_PENDING, 0};
			else if (rc != EX_OK)
				return rc;
			if (d.state == LS_SENDING)
				d.state = LS_UNKNOWN;
		} else if ((rc = ledger_delivery_get(l, campaign, r->key, r->rcpt[i], r->message_id,
		                                     &d, errstr)) != EX_OK) {
			return rc;
		}
		if (d.state == LS_SENDING) {
			struct ledger_outcome o = {0};

			o.via = via;
			o.detail = "found in state sending: an earlier run stopped while this "
			           "message was being handed over; it may or may not have left";
			/* in doubt, unless another sender's lease runs (team ledger) */
			rc = ledger_settle_sending(l, d.id, &o, &d, errstr);
			if (rc != EX_OK)
				return rc;
			if (d.state == LS_SENDING)
				continue; /* another sender's, under its running lease */
		}
		switch (d.state) {
		case LS_PENDING:
		case LS_DEFERRED:
			take = 1;
			break;
		case LS_FAILED:
			take = (retry_flags & LEDGER_RETRY_FAILED) != 0;
			failed += !take;
			break;
		case LS_UNKNOWN:
			take = (retry_flags & LEDGER_RETRY_UNKNOWN) != 0;
			unknown += !take;
			break;
		case LS_STAGED: /* in a local outbox only: a real send takes it */
			take = !p->staging;
			staged += !take;
			break;
		default:
			break;
		}
		if (!take) {
			skipped = mission_state_add(skipped, d.state);
			continue;
		}
		taken = mission_state_add(taken, d.state);
		if (!pm) {
			pm = add_mission(p, off, r->nrcpt);
			pm->deliv = xcalloc(r->nrcpt, sizeof(int64_t));
		}
		pm->idx[pm->n] = i;
		pm->deliv[pm->n] = d.id;
		pm->n++;
		if (r->document) {
			rc = document_record(l, campaign, d.id, r->key, r->document, errstr);
			if (rc != EX_OK)
				return rc;
		}
	}
	if (pm) {
		pm->rest = skipped;
		pm->state = mission_state_worse(skipped, taken);
		return EX_OK;
	}
	p->skipped[skipped]++;
	if (failed)
		p->skipped_failed++;
	else if (unknown)
		p->skipped_unknown++;
	else if (staged)
		p->already_staged++;
	else
		p->already_sent++;
	return EX_OK;
}

int plan_deliveries(struct plan *p, struct ledger *l, const char *campaign, unsigned retry_flags,
                    const char *via, char **errstr)
{
	struct plan_record r = {0};
	int rc = p->dry ? EX_OK : ledger_batch_begin(l, errstr);

	for (off_t off = 0; rc == EX_OK && off < p->end; off = r.next) {
		plan_record_free(&r);
		rc = plan_read(p, off, 0, &r, errstr);
		if (rc == EX_OK)
			rc = plan_one(p, l, campaign, retry_flags, via, &r, off, errstr);
	}
	plan_record_free(&r);
	if (p->dry)
		return rc;
	if (rc == EX_OK)
		rc = ledger_batch_end(l, 1, errstr);
	else
		ledger_batch_end(l, 0, NULL);
	return rc;
}

void plan_count(const struct plan *p, size_t counts[MS__COUNT])
{
	for (int s = 0; s < MS__COUNT; s++)
		counts[s] = p->skipped[s];
	for (size_t i = 0; i < p->n; i++)
		counts[p->m[i].state]++;
}

void plan_free(struct plan *p)
{
	if (p->spool)
		close(p->fd);
	for (size_t i = 0; i < p->n; i++) {
		free(p->m[i].idx);
		free(p->m[i].deliv);
	}
	free(p->m);
	memset(p, 0, sizeof(*p));
}

/* --- what changed since the last letter ------------------------------------------------ */

struct previous {
	const char *current;
	char *id;
	int self; /* the current campaign has deliveries */
};

/* The newest campaign other than the current one that wrote to anyone. */
static int find_previous(const struct ledger_campaign *c, void *ctx)
{
	struct previous *p = ctx;

	if (c->total > 0 && !strcmp(c->id, p->current))
		p->self = 1;
	else if (c->total > 0) {
		free(p->id);
		p->id = xstrdup(c->id);
	}
	return 0;
}

static int add_delivery(const struct ledger_row *row, void *ctx)
{
	roster_snap_add(ctx, row->key, row->address, NULL);
	return 0;
}

/* One "KEY<TAB>NAME" line of a 'roster' event, tabs and line breaks in either made spaces. */
static void add_clean(struct buf *b, const char *s)
{
	for (; s && *s; s++)
		buf_addc(b, *s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

#define NAMES_KIND "roster" /* the event that keeps the names a campaign first wrote to */

#define NAMES_CHUNK 65536 /* bytes of lines in one 'roster' event */

struct names_out {
	struct ledger *l;
	const char *campaign;
	struct buf b;
	char **errstr;
	size_t events; /* written so far */
};

/* The lines so far as one 'roster' event (inside the caller's batch). */
static int names_flush(struct names_out *no)
{
	struct ledger_outcome o = {0};
	int rc;

	o.detail = buf_str(&no->b);
	rc = ledger_record(no->l, NAMES_KIND, no->campaign, 0, &o, no->errstr);
	buf_reset(&no->b);
	no->events++;
	return rc;
}

static int add_name_line(void *u, const struct roster_row *row)
{
	struct names_out *no = u;
	char *who = roster_row_who(row);

	add_clean(&no->b, roster_key(row));
	buf_addc(&no->b, '\t');
	add_clean(&no->b, who);
	buf_addc(&no->b, '\n');
	free(who);
	return no->b.len >= NAMES_CHUNK ? names_flush(no) : 0;
}

/*
 * The names of the campaign's first send, "KEY<TAB>NAME" lines in 'roster' events of at most
 * about NAMES_CHUNK bytes each, written in one transaction as the roster is read: memory
 * stays flat however many missions there are.
 */
int plan_record_names(struct ledger *l, struct merge *m, char **errstr)
{
	struct diags d = DIAGS_INIT;
	struct names_out no = {l, m->campaign, BUF_INIT, errstr, 0};
	char *had = NULL;
	int rc, rrc;

	if ((rc = ledger_note_last(l, m->campaign, NAMES_KIND, &had, errstr)) != EX_OK || had)
		goto out;
	if ((rc = ledger_batch_begin(l, errstr)) != EX_OK)
		goto out;
	rrc = roster_each(m->roster, add_name_line, &no, &d);
	if (rrc == EX_OK && (no.b.len || !no.events))
		rrc = names_flush(&no);
	if (rrc != EX_OK && !d.errors) { /* the ledger failed: nothing kept */
		ledger_batch_end(l, 0, NULL);
		rc = rrc;
		goto out;
	}
	/* a roster problem: validated already, nothing to keep then */
	rc = ledger_batch_end(l, rrc == EX_OK, errstr);
out:
	free(had);
	buf_free(&no.b);
	diags_free(&d);
	return rc;
}

static int add_names_event(const struct ledger_event *e, void *ctx)
{
	struct roster_snap *s = ctx;
	char *detail = xstrdup(e->detail ? e->detail : "");

	for (char *line = detail, *next; *line; line = next) {
		char *tab, *end = strchr(line, '\n');

		next = end ? end + 1 : line + strlen(line);
		if (end)
			*end = '\0';
		if ((tab = strchr(line, '\t'))) {
			*tab = '\0';
			roster_snap_add(s, line, NULL, tab + 1);
		}
	}
	free(detail);
	return 0;
}

/* The names campaign's first send wrote to, into s. */
static int add_names(struct ledger *l, const char *campaign, struct roster_snap *s, char **errstr)
{
	return ledger_events(l, campaign, NAMES_KIND, add_names_event, s, errstr);
}

struct changes_out {
	struct buf *b;
	int filtered;
	size_t shown;
};

#define CHANGES_SHOWN 50 /* lines listed; the counts say the rest */

static void format_change(void *ctx, const struct roster_change *c)
{
	struct changes_out *co = ctx;

	if (co->filtered && c->kind == RC_REMOVED)
		return;
	if (co->shown++ >= CHANGES_SHOWN)
		return;
	buf_adds(co->b, "  ");
	roster_change_format(co->b, c);
	buf_addc(co->b, '\n');
}

int plan_changes(struct ledger *l, struct merge *m, int filtered, struct buf *out, char **errstr)
{
	struct previous prev = {m->campaign, NULL, 0};
	struct roster_snap old = {0}, now = {0};
	struct roster_diff_counts n;
	struct changes_out co = {NULL, filtered, 0};
	struct buf list = BUF_INIT;
	struct diags d = DIAGS_INIT;
	int rc;

	if (!l)
		return EX_OK;
	if ((rc = ledger_campaigns(l, find_previous, &prev, errstr)) != EX_OK)
		goto out;
	if (!prev.id && prev.self) /* the campaign's own earlier letters, then */
		prev.id = xstrdup(m->campaign);
	if (!prev.id)
		goto out;
	if ((rc = ledger_deliveries(l, prev.id, add_delivery, &old, errstr)) != EX_OK ||
	    (rc = add_names(l, prev.id, &old, errstr)) != EX_OK)
		goto out;
	if (roster_snap_read(m->roster, &now, &d) != EX_OK) {
		rc = EX_OK; /* the validation pass has said what is wrong */
		goto out;
	}
	co.b = &list;
	roster_diff(&old, &now, format_change, &co, &n);
	if (filtered)
		n.removed = 0;
	buf_addf(out,
	         "since the last letter (campaign %s in the ledger): %zu new, %zu removed, %zu "
	         "with other addresses, %zu with another name%s\n",
	         prev.id, n.added, n.removed, n.address, n.name,
	         n.added + n.removed + n.address + n.name ? "" : ": nothing changed");
	buf_add(out, list.data, list.len);
	if (co.shown > CHANGES_SHOWN)
		buf_addf(out, "  ... and %zu more: demarche audit %s, demarche roster diff\n",
		         co.shown - CHANGES_SHOWN, prev.id);
out:
	diags_free(&d);
	buf_free(&list);
	roster_snap_free(&old);
	roster_snap_free(&now);
	free(prev.id);
	return rc;
}
