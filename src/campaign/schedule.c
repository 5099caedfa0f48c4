/* The send calendar: each mission's next time from its zone, weekend and the options. */
#include "campaign/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "base/error.h"
#include "base/tz.h"
#include "base/xalloc.h"

static int parse_hhmm(const char *s, int *min, const char **end)
{
	int h, m;

	if (!(s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':' &&
	      s[3] >= '0' && s[3] <= '9' && s[4] >= '0' && s[4] <= '9'))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || m > 59 || (h == 24 && m))
		return -1;
	*min = h * 60 + m;
	*end = s + 5;
	return 0;
}

int schedule_parse_window(struct schedule *s, const char *arg, char **errstr)
{
	const char *p;

	if (parse_hhmm(arg, &s->win_from, &p) || *p != '-' || parse_hhmm(p + 1, &s->win_to, &p) ||
	    *p || s->win_from >= s->win_to)
		return error_set(errstr, EX_USAGE,
		                 "--window wants HH:MM-HH:MM in each mission's local time, the "
		                 "first before the second (09:00-17:00), not '%s'",
		                 arg);
	snprintf(s->win_text, sizeof(s->win_text), "%02d:%02d-%02d:%02d", s->win_from / 60,
	         s->win_from % 60, s->win_to / 60, s->win_to % 60);
	s->window = 1;
	return EX_OK;
}

/* YYYY-MM-DD, or with THH:MM[:SS] and an optional Z; *has_time says which. */
static int parse_when(const char *arg, struct tm *tm, int *has_time)
{
	const char *end;

	memset(tm, 0, sizeof(*tm));
	*has_time = 0;
	if (!(end = strptime(arg, "%Y-%m-%d", tm)))
		return -1;
	if (*end == 'T' || *end == ' ') {
		const char *e2 = strptime(end + 1, "%H:%M:%S", tm);

		if (!e2)
			e2 = strptime(end + 1, "%H:%M", tm);
		if (!e2)
			return -1;
		end = e2;
		*has_time = 1;
	}
	if (*end == 'Z')
		end++;
	return *end ? -1 : 0;
}

int schedule_parse_at(struct schedule *s, const char *arg, char **errstr)
{
	int has_time;

	if (parse_when(arg, &s->at_tm, &has_time) || !has_time)
		return error_set(errstr, EX_USAGE,
		                 "--at wants YYYY-MM-DDTHH:MM (UTC, or each mission's local time "
		                 "with --local), not '%s'",
		                 arg);
	s->at = (int64_t)timegm(&s->at_tm);
	s->at_set = 1;
	return EX_OK;
}

int schedule_parse_until(struct schedule *s, const char *arg, char **errstr)
{
	struct tm tm;
	int has_time;

	if (parse_when(arg, &tm, &has_time))
		return error_set(errstr, EX_USAGE,
		                 "--until wants YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), not '%s'",
		                 arg);
	s->until = (int64_t)timegm(&tm);
	return EX_OK;
}

int schedule_check(const struct schedule *s, char **errstr)
{
	if (s->local && !s->at_set)
		return error_set(errstr, EX_USAGE, "--local goes with --at");
	return EX_OK;
}

int schedule_active(const struct schedule *s)
{
	return s->window || s->at_set;
}

/* The UTC second of minute `min` of the local day of lt in zone. */
static int at_minute(const char *zone, const struct tm *lt, int min, int64_t *out)
{
	struct tm a = *lt;

	a.tm_hour = min / 60;
	a.tm_min = min % 60;
	a.tm_sec = 0;
	return tz_utc(zone, &a, out);
}

int schedule_next(const struct schedule *s, const char *zone, unsigned weekend, int64_t from,
                  int64_t *when)
{
	int64_t t = from, open, close, next;
	struct tm lt;

	if (!zone)
		zone = "UTC";
	if (s->at_set) {
		int64_t at = s->at;

		if (s->local && tz_utc(zone, &s->at_tm, &at))
			return -1;
		if (at > t)
			t = at;
	}
	if (!s->window) {
		*when = t;
		return 0;
	}
	for (int day = 0; day < 15; day++) { /* a week has a working day unless all are weekend */
		if (tz_local(zone, t, &lt))
			return -1;
		if (!(weekend & (1u << lt.tm_wday))) {
			if (at_minute(zone, &lt, s->win_from, &open) ||
			    at_minute(zone, &lt, s->win_to, &close))
				return -1;
			if (t < open) {
				*when = open;
				return 0;
			}
			if (t < close) {
				*when = t;
				return 0;
			}
		}
		lt.tm_mday++; /* the next local day's midnight (mktime normalises) */
		if (at_minute(zone, &lt, 0, &next))
			return -1;
		t = next > t ? next : t + 3600;
	}
	return -1;
}

void schedule_format_local(const char *zone, int64_t t, char *out, size_t size)
{
	struct tm lt;

	if (!zone)
		zone = "UTC";
	if (tz_local(zone, t, &lt)) {
		snprintf(out, size, "?");
		return;
	}
	snprintf(out, size, "%04d-%02d-%02d %02d:%02d %s", lt.tm_year + 1900, lt.tm_mon + 1,
	         lt.tm_mday, lt.tm_hour, lt.tm_min, zone);
}

/* --- the plan of a pass ---------------------------------------------------------------- */

struct plan_pass {
	struct schedule *s;
	struct roster *r;
	struct diags d;
	size_t cap;
};

static int plan_row(void *user, const struct roster_row *row)
{
	struct plan_pass *pp = user;
	struct schedule *s = pp->s;
	const char *zone = roster_get(row, "timezone"), *we = roster_get(row, "weekend");
	struct schedule_entry *e;
	unsigned weekend = TZ_WEEKEND_DEFAULT;

	if (zone && !*zone)
		zone = NULL;
	if (!zone && (s->window || s->local)) {
		diags_add(&pp->d, DIAG_ERROR, roster_path(pp->r), roster_row_line(row), "timezone",
		          "empty: %s needs each mission's time zone (an IANA name such as "
		          "America/New_York)",
		          s->window ? "--window" : "--at with --local");
		return 0;
	}
	if (we && tz_weekend_parse(we, &weekend))
		return 0; /* the merge reports it */
	if (zone && !tz_known(zone))
		return 0; /* the same */
	if (s->n == pp->cap) {
		pp->cap = pp->cap ? 2 * pp->cap : 64;
		s->e = xreallocarray(s->e, pp->cap, sizeof(*s->e));
	}
	e = &s->e[s->n];
	memset(e, 0, sizeof(*e));
	if (schedule_next(s, zone, weekend, s->now, &e->when))
		return 0; /* no working day at all: left out, reported as waiting forever */
	e->key = xstrdup(roster_key(row));
	e->zone = zone ? xstrdup(zone) : NULL;
	e->weekend = weekend;
	e->line = roster_row_line(row);
	s->n++;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct schedule_entry *)a)->key,
	                  ((const struct schedule_entry *)b)->key);
}

static struct schedule_entry *find(const struct schedule *s, const char *key)
{
	struct schedule_entry k = {.key = (char *)key};

	return s->n ? bsearch(&k, s->e, s->n, sizeof(*s->e), entry_cmp) : NULL;
}

/* The roster hook: a mission goes only when its time has come (and it has a plan). */
static int not_yet(void *user, const struct roster_row *row)
{
	const struct schedule *s = user;
	const struct schedule_entry *e = find(s, roster_key(row));

	return !e || e->when > s->now;
}

static void entries_free(struct schedule *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].key);
		free(s->e[i].zone);
	}
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

int schedule_plan(struct schedule *s, struct roster_opts *ro, int64_t now, const char *cmd)
{
	struct plan_pass pp = {.s = s};
	struct roster_opts o = *ro;
	struct diags rd = {0};
	int rc = EX_OK;

	entries_free(s);
	s->now = now;
	o.exclude_row = NULL;
	o.audience_any = 1; /* membership is the merge's to judge, with the appeal */
	if (roster_open(&o, &pp.r, &rd) == EX_OK) {
		roster_each(pp.r, plan_row, &pp, &rd);
		if (pp.d.errors) {
			fprintf(stderr, "demarche %s: the send calendar:\n", cmd);
			diags_print(&pp.d, stderr);
			rc = EX_DATAERR;
		}
	}
	/* the roster's own problems are printed by the merge, which finds them again */
	roster_free(pp.r);
	diags_free(&rd);
	diags_free(&pp.d);
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), entry_cmp);
	ro->exclude_row = not_yet;
	ro->exclude_row_user = s;
	return rc;
}

/* --- after a pass ------------------------------------------------------------------------ */

struct recorded {
	char **details;
	size_t n;
};

static int collect(const struct ledger_event *e, void *ctx)
{
	struct recorded *r = ctx;

	if (!e->detail)
		return 0;
	r->details = xreallocarray(r->details, r->n + 1, sizeof(char *));
	r->details[r->n++] = xstrdup(e->detail);
	return 0;
}

struct missing_ctx {
	const struct schedule *s;
	struct schedule_entry **waiting;
	size_t n;
};

static int waiting_key(const char *key, void *ctx)
{
	struct missing_ctx *mc = ctx;
	struct schedule_entry *e = find(mc->s, key);

	if (e && e->when > mc->s->now)
		mc->waiting[mc->n++] = e;
	return 0;
}

static void iso_utc(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int schedule_waiting(struct schedule *s, struct ledger *l, const char *campaign,
                     const struct roster_opts *ro, size_t *nwait, int64_t *next,
                     const char **next_key, char **errstr)
{
	struct missing_ctx mc = {.s = s};
	struct recorded rec = {0};
	const char **keys = xcalloc(s->n + 1, sizeof(char *));
	int rc, batch;

	*nwait = 0;
	*next = 0;
	*next_key = NULL;
	mc.waiting = xcalloc(s->n + 1, sizeof(*mc.waiting));
	for (size_t i = 0; i < s->n; i++)
		keys[i] = s->e[i].key;
	rc = ledger_missing(l, campaign, keys, s->n, waiting_key, &mc, errstr);
	if (rc == EX_OK && mc.n)
		rc = ledger_events(l, campaign, "schedule", collect, &rec, errstr);
	if (rc == EX_OK && mc.n) /* the plan in one commit, not one per mission */
		rc = ledger_batch_begin(l, errstr);
	batch = rc == EX_OK && mc.n;
	for (size_t i = 0; rc == EX_OK && i < mc.n; i++) {
		struct schedule_entry *e = mc.waiting[i];
		struct ledger_outcome o = {0};
		char t[32], *detail;
		int seen = 0;

		if (ro && ro->exclude && ro->exclude(ro->exclude_user, e->key)) {
			mc.waiting[i--] = mc.waiting[--mc.n]; /* never sent by this appeal */
			continue;
		}
		if (!*next_key || e->when < *next) {
			*next = e->when;
			*next_key = e->key;
		}
		iso_utc(e->when, t);
		detail = xasprintf("%s at %s zone %s window %s", e->key, t,
		                   e->zone ? e->zone : "UTC", s->window ? s->win_text : "none");
		for (size_t j = rec.n; j-- > 0 && !seen;)
			seen = !strcmp(rec.details[j], detail);
		o.detail = detail;
		if (!seen)
			rc = ledger_record(l, "schedule", campaign, 0, &o, errstr);
		free(detail);
	}
	if (batch) {
		char *err2 = NULL;
		int rc2 = ledger_batch_end(l, rc == EX_OK, rc == EX_OK ? errstr : &err2);

		if (rc == EX_OK)
			rc = rc2;
		free(err2);
	}
	*nwait = mc.n;
	for (size_t i = 0; i < rec.n; i++)
		free(rec.details[i]);
	free(rec.details);
	free(mc.waiting);
	free(keys);
	return rc;
}

void schedule_free(struct schedule *s)
{
	entries_free(s);
}
