/*
 * demarche audit --format html: one self-contained report (inline CSS and SVG, no script, no
 * external request), rendered with the project's Mustache engine from the template compiled
 * in (src/report/report.html.mustache). Aggregates and the missing list, never a row per
 * delivery: a million deliveries make the same few pages.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/xalloc.h"
#include "cmd/audit.h"
#include "letter/mustache.h"

extern const char report_html_template[];
extern const size_t report_html_template_len;

#define MATRIX_MAX  1000 /* missions in the grid; more is for audit --matrix */
#define MISSING_MAX 2000 /* missing missions listed; more is for audit --missing */
/* Past this many deliveries the report does not verify the chain itself: verify costs
 * about 3 s per million deliveries (bench/ledger), more than the whole report. */
#define VERIFY_MAX 200000
#define BAR_X      260 /* where the coverage bars start (SVG units, 700 wide) */
#define BAR_W      340 /* a group with every mission received */

/*
 * Every string in the context is escaped here (esc_html(): visible controls, then entities),
 * and the template is rendered without escaping: one escaper, ours, for every value.
 */
static void put_s(json_t *o, const char *k, const char *raw)
{
	char *e;

	if (!raw)
		return;
	e = esc_html_dup(raw);
	json_object_set_new(o, k, json_string(e)); /* esc_html() output is valid UTF-8 */
	free(e);
}

/* "2024-06-01 12:06" for a reader (the ledger keeps milliseconds, UTC). */
static const char *when(const char *iso, char out[32])
{
	if (!iso)
		return NULL;
	snprintf(out, 32, "%.16s", iso);
	if (out[10] == 'T')
		out[10] = ' ';
	return out;
}

static void put_i(json_t *o, const char *k, long v)
{
	json_object_set_new(o, k, json_integer(v));
}

static void put_b(json_t *o, const char *k, int v)
{
	json_object_set_new(o, k, json_boolean(v));
}

static void put_counts(json_t *o, const struct rp_counts *k)
{
	put_i(o, "missions", k->missions);
	put_i(o, "received", k->received);
	put_i(o, "partial", k->partial);
	put_i(o, "missing", k->missing);
	put_i(o, "addresses", k->addresses);
}

static json_t *campaign_obj(const struct rp_campaign *c, const struct rp_roster *r)
{
	json_t *o = json_object();
	char shorth[13], t[32];
	struct rp_counts k = {c->missions, c->received, c->partial, c->missing, c->addresses, 0};

	if (r) {
		struct rp_counts *g = xcalloc(r->ngroups + 1, sizeof(*g));

		rp_group_counts(r, c, g, &k);
		free(g);
	}
	put_s(o, "id", c->id);
	put_s(o, "title", c->title);
	put_s(o, "hash", rp_short_hash(c->hash, shorth));
	put_s(o, "last_sent", when(c->last_sent, t));
	put_counts(o, &k);
	return o;
}

static void groups(json_t *ctx, const struct rp_roster *r, const struct rp_campaign *c)
{
	struct rp_counts *g = xcalloc(r->ngroups + 1, sizeof(*g)), total;
	json_t *arr = json_array(), *tot = json_object();
	long y = 4;

	rp_group_counts(r, c, g, &total);
	for (size_t i = 0; i < r->ngroups; i++, y += 24) {
		json_t *o = json_object();
		long m = g[i].missions ? g[i].missions : 1;
		long wr = BAR_W * g[i].received / m, wp = BAR_W * g[i].partial / m;
		long wm = g[i].missions ? BAR_W - wr - wp : 0;

		put_s(o, "name", r->groups[i]);
		put_counts(o, &g[i]);
		put_i(o, "y", y);
		put_i(o, "text_y", y + 13);
		put_i(o, "w_received", wr);
		put_i(o, "x_partial", BAR_X + wr);
		put_i(o, "w_partial", wp);
		put_i(o, "x_missing", BAR_X + wr + wp);
		put_i(o, "w_missing", wm);
		put_i(o, "x_label", BAR_X + BAR_W + 8);
		json_array_append_new(arr, o);
	}
	put_counts(tot, &total);
	json_object_set_new(ctx, "groups", arr);
	json_object_set_new(ctx, "group_total", tot);
	put_i(ctx, "chart_height", y + 4);
	free(g);
}

static const char *state_class(const struct rp_status *s)
{
	switch (rp_status_mstate(s)) {
	case RP_RECEIVED:
		return "s-received";
	case RP_PARTIAL:
		return "s-partial";
	default:
		return s->main_state < 0 || s->main_state == LS_PENDING            ? "s-none"
		       : s->main_state == LS_FAILED || s->main_state == LS_BOUNCED ? "s-failed"
		                                                                   : "s-partial";
	}
}

static void missing(json_t *ctx, const struct rp_roster *r, const struct rp_campaign *c, int by)
{
	json_t *arr = json_array();
	long n = 0;

	/* by group (then roster order) when grouped, as the table is */
	for (size_t g = 0; g < (by ? r->ngroups : 1); g++)
		for (size_t i = 0; i < r->n; i++) {
			const struct rp_status *s = &c->status[i];
			enum rp_mstate ms = rp_status_mstate(s);
			json_t *o;
			char acc[48], t[32];

			if ((by && r->group_of[i] != g) || ms == RP_RECEIVED)
				continue;
			if (n++ >= MISSING_MAX)
				continue; /* counted, not listed: a report is read, not searched */
			o = json_object();
			snprintf(acc, sizeof(acc), "%d/%d", s->naccepted, s->naddr);
			put_s(o, "key", r->v[i].key);
			put_s(o, "name", r->v[i].name);
			put_s(o, "group", r->groups[r->group_of[i]]);
			put_s(o, "reason", rp_reason(s->main_state));
			put_b(o, "partial", ms == RP_PARTIAL);
			put_s(o, "cls", state_class(s));
			put_s(o, "accepted", acc);
			put_s(o, "reply", s->reply);
			put_s(o, "time", when(s->updated, t));
			json_array_append_new(arr, o);
		}
	json_object_set_new(ctx, "missing", arr);
	put_i(ctx, "missing_count", n);
	if (n > MISSING_MAX) {
		put_i(ctx, "missing_more", n - MISSING_MAX);
		put_i(ctx, "missing_max", MISSING_MAX);
	}
	put_b(ctx, "missing_count_nonzero", n > 0);
}

static void days(json_t *ctx, const struct rp_ledger *lg, const struct rp_campaign *focus)
{
	/* the focus campaign's days, or every campaign's merged */
	struct rp_day *d = NULL;
	size_t nd = 0;
	long max = 1, y = 4;
	json_t *arr = json_array();

	for (size_t j = 0; j < lg->n; j++) {
		const struct rp_campaign *c = &lg->v[j];

		if (focus && c != focus)
			continue;
		for (size_t k = 0; k < c->ndays; k++) {
			size_t i;

			for (i = 0; i < nd && strcmp(d[i].day, c->days[k].day) < 0; i++)
				;
			if (i == nd || strcmp(d[i].day, c->days[k].day)) {
				d = xreallocarray(d, nd + 1, sizeof(*d));
				memmove(&d[i + 1], &d[i], (nd - i) * sizeof(*d));
				memset(&d[i], 0, sizeof(*d));
				memcpy(d[i].day, c->days[k].day, sizeof(d[i].day));
				nd++;
			}
			d[i].bounced += c->days[k].bounced;
			d[i].replied += c->days[k].replied;
		}
	}
	for (size_t i = 0; i < nd; i++) {
		if (d[i].bounced > max)
			max = d[i].bounced;
		if (d[i].replied > max)
			max = d[i].replied;
	}
	for (size_t i = 0; i < nd; i++, y += 24) {
		json_t *o = json_object();
		long wb = 400 * d[i].bounced / max, wr = 400 * d[i].replied / max;

		put_s(o, "day", d[i].day);
		put_i(o, "bounced", d[i].bounced);
		put_i(o, "replied", d[i].replied);
		put_i(o, "y", y);
		put_i(o, "y2", y + 9);
		put_i(o, "text_y", y + 13);
		put_i(o, "w_bounced", wb);
		put_i(o, "w_replied", wr);
		put_i(o, "x_label", 110 + (wb > wr ? wb : wr) + 8);
		json_array_append_new(arr, o);
	}
	json_object_set_new(ctx, "days", arr);
	put_b(ctx, "has_days", nd > 0);
	put_i(ctx, "days_height", y + 4);
	free(d);
}

/* 1 when a mission of group g comes at or after i. */
static int more_in_group(const struct rp_roster *r, size_t i, size_t g)
{
	for (; i < r->n; i++)
		if (r->group_of[i] == g)
			return 1;
	return 0;
}

/* A totals row of the grid: received/missions per campaign, of group g (-1: all). */
static json_t *total_row(const struct rp_roster *r, const struct rp_ledger *lg, long g)
{
	json_t *row = json_object(), *cells = json_array();
	struct rp_counts *k = xcalloc(r->ngroups + 1, sizeof(*k)), total;

	put_s(row, "key", "total");
	if (g >= 0)
		put_s(row, "group", r->groups[g]);
	put_s(row, "row_class", "total");
	for (size_t j = 0; j < lg->n; j++) {
		json_t *c = json_object();
		const struct rp_counts *x;
		char t[64];

		rp_group_counts(r, &lg->v[j], k, &total);
		x = g >= 0 ? &k[g] : &total;
		snprintf(t, sizeof(t), "%ld/%ld", x->received, x->missions);
		put_s(c, "text", t);
		put_s(c, "cls", "tot");
		json_array_append_new(cells, c);
	}
	json_object_set_new(row, "cells", cells);
	free(k);
	return row;
}

static void matrix(json_t *ctx, const struct rp_roster *r, const struct rp_ledger *lg, int by)
{
	json_t *heads = json_array(), *rows = json_array();

	for (size_t j = 0; j < lg->n; j++) {
		json_t *h = json_object();

		put_s(h, "id", lg->v[j].id);
		json_array_append_new(heads, h);
	}
	for (size_t g = 0; g < (by ? r->ngroups : 1); g++)
		for (size_t i = 0; i < r->n; i++) {
			json_t *row, *cells;

			if (by && r->group_of[i] != g)
				continue;
			row = json_object();
			cells = json_array();
			put_s(row, "key", r->v[i].key);
			put_s(row, "name", r->v[i].name);
			put_s(row, "group", r->groups[r->group_of[i]]);
			put_s(row, "row_class", "mission");
			for (size_t j = 0; j < lg->n; j++) {
				const struct rp_status *s = &lg->v[j].status[i];
				json_t *c = json_object();
				enum rp_mstate ms = rp_status_mstate(s);

				put_s(c, "cls", state_class(s));
				put_s(c, "text",
				      ms == RP_PARTIAL    ? "partial"
				      : s->main_state < 0 ? ""
				                          : ledger_state_name(s->main_state));
				json_array_append_new(cells, c);
			}
			json_object_set_new(row, "cells", cells);
			json_array_append_new(rows, row);
			if (by && (i + 1 == r->n || !more_in_group(r, i + 1, g)))
				json_array_append_new(rows, total_row(r, lg, (long)g));
		}
	json_array_append_new(rows, total_row(r, lg, -1));
	json_object_set_new(ctx, "matrix_heads", heads);
	json_object_set_new(ctx, "matrix", rows);
}

static void chain(json_t *ctx, struct ledger *l, int skip, long deliveries)
{
	char head[65], t[32], *err = NULL;
	time_t now = time(NULL);
	struct tm tm;
	long n = 0;

	if (skip || deliveries > VERIFY_MAX) {
		put_b(ctx, "chain_skipped", 1);
		put_i(ctx, "chain_deliveries", deliveries);
		put_i(ctx, "verify_max", VERIFY_MAX);
		return;
	}
	gmtime_r(&now, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (ledger_verify(l, &n, head, &err) == EX_OK) {
		put_b(ctx, "chain_ok", 1);
		put_i(ctx, "chain_events", n);
		put_s(ctx, "chain_head", head);
		put_s(ctx, "chain_time", t);
	} else {
		put_s(ctx, "chain_error", err ? err : "unknown error");
	}
	free(err);
}

int audit_html_render(struct ledger *l, const struct audit_opts *a, struct buf *out, char **err)
{
	const struct rp_roster *r = a->roster;
	struct mustache_template *t = NULL;
	struct mustache_render_opts mo = {0};
	struct rp_ledger lg = {0};
	const struct rp_campaign *focus = NULL;
	json_t *ctx = json_object(), *camps = json_array();
	char gen[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	if ((rc = rp_ledger_fold(l, NULL, r, &lg, err)))
		goto out;
	for (size_t j = 0; j < lg.n; j++) {
		json_array_append_new(camps, campaign_obj(&lg.v[j], r));
		if (a->campaign && !strcmp(lg.v[j].id, a->campaign))
			focus = &lg.v[j];
	}
	if (!a->campaign && lg.n)
		focus = &lg.v[lg.n - 1]; /* the newest */
	json_object_set_new(ctx, "campaigns", camps);
	camps = NULL;
	if (focus)
		json_object_set_new(ctx, "focus", campaign_obj(focus, r));
	gmtime_r(&now, &tm);
	strftime(gen, sizeof(gen), "%Y-%m-%d %H:%M UTC", &tm);
	put_s(ctx, "generated", gen);
	put_s(ctx, "version", DEMARCHE_VERSION);
	put_s(ctx, "by", a->by);
	if (r && focus) {
		put_b(ctx, "has_roster", 1);
		if (a->by) {
			put_b(ctx, "has_groups", 1);
			groups(ctx, r, focus);
		}
		missing(ctx, r, focus, a->by != NULL);
		if (r->n <= MATRIX_MAX) {
			put_b(ctx, "has_matrix", 1);
			matrix(ctx, r, &lg, a->by != NULL);
		} else {
			put_b(ctx, "matrix_omitted", 1);
			put_i(ctx, "matrix_max", MATRIX_MAX);
		}
	}
	days(ctx, &lg, a->campaign ? focus : NULL);
	{
		long n = 0;

		for (size_t j = 0; j < lg.n; j++)
			n += lg.v[j].addresses;
		chain(ctx, l, a->no_verify, n);
	}
	if ((rc = mustache_compile(report_html_template, report_html_template_len,
	                           "report.html.mustache", 1, &t, err))) {
		rc = EX_SOFTWARE;
		goto out;
	}
	mo.escape = MUSTACHE_ESCAPE_NONE; /* every value was escaped by put_s() */
	if ((rc = mustache_render(t, ctx, &mo, out))) {
		rc = error_set(err, EX_SOFTWARE, "the HTML report's template did not render");
		goto out;
	}
out:
	json_decref(camps);
	json_decref(ctx);
	mustache_free(t);
	rp_ledger_free(&lg);
	return rc;
}

int audit_html(struct ledger *l, const struct audit_opts *a, char **err)
{
	struct buf out = BUF_INIT;
	FILE *fp = NULL;
	int rc;

	if ((rc = audit_html_render(l, a, &out, err)))
		goto out;
	if (a->output) {
		if (!(fp = fopen(a->output, "w"))) {
			rc = error_set(err, EX_CANTCREAT, "cannot write %s: %s", a->output,
			               strerror(errno));
			goto out;
		}
		if (fwrite(out.data, 1, out.len, fp) != out.len || fclose(fp) != 0) {
			fp = NULL;
			rc = error_set(err, EX_IOERR, "writing %s failed", a->output);
			goto out;
		}
		fp = NULL;
	} else {
		fwrite(out.data, 1, out.len, stdout);
	}
out:
	if (fp)
		fclose(fp);
	buf_free(&out);
	return rc;
}
