/* verify and the quick check: the hash chain recomputed, replayed, and compared with every row. */
#include "ledger/ledger.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger_int.h"

#define MAX_PROBLEMS 20

/* What the chain says one delivery is. Strings live in the replay's arena (offset + 1). */
struct track {
	int64_t created;     /* seq of its creation event; 0: none */
	size_t detail, dlen; /* the creation's detail */
	size_t reply, via;   /* its last reply and via; 0: none */
	int campaign;        /* index in replay.camps */
	int sendings;        /* transitions to sending: its attempts */
	int code;            /* its last code, when has_code */
	signed char state;   /* -1: no transition seen */
	unsigned char has_code, seen;
};

/* What the chain says one campaign is. */
struct camp {
	char *id, *content_hash, *title, *subject;
	int events; /* campaign, amend or adopt events */
	int known;  /* one of them held the row (schema 4) */
	int seen;   /* its row was found */
	char first_sent[40], last_sent[40];
};

struct replay {
	struct ledger *l;
	struct track *tr;
	int64_t ntr;
	struct buf arena;
	size_t last_via; /* interned: every transition of a run has the same via */
	struct camp *camps;
	size_t ncamps, last_camp;
	struct buf problems;
	int nproblems;
	int64_t creations; /* creation events so far */
};

static void problem(struct replay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct replay *r, const char *fmt, ...)
{
	va_list ap;

	if (r->nproblems++ >= MAX_PROBLEMS)
		return;
	if (r->problems.len)
		buf_addc(&r->problems, '\n');
	va_start(ap, fmt);
	buf_vaddf(&r->problems, fmt, ap);
	va_end(ap);
}

static size_t arena_put(struct replay *r, const char *s, size_t n)
{
	size_t off = r->arena.len + 1;

	buf_add(&r->arena, s, n);
	buf_addc(&r->arena, '\0');
	return off;
}

static const char *arena_get(const struct replay *r, size_t off)
{
	return off ? r->arena.data + off - 1 : NULL;
}

static struct camp *camp_find(struct replay *r, const char *id, int create)
{
	if (!id)
		return NULL;
	if (r->last_camp < r->ncamps && !strcmp(r->camps[r->last_camp].id, id))
		return &r->camps[r->last_camp];
	for (size_t i = 0; i < r->ncamps; i++)
		if (!strcmp(r->camps[i].id, id)) {
			r->last_camp = i;
			return &r->camps[i];
		}
	if (!create)
		return NULL;
	r->camps = xreallocarray(r->camps, r->ncamps + 1, sizeof(*r->camps));
	memset(&r->camps[r->ncamps], 0, sizeof(*r->camps));
	r->camps[r->ncamps].id = xstrdup(id);
	r->last_camp = r->ncamps;
	return &r->camps[r->ncamps++];
}

static struct track *track(struct replay *r, int64_t d)
{
	if (d >= r->ntr) {
		int64_t n = r->ntr ? r->ntr : 1024;

		while (n <= d)
			n *= 2;
		r->tr = xreallocarray(r->tr, (size_t)n, sizeof(*r->tr));
		memset(r->tr + r->ntr, 0, (size_t)(n - r->ntr) * sizeof(*r->tr));
		for (int64_t i = r->ntr; i < n; i++)
			r->tr[i].state = -1;
		r->ntr = n;
	}
	return &r->tr[d];
}

static void replay_free(struct replay *r)
{
	for (size_t i = 0; i < r->ncamps; i++) {
		free(r->camps[i].id);
		free(r->camps[i].content_hash);
		free(r->camps[i].title);
		free(r->camps[i].subject);
	}
	free(r->camps);
	free(r->tr);
	buf_free(&r->arena);
	buf_free(&r->problems);
}

static void column_field(struct ldb_stmt *st, int col, struct field *f)
{
	f->type = ldb_col_type(st, col);
	if (f->type == LDB_INT) {
		f->i = ldb_col_int64(st, col);
	} else if (f->type != LDB_NULL) {
		/* text, or a real/blob only tampering can put there: hash its bytes */
		f->s = (const char *)ldb_col_blob(st, col);
		f->n = ldb_col_bytes(st, col);
		if (!f->s)
			f->s = "";
	}
}

static int is_kind(const struct field *f, const char *kind)
{
	return f[F_KIND].type == LDB_TEXT && f[F_KIND].n == strlen(kind) &&
	       !memcmp(f[F_KIND].s, kind, f[F_KIND].n);
}

static char *dup_item(const char *d, size_t len, const char *name)
{
	const char *v;
	size_t n;

	return rec_get(d, len, name, &v, &n) == 1 ? xstrndup(v, n) : NULL;
}

/* A campaign, amend or adopt event: the row it leaves (schema 4), or only that it exists. */
static void replay_campaign(struct replay *r, const struct field *f)
{
	char *id =
	    f[F_CAMPAIGN].type == LDB_TEXT ? xstrndup(f[F_CAMPAIGN].s, f[F_CAMPAIGN].n) : NULL;
	struct camp *c = camp_find(r, id, 1);
	const char *v;
	size_t n;

	free(id);
	if (!c)
		return;
	c->events++;
	if (f[F_DETAIL].type != LDB_TEXT ||
	    rec_get(f[F_DETAIL].s, f[F_DETAIL].n, "content_hash", &v, &n) != 1)
		return; /* schema 3's free text: "sha256 ...; title: ..." */
	c->known = 1;
	free(c->content_hash);
	free(c->title);
	free(c->subject);
	c->content_hash = xstrndup(v, n);
	c->title = dup_item(f[F_DETAIL].s, f[F_DETAIL].n, "title");
	c->subject = dup_item(f[F_DETAIL].s, f[F_DETAIL].n, "subject");
}

/* Checks one event's place in the chain and replays it. EX_OK or EX_DATAERR. */
/* The state named by field f, or -1. */
static int field_state(const struct field *f)
{
	for (int i = 0; f->type == LDB_TEXT && i < LS__COUNT; i++)
		if (strlen(ledger_state_names[i]) == f->n &&
		    !memcmp(f->s, ledger_state_names[i], f->n))
			return i;
	return -1;
}

static int replay_event(struct replay *r, const struct field *f, char **errstr)
{
	int64_t seq = f[F_SEQ].i;
	int64_t d = f[F_DELIVERY].type == LDB_INT ? f[F_DELIVERY].i : 0;
	struct track *t;

	if (is_kind(f, "create")) {
		if (d <= 0 || f[F_DETAIL].type != LDB_TEXT)
			return error_set(errstr, EX_DATAERR,
			                 "event %lld: a creation without a delivery or detail",
			                 (long long)seq);
		t = track(r, d);
		if (t->created) {
			problem(r, "delivery %lld: created twice (events %lld and %lld)",
			        (long long)d, (long long)t->created, (long long)seq);
			return EX_OK;
		}
		t->created = seq;
		r->creations++;
		{
			const char *v = "none";
			size_t n = 4;

			if (rec_get(f[F_DETAIL].s, f[F_DETAIL].n, "ordinal", &v, &n) != 1)
				v = "none", n = 4;
			if (strtoll(v, NULL, 10) != r->creations)
				problem(r,
				        "event %lld: creation %lld of the chain says it is "
				        "creation %.*s "
				        "(creation events were deleted before it)",
				        (long long)seq, (long long)r->creations, (int)n, v);
		}
		t->detail = arena_put(r, f[F_DETAIL].s, f[F_DETAIL].n);
		t->dlen = f[F_DETAIL].n;
		if (f[F_CAMPAIGN].type == LDB_TEXT) {
			char *id = xstrndup(f[F_CAMPAIGN].s, f[F_CAMPAIGN].n);

			t->campaign = (int)(camp_find(r, id, 1) - r->camps);
			free(id);
		} else {
			t->campaign = -1;
		}
		return EX_OK;
	}
	if (!d && (is_kind(f, "campaign") || is_kind(f, "amend") || is_kind(f, "adopt"))) {
		replay_campaign(r, f);
		return EX_OK;
	}
	if (is_kind(f, "approval")) { /* its signature must verify (approval.c) */
		char *why = approval_event_problem(
		    f[F_CAMPAIGN].type == LDB_TEXT ? f[F_CAMPAIGN].s : NULL, f[F_CAMPAIGN].n,
		    f[F_DETAIL].type == LDB_TEXT ? f[F_DETAIL].s : NULL, f[F_DETAIL].n);

		if (why)
			problem(r, "event %lld: %s", (long long)seq, why);
		free(why);
		return EX_OK;
	}
	if (!is_kind(f, "transition"))
		return EX_OK;

	/* the chain of states each delivery went through must itself be legal */
	int from = field_state(&f[F_FROM]);
	int to = field_state(&f[F_TO]);
	int cur;

	if (d <= 0 || from < 0 || to < 0)
		return error_set(errstr, EX_DATAERR,
		                 "event %lld: a transition without a delivery or states",
		                 (long long)seq);
	t = track(r, d);
	cur = t->state < 0 ? LS_PENDING : t->state;
	if (from != cur || !ledger_legal[from][to])
		return error_set(errstr, EX_DATAERR,
		                 "event %lld: delivery %lld goes %s -> %s but was %s",
		                 (long long)seq, (long long)d, ledger_state_names[from],
		                 ledger_state_names[to], ledger_state_names[cur]);
	t->state = (signed char)to;
	t->sendings += to == LS_SENDING;
	/* as the door's UPDATE: coalesce(new, old) */
	if (f[F_CODE].type == LDB_INT) {
		t->code = (int)f[F_CODE].i;
		t->has_code = 1;
	}
	if (f[F_REPLY].type == LDB_TEXT)
		t->reply = arena_put(r, f[F_REPLY].s, f[F_REPLY].n);
	if (f[F_VIA].type == LDB_TEXT) {
		const char *last = arena_get(r, r->last_via);

		if (!last || strlen(last) != f[F_VIA].n || memcmp(last, f[F_VIA].s, f[F_VIA].n))
			r->last_via = arena_put(r, f[F_VIA].s, f[F_VIA].n);
		t->via = r->last_via;
	}
	if (to == LS_SENT && f[F_CAMPAIGN].type == LDB_TEXT && f[F_TIME].type == LDB_TEXT) {
		char *id = xstrndup(f[F_CAMPAIGN].s, f[F_CAMPAIGN].n);
		struct camp *c = camp_find(r, id, 1);

		free(id);
		size_t n =
		    f[F_TIME].n < sizeof(c->last_sent) - 1 ? f[F_TIME].n : sizeof(c->last_sent) - 1;

		if (!c->first_sent[0]) {
			memcpy(c->first_sent, f[F_TIME].s, n);
			c->first_sent[n] = '\0';
		}
		memcpy(c->last_sent, f[F_TIME].s, n);
		c->last_sent[n] = '\0';
	}
	return EX_OK;
}

/* 1 when the row's value (NULL: none) is the chain's (present 0: none). */
static int same(const char *row, const char *v, size_t n, int present)
{
	if (!row || !present)
		return !row && !present;
	return strlen(row) == n && !memcmp(row, v, n);
}

static int same_str(const char *row, const char *chain)
{
	return same(row, chain, chain ? strlen(chain) : 0, chain != NULL);
}

/* Compares one item of a delivery's creation with its row's column. */
static void check_item(struct replay *r, const struct track *t, int64_t id, const char *label,
                       const char *name, const char *row)
{
	const char *d = arena_get(r, t->detail), *v = NULL, *k, *a;
	size_t n = 0, kn = 0, an = 0;
	int present = rec_get(d, t->dlen, name, &v, &n) == 1;

	if (same(row, v, n, present))
		return;
	if (rec_get(d, t->dlen, "key", &k, &kn) != 1)
		k = "?", kn = 1;
	if (rec_get(d, t->dlen, "address", &a, &an) != 1)
		a = "?", an = 1;
	problem(r,
	        "delivery %lld (%.*s, %.*s): %s edited (the chain says %s%.*s%s, the row %s%s%s)",
	        (long long)id, (int)kn, k, (int)an, a, label, present ? "'" : "", (int)n,
	        present ? v : "none", present ? "'" : "", row ? "'" : "", row ? row : "none",
	        row ? "'" : "");
}

static int verify_deliveries(struct replay *r, int full, char **errstr)
{
	static const char what[] = "reading deliveries";
	struct ledger *l = r->l;
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, full ? Q_VERIFY_DELIVERIES : Q_VERIFY_DELIVERIES_V3, &st, what,
	                    errstr, "")))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		int64_t id = ldb_col_int64(st, 0);
		int s = ledger_state_parse(ldb_col_text(st, 1));
		int attempts = ldb_col_int(st, 2);
		struct track none = {.state = -1}, *t = id > 0 && id < r->ntr ? &r->tr[id] : &none;
		int want = t->state >= 0 ? t->state : LS_PENDING;
		char merged[24];

		if (s != want)
			problem(r,
			        "delivery %lld: its state is %s but its events say %s (the row was "
			        "edited, or its last events were deleted)",
			        (long long)id, ldb_col_text(st, 1) ? ldb_col_text(st, 1) : "NULL",
			        ledger_state_names[want]);
		if (attempts != t->sendings)
			problem(
			    r,
			    "delivery %lld: %d attempts recorded but its events show %d (the row "
			    "was edited, or events were deleted)",
			    (long long)id, attempts, t->sendings);
		if (!full)
			continue;
		if (!t->created) {
			problem(r,
			        "delivery %lld (%s, %s): not in the chain (the row was inserted or "
			        "re-created by hand)",
			        (long long)id, ldb_col_text(st, 4), ldb_col_text(st, 5));
			continue;
		}
		t->seen = 1;
		if (t->campaign < 0 || !same_str(ldb_col_text(st, 3), r->camps[t->campaign].id))
			problem(r, "delivery %lld (%s, %s): campaign edited (the chain says %s)",
			        (long long)id, ldb_col_text(st, 4), ldb_col_text(st, 5),
			        t->campaign < 0 ? "none" : r->camps[t->campaign].id);
		check_item(r, t, id, "key", "key", ldb_col_text(st, 4));
		check_item(r, t, id, "address", "address", ldb_col_text(st, 5));
		check_item(r, t, id, "message_id", "message_id", ldb_col_text(st, 6));
		check_item(r, t, id, "key_norm", "key_norm", ldb_col_text(st, 7));
		check_item(r, t, id, "address_norm", "address_norm", ldb_col_text(st, 8));
		snprintf(merged, sizeof(merged), "%lld", (long long)ldb_col_int64(st, 9));
		check_item(r, t, id, "merged_into", "merged_into",
		           ldb_col_type(st, 9) == LDB_NULL ? NULL : merged);
		if ((ldb_col_type(st, 10) == LDB_NULL) != !t->has_code ||
		    (t->has_code && ldb_col_int(st, 10) != t->code))
			problem(r, "delivery %lld (%s, %s): last_code edited (the chain says %d)",
			        (long long)id, ldb_col_text(st, 4), ldb_col_text(st, 5),
			        t->has_code ? t->code : 0);
		if (!same_str(ldb_col_text(st, 11), arena_get(r, t->reply)))
			problem(r,
			        "delivery %lld (%s, %s): last_reply edited (the chain says '%s')",
			        (long long)id, ldb_col_text(st, 4), ldb_col_text(st, 5),
			        t->reply ? arena_get(r, t->reply) : "none");
		if (!same_str(ldb_col_text(st, 12), arena_get(r, t->via)))
			problem(r, "delivery %lld (%s, %s): via edited (the chain says '%s')",
			        (long long)id, ldb_col_text(st, 4), ldb_col_text(st, 5),
			        t->via ? arena_get(r, t->via) : "none");
	}
	ldb_done(st);
	if (rc || !full)
		return rc;
	for (int64_t id = 1; id < r->ntr; id++) {
		const struct track *t = &r->tr[id];
		const char *d = arena_get(r, t->detail), *k = "?", *a = "?";
		size_t kn = 1, an = 1;

		if (!t->created || t->seen)
			continue;
		if (rec_get(d, t->dlen, "key", &k, &kn) != 1)
			k = "?", kn = 1;
		if (rec_get(d, t->dlen, "address", &a, &an) != 1)
			a = "?", an = 1;
		problem(
		    r, "delivery %lld for %.*s (%.*s) of campaign %s missing (its row was deleted)",
		    (long long)id, (int)kn, k, (int)an, a,
		    t->campaign >= 0 ? r->camps[t->campaign].id : "?");
	}
	return EX_OK;
}

static int verify_campaigns(struct replay *r, char **errstr)
{
	static const char what[] = "reading campaigns";
	struct ledger *l = r->l;
	struct ldb_stmt *st;
	int rc;

	if ((rc = ldb_query(l, Q_VERIFY_CAMPAIGNS, &st, what, errstr, "")))
		return rc;
	while (ldb_next(l, st, &rc, what, errstr)) {
		const char *id = ldb_col_text(st, 0);
		struct camp *c = camp_find(r, id, 0);

		if (!c || !c->events) {
			problem(r, "campaign %s: not in the chain (the row was inserted by hand)",
			        id);
			continue;
		}
		c->seen = 1;
		if (!c->known) {
			problem(r, "campaign %s: its row was never recorded in the chain", id);
			continue;
		}
		if (!same_str(ldb_col_text(st, 3), c->content_hash))
			problem(r, "campaign %s: content_hash edited (the chain says %s)", id,
			        c->content_hash);
		if (!same_str(ldb_col_text(st, 1), c->title))
			problem(r, "campaign %s: title edited", id);
		if (!same_str(ldb_col_text(st, 2), c->subject))
			problem(r, "campaign %s: subject edited", id);
		if (!same_str(ldb_col_text(st, 4), c->first_sent[0] ? c->first_sent : NULL) ||
		    !same_str(ldb_col_text(st, 5), c->last_sent[0] ? c->last_sent : NULL))
			problem(r, "campaign %s: first_sent or last_sent edited", id);
	}
	ldb_done(st);
	for (size_t i = 0; !rc && i < r->ncamps; i++)
		if (r->camps[i].events && !r->camps[i].seen)
			problem(r, "campaign %s missing (its row was deleted)", r->camps[i].id);
	return rc;
}

/*
 * verify reads the events in one thread and checks them in another: SQLite's reading and
 * the hashing and replay cost about the same, and a million deliveries are three million
 * events. The reader copies each event's columns into a batch; the checker takes the
 * batches in order. Nothing is shared but the batches, handed over under the mutex.
 */
#define BATCH 4096

struct batch {
	size_t n;
	struct field f[BATCH][F__COUNT];
	size_t off[BATCH][F__COUNT + 2]; /* offsets of the text fields, prev_hash, hash */
	size_t len[BATCH][2];
	struct buf data;
};

struct pipe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch b[2];
	int full[2]; /* b[i] is ready for the checker */
	int eof;     /* the reader is done */
	int stop;    /* the checker failed: the reader may stop */
	/* the checker's */
	struct replay *r;
	struct ledger *l;
	int64_t expect, last_seq;
	char prev[65];
	int rc;
	char *err;
};

/* Copies the current row of st into batch b. */
static void batch_add(struct batch *b, struct ldb_stmt *st)
{
	size_t i = b->n++;

	for (int c = 0; c < F__COUNT + 2; c++) {
		int type = ldb_col_type(st, c);

		if (c < F__COUNT)
			b->f[i][c].type = type;
		if (type == LDB_INT && c < F__COUNT) {
			b->f[i][c].i = ldb_col_int64(st, c);
		} else if (type != LDB_NULL) {
			const void *p = ldb_col_blob(st, c);
			size_t n = ldb_col_bytes(st, c);

			b->off[i][c] = b->data.len;
			buf_add(&b->data, p ? p : "", n);
			buf_addc(&b->data, '\0');
			if (c < F__COUNT)
				b->f[i][c].n = n;
			else
				b->len[i][c - F__COUNT] = n;
		} else if (c >= F__COUNT) {
			b->off[i][c] = (size_t)-1;
		}
	}
}

/* Checks one batch's events in order. EX_OK or EX_DATAERR/EX_SOFTWARE in p->rc. */
static void check_batch(struct pipe *p, struct batch *b)
{
	char hash[65];

	for (size_t i = 0; i < b->n && !p->rc; i++) {
		struct field *f = b->f[i];
		int64_t seq = f[F_SEQ].i;
		const char *sprev =
		    b->off[i][F__COUNT] == (size_t)-1 ? NULL : b->data.data + b->off[i][F__COUNT];
		const char *shash = b->off[i][F__COUNT + 1] == (size_t)-1
		                        ? NULL
		                        : b->data.data + b->off[i][F__COUNT + 1];

		for (int c = 0; c < F__COUNT; c++)
			if (f[c].type != LDB_NULL && f[c].type != LDB_INT)
				f[c].s = b->data.data + b->off[i][c];
		if (f[F_SEQ].type != LDB_INT || seq != p->expect) {
			p->rc =
			    error_set(&p->err, EX_DATAERR,
			              seq == p->expect + 1
			                  ? "event %lld: event %lld before it is missing (deleted)"
			                  : "event %lld: events %lld and later before it are "
			                    "missing (deleted)",
			              (long long)seq, (long long)p->expect);
			return;
		}
		if (!sprev || strcmp(sprev, p->prev)) {
			p->rc =
			    error_set(&p->err, EX_DATAERR,
			              "event %lld: its prev_hash does not match the hash of the "
			              "event before it (rows were deleted, inserted or reordered)",
			              (long long)seq);
			return;
		}
		if (chain_hash(p->l, p->prev, f, hash)) {
			p->rc = error_set(&p->err, EX_SOFTWARE, "SHA-256 failed (libcrypto)");
			return;
		}
		if (!shash || strcmp(shash, hash)) {
			p->rc = error_set(
			    &p->err, EX_DATAERR,
			    "event %lld: its content does not match its hash (the row was "
			    "edited)",
			    (long long)seq);
			return;
		}
		if ((p->rc = replay_event(p->r, f, &p->err)))
			return;
		memcpy(p->prev, hash, sizeof(p->prev));
		p->last_seq = seq;
		p->expect = seq + 1;
	}
}

static void *checker(void *arg)
{
	struct pipe *p = arg;

	for (int k = 0;; k ^= 1) {
		pthread_mutex_lock(&p->mu);
		while (!p->full[k] && !p->eof)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->full[k]) { /* the reader is done and nothing is left */
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		pthread_mutex_unlock(&p->mu);
		if (!p->rc)
			check_batch(p, &p->b[k]);
		pthread_mutex_lock(&p->mu);
		p->full[k] = 0;
		if (p->rc)
			p->stop = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
}

/* The reader: fills the batches in turn. EX_OK or an SQLite error. */
static int read_events(struct ledger *l, struct pipe *p, char **errstr)
{
	static const char what[] = "reading events";
	struct ldb_stmt *st;
	int rc = EX_OK, k = 0, stop = 0, more = 1;

	if ((rc = ldb_query(l, Q_EVENTS, &st, what, errstr, "")))
		return rc;
	for (;;) {
		struct batch *b = &p->b[k];

		pthread_mutex_lock(&p->mu);
		while (p->full[k] && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		b->n = 0;
		buf_reset(&b->data);
		/* once at its end, never step st again: it would start over */
		while (b->n < BATCH && (more = ldb_next(l, st, &rc, what, errstr)))
			batch_add(b, st);
		if (rc || !b->n)
			break;
		pthread_mutex_lock(&p->mu);
		p->full[k] = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		k ^= 1;
		if (!more)
			break;
	}
	ldb_done(st);
	return rc;
}

int ledger_verify(struct ledger *l, long *nevents, char head[65], char **errstr)
{
	static const char what[] = "reading events";
	struct replay r = {.l = l};
	struct pipe *p = xcalloc(1, sizeof(*p));
	struct ldb_stmt *st = NULL;
	pthread_t th;
	int full = l->schema >= 4, rc, rc2;

	p->r = &r;
	p->l = l;
	p->expect = 1;
	memcpy(p->prev, ZERO_HASH, sizeof(p->prev));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	/* One read transaction, so the chain and the rows are one snapshot. */
	if ((rc = ldb_read_begin(l, errstr)))
		goto out;
	if (pthread_create(&th, NULL, checker, p)) {
		rc = error_set(errstr, EX_OSERR, "verify: cannot start a thread");
		goto out;
	}
	rc2 = read_events(l, p, errstr);
	pthread_mutex_lock(&p->mu);
	p->eof = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(th, NULL);
	if (p->rc) { /* the chain's break comes first: what follows it means nothing */
		rc = error_set(errstr, p->rc, "%s", p->err);
		goto out;
	}
	if ((rc = rc2))
		goto out;
	/* AUTOINCREMENT remembers the highest seq ever used: a shorter chain lost its tail */
	if (!ldb_query(l, Q_EVENTS_HIGHEST, &st, what, NULL, "") &&
	    ldb_next(l, st, &rc, what, NULL) && ldb_col_int64(st, 0) > p->last_seq) {
		rc = error_set(errstr, EX_DATAERR,
		               "event %lld: the events after event %lld are missing (deleted)",
		               (long long)p->last_seq + 1, (long long)p->last_seq);
		goto out;
	}
	ldb_done(st);
	st = NULL;
	rc = EX_OK; /* as before: a failure to read sqlite_sequence is not a broken chain */
	if ((full && (rc = verify_campaigns(&r, errstr))) ||
	    (rc = verify_deliveries(&r, full, errstr)))
		goto out;
	if (r.nproblems) {
		if (r.nproblems > MAX_PROBLEMS)
			buf_addf(&r.problems, "\n... and %d more", r.nproblems - MAX_PROBLEMS);
		rc = error_set(errstr, EX_DATAERR, "%s", buf_str(&r.problems));
		goto out;
	}
	*nevents = (long)p->last_seq;
	memcpy(head, p->prev, 65);
out:
	ldb_done(st);
	ldb_read_end(l);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	buf_free(&p->b[0].data);
	buf_free(&p->b[1].data);
	free(p->err);
	free(p);
	replay_free(&r);
	return rc;
}

/* --- the quick check ------------------------------------------------------------------------- */

static int count(struct ledger *l, enum query q, int64_t *n, char **errstr)
{
	static const char what[] = "counting rows";
	struct ldb_stmt *st;
	int rc;

	*n = 0;
	if ((rc = ldb_query(l, q, &st, what, errstr, "")))
		return rc;
	if (ldb_next(l, st, &rc, what, errstr))
		*n = ldb_col_int64(st, 0);
	ldb_done(st);
	return rc;
}

#define DAMAGED(...) (rc = error_set(errstr, EX_DATAERR, "ledger damaged: " __VA_ARGS__))
#define RUN_VERIFY   "; run demarche verify"

/* The head event against the row it changed (st: Q_HEAD on the head). */
static int head_row(struct ledger *l, struct ldb_stmt *head, char **errstr)
{
	int64_t seq = ldb_col_int64(head, 0), d = ldb_col_int64(head, 3);
	const char *kind = ldb_col_text(head, 4), *to = ldb_col_text(head, 6);
	const char *detail = ldb_col_text(head, F_DETAIL);
	size_t dlen = ldb_col_bytes(head, F_DETAIL);
	struct ldb_stmt *st;
	int rc;

	if (d <= 0 || !kind)
		return EX_OK;
	if ((rc = ldb_query(l, Q_DELIVERY_ROW, &st, "reading a delivery", errstr, "i", d)))
		return rc;
	if (!ldb_next(l, st, &rc, "reading a delivery", errstr)) {
		if (!rc)
			DAMAGED("delivery %lld of the last event (%lld) is missing" RUN_VERIFY,
			        (long long)d, (long long)seq);
	} else if (!strcmp(kind, "transition") && to && !same_str(ldb_col_text(st, 0), to)) {
		DAMAGED("delivery %lld is %s but the last event (%lld) made it %s" RUN_VERIFY,
		        (long long)d, ldb_col_text(st, 0), (long long)seq, to);
	} else if (!strcmp(kind, "create") && detail &&
	           (!rec_is(detail, dlen, "key", ldb_col_text(st, 2)) ||
	            !rec_is(detail, dlen, "address", ldb_col_text(st, 3)) ||
	            !rec_is(detail, dlen, "message_id", ldb_col_text(st, 4)))) {
		DAMAGED("delivery %lld (%s, %s) differs from its creation (event %lld)" RUN_VERIFY,
		        (long long)d, ldb_col_text(st, 2), ldb_col_text(st, 3), (long long)seq);
	}
	ldb_done(st);
	return rc;
}

int ledger_quick_check(struct ledger *l, char **errstr)
{
	static const char what[] = "reading the last events";
	struct ldb_stmt *st = NULL;
	struct field f[F__COUNT];
	int64_t creates, deliveries, seq = 0, highest = 0;
	char hash[65], prev[65] = "";
	int rc;

	if (l->schema < 4)
		return EX_OK; /* schema 3, read-only: its rows are not in the chain yet */
	if ((rc = ldb_read_begin(l, errstr)))
		return rc;
	/* the last creation's ordinal: how many creations the chain holds, even when some
	 * were deleted together with their rows (one index look-up, not a count) */
	if ((rc = rec_last_ordinal(l, &creates, errstr)) ||
	    (rc = count(l, Q_COUNT_DELIVERIES, &deliveries, errstr)))
		goto out;
	if (creates != deliveries) {
		DAMAGED("%lld deliveries but %lld creation events in the chain (%s)" RUN_VERIFY,
		        (long long)deliveries, (long long)creates,
		        deliveries < creates ? "delivery rows were deleted"
		                             : "delivery rows were inserted by hand");
		goto out;
	}
	if ((rc = ldb_query(l, Q_HEAD, &st, what, errstr, "")))
		goto out;
	if (ldb_next(l, st, &rc, what, errstr)) {
		const char *sprev = ldb_col_text(st, F__COUNT),
		           *shash = ldb_col_text(st, F__COUNT + 1);

		seq = ldb_col_int64(st, 0);
		for (int i = 0; i < F__COUNT; i++)
			column_field(st, i, &f[i]);
		if (!sprev || !shash || chain_hash(l, sprev, f, hash) || strcmp(hash, shash)) {
			DAMAGED("the last event (%lld) does not match its hash (edited)" RUN_VERIFY,
			        (long long)seq);
			goto out;
		}
		snprintf(prev, sizeof(prev), "%s", sprev);
		if ((rc = head_row(l, st, errstr)))
			goto out;
		if (ldb_next(l, st, &rc, what, errstr)) {
			if (ldb_col_int64(st, 0) != seq - 1 ||
			    !same_str(ldb_col_text(st, F__COUNT + 1), prev)) {
				DAMAGED("the last event (%lld) does not follow the one before "
				        "it" RUN_VERIFY,
				        (long long)seq);
				goto out;
			}
		} else if (!rc && (seq != 1 || strcmp(prev, ZERO_HASH))) {
			DAMAGED("the chain's first events are missing" RUN_VERIFY);
			goto out;
		}
	}
	ldb_done(st);
	st = NULL;
	if (rc)
		goto out;
	if (!ldb_query(l, Q_EVENTS_HIGHEST, &st, what, NULL, "") &&
	    ldb_next(l, st, &rc, what, NULL))
		highest = ldb_col_int64(st, 0);
	rc = EX_OK;
	if (highest > seq)
		DAMAGED("the last %lld events were deleted" RUN_VERIFY, (long long)(highest - seq));
out:
	ldb_done(st);
	ldb_read_end(l);
	return rc;
}
