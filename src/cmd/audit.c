/* demarche audit: report from the ledger as an aligned table, CSV (RFC 4180) or JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/strutil.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "ledger/ledger.h"
#include "roster/roster.h"

const char usage_audit[] =
    "usage: demarche audit [CAMPAIGN] [--format table|csv|json]\n"
    "       demarche audit CAMPAIGN --missing --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                      [--where COL=VAL]...\n"
    "       demarche audit --matrix --to ROSTER.csv [...]\n"
    "\n"
    "Without CAMPAIGN: one line per campaign (title, first and last sent, deliveries by state).\n"
    "With CAMPAIGN: one line per delivery (key, state, address, time, attempts, last reply,\n"
    "Message-ID); exits 1 when any of them is not sent (sent or replied), 0 when all are.\n"
    "--missing: the roster's missions with no sent delivery of CAMPAIGN (exit 1 if any).\n"
    "--matrix: the roster's missions x the ledger's campaigns (or CAMPAIGN), best state each.\n"
    "A table on a terminal is coloured unless NO_COLOR is set; CSV is RFC 4180 (CRLF).\n"
    "Values are treated as hostile: the table shows control, bidi and invisible characters\n"
    "and bytes that are not UTF-8 escaped (\\x1b, \\u202e, \\xff); a CSV cell starting with\n"
    "= + - @ TAB or CR gets a leading ' and quotes (cells are otherwise exact, escaped only\n"
    "on a terminal); JSON is exact, with each byte that is not UTF-8 as U+FFFD.\n"
    "An unknown CAMPAIGN exits 65; a missing ledger 66.\n";

enum format { FMT_TABLE, FMT_CSV, FMT_JSON };
enum kind { K_STR, K_INT };

/*
 * One output in any format. Table rows are buffered to align them unless the widths are
 * known in advance (the per-delivery report, which may have a million rows, streams).
 */
struct out {
	enum format fmt;
	int colour;
	size_t ncols;
	const char *const *heads;
	const enum kind *kinds;
	int state_col; /* column coloured by state; -1 none; -2 all but the first (matrix) */
	int *width;
	int widths_known;
	int visible; /* CSV to a terminal: cells escaped as in the table */
	char **rows; /* buffered cells, ncols per row (NULL cell: none) */
	size_t nrows, cap;
	size_t emitted;
	struct buf line;
};

/* Display width of a cell as the table shows it: escaped (see esc_term()). */
static int width_of(const char *s)
{
	return (int)esc_term_width(s);
}

static const char *state_colour(const char *s)
{
	int st = ledger_state_parse(s);

	switch (st) {
	case LS_SENT:
	case LS_REPLIED:
		return "\033[32m";
	case LS_FAILED:
	case LS_BOUNCED:
		return "\033[31m";
	case LS_DEFERRED:
	case LS_UNKNOWN:
	case LS_SENDING:
		return "\033[33m";
	default:
		return NULL;
	}
}

static void out_init(struct out *o, enum format fmt, size_t ncols, const char *const *heads,
                     const enum kind *kinds, int state_col)
{
	memset(o, 0, sizeof(*o));
	o->fmt = fmt;
	o->colour = fmt == FMT_TABLE && term_colour(stdout);
	o->visible = fmt == FMT_CSV && term_isatty(stdout);
	o->ncols = ncols;
	o->heads = heads;
	o->kinds = kinds;
	o->state_col = state_col;
	o->width = xcalloc(ncols, sizeof(int));
	for (size_t i = 0; i < ncols; i++)
		o->width[i] = width_of(heads[i]);
}

/* Lines are built whole and written at once: a million rows must not cost a printf each. */
static void put_line(struct out *o)
{
	fwrite(o->line.data, 1, o->line.len, stdout);
	buf_reset(&o->line);
}

static void csv_row(struct out *o, const char *const *cells)
{
	for (size_t i = 0; i < o->ncols; i++) {
		esc_csv(&o->line, cells[i], o->visible);
		buf_adds(&o->line, i + 1 < o->ncols ? "," : "\r\n");
	}
	put_line(o);
}

static void table_row(struct out *o, const char *const *cells, int head)
{
	static const char spaces[] = "                                ";

	for (size_t i = 0; i < o->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "";
		const char *c = NULL;
		int pad;

		if (o->colour && head)
			c = "\033[1m";
		else if (o->colour && ((int)i == o->state_col || (o->state_col == -2 && i > 0)))
			c = state_colour(s);
		if (c)
			buf_adds(&o->line, c);
		/* padded after escaping: what the terminal shows is what is measured */
		pad = o->width[i] - (int)esc_term(&o->line, s) + 2;
		if (pad <
		    2) /* wider than measured (see audit_deliveries()): never run into the next */
			pad = 2;
		if (c)
			buf_adds(&o->line, "\033[0m");
		if (i + 1 == o->ncols)
			break;
		for (; pad > 0; pad -= (int)sizeof(spaces) - 1)
			buf_add(&o->line, spaces,
			        pad < (int)sizeof(spaces) - 1 ? (size_t)pad : sizeof(spaces) - 1);
	}
	while (o->line.len && o->line.data[o->line.len - 1] == ' ')
		buf_truncate(&o->line, o->line.len - 1);
	buf_addc(&o->line, '\n');
	put_line(o);
}

/*
 * One row as a JSON object, written directly (a million rows must not each build a jansson
 * object). Strings are exact (esc_json()); K_INT cells are our own decimals.
 */
static void json_row(struct out *o, const char *const *cells)
{
	buf_adds(&o->line, o->emitted++ ? ",\n{" : "[\n{");
	for (size_t i = 0; i < o->ncols; i++) {
		if (i)
			buf_addc(&o->line, ',');
		esc_json(&o->line, o->heads[i]);
		buf_addc(&o->line, ':');
		if (!cells[i])
			buf_adds(&o->line, "null");
		else if (o->kinds[i] == K_INT)
			buf_adds(&o->line, cells[i]);
		else
			esc_json(&o->line, cells[i]);
	}
	buf_addc(&o->line, '}');
	put_line(o);
}

static void emit(struct out *o, const char *const *cells)
{
	if (o->fmt == FMT_JSON) {
		json_row(o, cells);
	} else if (o->fmt == FMT_CSV) {
		if (!o->emitted++)
			csv_row(o, o->heads);
		csv_row(o, cells);
	} else if (o->widths_known) {
		if (!o->emitted++)
			table_row(o, o->heads, 1);
		table_row(o, cells, 0);
	} else {
		if (o->nrows == o->cap) {
			o->cap = o->cap ? o->cap * 2 : 64;
			o->rows = xreallocarray(o->rows, o->cap * o->ncols, sizeof(char *));
		}
		for (size_t i = 0; i < o->ncols; i++) {
			int w = width_of(cells[i]);

			o->rows[o->nrows * o->ncols + i] = cells[i] ? xstrdup(cells[i]) : NULL;
			if (w > o->width[i])
				o->width[i] = w;
		}
		o->nrows++;
	}
}

static void out_end(struct out *o)
{
	if (o->fmt == FMT_JSON)
		fputs(o->emitted ? "\n]\n" : "[]\n", stdout);
	else if (o->fmt == FMT_CSV && !o->emitted)
		csv_row(o, o->heads); /* a header even without rows */
	else if (o->fmt == FMT_TABLE && !o->widths_known) {
		table_row(o, o->heads, 1);
		for (size_t r = 0; r < o->nrows; r++)
			table_row(o, (const char *const *)&o->rows[r * o->ncols], 0);
	}
	for (size_t i = 0; i < o->nrows * o->ncols; i++)
		free(o->rows[i]);
	free(o->rows);
	free(o->width);
	buf_free(&o->line);
	o->rows = NULL;
	o->width = NULL;
}

/* A non-negative int as text without printf's cost (a million rows); out holds 16 bytes. */
static void itoa_small(int v, char out[16])
{
	char tmp[16], *p = tmp + sizeof(tmp);
	unsigned u = v < 0 ? 0 : (unsigned)v;
	size_t n;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, n);
	out[n] = '\0';
}

/* A table shows times to the second; CSV and JSON keep the stored milliseconds. */
static const char *short_time(const char *iso, char out[32])
{
	if (!iso)
		return NULL;
	size_t n = strnlen(iso, 19);

	memcpy(out, iso, n);
	out[n] = 'Z';
	out[n + 1] = '\0';
	return out;
}

/* --- audit: one line per campaign ---------------------------------------------------- */

static int campaign_line(const struct ledger_campaign *c, void *ctx)
{
	struct out *o = ctx;
	char num[LS__COUNT + 1][24], first[32], last[32];
	const char *cells[6 + LS__COUNT];

	cells[0] = c->id;
	cells[1] = c->title;
	cells[2] = c->first_sent;
	cells[3] = c->last_sent;
	if (o->fmt == FMT_TABLE) {
		cells[2] = short_time(c->first_sent, first);
		cells[3] = short_time(c->last_sent, last);
	}
	snprintf(num[LS__COUNT], sizeof(num[0]), "%ld", c->total);
	cells[4] = num[LS__COUNT];
	for (int s = 0; s < LS__COUNT; s++) {
		snprintf(num[s], sizeof(num[0]), "%ld", c->counts[s]);
		cells[5 + s] = num[s];
	}
	cells[5 + LS__COUNT] = c->content_hash;
	emit(o, cells);
	return 0;
}

static int audit_campaigns(struct ledger *l, enum format fmt, char **err)
{
	static const char *const heads[] = {
	    "campaign", "title",   "first_sent", "last_sent",      "total",
	    "pending",  "sending", "sent",       "deferred",       "failed",
	    "unknown",  "bounced", "replied",    "content_sha256",
	};
	static const enum kind kinds[] = {K_STR, K_STR, K_STR, K_STR, K_INT, K_INT, K_INT,
	                                  K_INT, K_INT, K_INT, K_INT, K_INT, K_INT, K_STR};
	struct out o;
	int rc;

	out_init(&o, fmt, fmt == FMT_TABLE ? 13 : 14, heads, kinds, -1);
	rc = ledger_campaigns(l, campaign_line, &o, err);
	out_end(&o);
	return rc;
}

/* --- audit CAMPAIGN: one line per delivery ------------------------------------------- */

struct deliveries_ctx {
	struct out *o;
	long not_received;
};

static int delivery_line(const struct ledger_row *r, void *ctx)
{
	struct deliveries_ctx *dc = ctx;
	char attempts[16], code[16], time[32];
	const char *cells[8];

	if (!ledger_state_received(r->state))
		dc->not_received++;
	itoa_small(r->attempts, attempts);
	itoa_small(r->last_code, code);
	cells[0] = r->key;
	cells[1] = ledger_state_name(r->state);
	cells[2] = r->address;
	cells[3] = dc->o->fmt == FMT_TABLE ? short_time(r->updated, time) : r->updated;
	cells[4] = attempts;
	if (dc->o->fmt == FMT_TABLE) {
		cells[5] = r->last_reply ? r->last_reply : r->last_code ? code : NULL;
		cells[6] = r->message_id;
	} else {
		cells[5] = r->last_code ? code : NULL;
		cells[6] = r->last_reply;
		cells[7] = r->message_id;
	}
	emit(dc->o, cells);
	return 0;
}

/* Measuring stops after this many deliveries when the table is not for a terminal. */
#define MEASURE_MAX  10000
#define MEASURE_STOP (-1)

struct measure {
	struct ledger_widths w;
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
	if ((n = width_of(r->key)) > w->key)
		w->key = n;
	if ((n = width_of(r->address)) > w->address)
		w->address = n;
	if ((n = width_of(r->last_reply)) > w->reply)
		w->reply = n;
	return 0;
}

static int audit_deliveries(struct ledger *l, const char *campaign, enum format fmt, char **err)
{
	static const char *const theads[] = {"key",      "state",      "address",   "time",
	                                     "attempts", "last_reply", "message_id"};
	static const char *const heads[] = {"key",      "state",     "address",    "time",
	                                    "attempts", "last_code", "last_reply", "message_id"};
	static const enum kind kinds[] = {K_STR, K_STR, K_STR, K_STR, K_INT, K_INT, K_STR, K_STR};
	static const enum kind tkinds[] = {K_STR, K_STR, K_STR, K_STR, K_INT, K_STR, K_STR};
	struct deliveries_ctx dc = {0};
	struct ledger_widths w = {0};
	struct measure m = {0};
	struct out o;
	int rc;

	if (fmt == FMT_TABLE) {
		out_init(&o, fmt, 7, theads, tkinds, 1);
		/*
		 * The rows stream (a million must not be held), so the widths are known first:
		 * measured on the escaped text (measure_line()), a pass over the rows. On a
		 * terminal, where a second pass costs little next to drawing the lines, always;
		 * elsewhere up to MEASURE_MAX deliveries (any real campaign), and past that from
		 * one SQL pass over the length indexes, which count raw characters: a value that
		 * escaping makes wider (\x1b for ESC) then pushes the rest of its line right.
		 */
		m.max = term_isatty(stdout) ? 0 : MEASURE_MAX;
		rc = ledger_deliveries(l, campaign, measure_line, &m, err);
		if (rc == MEASURE_STOP)
			rc = ledger_delivery_widths(l, campaign, &w, err);
		if (rc)
			goto out;
		w.key = w.key > m.w.key ? w.key : m.w.key;
		w.address = w.address > m.w.address ? w.address : m.w.address;
		w.reply = w.reply > m.w.reply ? w.reply : m.w.reply;
		o.widths_known = 1;
		o.width[0] = w.key > o.width[0] ? w.key : o.width[0];
		o.width[1] = 8;
		o.width[2] = w.address > o.width[2] ? w.address : o.width[2];
		o.width[3] = 20;
		o.width[4] = 8;
		o.width[5] = w.reply > o.width[5] ? w.reply : o.width[5];
		if (o.width[5] < 3)
			o.width[5] = 3;
	} else {
		out_init(&o, fmt, 8, heads, kinds, -1);
	}
	dc.o = &o;
	rc = ledger_deliveries(l, campaign, delivery_line, &dc, err);
	if (!rc && fmt == FMT_TABLE && !o.emitted)
		table_row(&o, o.heads, 1);
out:
	out_end(&o);
	if (!rc && dc.not_received)
		rc = 1;
	return rc;
}

/* --- --missing and --matrix (need a roster) ------------------------------------------ */

struct keys {
	char **v;
	size_t n, cap;
	char **names, **emails;
};

static int collect_key(void *user, const struct roster_row *row)
{
	struct keys *k = user;
	const char *name = roster_get(row, "state"), *email = roster_get(row, "email");

	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 128;
		k->v = xreallocarray(k->v, k->cap, sizeof(char *));
		k->names = xreallocarray(k->names, k->cap, sizeof(char *));
		k->emails = xreallocarray(k->emails, k->cap, sizeof(char *));
	}
	k->v[k->n] = xstrdup(roster_key(row));
	k->names[k->n] = name ? xstrdup(name) : NULL;
	k->emails[k->n] = email ? xstrdup(email) : NULL;
	k->n++;
	return 0;
}

static void keys_free(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i]);
		free(k->names[i]);
		free(k->emails[i]);
	}
	free(k->v);
	free(k->names);
	free(k->emails);
}

static int read_roster(const struct roster_opts *ro, struct keys *k)
{
	struct diags d = DIAGS_INIT;
	struct roster *r = NULL;
	int rc;

	if ((rc = roster_open(ro, &r, &d)) == EX_OK)
		rc = roster_each(r, collect_key, k, &d);
	diags_print(&d, stderr);
	diags_free(&d);
	roster_free(r);
	return rc;
}

struct missing_ctx {
	struct out *o;
	struct keys *k;
	size_t next;
	long n;
};

static int missing_line(const char *key, void *ctx)
{
	struct missing_ctx *mc = ctx;
	const char *cells[3] = {key, NULL, NULL};

	/* keys come back in roster order: find this one from where the last one was */
	while (mc->next < mc->k->n && strcmp(mc->k->v[mc->next], key))
		mc->next++;
	if (mc->next < mc->k->n) {
		cells[1] = mc->k->names[mc->next];
		cells[2] = mc->k->emails[mc->next];
	}
	mc->n++;
	emit(mc->o, cells);
	return 0;
}

static int audit_missing(struct ledger *l, const char *campaign, struct keys *k, enum format fmt,
                         char **err)
{
	static const char *const heads[] = {"key", "state_party", "email"};
	static const enum kind kinds[] = {K_STR, K_STR, K_STR};
	struct missing_ctx mc = {0};
	struct out o;
	int rc;

	out_init(&o, fmt, 3, heads, kinds, -1);
	mc.o = &o;
	mc.k = k;
	rc = ledger_missing(l, campaign, (const char *const *)k->v, k->n, missing_line, &mc, err);
	out_end(&o);
	if (!rc && mc.n)
		rc = 1;
	return rc;
}

struct names {
	char **v;
	size_t n, cap;
};

static int campaign_name(const struct ledger_campaign *c, void *ctx)
{
	struct names *nm = ctx;

	if (nm->n == nm->cap) {
		nm->cap = nm->cap ? nm->cap * 2 : 16;
		nm->v = xreallocarray(nm->v, nm->cap, sizeof(char *));
	}
	nm->v[nm->n++] = xstrdup(c->id);
	return 0;
}

static int audit_matrix(struct ledger *l, const char *campaign, struct keys *k, enum format fmt,
                        char **err)
{
	struct names nm = {0};
	const char **heads = NULL, **cells = NULL;
	enum kind *kinds = NULL;
	int *states = NULL;
	struct out o;
	int rc;

	if (campaign)
		campaign_name(&(struct ledger_campaign){.id = campaign}, &nm);
	else if ((rc = ledger_campaigns(l, campaign_name, &nm, err)))
		goto out;
	states = xcalloc(k->n * nm.n + 1, sizeof(int));
	if ((rc = ledger_matrix(l, (const char *const *)k->v, k->n, (const char *const *)nm.v, nm.n,
	                        states, err)))
		goto out;
	heads = xcalloc(nm.n + 1, sizeof(char *));
	kinds = xcalloc(nm.n + 1, sizeof(enum kind));
	cells = xcalloc(nm.n + 1, sizeof(char *));
	heads[0] = "key";
	for (size_t j = 0; j < nm.n; j++)
		heads[j + 1] = nm.v[j];
	out_init(&o, fmt, nm.n + 1, heads, kinds, -2);
	for (size_t i = 0; i < k->n; i++) {
		cells[0] = k->v[i];
		for (size_t j = 0; j < nm.n; j++) {
			int s = states[i * nm.n + j];

			cells[j + 1] = s < 0 ? NULL : ledger_state_name(s);
		}
		emit(&o, cells);
	}
	out_end(&o);
out:
	for (size_t j = 0; j < nm.n; j++)
		free(nm.v[j]);
	free(nm.v);
	free(heads);
	free(kinds);
	free(cells);
	free(states);
	return rc;
}

/* --- the command --------------------------------------------------------------------- */

struct strv {
	const char **v;
	size_t n;
};

static void strv_push(struct strv *s, const char *x)
{
	s->v = xreallocarray(s->v, s->n + 2, sizeof(char *));
	s->v[s->n++] = x;
	s->v[s->n] = NULL;
}

struct nearest {
	const char *want;
	char *best;
	size_t d;
};

static int nearest_campaign(const struct ledger_campaign *c, void *ctx)
{
	struct nearest *n = ctx;
	size_t d = str_distance(n->want, c->id);

	if (str_startswith(c->id, n->want))
		d = 0;
	if (d <= 3 && d < n->d) {
		free(n->best);
		n->best = xstrdup(c->id);
		n->d = d;
	}
	return 0;
}

int cmd_audit(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'}, {"missing", no_argument, NULL, 'm'},
	    {"matrix", no_argument, NULL, 'x'},       {"to", required_argument, NULL, 't'},
	    {"key", required_argument, NULL, 'k'},    {"join", required_argument, NULL, 'j'},
	    {"where", required_argument, NULL, 'w'},  {NULL, 0, NULL, 0},
	};
	struct roster_opts ro = {0};
	struct strv joins = {0}, wheres = {0};
	struct keys keys = {0};
	struct ledger *l = NULL;
	enum format fmt = FMT_TABLE;
	const char *campaign = NULL;
	int missing = 0, matrix = 0, c, rc;
	char *err = NULL;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "table"))
				fmt = FMT_TABLE;
			else if (!strcmp(optarg, "csv"))
				fmt = FMT_CSV;
			else if (!strcmp(optarg, "json"))
				fmt = FMT_JSON;
			else {
				fprintf(
				    stderr,
				    "demarche audit: unknown format '%s' (table, csv or json)\n",
				    optarg);
				rc = EX_USAGE;
				goto out;
			}
			break;
		case 'm':
			missing = 1;
			break;
		case 'x':
			matrix = 1;
			break;
		case 't':
			ro.path = optarg;
			break;
		case 'k':
			ro.key = optarg;
			break;
		case 'j':
			strv_push(&joins, optarg);
			break;
		case 'w':
			strv_push(&wheres, optarg);
			break;
		default:
			fputs(usage_audit, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (optind < argc)
		campaign = argv[optind++];
	if (optind < argc || (missing && matrix) || (missing && !campaign)) {
		fputs(usage_audit, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if ((missing || matrix) && !ro.path) {
		fprintf(stderr, "demarche audit: --%s needs --to ROSTER.csv\n",
		        missing ? "missing" : "matrix");
		rc = EX_USAGE;
		goto out;
	}
	if (!missing && !matrix && (ro.path || joins.n || wheres.n || ro.key)) {
		fputs("demarche audit: --to, --key, --join and --where go with --missing or "
		      "--matrix\n",
		      stderr);
		rc = EX_USAGE;
		goto out;
	}
	if ((rc = app_config(app)))
		goto out;
	if ((rc = ledger_open(app_store_path(app), LEDGER_READONLY | LEDGER_CHECK, &l, &err)))
		goto out;
	if (campaign && ledger_campaign_exists(l, campaign) != 1) {
		struct nearest near = {campaign, NULL, (size_t)-1};

		ledger_campaigns(l, nearest_campaign, &near, NULL);
		rc = error_set(&err, EX_DATAERR, "no campaign '%s' in the ledger%s%s%s", campaign,
		               near.best ? " (did you mean '" : "", near.best ? near.best : "",
		               near.best ? "'?)" : "");
		free(near.best);
		goto out;
	}
	/* a million lines: write in large blocks */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (missing || matrix) {
		ro.joins = joins.v;
		ro.wheres = wheres.v;
		if ((rc = read_roster(&ro, &keys)))
			goto out;
		rc = missing ? audit_missing(l, campaign, &keys, fmt, &err)
		             : audit_matrix(l, campaign, &keys, fmt, &err);
	} else if (campaign) {
		rc = audit_deliveries(l, campaign, fmt, &err);
	} else {
		rc = audit_campaigns(l, fmt, &err);
	}
	if (fflush(stdout) != 0 && !rc)
		rc = error_set(&err, EX_IOERR, "writing the report failed");
out:
	if (rc > 1 && err) {
		/* it may quote the ledger's values: escaped like the table */
		char *shown = esc_term_dup(err);

		fprintf(stderr, "demarche audit: %s\n", shown);
		free(shown);
	}
	free(err);
	free(joins.v);
	free(wheres.v);
	keys_free(&keys);
	ledger_close(l);
	return rc;
}
