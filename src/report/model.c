/* audit's model: the roster's missions, each campaign folded into one status per mission. */
#include "report/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/xalloc.h"

const char *rp_mstate_name(enum rp_mstate m)
{
	return m == RP_RECEIVED ? "received" : m == RP_PARTIAL ? "partial" : "missing";
}

const char *rp_reason(int s)
{
	switch (s) {
	case -1:
	case LS_PENDING:
		return "never tried";
	case LS_DEFERRED:
		return "deferred";
	case LS_FAILED:
		return "failed";
	case LS_SENDING:
	case LS_UNKNOWN:
		return "in doubt";
	case LS_BOUNCED:
		return "bounced";
	case LS_STAGED:
		return "staged, not sent";
	default:
		return "";
	}
}

enum rp_mstate rp_status_mstate(const struct rp_status *s)
{
	if (s->main_state >= 0 && ledger_state_received(s->main_state))
		return RP_RECEIVED;
	return s->naccepted ? RP_PARTIAL : RP_MISSING;
}

void rp_status_free(struct rp_status *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++) {
		free(s[i].reply);
		free(s[i].updated);
		free(s[i].address);
	}
}

/* --- the roster ------------------------------------------------------------------------ */

struct read_ctx {
	struct rp_roster *r;
	size_t have_by, have_extra;
};

static int keep_row(void *user, const struct roster_row *row)
{
	struct read_ctx *rc = user;
	struct rp_roster *r = rc->r;
	struct rp_mission *m;
	const char *v;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 128;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	m = &r->v[r->n++];
	memset(m, 0, sizeof(*m));
	m->key = xstrdup(roster_key(row));
	if ((v = roster_get(row, "state")))
		m->name = xstrdup(v);
	if ((v = roster_get(row, "email")))
		m->email = xstrdup(v);
	if (r->by && (v = roster_get(row, r->by))) {
		rc->have_by++;
		if (*v)
			m->group = xstrdup(v);
	}
	if (r->nextra) {
		m->extra = xcalloc(r->nextra, sizeof(char *));
		for (size_t j = 0; j < r->nextra; j++)
			if ((v = roster_get(row, r->extra_names[j]))) {
				m->extra[j] = xstrdup(v);
				rc->have_extra++;
			}
	}
	return 0;
}

static const struct rp_roster *sort_roster; /* qsort has no context argument */

static int by_key(const void *a, const void *b)
{
	return strcmp(sort_roster->v[*(const size_t *)a].key,
	              sort_roster->v[*(const size_t *)b].key);
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

#define NO_GROUP "(none)"

static void index_groups(struct rp_roster *r)
{
	char **all = xcalloc(r->n + 1, sizeof(char *));
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		all[i] = r->v[i].group ? r->v[i].group : NO_GROUP;
	qsort(all, r->n, sizeof(char *), by_str);
	r->groups = xcalloc(r->n + 1, sizeof(char *));
	for (size_t i = 0; i < r->n; i++)
		if (!n || strcmp(r->groups[n - 1], all[i]))
			r->groups[n++] = xstrdup(all[i]);
	r->ngroups = n;
	r->group_of = xcalloc(r->n + 1, sizeof(size_t));
	for (size_t i = 0; i < r->n; i++) {
		const char *g = r->v[i].group ? r->v[i].group : NO_GROUP;
		char **hit = bsearch(&g, r->groups, n, sizeof(char *), by_str);

		r->group_of[i] = hit ? (size_t)(hit - r->groups) : 0;
	}
	free(all);
}

int rp_roster_read(const struct roster_opts *ro, const char *by, const char *const *extra,
                   struct rp_roster *r, struct diags *d)
{
	struct roster *ros = NULL;
	struct read_ctx rc = {r, 0, 0};
	int rcode;

	r->by = by;
	r->extra_names = extra;
	for (r->nextra = 0; extra && extra[r->nextra]; r->nextra++)
		;
	if ((rcode = roster_open(ro, &ros, d)) == EX_OK)
		rcode = roster_each(ros, keep_row, &rc, d);
	roster_free(ros);
	if (rcode)
		return rcode;
	/* roster_get() cannot tell a column that does not exist from one with no match: a
	 * column no row has is taken as a mistyped name */
	if (by && r->n && !rc.have_by) {
		diags_add(d, DIAG_ERROR, ro->path, 0, by,
		          "--by: no such column in the roster or its --join tables");
		return EX_USAGE;
	}
	for (size_t j = 0; j < r->nextra && r->n; j++) {
		size_t seen = 0;

		for (size_t i = 0; i < r->n; i++)
			seen += r->v[i].extra[j] != NULL;
		if (!seen) {
			diags_add(d, DIAG_ERROR, ro->path, 0, extra[j],
			          "--columns: no such column in the roster or its --join tables");
			return EX_USAGE;
		}
	}
	r->by_key = xcalloc(r->n + 1, sizeof(size_t));
	for (size_t i = 0; i < r->n; i++)
		r->by_key[i] = i;
	sort_roster = r;
	qsort(r->by_key, r->n, sizeof(size_t), by_key);
	index_groups(r);
	return EX_OK;
}

void rp_roster_free(struct rp_roster *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct rp_mission *m = &r->v[i];

		free(m->key);
		free(m->name);
		free(m->email);
		free(m->group);
		for (size_t j = 0; m->extra && j < r->nextra; j++)
			free(m->extra[j]);
		free(m->extra);
	}
	for (size_t g = 0; g < r->ngroups; g++)
		free(r->groups[g]);
	free(r->groups);
	free(r->group_of);
	free(r->by_key);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

long rp_roster_find(const struct rp_roster *r, const char *key)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->v[r->by_key[mid]].key, key);

		if (!c)
			return (long)r->by_key[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* --- folding a campaign ------------------------------------------------------------------ */

/* 1 when address is the first address of the roster's email column (without case). */
static int is_email(const char *email, const char *address)
{
	size_t n;

	if (!email || !address)
		return 0;
	n = strcspn(email, ",;");
	while (n && email[n - 1] == ' ')
		n--;
	while (*email == ' ' && n)
		email++, n--;
	return strlen(address) == n && !strncasecmp(email, address, n);
}

static void take_main(struct rp_status *s, const struct ledger_row *row, int is_mail)
{
	free(s->reply);
	free(s->updated);
	free(s->address);
	s->main_state = (int)row->state;
	s->code = row->last_code;
	s->reply = row->last_reply ? xstrdup(row->last_reply) : NULL;
	s->updated = row->updated ? xstrdup(row->updated) : NULL;
	s->address = row->address ? xstrdup(row->address) : NULL;
	s->main_id = row->id;
	s->main_is_email = is_mail;
}

struct fold_ctx {
	const struct rp_roster *r;
	struct rp_campaign *c;
	/* without a roster: the key being read (rows come ordered by key) */
	char *key;
	struct rp_status cur;
	size_t day_hint;
};

static void count_day(struct fold_ctx *fc, const struct ledger_row *row)
{
	struct rp_campaign *c = fc->c;
	size_t i;

	if (!row->updated || strlen(row->updated) < 10)
		return;
	if (fc->day_hint < c->ndays && !strncmp(c->days[fc->day_hint].day, row->updated, 10))
		i = fc->day_hint;
	else {
		for (i = 0; i < c->ndays && strncmp(c->days[i].day, row->updated, 10) < 0; i++)
			;
		if (i == c->ndays || strncmp(c->days[i].day, row->updated, 10)) {
			c->days = xreallocarray(c->days, c->ndays + 1, sizeof(*c->days));
			memmove(&c->days[i + 1], &c->days[i], (c->ndays - i) * sizeof(*c->days));
			memset(&c->days[i], 0, sizeof(*c->days));
			memcpy(c->days[i].day, row->updated, 10);
			c->ndays++;
		}
	}
	fc->day_hint = i;
	if (row->state == LS_BOUNCED)
		c->days[i].bounced++;
	else
		c->days[i].replied++;
}

static void count_mission(struct rp_campaign *c, const struct rp_status *s)
{
	c->missions++;
	switch (rp_status_mstate(s)) {
	case RP_RECEIVED:
		c->received++;
		break;
	case RP_PARTIAL:
		c->partial++;
		break;
	default:
		c->missing++;
	}
}

static void fold_status(struct rp_status *s, const struct ledger_row *row, const char *email)
{
	int mail = is_email(email, row->address);

	s->naddr++;
	if (ledger_state_received(row->state))
		s->naccepted++;
	if (mail || (!s->main_is_email && (s->main_state < 0 || row->id < s->main_id)))
		take_main(s, row, mail);
}

static int fold_row(const struct ledger_row *row, void *ctx)
{
	struct fold_ctx *fc = ctx;
	struct rp_campaign *c = fc->c;

	if ((unsigned)row->state < LS__COUNT)
		c->by_state[row->state]++;
	c->addresses++;
	if (row->state == LS_BOUNCED || row->state == LS_REPLIED)
		count_day(fc, row);
	if (fc->r) {
		long i = rp_roster_find(fc->r, row->key);

		if (i >= 0)
			fold_status(&c->status[i], row, fc->r->v[i].email);
		return 0;
	}
	if (!fc->key || strcmp(fc->key, row->key)) {
		if (fc->key)
			count_mission(c, &fc->cur);
		free(fc->key);
		fc->key = xstrdup(row->key);
		rp_status_free(&fc->cur, 1);
		memset(&fc->cur, 0, sizeof(fc->cur));
		fc->cur.main_state = -1;
	}
	fold_status(&fc->cur, row, NULL);
	return 0;
}

int rp_campaign_fold(struct ledger *l, const char *id, const struct ledger_campaign *meta,
                     const struct rp_roster *r, struct rp_campaign *c, char **err)
{
	struct fold_ctx fc = {0};
	int rc;

	memset(c, 0, sizeof(*c));
	c->id = xstrdup(id);
	if (meta) {
		c->title = meta->title ? xstrdup(meta->title) : NULL;
		c->hash = meta->content_hash ? xstrdup(meta->content_hash) : NULL;
		c->first_sent = meta->first_sent ? xstrdup(meta->first_sent) : NULL;
		c->last_sent = meta->last_sent ? xstrdup(meta->last_sent) : NULL;
	}
	if (r) {
		c->status = xcalloc(r->n + 1, sizeof(*c->status));
		c->nstatus = r->n;
		for (size_t i = 0; i < r->n; i++)
			c->status[i].main_state = -1;
	}
	fc.r = r;
	fc.c = c;
	fc.cur.main_state = -1;
	rc = ledger_deliveries(l, id, fold_row, &fc, err);
	if (!r && fc.key)
		count_mission(c, &fc.cur);
	free(fc.key);
	rp_status_free(&fc.cur, 1);
	if (r)
		for (size_t i = 0; i < r->n; i++)
			count_mission(c, &c->status[i]);
	return rc;
}

void rp_campaign_free(struct rp_campaign *c)
{
	free(c->id);
	free(c->title);
	free(c->hash);
	free(c->first_sent);
	free(c->last_sent);
	free(c->days);
	rp_status_free(c->status, c->nstatus);
	free(c->status);
	memset(c, 0, sizeof(*c));
}

void rp_group_counts(const struct rp_roster *r, const struct rp_campaign *c, struct rp_counts *out,
                     struct rp_counts *total)
{
	memset(out, 0, r->ngroups * sizeof(*out));
	memset(total, 0, sizeof(*total));
	for (size_t i = 0; i < r->n; i++) {
		const struct rp_status *s = &c->status[i];
		struct rp_counts *g = &out[r->group_of[i]];

		for (int k = 0; k < 2; k++, g = total) {
			g->missions++;
			g->addresses += s->naddr;
			g->accepted += s->naccepted;
			switch (rp_status_mstate(s)) {
			case RP_RECEIVED:
				g->received++;
				break;
			case RP_PARTIAL:
				g->partial++;
				break;
			default:
				g->missing++;
			}
		}
	}
}

/* --- every campaign -------------------------------------------------------------------- */

struct all_ctx {
	struct ledger_campaign *meta;
	char **ids;
	size_t n;
	const char *only;
};

static char *dup0(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int keep_campaign(const struct ledger_campaign *c, void *ctx)
{
	struct all_ctx *a = ctx;
	struct ledger_campaign *m;

	if (a->only && strcmp(a->only, c->id))
		return 0;
	a->meta = xreallocarray(a->meta, a->n + 1, sizeof(*a->meta));
	m = &a->meta[a->n++];
	*m = *c;
	m->id = dup0(c->id);
	m->title = dup0(c->title);
	m->subject = NULL;
	m->content_hash = dup0(c->content_hash);
	m->created = NULL;
	m->first_sent = dup0(c->first_sent);
	m->last_sent = dup0(c->last_sent);
	return 0;
}

int rp_ledger_fold(struct ledger *l, const char *only, const struct rp_roster *r,
                   struct rp_ledger *out, char **err)
{
	struct all_ctx a = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	a.only = only;
	/* the campaigns first, then their deliveries: one walk may not start inside another */
	rc = ledger_campaigns(l, keep_campaign, &a, err);
	if (!rc) {
		out->v = xcalloc(a.n + 1, sizeof(*out->v));
		for (size_t i = 0; i < a.n && !rc; i++, out->n++)
			rc = rp_campaign_fold(l, a.meta[i].id, &a.meta[i], r, &out->v[i], err);
	}
	for (size_t i = 0; i < a.n; i++) {
		free((char *)a.meta[i].id);
		free((char *)a.meta[i].title);
		free((char *)a.meta[i].content_hash);
		free((char *)a.meta[i].first_sent);
		free((char *)a.meta[i].last_sent);
	}
	free(a.meta);
	return rc;
}

void rp_ledger_free(struct rp_ledger *lg)
{
	for (size_t i = 0; i < lg->n; i++)
		rp_campaign_free(&lg->v[i]);
	free(lg->v);
	memset(lg, 0, sizeof(*lg));
}

const char *rp_short_hash(const char *hash, char out[13])
{
	if (!hash)
		return NULL;
	snprintf(out, 13, "%s", hash);
	return out;
}

/* The 16 hex digits before the '@' of "<campaign.key.HEX@domain>", or NULL. */
static const char *id_hex(const char *id, const char **domain)
{
	const char *at = id ? strrchr(id, '@') : NULL;

	if (!at || at - id < 17 || at[-17] != '.')
		return NULL;
	for (const char *p = at - 16; p < at; p++)
		if (!strchr("0123456789abcdefABCDEF", *p))
			return NULL;
	*domain = at + 1;
	return at - 16;
}

/*
 * SHA-256 over campaign NUL key NUL hash, as mail_message_id() hashes them (test_audit checks
 * that the two agree), with one streaming digest kept for the whole run: a million
 * deliveries must not each allocate one.
 */
static void id_digest(const char *campaign, const char *key, const char *hash,
                      unsigned char md[DIGEST_SIZE])
{
	static struct digest *d; /* kept for the run */

	if (!d)
		d = digest_new();
	digest_update(d, campaign, strlen(campaign) + 1);
	digest_update(d, key, strlen(key) + 1);
	digest_update(d, hash, strlen(hash));
	digest_final(d, md);
}

int rp_carried(const char *campaign, const char *key, const char *message_id, const char *hash)
{
	static const char hexd[] = "0123456789abcdef";
	const char *domain = NULL, *hex = id_hex(message_id, &domain);
	unsigned char md[DIGEST_SIZE];

	if (!hex || !hash || !campaign || !key)
		return -1;
	id_digest(campaign, key, hash, md);
	for (int i = 0; i < 8; i++)
		if (hexd[md[i] >> 4] != (hex[2 * i] | 0x20) ||
		    hexd[md[i] & 15] != (hex[2 * i + 1] | 0x20))
			return 0;
	return 1;
}
