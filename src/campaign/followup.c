/* Reminders: who awaits an answer to a campaign, and a reminder threaded under its letter. */
#include "campaign/followup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "campaign/message.h"
#include "roster/parts.h"

/* --- who awaits an answer ------------------------------------------------------------- */

struct walk {
	struct followup_mission *m;
	size_t n, cap, answered;
	/* the key being read (deliveries come ordered by key) */
	char *key, *message_id;
	int64_t sent;
	int received, answered_now;
};

static int64_t iso_seconds(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void walk_flush(struct walk *w)
{
	if (w->key && w->received && !w->answered_now) {
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 64;
			w->m = xreallocarray(w->m, w->cap, sizeof(*w->m));
		}
		w->m[w->n].key = w->key;
		w->m[w->n].message_id = w->message_id;
		w->m[w->n++].sent = w->sent;
		w->key = w->message_id = NULL;
	}
	if (w->key && w->answered_now)
		w->answered++;
	free(w->key);
	free(w->message_id);
	w->key = w->message_id = NULL;
	w->received = w->answered_now = 0;
	w->sent = 0;
}

static int walk_row(const struct ledger_row *r, void *ctx)
{
	struct walk *w = ctx;

	if (!w->key || strcasecmp(w->key, r->key)) {
		walk_flush(w);
		w->key = xstrdup(r->key);
	}
	if (r->state == LS_REPLIED || r->state == LS_BOUNCED)
		w->answered_now = 1;
	if (r->state == LS_SENT) {
		int64_t t = iso_seconds(r->updated);

		if (!w->received || t < w->sent) {
			w->sent = t;
			free(w->message_id);
			w->message_id = r->message_id ? xstrdup(r->message_id) : NULL;
		}
		w->received = 1;
	}
	return 0;
}

static int mission_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct followup_mission *)a)->key,
	                  ((const struct followup_mission *)b)->key);
}

int followup_missions(struct ledger *l, const char *campaign, struct followup_mission **out,
                      size_t *n, size_t *answered, char **errstr)
{
	struct walk w = {0};
	int rc = ledger_deliveries(l, campaign, walk_row, &w, errstr);

	walk_flush(&w);
	if (rc != EX_OK) {
		followup_missions_free(w.m, w.n);
		return rc;
	}
	for (size_t i = 0; i < w.n; i++) /* a mission is whole only with its Message-ID */
		if (!w.m[i].message_id) {
			free(w.m[i].key);
			w.m[i--] = w.m[--w.n];
		}
	if (w.n)
		qsort(w.m, w.n, sizeof(*w.m), mission_cmp);
	*out = w.m;
	*n = w.n;
	if (answered)
		*answered = w.answered;
	return EX_OK;
}

void followup_missions_free(struct followup_mission *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].key);
		free(m[i].message_id);
	}
	free(m);
}

int64_t followup_parse_after(const char *s)
{
	char *end;
	long long v;

	if (!s || !*s || *s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (v < 0 || v > 3650 * 24 * 60)
		return -1;
	if (!*end || !strcmp(end, "d"))
		return (int64_t)v * 86400;
	if (!strcmp(end, "h"))
		return (int64_t)v * 3600;
	if (!strcmp(end, "m"))
		return (int64_t)v * 60;
	return -1;
}

static int latest_after(const struct ledger_event *e, void *ctx)
{
	long long v;

	if (e->detail && sscanf(e->detail, "after %lld", &v) == 1 && v >= 0)
		*(int64_t *)ctx = (int64_t)v;
	return 0;
}

int followup_recorded_after(struct ledger *l, const char *campaign, int64_t *after, char **errstr)
{
	*after = 0;
	return ledger_events(l, campaign, "followup", latest_after, after, errstr);
}

/* --- a reminder being sent -------------------------------------------------------------- */

struct followup {
	struct ledger *l;
	struct ledger *owned; /* followup_new_readonly()'s */
	int (*prev)(void *user, const char *key);
	void *prev_user;
	int active;
	int64_t after, now;
	struct followup_mission *m;
	size_t n;
};

static const struct followup_mission *find(const struct followup *f, const char *key)
{
	struct followup_mission k = {.key = (char *)key};

	return f->n ? bsearch(&k, f->m, f->n, sizeof(*f->m), mission_cmp) : NULL;
}

/* The roster hook: a reminder goes to a mission awaiting an answer, once it is due. */
static int exclude(void *user, const char *key)
{
	struct followup *f = user;
	const struct followup_mission *fm;

	if (f->prev && f->prev(f->prev_user, key))
		return 1;
	if (!f->active)
		return 0;
	fm = find(f, key);
	return !fm || fm->sent + f->after > f->now;
}

static void extend(void *user, const char *key, const char *lang, json_t *ctx)
{
	const struct followup *f = user;
	const struct followup_mission *fm = find(f, key);
	char iso[16], *date;
	time_t t;
	struct tm tm;

	if (!fm)
		return;
	t = (time_t)fm->sent;
	gmtime_r(&t, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%d", &tm);
	if ((date = parts_date(lang, iso)))
		json_object_set_new(ctx, "first_date", json_string(date));
	free(date);
	json_object_set_new(ctx, "first_message_id", json_string(fm->message_id));
}

struct followup *followup_new(struct ledger *l, struct roster_opts *ro)
{
	struct followup *f = xcalloc(1, sizeof(*f));

	f->l = l;
	f->prev = ro->exclude;
	f->prev_user = ro->exclude_user;
	ro->exclude = exclude;
	ro->exclude_user = f;
	return f;
}

int followup_bind(struct followup *f, struct merge *m, struct message_run *mr, int64_t now,
                  char **errstr)
{
	const char *follows = letter_header_source(m->letter, "en", "Follows");
	int rc;

	if (!follows || !*follows)
		return EX_OK;
	if (!f->l)
		return error_set(errstr, EX_NOINPUT,
		                 "Follows: %s: a reminder needs the ledger its campaign was sent "
		                 "from (--store)",
		                 follows);
	if (strpbrk(follows, "{} \t"))
		return error_set(errstr, EX_DATAERR,
		                 "Follows: '%s' is not a campaign id (draft the reminder with "
		                 "demarche followup)",
		                 follows);
	rc = ledger_campaign_exists(f->l, follows);
	if (rc < 0)
		return error_set(errstr, EX_IOERR, "the ledger could not answer for campaign %s",
		                 follows);
	if (!rc)
		return error_set(
		    errstr, EX_DATAERR,
		    "Follows: %s: no such campaign in this ledger (a reminder follows a "
		    "campaign sent from it)",
		    follows);
	rc = followup_missions(f->l, follows, &f->m, &f->n, NULL, errstr);
	if (rc == EX_OK)
		rc = followup_recorded_after(f->l, follows, &f->after, errstr);
	if (rc != EX_OK)
		return rc;
	f->now = now;
	f->active = 1;
	m->extend = extend;
	m->extend_user = f;
	if (mr)
		mr->follow = f;
	return EX_OK;
}

struct followup *followup_new_readonly(const char *store, struct roster_opts *ro)
{
	struct ledger *l = NULL;
	struct followup *f;
	char *err = NULL;

	if (access(store, F_OK) == 0 && ledger_open(store, LEDGER_READONLY, &l, &err) != EX_OK)
		l = NULL; /* a reminder says so when it is bound */
	free(err);
	f = followup_new(l, ro);
	f->owned = l;
	return f;
}

const char *followup_thread(const struct followup *f, const char *key)
{
	const struct followup_mission *fm = f && f->active ? find(f, key) : NULL;

	return fm ? fm->message_id : NULL;
}

void followup_free(struct followup *f)
{
	if (!f)
		return;
	followup_missions_free(f->m, f->n);
	ledger_close(f->owned);
	free(f);
}
