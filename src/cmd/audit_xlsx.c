/*
 * demarche audit --format xlsx -o FILE: a spreadsheet with libxlsxwriter, one sheet per view
 * (Summary, By group, Missing, Deliveries, Matrix), header rows frozen, filters on, times as
 * dates. Every value from a roster, the ledger or a server is written with
 * worksheet_write_string() (never as a formula): "=HYPERLINK(" stays text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xlsxwriter.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/xalloc.h"
#include "cmd/audit.h"

#define XLSX_ROWS_MAX 1048576 /* Excel's limit, header included */
#define XLSX_STR_MAX  32767   /* bytes in one cell */

struct book {
	lxw_workbook *wb;
	lxw_format *head, *date;
	struct buf tmp;
};

/*
 * A string cell. The value is shown as the table shows it (esc_term(): controls, bidi
 * overrides and bytes that are not UTF-8 made visible), so the sheet's XML is always valid
 * and a cell cannot hide what it says.
 */
static void s_cell(struct book *b, lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *v)
{
	if (!v)
		return;
	buf_reset(&b->tmp);
	esc_term(&b->tmp, v);
	if (b->tmp.len > XLSX_STR_MAX)
		buf_truncate(&b->tmp, XLSX_STR_MAX); /* may cut a character: it is 32,767 bytes */
	worksheet_write_string(ws, r, c, buf_str(&b->tmp), NULL);
}

static void n_cell(lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, double v)
{
	worksheet_write_number(ws, r, c, v, NULL);
}

/* An ISO 8601 time from the ledger as a date cell; anything else as text. */
static void d_cell(struct book *b, lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *iso)
{
	lxw_datetime dt = {0};
	double sec = 0;

	if (!iso)
		return;
	if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%lf", &dt.year, &dt.month, &dt.day, &dt.hour, &dt.min,
	           &sec) == 6 &&
	    dt.year >= 1900) {
		dt.sec = sec;
		worksheet_write_datetime(ws, r, c, &dt, b->date);
	} else {
		s_cell(b, ws, r, c, iso);
	}
}

/* A sheet with its header row (bold, frozen) and widths; filters are set at the end. */
static lxw_worksheet *sheet(struct book *b, const char *name, const char *const *heads, size_t n)
{
	lxw_worksheet *ws = workbook_add_worksheet(b->wb, name);

	for (size_t c = 0; c < n; c++) {
		worksheet_write_string(ws, 0, (lxw_col_t)c, heads[c], b->head);
		worksheet_set_column(ws, (lxw_col_t)c, (lxw_col_t)c,
		                     strlen(heads[c]) < 10 ? 12 : 20, NULL);
	}
	worksheet_freeze_panes(ws, 1, 0);
	return ws;
}

static void filters(lxw_worksheet *ws, lxw_row_t last, size_t ncols)
{
	worksheet_autofilter(ws, 0, 0, last, (lxw_col_t)(ncols ? ncols - 1 : 0));
}

static void summary(struct book *b, const struct rp_ledger *lg, const struct rp_roster *r)
{
	static const char *const heads[] = {
	    "campaign", "title",   "first_sent",     "last_sent", "missions",
	    "received", "partial", "missing",        "addresses", "pending",
	    "sending",  "sent",    "deferred",       "failed",    "unknown",
	    "bounced",  "replied", "content_sha256", "staged"};
	size_t nh = sizeof(heads) / sizeof(heads[0]);
	lxw_worksheet *ws = sheet(b, "Summary", heads, nh);
	lxw_row_t row = 1;

	for (size_t j = 0; j < lg->n; j++, row++) {
		const struct rp_campaign *c = &lg->v[j];
		struct rp_counts k = {c->missions, c->received,  c->partial,
		                      c->missing,  c->addresses, 0};

		if (r) {
			struct rp_counts *g = xcalloc(r->ngroups + 1, sizeof(*g));

			rp_group_counts(r, c, g, &k);
			free(g);
		}
		s_cell(b, ws, row, 0, c->id);
		s_cell(b, ws, row, 1, c->title);
		d_cell(b, ws, row, 2, c->first_sent);
		d_cell(b, ws, row, 3, c->last_sent);
		n_cell(ws, row, 4, (double)k.missions);
		n_cell(ws, row, 5, (double)k.received);
		n_cell(ws, row, 6, (double)k.partial);
		n_cell(ws, row, 7, (double)k.missing);
		n_cell(ws, row, 8, (double)k.addresses);
		for (int s = 0; s < LS_STAGED; s++)
			n_cell(ws, row, (lxw_col_t)(9 + s), (double)c->by_state[s]);
		s_cell(b, ws, row, 17, c->hash);
		/* added later: last, as in CSV (docs/design.md, "Staging is not delivery") */
		n_cell(ws, row, 18, (double)c->by_state[LS_STAGED]);
	}
	filters(ws, row - 1, nh);
}

static void by_group(struct book *b, const struct rp_ledger *lg, const struct rp_roster *r,
                     const char *by)
{
	const char *heads[] = {"campaign", by ? by : "group", "missions", "received",
	                       "partial",  "missing",         "addresses"};
	lxw_worksheet *ws = sheet(b, "By group", heads, 7);
	lxw_row_t row = 1;

	for (size_t j = 0; r && j < lg->n; j++) {
		struct rp_counts *g = xcalloc(r->ngroups + 1, sizeof(*g)), total;

		rp_group_counts(r, &lg->v[j], g, &total);
		for (size_t k = 0; k <= (by ? r->ngroups : 0); k++, row++) {
			const struct rp_counts *x = by && k < r->ngroups ? &g[k] : &total;

			s_cell(b, ws, row, 0, lg->v[j].id);
			s_cell(b, ws, row, 1, by && k < r->ngroups ? r->groups[k] : "total");
			n_cell(ws, row, 2, (double)x->missions);
			n_cell(ws, row, 3, (double)x->received);
			n_cell(ws, row, 4, (double)x->partial);
			n_cell(ws, row, 5, (double)x->missing);
			n_cell(ws, row, 6, (double)x->addresses);
		}
		free(g);
	}
	filters(ws, row > 1 ? row - 1 : 1, 7);
}

static void missing(struct book *b, const struct rp_campaign *c, const struct rp_roster *r,
                    const char *by)
{
	const char *heads[] = {"campaign",        "key",       "state_party", "email",
	                       by ? by : "group", "reason",    "mission",     "accepted",
	                       "address_state",   "last_code", "last_reply",  "time"};
	lxw_worksheet *ws = sheet(b, "Missing", heads, 12);
	lxw_row_t row = 1;

	for (size_t g = 0; r && c && g < (by ? r->ngroups : 1); g++)
		for (size_t i = 0; i < r->n; i++) {
			const struct rp_status *s = &c->status[i];
			enum rp_mstate ms = rp_status_mstate(s);
			char acc[48];

			if ((by && r->group_of[i] != g) || ms == RP_RECEIVED)
				continue;
			snprintf(acc, sizeof(acc), "%d/%d", s->naccepted, s->naddr);
			s_cell(b, ws, row, 0, c->id);
			s_cell(b, ws, row, 1, r->v[i].key);
			s_cell(b, ws, row, 2, r->v[i].name);
			s_cell(b, ws, row, 3, r->v[i].email);
			s_cell(b, ws, row, 4, by ? r->groups[r->group_of[i]] : NULL);
			s_cell(b, ws, row, 5, rp_reason(s->main_state));
			s_cell(b, ws, row, 6, rp_mstate_name(ms));
			s_cell(b, ws, row, 7, acc);
			s_cell(b, ws, row, 8,
			       s->main_state >= 0 ? ledger_state_name(s->main_state) : NULL);
			if (s->code)
				n_cell(ws, row, 9, s->code);
			s_cell(b, ws, row, 10, s->reply);
			d_cell(b, ws, row, 11, s->updated);
			row++;
		}
	filters(ws, row > 1 ? row - 1 : 1, 12);
}

struct rows_ctx {
	struct book *b;
	lxw_worksheet *ws;
	lxw_row_t row;
	const char *hash;
	long left_out;
};

static int delivery_row(const struct ledger_row *d, void *ctx)
{
	struct rows_ctx *rc = ctx;
	struct book *b = rc->b;
	lxw_worksheet *ws = rc->ws;
	lxw_row_t row = rc->row;

	if (row >= XLSX_ROWS_MAX) {
		rc->left_out++;
		return 0;
	}
	s_cell(b, ws, row, 0, d->campaign);
	s_cell(b, ws, row, 1, d->key);
	s_cell(b, ws, row, 2, ledger_state_name(d->state));
	s_cell(b, ws, row, 3, d->address);
	d_cell(b, ws, row, 4, d->updated);
	n_cell(ws, row, 5, d->attempts);
	if (d->last_code)
		n_cell(ws, row, 6, d->last_code);
	s_cell(b, ws, row, 7, d->last_reply);
	s_cell(b, ws, row, 8, d->message_id);
	switch (rp_carried(d->campaign, d->key, d->message_id, rc->hash)) {
	case 1:
		s_cell(b, ws, row, 9, rc->hash);
		s_cell(b, ws, row, 10, "current");
		break;
	case 0: /* made before an --amend (see rp_carried()) */
		s_cell(b, ws, row, 10, "earlier");
		break;
	}
	rc->row++;
	return 0;
}

static int deliveries(struct book *b, struct ledger *l, const struct rp_ledger *lg,
                      const char *only, long *left_out, char **err)
{
	static const char *const heads[] = {
	    "campaign",  "key",        "state",      "address",        "time",   "attempts",
	    "last_code", "last_reply", "message_id", "content_sha256", "version"};
	const size_t nh = sizeof(heads) / sizeof(heads[0]);
	struct rows_ctx rc = {b, sheet(b, "Deliveries", heads, nh), 1, NULL, 0};
	int code = EX_OK;

	for (size_t j = 0; j < lg->n && !code; j++) {
		if (only && strcmp(only, lg->v[j].id))
			continue;
		rc.hash = lg->v[j].hash; /* the campaign's current version (see audit_views.c) */
		code = ledger_deliveries(l, lg->v[j].id, delivery_row, &rc, err);
	}
	filters(rc.ws, rc.row > 1 ? rc.row - 1 : 1, nh);
	*left_out = rc.left_out;
	return code;
}

static void matrix(struct book *b, const struct rp_ledger *lg, const struct rp_roster *r,
                   const char *by)
{
	const char **heads = xcalloc(lg->n + 4, sizeof(char *));
	lxw_worksheet *ws;
	lxw_row_t row = 1;
	struct rp_counts *g = NULL, total;
	size_t nh = 3 + lg->n;

	heads[0] = "key";
	heads[1] = "state_party";
	heads[2] = by ? by : "group";
	for (size_t j = 0; j < lg->n; j++)
		heads[3 + j] = lg->v[j].id;
	ws = sheet(b, "Matrix", heads, nh);
	for (size_t i = 0; r && i < r->n; i++, row++) {
		s_cell(b, ws, row, 0, r->v[i].key);
		s_cell(b, ws, row, 1, r->v[i].name);
		s_cell(b, ws, row, 2, by ? r->groups[r->group_of[i]] : NULL);
		for (size_t j = 0; j < lg->n; j++) {
			const struct rp_status *s = &lg->v[j].status[i];

			s_cell(b, ws, row, (lxw_col_t)(3 + j),
			       rp_status_mstate(s) == RP_PARTIAL ? "partial"
			       : s->main_state < 0               ? NULL
			                           : ledger_state_name(s->main_state));
		}
	}
	filters(ws, row > 1 ? row - 1 : 1, nh);
	/* the totals under the filtered range: received / missions per campaign */
	if (r) {
		g = xcalloc(r->ngroups + 1, sizeof(*g));
		/* constant memory: a row is written whole before the next one */
		s_cell(b, ws, row, 0, "total (received)");
		for (size_t j = 0; j < lg->n; j++) {
			rp_group_counts(r, &lg->v[j], g, &total);
			n_cell(ws, row, (lxw_col_t)(3 + j), (double)total.received);
		}
		s_cell(b, ws, row + 1, 0, "total (missions)");
		for (size_t j = 0; j < lg->n; j++) {
			rp_group_counts(r, &lg->v[j], g, &total);
			n_cell(ws, row + 1, (lxw_col_t)(3 + j), (double)total.missions);
		}
	}
	free(g);
	free(heads);
}

int audit_xlsx(struct ledger *l, const struct audit_opts *a, char **err)
{
	struct rp_ledger lg = {0};
	const struct rp_campaign *focus = NULL;
	lxw_workbook_options wo = {.constant_memory = LXW_FALSE};
	struct book b = {0};
	long left_out = 0;
	lxw_error e;
	int rc;

	if ((rc = rp_ledger_fold(l, NULL, a->roster, &lg, err)))
		goto out;
	for (size_t j = 0; j < lg.n; j++)
		if (a->campaign && !strcmp(lg.v[j].id, a->campaign))
			focus = &lg.v[j];
	if (!a->campaign && lg.n)
		focus = &lg.v[lg.n - 1];
	/* constant memory: a million deliveries are written row by row, not held */
	wo.constant_memory = LXW_TRUE;
	if (!(b.wb = workbook_new_opt(a->output, &wo))) {
		rc = error_set(err, EX_CANTCREAT, "cannot write %s", a->output);
		goto out;
	}
	b.head = workbook_add_format(b.wb);
	format_set_bold(b.head);
	b.date = workbook_add_format(b.wb);
	format_set_num_format(b.date, "yyyy-mm-dd hh:mm:ss");
	summary(&b, &lg, a->roster);
	by_group(&b, &lg, a->roster, a->by);
	missing(&b, focus, a->roster, a->by);
	rc = deliveries(&b, l, &lg, a->campaign, &left_out, err);
	matrix(&b, &lg, a->roster, a->by);
	if ((e = workbook_close(b.wb)) != LXW_NO_ERROR && !rc)
		rc = error_set(err, e == LXW_ERROR_CREATING_XLSX_FILE ? EX_CANTCREAT : EX_IOERR,
		               "writing %s failed: %s", a->output, lxw_strerror(e));
	if (!rc && left_out)
		fprintf(stderr,
		        "demarche audit: %ld deliveries past the sheet's %d rows left out of %s "
		        "(use --format csv)\n",
		        left_out, XLSX_ROWS_MAX, a->output);
out:
	buf_free(&b.tmp);
	rp_ledger_free(&lg);
	return rc;
}
