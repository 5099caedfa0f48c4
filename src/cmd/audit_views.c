/* demarche audit's text views: campaigns by mission, one campaign's deliveries, the missing
 * missions with reasons, the missions x campaigns matrix; grouped with --by. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "cmd/audit.h"

#define NOT_IN_ROSTER "(not in roster)"

const char *audit_short_time(const char *iso, char out[32])
{
	size_t n;

	if (!iso)
		return NULL;
	n = strnlen(iso, 19);
	memcpy(out, iso, n);
	out[n] = 'Z';
	out[n + 1] = '\0';
	return out;
}

/* A non-negative number as text without printf's cost (a million rows); out holds 24 bytes. */
static const char *num(long v, char out[24])
{
	char tmp[24], *p = tmp + sizeof(tmp);
	unsigned long u = v < 0 ? 0 : (unsigned long)v;
	size_t n;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

/* A column set being built: the view's own columns, then --columns' roster columns. */
struct colset {
	struct rp_col *v;
	size_t n;
};

static size_t col_add(struct colset *c, const char *name, enum rp_kind kind, int flags)
{
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n] = (struct rp_col){name, kind, flags};
	return c->n++;
}

/* The roster's extra columns (asked for with --columns) go last; returns the first's index. */
static size_t col_extras(struct colset *c, const struct rp_roster *r)
{
	size_t first = c->n;

	for (size_t j = 0; r && j < r->nextra; j++)
		col_add(c, r->extra_names[j], RP_STR, RP_COL_FIT);
	return first;
}

/* With --by and no --columns, the group is the listing's first column (rows are by group). */
static void group_first(struct rp_out *o, size_t group_col)
{
	for (size_t i = 0; i < o->nsel; i++)
		if (o->sel[i] == group_col) {
			int w = o->width[i];

			memmove(&o->sel[1], &o->sel[0], i * sizeof(size_t));
			memmove(&o->width[1], &o->width[0], i * sizeof(int));
			o->sel[0] = group_col;
			o->width[0] = w;
			return;
		}
}

/* The footer of a listing grouped with --by (tables only): per group, how many rows of how
 * many missions, and the totals. */
static int group_footer(const struct audit_opts *a, const char *what, const long *rows,
                        const long *missions, size_t ngroups, const char *const *names, char **err)
{
	const struct rp_col cols[] = {
	    {a->by, RP_STR, RP_COL_TABLE | RP_COL_FIT},
	    {what, RP_INT, RP_COL_TABLE},
	    {"missions", RP_INT, RP_COL_TABLE},
	};
	struct rp_out_opts oo = a->out;
	struct rp_out o;
	long tr = 0, tm = 0;
	char n1[24], n2[24];
	int rc;

	oo.columns = NULL;
	fputc('\n', rp_stdout());
	if ((rc = rp_out_init(&o, &oo, cols, 3, err)) == EX_OK) {
		for (size_t g = 0; g < ngroups; g++) {
			const char *cells[3] = {names[g], num(rows[g], n1), num(missions[g], n2)};

			if (!rows[g] && !missions[g])
				continue;
			tr += rows[g];
			tm += missions[g];
			rp_out_row(&o, cells, 0);
		}
		rp_out_row(&o, (const char *const[]){"total", num(tr, n1), num(tm, n2)}, 0);
	}
	rp_out_end(&o);
	return rc;
}

/* --- audit [--summary]: one line per campaign (or campaign and group) -------------------- */

enum {
	S_CAMPAIGN,
	S_TITLE,
	S_GROUP,
	S_FIRST,
	S_LAST,
	S_MISSIONS,
	S_RECEIVED,
	S_PARTIAL,
	S_MISSING,
	S_ADDRESSES,
	S_STATES,
	S_CONTENT = S_STATES + LS_STAGED,
	S_STAGED, /* a state added later (issue 18): last, so older readers' columns stay put */
	S__COUNT
};

static void summary_row(struct rp_out *o, const struct audit_opts *a, const struct rp_campaign *c,
                        const char *group, const struct rp_counts *k, int states)
{
	const char *cells[S__COUNT] = {0};
	char n[S__COUNT][24], first[32], last[32], shorth[13];

	cells[S_CAMPAIGN] = c->id;
	cells[S_TITLE] = c->title;
	cells[S_GROUP] = group;
	cells[S_FIRST] = c->first_sent;
	cells[S_LAST] = c->last_sent;
	if (a->out.fmt == RP_TABLE) {
		cells[S_FIRST] = audit_short_time(c->first_sent, first);
		cells[S_LAST] = audit_short_time(c->last_sent, last);
	}
	cells[S_MISSIONS] = num(k->missions, n[S_MISSIONS]);
	cells[S_RECEIVED] = num(k->received, n[S_RECEIVED]);
	cells[S_PARTIAL] = num(k->partial, n[S_PARTIAL]);
	cells[S_MISSING] = num(k->missing, n[S_MISSING]);
	cells[S_ADDRESSES] = num(k->addresses, n[S_ADDRESSES]);
	for (int s = 0; states && s < LS_STAGED; s++)
		cells[S_STATES + s] = num(c->by_state[s], n[S_STATES + s]);
	if (states)
		cells[S_STAGED] = num(c->by_state[LS_STAGED], n[S_STAGED]);
	cells[S_CONTENT] =
	    a->out.fmt == RP_TABLE && !a->out.wide ? rp_short_hash(c->hash, shorth) : c->hash;
	rp_out_row(o, cells, 0);
}

int audit_summary(struct ledger *l, const struct audit_opts *a, char **err)
{
	static const char *const state_cols[LS__COUNT] = {"pending",  "sending", "sent",
	                                                  "deferred", "failed",  "unknown",
	                                                  "bounced",  "replied", "staged"};
	struct rp_col cols[S__COUNT];
	struct rp_ledger lg = {0};
	struct rp_counts *g = NULL;
	struct rp_out o;
	int rc;

	/* the columns, without the group's unless --by (kept in enum order for the cells) */
	for (int i = 0; i < S__COUNT; i++) {
		static const struct rp_col base[] = {
		    [S_CAMPAIGN] = {"campaign", RP_STR, RP_COL_TABLE},
		    [S_TITLE] = {"title", RP_STR, RP_COL_TABLE | RP_COL_FIT},
		    [S_GROUP] = {"group", RP_STR, RP_COL_TABLE | RP_COL_FIT},
		    [S_FIRST] = {"first_sent", RP_STR, 0},
		    [S_LAST] = {"last_sent", RP_STR, 0},
		    [S_MISSIONS] = {"missions", RP_INT, RP_COL_TABLE},
		    [S_RECEIVED] = {"received", RP_INT, RP_COL_TABLE},
		    [S_PARTIAL] = {"partial", RP_INT, RP_COL_TABLE},
		    [S_MISSING] = {"missing", RP_INT, RP_COL_TABLE},
		    [S_ADDRESSES] = {"addresses", RP_INT, RP_COL_TABLE},
		    [S_CONTENT] = {"content_sha256", RP_STR, RP_COL_TABLE},
		    /* in a local outbox, not sent (docs/design.md, "Staging is not delivery") */
		    [S_STAGED] = {"staged", RP_INT, RP_COL_TABLE},
		};

		cols[i] = i >= S_STATES && i < S_CONTENT
		              ? (struct rp_col){state_cols[i - S_STATES], RP_INT, 0}
		              : base[i];
		if (i == S_GROUP)
			cols[i].name = a->by ? a->by : "group";
	}
	if ((rc = rp_out_init(&o, &a->out, cols, S__COUNT, err)))
		goto out;
	if (!a->by && !a->out.columns) {
		/* no group column: drop it from the shown ones */
		size_t k = 0;

		for (size_t i = 0; i < o.nsel; i++)
			if (o.sel[i] != S_GROUP)
				o.sel[k] = o.sel[i], o.width[k++] = o.width[i];
		o.nsel = k;
	}
	if ((rc = rp_ledger_fold(l, a->campaign, a->roster, &lg, err)))
		goto out;
	if (a->roster)
		g = xcalloc(a->roster->ngroups + 1, sizeof(*g));
	for (size_t i = 0; i < lg.n; i++) {
		const struct rp_campaign *c = &lg.v[i];
		struct rp_counts total = {0};

		if (a->roster) {
			rp_group_counts(a->roster, c, g, &total);
		} else {
			total.missions = c->missions;
			total.received = c->received;
			total.partial = c->partial;
			total.missing = c->missing;
			total.addresses = c->addresses;
		}
		for (size_t k = 0; a->by && k < a->roster->ngroups; k++)
			summary_row(&o, a, c, a->roster->groups[k], &g[k], 0);
		summary_row(&o, a, c, a->by ? "total" : NULL, &total, 1);
	}
out:
	rp_out_end(&o);
	rp_ledger_free(&lg);
	free(g);
	return rc;
}

/* --- audit CAMPAIGN: one line per delivery --------------------------------------------------- */

enum {
	D_KEY,
	D_STATE,
	D_ADDRESS,
	D_TIME,
	D_ATTEMPTS,
	D_CODE,
	D_REPLY,
	D_MSGID,
	D_CONTENT,
	D_VERSION,
	D_DOCUMENT,
	D_OPERATOR,
	D__BASE
};

/* The letter as a PDF: each delivery's last 'document' (its SHA-256), for --columns document. */
struct doc_entry {
	int64_t delivery;
	size_t order;
	char *sha;
};

struct docs {
	struct doc_entry *v;
	size_t n;
};

/* One 'document' event (detail "sha256=HEX file=NAME"): the PDF a delivery was sent. */
static int doc_add(const struct ledger_event *e, void *ctx)
{
	struct docs *ds = ctx;
	const char *p = e->detail ? strstr(e->detail, "sha256=") : NULL;

	if (!p)
		return 0;
	p += 7;
	ds->v = xreallocarray(ds->v, ds->n + 1, sizeof(*ds->v));
	ds->v[ds->n] = (struct doc_entry){e->delivery, ds->n, xstrndup(p, strcspn(p, " "))};
	ds->n++;
	return 0;
}

static int doc_cmp(const void *a, const void *b)
{
	const struct doc_entry *x = a, *y = b;

	if (x->delivery != y->delivery)
		return x->delivery < y->delivery ? -1 : 1;
	return x->order < y->order ? 1 : x->order > y->order ? -1 : 0; /* the last first */
}

/* The delivery's last document, or NULL. */
static const char *doc_find(const struct docs *ds, int64_t delivery)
{
	size_t lo = 0, hi = ds->n;

	while (lo < hi) { /* the first entry of delivery: its last document */
		size_t mid = lo + (hi - lo) / 2;

		if (ds->v[mid].delivery < delivery)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ds->n && ds->v[lo].delivery == delivery ? ds->v[lo].sha : NULL;
}

static void docs_free(struct docs *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		free(ds->v[i].sha);
	free(ds->v);
}

struct deliveries_ctx {
	struct rp_out *o;
	const struct audit_opts *a;
	const char *hash;
	size_t ncols, group_col, extra_col;
	const char **cells;
	long not_received;
	long *rows_by_group;
	struct docs docs;
};

/* The appeal's version as a table shows it: 8 hex digits, as git's short hashes. */
static const char *short8(const char *hash, char out[13])
{
	if (!hash)
		return NULL;
	snprintf(out, 9, "%s", hash);
	return out;
}

static int delivery_line(const struct ledger_row *r, void *ctx)
{
	struct deliveries_ctx *dc = ctx;
	const struct rp_roster *ros = dc->a->roster;
	const char **cells = dc->cells;
	char attempts[24], code[24], time[32], shorth[13];
	int table = dc->a->out.fmt == RP_TABLE;
	size_t key = 0;

	if (!ledger_state_received(r->state))
		dc->not_received++;
	cells[D_KEY] = r->key;
	cells[D_STATE] = ledger_state_name(r->state);
	cells[D_ADDRESS] = r->address;
	cells[D_TIME] = table ? audit_short_time(r->updated, time) : r->updated;
	cells[D_ATTEMPTS] = num(r->attempts, attempts);
	cells[D_CODE] = r->last_code ? num(r->last_code, code) : NULL;
	cells[D_REPLY] = r->last_reply;
	if (table && !r->last_reply)
		cells[D_REPLY] = cells[D_CODE];
	cells[D_MSGID] = r->message_id;
	switch (rp_carried(r->campaign ? r->campaign : dc->a->campaign, r->key, r->message_id,
	                   dc->hash)) {
	case 1:
		cells[D_CONTENT] = dc->hash;
		cells[D_VERSION] = table ? short8(dc->hash, shorth) : "current";
		break;
	case 0:
		cells[D_CONTENT] = NULL;
		cells[D_VERSION] = "earlier";
		break;
	default: /* not a Message-ID demarche makes: no telling */
		cells[D_CONTENT] = cells[D_VERSION] = NULL;
	}
	cells[D_DOCUMENT] = doc_find(&dc->docs, r->id);
	cells[D_OPERATOR] = r->operator_name;
	if (ros) {
		long i = rp_roster_find(ros, r->key);

		key = i >= 0 ? ros->group_of[i] : ros->ngroups;
		if (dc->a->by)
			cells[dc->group_col] = i >= 0 ? ros->groups[key] : NOT_IN_ROSTER;
		for (size_t j = 0; j < ros->nextra; j++)
			cells[dc->extra_col + j] = i >= 0 ? ros->v[i].extra[j] : NULL;
		if (dc->rows_by_group)
			dc->rows_by_group[key]++;
	}
	rp_out_row(dc->o, cells, key);
	return 0;
}

/* Measuring stops after this many deliveries when the table is not for a terminal. */
#define MEASURE_MAX  10000
#define MEASURE_STOP (-1)

struct measure {
	struct ledger_widths w;
	int msgid;   /* the widest Message-ID (no index has it: measured rows only) */
	long n, max; /* rows measured; stop after max (0: never) */
};

/* Widens the widths to this row's key, address and last reply as the table shows them. */
static int measure_line(const struct ledger_row *r, void *ctx)
{
	struct measure *m = ctx;
	struct ledger_widths *w = &m->w;
	int n;

	if (m->max && m->n++ == m->max)
		return MEASURE_STOP;
	if ((n = (int)esc_term_width(r->key)) > w->key)
		w->key = n;
	if ((n = (int)esc_term_width(r->address)) > w->address)
		w->address = n;
	if ((n = (int)esc_term_width(r->last_reply)) > w->reply)
		w->reply = n;
	if ((n = (int)esc_term_width(r->message_id)) > m->msgid)
		m->msgid = n;
	return 0;
}

struct hash_ctx {
	const char *id;
	char *hash;
};

static int find_hash(const struct ledger_campaign *c, void *ctx)
{
	struct hash_ctx *h = ctx;

	if (!strcmp(c->id, h->id) && c->content_hash)
		h->hash = xstrdup(c->content_hash);
	return 0;
}

/* Widths from the ledger before the rows, so that a million rows stream. */
static int known_widths(struct ledger *l, const struct audit_opts *a, struct rp_out *o,
                        size_t ncols, char **err)
{
	struct ledger_widths w = {0};
	struct measure m = {0};
	int *wd = xcalloc(ncols + 1, sizeof(int)), rc;

	/*
	 * Measured on the escaped text (measure_line()), a pass over the rows. On a terminal,
	 * where a second pass costs little next to drawing the lines, always; elsewhere up to
	 * MEASURE_MAX deliveries (any real campaign), and past that from one SQL pass over the
	 * length indexes, which count raw characters: a value that escaping makes wider is then
	 * cut like any value wider than its column.
	 */
	m.max = a->tty ? 0 : MEASURE_MAX;
	rc = ledger_deliveries(l, a->campaign, measure_line, &m, err);
	if (rc == MEASURE_STOP)
		rc = ledger_delivery_widths(l, a->campaign, &w, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < ncols; i++)
		wd[i] = -1;
	wd[D_KEY] = w.key > m.w.key ? w.key : m.w.key;
	wd[D_STATE] = 8;
	wd[D_ADDRESS] = w.address > m.w.address ? w.address : m.w.address;
	wd[D_TIME] = 20;
	wd[D_ATTEMPTS] = 8;
	wd[D_REPLY] = w.reply > m.w.reply ? w.reply : m.w.reply;
	if (wd[D_REPLY] < 3)
		wd[D_REPLY] = 3;
	wd[D_CONTENT] = 64;
	wd[D_VERSION] = 8;
	wd[D_CODE] = 3;
	wd[D_DOCUMENT] = 64;
	wd[D_MSGID] = m.msgid; /* past MEASURE_MAX, a longer one pushes the hash right */
	for (size_t i = 0; i < o->nsel; i++)
		if (wd[o->sel[i]] < 0) /* a column chosen with --columns that is not measured */
			goto out;
	rp_out_widths(o, wd);
out:
	free(wd);
	return rc;
}

int audit_deliveries(struct ledger *l, const struct audit_opts *a, char **err)
{
	const struct rp_roster *ros = a->roster;
	struct deliveries_ctx dc = {0};
	struct hash_ctx h = {a->campaign, NULL};
	struct colset cs = {0};
	long *missions = NULL;
	struct rp_out o;
	int rc;

	col_add(&cs, "key", RP_STR, RP_COL_TABLE);
	col_add(&cs, "state", RP_STR, RP_COL_TABLE | RP_COL_STATE);
	/* an address is never cut (a reader searches for it); long replies are */
	col_add(&cs, "address", RP_STR, RP_COL_TABLE);
	col_add(&cs, "time", RP_STR, RP_COL_TABLE);
	col_add(&cs, "attempts", RP_INT, RP_COL_TABLE);
	col_add(&cs, "last_code", RP_INT, 0);
	col_add(&cs, "last_reply", RP_STR, RP_COL_TABLE | RP_COL_FIT);
	col_add(&cs, "message_id", RP_STR, RP_COL_FIT);
	/* the version carried, from the Message-ID (rp_carried()): the current hash, or
	 * "earlier" for a delivery made before an --amend (whose hash the API does not give) */
	col_add(&cs, "content_sha256", RP_STR, 0);
	col_add(&cs, "version", RP_STR, RP_COL_TABLE);
	/* the PDF letter it got (Form: pdf, both): only when asked for, older outputs stay */
	col_add(&cs, "document", RP_STR, RP_COL_ASKED);
	/* who sent it, on a team ledger (issue 21): only when asked with --columns */
	col_add(&cs, "operator", RP_STR, RP_COL_ASKED);
	ledger_want_operator(l, a->out.columns && strstr(a->out.columns, "operator") != NULL);
	if (a->by)
		dc.group_col = col_add(&cs, a->by, RP_STR, RP_COL_TABLE);
	dc.extra_col = col_extras(&cs, ros);
	if ((rc = rp_out_init(&o, &a->out, cs.v, cs.n, err)))
		goto out;
	if (a->by) {
		o.sorted = 1;
		if (!a->out.columns)
			group_first(&o, dc.group_col);
		dc.rows_by_group = xcalloc(ros->ngroups + 1, sizeof(long));
	}
	ledger_campaigns(l, find_hash, &h, NULL);
	if (rp_out_shows(&o, "document")) {
		if ((rc = ledger_events(l, a->campaign, "document", doc_add, &dc.docs, err)))
			goto out;
		qsort(dc.docs.v, dc.docs.n, sizeof(*dc.docs.v), doc_cmp);
	}
	if (a->out.fmt == RP_TABLE && !a->by && (rc = known_widths(l, a, &o, cs.n, err)))
		goto out;
	dc.o = &o;
	dc.a = a;
	dc.hash = h.hash;
	dc.cells = xcalloc(cs.n + 1, sizeof(char *));
	rc = ledger_deliveries(l, a->campaign, delivery_line, &dc, err);
	if (!rc && a->out.fmt == RP_TABLE && !o.emitted && o.widths_known)
		o.widths_known = 0; /* no rows: rp_out_end() writes the header */
out:
	rp_out_end(&o);
	if (!rc && dc.rows_by_group && a->out.fmt == RP_TABLE) {
		const char **names = xcalloc(ros->ngroups + 2, sizeof(char *));

		missions = xcalloc(ros->ngroups + 2, sizeof(long));
		for (size_t i = 0; i < ros->n; i++)
			missions[ros->group_of[i]]++;
		for (size_t g = 0; g < ros->ngroups; g++)
			names[g] = ros->groups[g];
		names[ros->ngroups] = NOT_IN_ROSTER;
		rc = group_footer(a, "deliveries", dc.rows_by_group, missions, ros->ngroups + 1,
		                  names, err);
		free(names);
	}
	if (!rc && dc.not_received)
		rc = 1;
	free(missions);
	free(dc.rows_by_group);
	free(dc.cells);
	docs_free(&dc.docs);
	free(h.hash);
	free(cs.v);
	return rc;
}

/* --- --missing: the roster's missions not received, with reasons ----------------------------- */

enum {
	M_KEY,
	M_NAME,
	M_EMAIL,
	M_REASON,
	M_MISSION,
	M_ACCEPTED,
	M_ADDRSTATE,
	M_CODE,
	M_REPLY,
	M_TIME,
	M__BASE
};

static size_t *group_order(const struct rp_roster *r, int by)
{
	size_t *idx = xcalloc(r->n + 1, sizeof(size_t)), k = 0;

	/* a counting sort: stable, roster order within each group */
	for (size_t g = 0; g < (by ? r->ngroups : 1); g++)
		for (size_t i = 0; i < r->n; i++)
			if (!by || r->group_of[i] == g)
				idx[k++] = i;
	return idx;
}

int audit_missing(struct ledger *l, const struct audit_opts *a, char **err)
{
	const struct rp_roster *r = a->roster;
	struct rp_campaign c = {0};
	struct colset cs = {0};
	size_t group_col = 0, extra_col, *idx = NULL;
	long *missing = NULL, *missions = NULL, n = 0;
	const char **cells = NULL;
	struct rp_out o;
	int rc;

	col_add(&cs, "key", RP_STR, RP_COL_TABLE);
	col_add(&cs, "state_party", RP_STR, RP_COL_TABLE | RP_COL_FIT);
	col_add(&cs, "email", RP_STR, RP_COL_FIT); /* in CSV, JSON and --wide */
	col_add(&cs, "reason", RP_STR, RP_COL_TABLE);
	col_add(&cs, "mission", RP_STR, RP_COL_STATE);
	col_add(&cs, "accepted", RP_STR, RP_COL_TABLE);
	col_add(&cs, "address_state", RP_STR, RP_COL_STATE);
	col_add(&cs, "last_code", RP_INT, 0);
	col_add(&cs, "last_reply", RP_STR, RP_COL_TABLE | RP_COL_FIT);
	col_add(&cs, "time", RP_STR, 0);
	if (a->by)
		group_col = col_add(&cs, a->by, RP_STR, RP_COL_TABLE);
	extra_col = col_extras(&cs, r);
	if ((rc = rp_out_init(&o, &a->out, cs.v, cs.n, err)))
		goto out;
	if (a->by && !a->out.columns)
		group_first(&o, group_col);
	if ((rc = rp_campaign_fold(l, a->campaign, NULL, r, &c, err)))
		goto out;
	idx = group_order(r, a->by != NULL);
	cells = xcalloc(cs.n + 1, sizeof(char *));
	missing = xcalloc(r->ngroups + 1, sizeof(long));
	missions = xcalloc(r->ngroups + 1, sizeof(long));
	for (size_t k = 0; k < r->n; k++) {
		size_t i = idx[k];
		const struct rp_mission *m = &r->v[i];
		const struct rp_status *s = &c.status[i];
		enum rp_mstate ms = rp_status_mstate(s);
		char acc[48], code[24], time[32];

		missions[r->group_of[i]]++;
		if (ms == RP_RECEIVED)
			continue;
		missing[r->group_of[i]]++;
		n++;
		snprintf(acc, sizeof(acc), "%d/%d", s->naccepted, s->naddr);
		cells[M_KEY] = m->key;
		cells[M_NAME] = m->name;
		cells[M_EMAIL] = m->email;
		cells[M_REASON] = rp_reason(s->main_state);
		cells[M_MISSION] = rp_mstate_name(ms);
		cells[M_ACCEPTED] = acc;
		cells[M_ADDRSTATE] = s->main_state >= 0 ? ledger_state_name(s->main_state) : NULL;
		cells[M_CODE] = s->code ? num(s->code, code) : NULL;
		cells[M_REPLY] = s->reply;
		if (a->out.fmt == RP_TABLE && !s->reply)
			cells[M_REPLY] = cells[M_CODE];
		cells[M_TIME] =
		    a->out.fmt == RP_TABLE ? audit_short_time(s->updated, time) : s->updated;
		if (a->by)
			cells[group_col] = r->groups[r->group_of[i]];
		for (size_t j = 0; j < r->nextra; j++)
			cells[extra_col + j] = m->extra[j];
		rp_out_row(&o, cells, 0);
	}
out:
	rp_out_end(&o);
	if (!rc && a->by && a->out.fmt == RP_TABLE)
		rc = group_footer(a, "missing", missing, missions, r->ngroups,
		                  (const char *const *)r->groups, err);
	if (!rc && n)
		rc = 1;
	rp_campaign_free(&c);
	free(idx);
	free(cells);
	free(missing);
	free(missions);
	free(cs.v);
	return rc;
}

/* --- --matrix: missions x campaigns, totals per group and in all ----------------------------- */

static const char *cell_state(const struct rp_status *s)
{
	enum rp_mstate m = rp_status_mstate(s);

	if (m == RP_PARTIAL)
		return "partial";
	return s->main_state < 0 ? NULL : ledger_state_name(s->main_state);
}

int audit_matrix(struct ledger *l, const struct audit_opts *a, char **err)
{
	const struct rp_roster *r = a->roster;
	struct rp_ledger lg = {0};
	struct colset cs = {0};
	struct buf tot = BUF_INIT;
	size_t group_col = 0, first_camp, extra_col;
	const char **cells = NULL;
	char **fractions = NULL;
	struct rp_out o;
	int rc;

	memset(&o, 0, sizeof(o));
	if ((rc = rp_ledger_fold(l, a->campaign, r, &lg, err)))
		goto out;
	col_add(&cs, "key", RP_STR, RP_COL_TABLE);
	col_add(&cs, "state_party", RP_STR, RP_COL_TABLE | RP_COL_FIT);
	if (a->by)
		group_col = col_add(&cs, a->by, RP_STR, RP_COL_TABLE);
	first_camp = cs.n;
	for (size_t j = 0; j < lg.n; j++)
		col_add(&cs, lg.v[j].id, RP_STR, RP_COL_TABLE | RP_COL_STATE);
	extra_col = col_extras(&cs, r);
	if ((rc = rp_out_init(&o, &a->out, cs.v, cs.n, err)))
		goto out;
	o.sorted = 1;
	if (a->by && !a->out.columns)
		group_first(&o, group_col);
	cells = xcalloc(cs.n + 1, sizeof(char *));
	fractions = xcalloc(lg.n + 1, sizeof(char *));
	for (size_t i = 0; i < r->n; i++) {
		memset(cells, 0, cs.n * sizeof(char *));
		cells[0] = r->v[i].key;
		cells[1] = r->v[i].name;
		if (a->by)
			cells[group_col] = r->groups[r->group_of[i]];
		for (size_t j = 0; j < lg.n; j++)
			cells[first_camp + j] = cell_state(&lg.v[j].status[i]);
		for (size_t j = 0; j < r->nextra; j++)
			cells[extra_col + j] = r->v[i].extra[j];
		rp_out_row(&o, cells, a->by ? r->group_of[i] * 2 : 0);
	}
	/* totals: "received/missions" per campaign, per group (after its rows) and in all */
	{
		struct rp_counts *g = xcalloc(r->ngroups + 1, sizeof(*g)), total;
		size_t ng = a->by ? r->ngroups : 0;

		for (size_t k = 0; k <= ng; k++) {
			memset(cells, 0, cs.n * sizeof(char *));
			cells[0] = "total";
			if (k < ng)
				cells[group_col] = r->groups[k];
			for (size_t j = 0; j < lg.n; j++) {
				const struct rp_counts *x;

				rp_group_counts(r, &lg.v[j], g, &total);
				x = k < ng ? &g[k] : &total;
				buf_reset(&tot);
				buf_addf(&tot, "%ld/%ld", x->received, x->missions);
				free(fractions[j]);
				fractions[j] = xstrdup(buf_str(&tot));
				cells[first_camp + j] = fractions[j];
			}
			rp_out_row(&o, cells, k < ng ? k * 2 + 1 : SIZE_MAX);
			/* rp_out_row() copied the cells */
		}
		free(g);
	}
out:
	rp_out_end(&o);
	for (size_t j = 0; fractions && j < lg.n; j++)
		free(fractions[j]);
	free(fractions);
	buf_free(&tot);
	rp_ledger_free(&lg);
	free(cells);
	free(cs.v);
	return rc;
}
