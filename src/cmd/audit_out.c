/* audit's rows as a table fitted to 100 columns, CSV or JSON; the pager for long tables. */
#include "cmd/audit_out.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "base/escape.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "ledger/ledger.h"

#define DEFAULT_WIDTH 100
#define MIN_FIT       8 /* a cut column keeps at least this many columns */

static int width_of(const char *s)
{
	return (int)esc_term_width(s);
}

static const char *state_colour(const char *s)
{
	if (!s)
		return NULL;
	if (!strcmp(s, "received"))
		return "\033[32m";
	if (!strcmp(s, "partial"))
		return "\033[33m";
	if (!strcmp(s, "missing"))
		return "\033[31m";
	switch (ledger_state_parse(s)) {
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

static long col_index(const struct rp_col *cols, size_t ncols, const char *name, size_t len)
{
	for (size_t i = 0; i < ncols; i++)
		if (strlen(cols[i].name) == len && !strncasecmp(cols[i].name, name, len))
			return (long)i;
	return -1;
}

char **rp_cols_unknown(const struct rp_col *cols, size_t ncols, const char *columns)
{
	char **v = NULL;
	size_t n = 0;

	for (const char *p = columns; p && *p;) {
		size_t len = strcspn(p, ",");

		if (len && col_index(cols, ncols, p, len) < 0) {
			v = xreallocarray(v, n + 2, sizeof(char *));
			v[n++] = xstrndup(p, len);
			v[n] = NULL;
		}
		p += len + (p[len] == ',');
	}
	return v;
}

void rp_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int rp_out_init(struct rp_out *o, const struct rp_out_opts *opts, const struct rp_col *cols,
                size_t ncols, char **err)
{
	memset(o, 0, sizeof(*o));
	o->o = *opts;
	if (!o->o.maxwidth)
		o->o.maxwidth = DEFAULT_WIDTH;
	o->cols = cols;
	o->ncols = ncols;
	o->sel = xcalloc(ncols + 1, sizeof(size_t));
	if (opts->columns) {
		for (const char *p = opts->columns; *p;) {
			size_t len = strcspn(p, ",");
			long i = len ? col_index(cols, ncols, p, len) : -1;

			if (i < 0) {
				struct buf b = BUF_INIT;

				for (size_t j = 0; j < ncols; j++)
					buf_addf(&b, "%s%s", j ? ", " : "", cols[j].name);
				error_set(err, EX_USAGE, "--columns: no column '%.*s' here (%s)",
				          (int)len, p, buf_str(&b));
				buf_free(&b);
				return EX_USAGE;
			}
			o->sel = xreallocarray(o->sel, o->nsel + 1, sizeof(size_t));
			o->sel[o->nsel++] = (size_t)i;
			p += len + (p[len] == ',');
		}
	} else {
		for (size_t i = 0; i < ncols; i++)
			if (!(cols[i].flags & RP_COL_ASKED) &&
			    (opts->fmt != RP_TABLE || opts->wide || (cols[i].flags & RP_COL_TABLE)))
				o->sel[o->nsel++] = i;
	}
	o->width = xcalloc(o->nsel + 1, sizeof(int));
	for (size_t i = 0; i < o->nsel; i++)
		o->width[i] = width_of(cols[o->sel[i]].name);
	o->ready = 1;
	return EX_OK;
}

int rp_out_shows(const struct rp_out *o, const char *name)
{
	for (size_t i = 0; i < o->nsel; i++)
		if (!strcmp(o->cols[o->sel[i]].name, name))
			return 1;
	return 0;
}

void rp_out_widths(struct rp_out *o, const int *w)
{
	for (size_t i = 0; i < o->nsel; i++)
		if (w[o->sel[i]] > o->width[i])
			o->width[i] = w[o->sel[i]];
	o->widths_known = 1;
}

/* Lines are built whole and written at once: a million rows must not cost a printf each. */
static void put_line(struct rp_out *o)
{
	fwrite(o->line.data, 1, o->line.len, rp_stdout());
	buf_reset(&o->line);
}

/*
 * Narrows the columns that may be cut, widest first, until the table fits its width (not
 * with --wide). Columns that may not be cut are never narrowed: a key or a state is whole.
 */
static void fit(struct rp_out *o)
{
	long total = 0;

	o->fitted = 1;
	if (o->o.wide)
		return;
	for (size_t i = 0; i < o->nsel; i++)
		total += o->width[i] + (i ? 2 : 0);
	/* one column at a time, so that two wide columns share the cut (a few thousand steps
	 * at most: cheap next to writing the rows) */
	while (total > o->o.maxwidth) {
		long best = -1;

		for (size_t i = 0; i < o->nsel; i++)
			if ((o->cols[o->sel[i]].flags & RP_COL_FIT) && o->width[i] > MIN_FIT &&
			    o->width[i] > width_of(o->cols[o->sel[i]].name) &&
			    (best < 0 || o->width[i] > o->width[best]))
				best = (long)i;
		if (best < 0)
			break;
		o->width[best]--;
		total--;
	}
}

static void csv_row(struct rp_out *o, const char *const *cells, int head)
{
	for (size_t i = 0; i < o->nsel; i++) {
		esc_csv(&o->line, head ? o->cols[o->sel[i]].name : cells[o->sel[i]], o->o.visible);
		buf_adds(&o->line, i + 1 < o->nsel ? "," : "\r\n");
	}
	put_line(o);
}

/* cells are in shown order here (nsel of them) */
static void table_row(struct rp_out *o, const char *const *cells, int head)
{
	static const char spaces[] = "                                ";

	if (!o->fitted)
		fit(o);
	for (size_t i = 0; i < o->nsel; i++) {
		const char *s = cells[i] ? cells[i] : "";
		const char *c = NULL;
		int pad, w;

		if (o->o.colour && head)
			c = "\033[1m";
		else if (o->o.colour && (o->cols[o->sel[i]].flags & RP_COL_STATE))
			c = state_colour(s);
		if (c)
			buf_adds(&o->line, c);
		/* padded after escaping: what the terminal shows is what is measured */
		if (o->o.wide)
			w = (int)esc_term(&o->line, s);
		else
			w = (int)esc_term_fit(&o->line, s, (size_t)o->width[i]);
		pad = o->width[i] - w + 2;
		if (pad < 2) /* wider than measured (--wide): never run into the next */
			pad = 2;
		if (c)
			buf_adds(&o->line, "\033[0m");
		if (i + 1 == o->nsel)
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

static void table_head(struct rp_out *o)
{
	const char **h = xcalloc(o->nsel + 1, sizeof(char *));

	for (size_t i = 0; i < o->nsel; i++)
		h[i] = o->cols[o->sel[i]].name;
	table_row(o, h, 1);
	free(h);
}

/* One row as a JSON object, written directly (a million rows must not each build a jansson
 * object). Strings are exact (esc_json()); RP_INT cells are our own decimals. */
static void json_row(struct rp_out *o, const char *const *cells)
{
	buf_adds(&o->line, o->emitted++ ? ",\n{" : "[\n{");
	for (size_t i = 0; i < o->nsel; i++) {
		const struct rp_col *c = &o->cols[o->sel[i]];
		const char *v = cells[o->sel[i]];

		if (i)
			buf_addc(&o->line, ',');
		esc_json(&o->line, c->name);
		buf_addc(&o->line, ':');
		if (!v)
			buf_adds(&o->line, "null");
		else if (c->kind == RP_INT)
			buf_adds(&o->line, v);
		else
			esc_json(&o->line, v);
	}
	buf_addc(&o->line, '}');
	put_line(o);
}

static void hold(struct rp_out *o, const char *const *cells, size_t key)
{
	if (o->nrows == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->rows = xreallocarray(o->rows, o->cap * o->nsel, sizeof(char *));
		o->order = xreallocarray(o->order, o->cap, sizeof(size_t));
	}
	for (size_t i = 0; i < o->nsel; i++) {
		const char *v = cells[o->sel[i]];
		int w = width_of(v);

		o->rows[o->nrows * o->nsel + i] = v ? xstrdup(v) : NULL;
		if (w > o->width[i])
			o->width[i] = w;
	}
	o->order[o->nrows++] = key;
}

void rp_out_row(struct rp_out *o, const char *const *cells, size_t key)
{
	if (o->sorted || (o->o.fmt == RP_TABLE && !o->widths_known)) {
		hold(o, cells, key);
	} else if (o->o.fmt == RP_JSON) {
		json_row(o, cells);
	} else if (o->o.fmt == RP_CSV) {
		if (!o->emitted++)
			csv_row(o, NULL, 1);
		csv_row(o, cells, 0);
	} else {
		const char **shown = xcalloc(o->nsel + 1, sizeof(char *));

		for (size_t i = 0; i < o->nsel; i++)
			shown[i] = cells[o->sel[i]];
		if (!o->emitted++)
			table_head(o);
		table_row(o, shown, 0);
		free(shown);
	}
}

static const struct rp_out *sort_out;

static int by_order(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	size_t kx = sort_out->order[x], ky = sort_out->order[y];

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x < y ? -1 : x > y;
}

void rp_out_end(struct rp_out *o)
{
	size_t *idx = NULL;

	if (!o->ready) /* rp_out_init() failed or was not called: nothing to write */
		goto out;
	if (o->nrows || (o->o.fmt == RP_TABLE && !o->emitted)) {
		idx = xcalloc(o->nrows + 1, sizeof(size_t));
		for (size_t r = 0; r < o->nrows; r++)
			idx[r] = r;
		if (o->sorted) {
			sort_out = o;
			qsort(idx, o->nrows, sizeof(size_t), by_order);
		}
		if (o->o.fmt == RP_TABLE) {
			table_head(o);
			for (size_t r = 0; r < o->nrows; r++)
				table_row(o, (const char *const *)&o->rows[idx[r] * o->nsel], 0);
		} else {
			/* held for sorting: the cells are in shown order, make them full rows */
			const char **full = xcalloc(o->ncols + 1, sizeof(char *));

			for (size_t r = 0; r < o->nrows; r++) {
				for (size_t i = 0; i < o->nsel; i++)
					full[o->sel[i]] = o->rows[idx[r] * o->nsel + i];
				if (o->o.fmt == RP_JSON) {
					json_row(o, full);
				} else {
					if (!o->emitted++)
						csv_row(o, NULL, 1);
					csv_row(o, full, 0);
				}
			}
			free(full);
		}
	}
	if (o->o.fmt == RP_JSON)
		fputs(o->emitted ? "\n]\n" : "[]\n", rp_stdout());
	else if (o->o.fmt == RP_CSV && !o->emitted)
		csv_row(o, NULL, 1); /* a header even without rows */
out:
	for (size_t i = 0; o->rows && i < o->nrows * o->nsel; i++)
		free(o->rows[i]);
	free(idx);
	free(o->rows);
	free(o->order);
	free(o->width);
	free(o->sel);
	buf_free(&o->line);
	memset(o, 0, sizeof(*o));
}

/* --- the pager ----------------------------------------------------------------------------- */

/*
 * The table is written to memory first (rp_stdout() is a memory stream), then to the
 * terminal when it fits the screen, else into $PAGER. Deciding before starting the pager
 * keeps a short table free of the pager's own terminal codes.
 */
static FILE *mem_stdout;
static char *mem_buf;
static size_t mem_len;

FILE *rp_stdout(void)
{
	return mem_stdout ? mem_stdout : stdout;
}

static const char *pager_command(void)
{
	const char *pager = getenv("PAGER");

	if (!pager)
		pager = "less -FRX";
	if (!*pager || !strcmp(pager, "cat"))
		return NULL;
	return pager;
}

int rp_pager_start(void)
{
	if (!isatty(STDOUT_FILENO) || !pager_command())
		return 0;
	if (!(mem_stdout = open_memstream(&mem_buf, &mem_len)))
		return 0;
	return 1;
}

static long screen_rows(void)
{
	struct winsize ws;
	const char *lines = getenv("LINES");

	if (lines && atol(lines) > 0)
		return atol(lines);
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

/* Writes buf into the pager; returns 0, or -1 when it could not be started. */
static int through_pager(const char *pager, const char *buf, size_t len)
{
	int fd[2], status;
	pid_t pid;
	void (*old)(int);

	if (pipe(fd) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fd[0], STDIN_FILENO);
		close(fd[0]);
		close(fd[1]);
		setenv("LESS", "FRX", 0); /* as git: quit if one screen, colours, no clearing */
		execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
		_exit(127);
	}
	close(fd[0]);
	/* a reader who quits the pager early is not an error: the write fails, we stop */
	old = signal(SIGPIPE, SIG_IGN);
	while (len) {
		ssize_t n = write(fd[1], buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	close(fd[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	signal(SIGPIPE, old);
	return 0;
}

void rp_pager_end(void)
{
	long lines = 0;

	if (!mem_stdout)
		return;
	fclose(mem_stdout); /* sets mem_buf and mem_len */
	mem_stdout = NULL;
	for (size_t i = 0; i < mem_len; i++)
		lines += mem_buf[i] == '\n';
	if (lines < screen_rows() || through_pager(pager_command(), mem_buf, mem_len) < 0)
		fwrite(mem_buf, 1, mem_len, stdout);
	fflush(stdout);
	free(mem_buf);
	mem_buf = NULL;
}
