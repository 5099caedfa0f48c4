/* Rosters: header and joins at open, then streamed passes that validate, filter and hand over. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/tz.h"
#include "base/xalloc.h"
#include "base/address.h"
#include "roster/csvread.h"
#include "roster/roster.h"
#include "roster/parts.h"

#define NONE ((size_t)-1)
/* csvr_read() returns this from our callback once the header is read. */
#define STOP_AFTER_HEADER 1000

/* A set of 64-bit hashes with the line each was first seen on (open addressing). */
struct hset {
	uint64_t *h; /* 0 marks an empty slot */
	uint32_t *line;
	size_t n, cap;
};

struct table {
	char *path;
	char *col;   /* join column name */
	size_t jcol; /* its index in the table */
	size_t rcol; /* its index in the roster */
	char **names;
	size_t ncols;
	struct trow {
		char **v; /* ncols strings */
		long line;
	} * rows;
	size_t nrows, cap;
	struct diags *d; /* while loading */
	/* Per column: the earlier source that also has it (the roster, ROSTER_SRC, or a table
	 * index) and its column there, or NONE; both must then agree row by row. */
	size_t *dup_src, *dup_col;
	/* A facts table dates itself with a "# as_of: YYYY-MM-DD" line above its header and
	 * names its three-valued columns (yes/no/unknown) with "# facts: a, b". */
	char *as_of; /* NULL: not a facts table */
	long as_of_line, facts_line;
	char **fact_names; /* as written in "# facts:" */
	size_t nfact_names;
	unsigned char *fact; /* per column: a fact column */
	/* Membership columns (NONE when absent): the state's status at as_of, the dates it
	 * joined and left. */
	size_t c_status, c_instrument, c_notified, c_effective;
	size_t parties; /* rows that are States Parties on the sending date */
};

#define ROSTER_SRC ((size_t)-2)

struct where {
	char *col, *val;
	int neg;
};

struct only_key {
	char *k;
	int seen;
};

struct roster {
	char *path, *key;
	char **cols;
	size_t ncols;
	unsigned char *contact; /* per column: value can reach a header, so no CR/LF */
	size_t keycol, emailcol, cccol, langcol, salcol, honcol, namecol;
	struct table *tables;
	size_t ntables;
	struct where *wheres;
	size_t nwheres;
	struct only_key *only;
	size_t nonly;
	int smtputf8;
	char **langs;
	size_t nlangs, en;
	char **appeal; /* the appeal's languages, or NULL (not known: any of langs will do) */
	size_t nappeal;
	size_t fallback; /* index in langs of --fallback-language, or NONE */
	size_t *by_lang;
	int (*exclude)(void *user, const char *key);
	void *exclude_user;
	int (*exclude_row)(void *user, const struct roster_row *row);
	void *exclude_row_user;
	char date[11];    /* the sending date, YYYY-MM-DD */
	int audience_any; /* rows need not be States Parties on that date */
	char **fact_cols; /* the fact columns of every facts table, each once */
	size_t nfact_cols;
	struct roster_stats stats;
	struct hset keys, addrs;
	/* during a pass */
	int (*fn)(void *user, const struct roster_row *row);
	void *user;
	struct diags *d;
	int header_changed;
};

struct roster_row {
	struct roster *r;
	long line;
	char **v;
	char ***joined; /* per table: the matching row or NULL */
	size_t lang;    /* index in r->langs */
	const char *salutation;
};

/* Columns that can reach a mail header (To, Cc, Subject templates) and so must be one line. */
static const char *const contact_columns[] = {"email",      "cc",        "state", "mission",
                                              "name",       "honorific", "title", "language",
                                              "salutation", NULL};

/* ---- hashing and the duplicate sets ---- */

/* FNV-1a over the ASCII-lower-cased bytes, then splitmix64's finaliser to spread the bits. */
static uint64_t hash_ci(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)tolower((unsigned char)s[i]);
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

static void hset_clear(struct hset *s)
{
	free(s->h);
	free(s->line);
	memset(s, 0, sizeof(*s));
}

/* Adds h; returns 0 when new, else the line it was first seen on. */
static long hset_add(struct hset *s, uint64_t h, long line)
{
	size_t i;

	/* Linear probing stays quick up to three quarters full; memory is what we watch. */
	if (4 * (s->n + 1) > 3 * s->cap) {
		struct hset old = *s;
		s->cap = old.cap ? 2 * old.cap : 256;
		s->h = xcalloc(s->cap, sizeof(*s->h));
		s->line = xcalloc(s->cap, sizeof(*s->line));
		s->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.h[i])
				hset_add(s, old.h[i], old.line[i]);
		free(old.h);
		free(old.line);
	}
	for (i = h & (s->cap - 1); s->h[i]; i = (i + 1) & (s->cap - 1))
		if (s->h[i] == h)
			return s->line[i] ? (long)s->line[i] : -1;
	s->h[i] = h;
	s->line[i] = line > 0 && line <= (long)UINT32_MAX ? (uint32_t)line : 0;
	s->n++;
	return 0;
}

/* ---- small helpers ---- */

static size_t col_index(char **names, size_t n, const char *col)
{
	for (size_t i = 0; i < n; i++)
		if (str_ieq(names[i], col))
			return i;
	return NONE;
}

static int is_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

static char *lower_dup(const char *s)
{
	char *p = xstrdup(s);

	for (char *q = p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **dup_strv(char *const *v, size_t n)
{
	char **c = xcalloc(n + 1, sizeof(*c));

	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

/* ---- join tables ---- */

static int table_cb(void *user, const struct csvr_record *rec)
{
	struct table *t = user;

	if (rec->index == 0) {
		t->names = dup_strv(rec->v, rec->n);
		t->ncols = rec->n;
		return 0;
	}
	if (rec->bad)
		return 0;
	for (size_t i = 0; i < rec->n; i++)
		if (strlen(rec->v[i]) != rec->len[i] || strpbrk(rec->v[i], "\r\n"))
			diags_add(t->d, DIAG_ERROR, t->path, rec->line, t->names[i],
			          "line break or NUL in a value: a joined value must be one line");
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->rows = xreallocarray(t->rows, t->cap, sizeof(*t->rows));
	}
	t->rows[t->nrows].v = dup_strv(rec->v, rec->n);
	t->rows[t->nrows].line = rec->line;
	t->nrows++;
	return 0;
}

static const struct table *sort_table; /* qsort has no user pointer */

static int cmp_rows(const void *a, const void *b)
{
	const struct trow *ra = a, *rb = b;
	int c = strcasecmp(ra->v[sort_table->jcol], rb->v[sort_table->jcol]);

	return c ? c : (ra->line > rb->line) - (ra->line < rb->line);
}

static const struct trow *table_row(const struct table *t, const char *val)
{
	size_t lo = 0, hi = t->nrows;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(val, t->rows[mid].v[t->jcol]);
		if (c == 0)
			return &t->rows[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static char **table_find(const struct table *t, const char *val)
{
	const struct trow *tr = table_row(t, val);

	return tr ? tr->v : NULL;
}

/* ---- facts tables: dates, directives, membership ---- */

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* 1 when s is a calendar date written YYYY-MM-DD. */
static int valid_date(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return 0;
	if (s[10])
		return 0;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	return m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1] + (m == 2 && is_leap(y));
}

/* Days since 1970-01-01 of a valid date (H. Hinnant's days_from_civil). */
static long days_of(const char *s)
{
	long y = atol(s), m = atol(s + 5), d = atol(s + 8);
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void today(char out[11])
{
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
		strcpy(out, "1970-01-01");
}

/* Cuts blank space (and the commas a spreadsheet pads a one-cell row with) off both ends. */
static char *trim_directive(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n,", e[-1]))
		e--;
	*e = '\0';
	return s;
}

/*
 * Reads the comment lines above a table's header: "# as_of: YYYY-MM-DD" and
 * "# facts: COL, COL"; other comments are free text. The CSV reader skips them.
 */
static void read_directives(struct table *t, struct diags *d)
{
	FILE *fp = fopen(t->path, "rb");
	char line[4096];
	long n = 0;

	if (!fp)
		return; /* csvr_read() reports it */
	while (fgets(line, sizeof line, fp)) {
		char *p = line, *colon, *key, *val;

		n++;
		if (n == 1 && !memcmp(p, "\xEF\xBB\xBF", 3))
			p += 3;
		if (*p != '#')
			break;
		p = trim_directive(p + 1);
		colon = strchr(p, ':');
		if (!colon)
			continue;
		*colon = '\0';
		key = trim_directive(p);
		val = trim_directive(colon + 1);
		if (!strcasecmp(key, "as_of")) {
			if (!valid_date(val)) {
				diags_add(d, DIAG_ERROR, t->path, n, "as_of",
				          "'%s' is not a date: write '# as_of: YYYY-MM-DD'", val);
				continue;
			}
			free(t->as_of);
			t->as_of = xstrdup(val);
			t->as_of_line = n;
		} else if (!strcasecmp(key, "facts")) {
			t->facts_line = n;
			for (char *tok = strtok(val, ", \t"); tok; tok = strtok(NULL, ", \t")) {
				t->fact_names = xreallocarray(t->fact_names, t->nfact_names + 1,
				                              sizeof(*t->fact_names));
				t->fact_names[t->nfact_names++] = lower_dup(tok);
			}
		}
	}
	fclose(fp);
}

/* The value of column c in a table row, or "" when the table has no such column. */
static const char *cell(const struct trow *tr, size_t c)
{
	return c == NONE ? "" : tr->v[c];
}

/*
 * Whether the row's state is a State Party on date: it has deposited its instrument by
 * then (an empty instrument_date: a party long since) and no withdrawal has taken effect.
 * When not, *since is the date it left (*left 1) or will join (*left 0).
 */
static int party_on(const struct table *t, const struct trow *tr, const char *date,
                    const char **since, int *left)
{
	const char *eff = cell(tr, t->c_effective), *inst = cell(tr, t->c_instrument);

	*since = NULL;
	*left = 0;
	if (*eff && strcmp(date, eff) >= 0) {
		*since = eff;
		*left = 1;
		return 0;
	}
	if (*inst && strcmp(date, inst) < 0) {
		*since = inst;
		return 0;
	}
	return 1;
}

/* Checks a facts table's membership columns at load; counts the parties on date. */
static void check_facts_table(struct table *t, const char *date, struct diags *d)
{
	size_t date_cols[3];

	t->fact = xcalloc(t->ncols + 1, 1);
	for (size_t i = 0; i < t->nfact_names; i++) {
		size_t c = col_index(t->names, t->ncols, t->fact_names[i]);
		if (c == NONE)
			diags_add(d, DIAG_ERROR, t->path, t->facts_line, t->fact_names[i],
			          "'# facts:' names a column the table does not have");
		else
			t->fact[c] = 1;
	}
	t->c_status = col_index(t->names, t->ncols, "status");
	t->c_instrument = col_index(t->names, t->ncols, "instrument_date");
	t->c_notified = col_index(t->names, t->ncols, "withdrawal_notified");
	t->c_effective = col_index(t->names, t->ncols, "withdrawal_effective");
	date_cols[0] = t->c_instrument;
	date_cols[1] = t->c_notified;
	date_cols[2] = t->c_effective;
	t->parties = 0;
	for (size_t i = 0; i < t->nrows; i++) {
		const struct trow *tr = &t->rows[i];
		const char *st = cell(tr, t->c_status), *eff = cell(tr, t->c_effective), *since;
		int left;

		for (size_t k = 0; k < 3; k++)
			if (date_cols[k] != NONE && *tr->v[date_cols[k]] &&
			    !valid_date(tr->v[date_cols[k]]))
				diags_add(d, DIAG_ERROR, t->path, tr->line, t->names[date_cols[k]],
				          "'%s' is not a date: write YYYY-MM-DD, or leave it empty",
				          tr->v[date_cols[k]]);
		if (t->c_status != NONE) {
			if (!strcasecmp(st, "withdrawn")) {
				if (!*eff || !valid_date(eff) || strcmp(eff, t->as_of) > 0)
					diags_add(
					    d, DIAG_ERROR, t->path, tr->line, "status",
					    "'withdrawn' needs the withdrawal_effective date, on "
					    "or before as_of %s",
					    t->as_of);
			} else if (!strcasecmp(st, "party")) {
				if (*eff && valid_date(eff) && strcmp(eff, t->as_of) <= 0)
					diags_add(d, DIAG_ERROR, t->path, tr->line, "status",
					          "'party', but its withdrawal took effect on %s, "
					          "before as_of %s: write 'withdrawn'",
					          eff, t->as_of);
			} else {
				diags_add(d, DIAG_ERROR, t->path, tr->line, "status",
				          "'%s': write 'party' or 'withdrawn'", st);
			}
		}
		if (party_on(t, tr, date, &since, &left))
			t->parties++;
	}
}

/* A fact cell's problem, or NULL when it is yes, no or unknown. */
static const char *fact_problem(const char *v)
{
	if (is_blank(v))
		return "empty cell in a fact column: write yes, no or unknown (unknown when no "
		       "source settles it)";
	if (strcasecmp(v, "yes") && strcasecmp(v, "no") && strcasecmp(v, "unknown"))
		return "not yes, no or unknown";
	return NULL;
}

static void table_free(struct table *t)
{
	free(t->as_of);
	free_strv(t->fact_names, t->nfact_names);
	free(t->fact);
	free(t->path);
	free(t->col);
	for (size_t i = 0; i < t->nrows; i++)
		free_strv(t->rows[i].v, t->ncols);
	free(t->rows);
	free_strv(t->names, t->ncols);
	free(t->dup_src);
	free(t->dup_col);
}

/* Loads one --join FILE[:COL] table; returns an exit code, problems in d. */
static int load_table(struct roster *r, const char *spec, struct diags *d)
{
	struct table *t;
	const char *colon = strrchr(spec, ':');
	size_t errs = d->errors;
	int rc;

	r->tables = xreallocarray(r->tables, r->ntables + 1, sizeof(*r->tables));
	t = &r->tables[r->ntables++];
	memset(t, 0, sizeof(*t));
	if (colon && colon[1] && !strchr(colon, '/')) {
		t->path = xstrndup(spec, (size_t)(colon - spec));
		t->col = lower_dup(colon + 1);
	} else {
		t->path = xstrdup(spec);
		t->col = xstrdup("iso3");
	}
	t->d = d;
	read_directives(t, d);
	rc = csvr_read(t->path, table_cb, t, d);
	if (rc != EX_OK)
		return rc;
	t->jcol = col_index(t->names, t->ncols, t->col);
	t->rcol = col_index(r->cols, r->ncols, t->col);
	if (t->jcol == NONE)
		diags_add(d, DIAG_ERROR, t->path, 1, t->col, "join column missing from this table");
	if (t->rcol == NONE)
		diags_add(d, DIAG_ERROR, r->path, 1, t->col,
		          "join column of %s missing from the roster", t->path);
	if (d->errors > errs)
		return EX_DATAERR;
	sort_table = t;
	qsort(t->rows, t->nrows, sizeof(*t->rows), cmp_rows);
	for (size_t i = 0; i + 1 < t->nrows; i++)
		if (!strcasecmp(t->rows[i].v[t->jcol], t->rows[i + 1].v[t->jcol]))
			diags_add(d, DIAG_ERROR, t->path, t->rows[i + 1].line, t->col,
			          "value '%s' also in row %ld: a join needs one row per value",
			          t->rows[i + 1].v[t->jcol], t->rows[i].line);
	/* A column may come from two places (the example roster and the facts both have
	 * 'state') only if they agree on every row: checked for each row in row_cb(). */
	t->dup_src = xcalloc(t->ncols, sizeof(*t->dup_src));
	t->dup_col = xcalloc(t->ncols, sizeof(*t->dup_col));
	for (size_t c = 0; c < t->ncols; c++) {
		size_t i = col_index(r->cols, r->ncols, t->names[c]);
		t->dup_src[c] = t->dup_col[c] = NONE;
		if (c == t->jcol)
			continue;
		if (i != NONE) {
			t->dup_src[c] = ROSTER_SRC;
			t->dup_col[c] = i;
			continue;
		}
		for (size_t k = 0; k + 1 < r->ntables; k++) {
			i = col_index(r->tables[k].names, r->tables[k].ncols, t->names[c]);
			if (i != NONE) {
				t->dup_src[c] = k;
				t->dup_col[c] = i;
				break;
			}
		}
	}
	if (t->as_of)
		check_facts_table(t, r->date, d);
	else if (t->nfact_names)
		diags_add(d, DIAG_ERROR, t->path, t->facts_line, NULL,
		          "'# facts:' without '# as_of: YYYY-MM-DD': date the facts");
	return d->errors > errs ? EX_DATAERR : EX_OK;
}

/* ---- opening ---- */

static int header_cb(void *user, const struct csvr_record *rec)
{
	struct roster *r = user;

	r->cols = dup_strv(rec->v, rec->n);
	r->ncols = rec->n;
	return STOP_AFTER_HEADER;
}

static int check_header(struct roster *r, struct diags *d)
{
	size_t errs = d->errors;

	for (size_t i = 0; i < r->ncols; i++) {
		if (!r->cols[i][0])
			diags_add(d, DIAG_ERROR, r->path, 1, NULL, "column %zu has no name", i + 1);
		else
			for (size_t j = 0; j < i; j++)
				if (!strcmp(r->cols[i], r->cols[j]))
					diags_add(d, DIAG_ERROR, r->path, 1, r->cols[i],
					          "column named twice (columns %zu and %zu)", j + 1,
					          i + 1);
	}
	r->keycol = col_index(r->cols, r->ncols, r->key);
	r->emailcol = col_index(r->cols, r->ncols, "email");
	r->cccol = col_index(r->cols, r->ncols, "cc");
	r->langcol = col_index(r->cols, r->ncols, "language");
	r->salcol = col_index(r->cols, r->ncols, "salutation");
	r->honcol = col_index(r->cols, r->ncols, "honorific");
	r->namecol = col_index(r->cols, r->ncols, "name");
	if (r->keycol == NONE)
		diags_add(d, DIAG_ERROR, r->path, 1, r->key,
		          "missing column: the key column (choose another with --key COL)");
	if (r->emailcol == NONE)
		diags_add(d, DIAG_ERROR, r->path, 1, "email",
		          "missing column: every roster needs one");
	r->contact = xcalloc(r->ncols + 1, 1);
	for (size_t i = 0; i < r->ncols; i++) {
		r->contact[i] = i == r->keycol;
		for (size_t k = 0; contact_columns[k]; k++)
			if (!strcmp(r->cols[i], contact_columns[k]))
				r->contact[i] = 1;
	}
	return d->errors > errs ? EX_DATAERR : EX_OK;
}

static int known_column(const struct roster *r, const char *col)
{
	if (str_ieq(col, "language") || str_ieq(col, "salutation"))
		return 1;
	if (col_index(r->cols, r->ncols, col) != NONE)
		return 1;
	for (size_t t = 0; t < r->ntables; t++)
		if (col_index(r->tables[t].names, r->tables[t].ncols, col) != NONE)
			return 1;
	return 0;
}

static int parse_wheres(struct roster *r, const char *const *w, struct diags *d)
{
	int rc = EX_OK;

	for (; w && *w; w++) {
		const char *eq = strchr(*w, '=');
		struct where *x;
		size_t clen;

		if (!eq || eq == *w || (eq == *w + 1 && **w == '!')) {
			diags_add(d, DIAG_ERROR, NULL, 0, NULL,
			          "--where '%s': expected COL=VALUE or COL!=VALUE", *w);
			rc = EX_USAGE;
			continue;
		}
		r->wheres = xreallocarray(r->wheres, r->nwheres + 1, sizeof(*r->wheres));
		x = &r->wheres[r->nwheres++];
		x->neg = eq[-1] == '!';
		clen = (size_t)(eq - *w) - (size_t)x->neg;
		x->col = xstrndup(*w, clen);
		x->val = xstrdup(eq + 1);
		if (!known_column(r, x->col)) {
			diags_add(d, DIAG_ERROR, r->path, 0, x->col,
			          "--where names a column that neither the roster nor a joined "
			          "table has");
			if (rc == EX_OK)
				rc = EX_DATAERR;
		}
	}
	return rc;
}

static void parse_only(struct roster *r, const char *const *only)
{
	for (; only && *only; only++) {
		const char *s = *only;
		while (*s) {
			size_t n = strcspn(s, ",");
			size_t a = 0, b = n;
			while (a < b && isspace((unsigned char)s[a]))
				a++;
			while (b > a && isspace((unsigned char)s[b - 1]))
				b--;
			if (b > a) {
				r->only = xreallocarray(r->only, r->nonly + 1, sizeof(*r->only));
				r->only[r->nonly].k = xstrndup(s + a, b - a);
				r->only[r->nonly++].seen = 0;
			}
			s += n + (s[n] == ',');
		}
	}
}

/* "en, es, fr": the appeal's languages, for messages. */
static void langs_list(const struct roster *r, struct buf *b)
{
	for (size_t i = 0; i < r->nappeal; i++)
		buf_addf(b, "%s%s", i ? ", " : "", r->appeal[i]);
}

/* langs: en, fr, es (counted in this order), then the appeal's others. */
static void set_languages(struct roster *r, const char *const *appeal)
{
	static const char *const dflt[] = {"en", "fr", "es", NULL};
	size_t n = 0;

	while (appeal && appeal[n])
		n++;
	r->langs = xcalloc(n + 4, sizeof(*r->langs));
	for (size_t i = 0; dflt[i]; i++)
		r->langs[r->nlangs++] = xstrdup(dflt[i]);
	if (n)
		r->appeal = xcalloc(n + 1, sizeof(*r->appeal));
	for (size_t i = 0; i < n; i++) {
		r->appeal[r->nappeal++] = lower_dup(appeal[i]);
		if (col_index(r->langs, r->nlangs, appeal[i]) == NONE)
			r->langs[r->nlangs++] = lower_dup(appeal[i]);
	}
	r->en = 0;
	r->by_lang = xcalloc(r->nlangs, sizeof(*r->by_lang));
	r->stats.nlangs = r->nlangs;
	r->stats.langs = (const char *const *)r->langs;
	r->stats.by_lang = r->by_lang;
}

/* The fact columns of every facts table, each once; a warning for facts grown old. */
static void collect_facts(struct roster *r, struct diags *d)
{
	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		long age;

		if (!tb->as_of || !tb->fact)
			continue;
		age = days_of(r->date) - days_of(tb->as_of);
		if (age > ROSTER_FACTS_MAX_AGE)
			diags_add(d, DIAG_WARNING, tb->path, tb->as_of_line, "as_of",
			          "the facts are as of %s, %ld days before the sending date %s "
			          "(more than %d): check them against the depositary and update "
			          "them (recipients/README.md)",
			          tb->as_of, age, r->date, ROSTER_FACTS_MAX_AGE);
		for (size_t c = 0; c < tb->ncols; c++) {
			if (!tb->fact[c] ||
			    col_index(r->fact_cols, r->nfact_cols, tb->names[c]) != NONE)
				continue;
			r->fact_cols =
			    xreallocarray(r->fact_cols, r->nfact_cols + 2, sizeof(*r->fact_cols));
			r->fact_cols[r->nfact_cols++] = xstrdup(tb->names[c]);
			r->fact_cols[r->nfact_cols] = NULL;
		}
	}
}

int roster_open(const struct roster_opts *o, struct roster **out, struct diags *d)
{
	struct roster *r = xcalloc(1, sizeof(*r));
	int rc, rc2;

	*out = NULL;
	r->path = xstrdup(o->path);
	r->key = lower_dup(o->key && *o->key ? o->key : "iso3");
	r->smtputf8 = o->smtputf8;
	r->exclude = o->exclude;
	r->exclude_user = o->exclude_user;
	r->exclude_row = o->exclude_row;
	r->exclude_row_user = o->exclude_row_user;
	r->audience_any = o->audience_any;
	if (o->date && !valid_date(o->date)) {
		diags_add(d, DIAG_ERROR, NULL, 0, NULL,
		          "the sending date '%s' is not a date: write YYYY-MM-DD", o->date);
		rc = EX_USAGE;
		goto out;
	}
	if (o->date)
		memcpy(r->date, o->date, 11);
	else
		today(r->date);
	set_languages(r, o->languages);
	r->fallback = NONE;
	if (o->fallback_language) {
		r->fallback = col_index(r->langs, r->nlangs, o->fallback_language);
		if (r->appeal && col_index(r->appeal, r->nappeal, o->fallback_language) == NONE)
			r->fallback = NONE;
		if (r->fallback == NONE) {
			struct buf b = BUF_INIT;

			langs_list(r, &b);
			diags_add(
			    d, DIAG_ERROR, NULL, 0, NULL,
			    "--fallback-language '%s': the appeal has no such version (it has "
			    "%s)",
			    o->fallback_language, buf_str(&b));
			buf_free(&b);
			rc = EX_USAGE;
			goto out;
		}
	}
	parse_only(r, o->only);

	rc = csvr_read(r->path, header_cb, r, d);
	if (rc == STOP_AFTER_HEADER)
		rc = EX_OK;
	if (rc != EX_OK)
		goto out;
	/* Go on after a problem, so that one run reports all of them. */
	rc = check_header(r, d);
	for (const char *const *j = o->joins; j && *j; j++) {
		rc2 = load_table(r, *j, d);
		if (rc2 == EX_NOINPUT || (rc2 != EX_OK && rc == EX_OK))
			rc = rc2;
	}
	rc2 = parse_wheres(r, o->wheres, d);
	if (rc == EX_OK)
		rc = rc2;
	collect_facts(r, d);
out:
	if (rc != EX_OK) {
		roster_free(r);
		return rc;
	}
	*out = r;
	return EX_OK;
}

void roster_free(struct roster *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->key);
	free_strv(r->cols, r->ncols);
	free(r->contact);
	for (size_t i = 0; i < r->ntables; i++)
		table_free(&r->tables[i]);
	free(r->tables);
	for (size_t i = 0; i < r->nwheres; i++) {
		free(r->wheres[i].col);
		free(r->wheres[i].val);
	}
	free(r->wheres);
	for (size_t i = 0; i < r->nonly; i++)
		free(r->only[i].k);
	free(r->only);
	free_strv(r->langs, r->nlangs);
	free_strv(r->appeal, r->nappeal);
	free_strv(r->fact_cols, r->nfact_cols);
	free(r->by_lang);
	hset_clear(&r->keys);
	hset_clear(&r->addrs);
	free(r);
}

const struct roster_stats *roster_stats(const struct roster *r)
{
	return &r->stats;
}

const char *roster_path(const struct roster *r)
{
	return r->path;
}

const char *roster_date(const struct roster *r)
{
	return r->date;
}

const char *const *roster_fact_columns(const struct roster *r, size_t *n)
{
	static const char *const none[] = {NULL};

	*n = r->nfact_cols;
	return r->nfact_cols ? (const char *const *)r->fact_cols : none;
}

const char *roster_facts_as_of(const struct roster *r, long *parties)
{
	for (size_t t = 0; t < r->ntables; t++)
		if (r->tables[t].as_of) {
			if (parties)
				*parties = (long)r->tables[t].parties;
			return r->tables[t].as_of;
		}
	return NULL;
}

/* ---- derived values ---- */

const char *const *roster_header(const struct roster *r, size_t *n)
{
	*n = r->ncols;
	return (const char *const *)r->cols;
}

/* Columns read by name besides the contact ones: letter parts (roster/parts.c). */
static const char *const part_columns[] = {"city", NULL};

const char *const *roster_known_columns(void)
{
	static const char *const known[] = {"email",      "cc",        "state", "mission",
	                                    "name",       "honorific", "title", "language",
	                                    "salutation", "city",      NULL};
	return known;
}

int roster_column_used(const struct roster *r, const char *col)
{
	if (str_ieq(col, r->key))
		return 1;
	for (size_t k = 0; contact_columns[k]; k++)
		if (str_ieq(col, contact_columns[k]))
			return 1;
	for (size_t k = 0; part_columns[k]; k++)
		if (str_ieq(col, part_columns[k]))
			return 1;
	for (size_t t = 0; t < r->ntables; t++)
		if (str_ieq(col, r->tables[t].col) ||
		    col_index(r->tables[t].names, r->tables[t].ncols, col) != NONE)
			return 1;
	for (size_t w = 0; w < r->nwheres; w++)
		if (str_ieq(col, r->wheres[w].col))
			return 1;
	/* the send calendar's columns (send --window, --at --local) */
	if (str_ieq(col, "timezone") || str_ieq(col, "weekend"))
		return 1;
	return 0;
}

const char *roster_salutation(const char *lang, const char *honorific, const char *name)
{
	static const char *const male[] = {"mr",    "mr.",      "sr",  "sr.",   "señor",
	                                   "senor", "sir",      "don", "excmo", "excmo.",
	                                   "m.",    "monsieur", NULL};
	static const char *const female[] = {
	    "ms",     "ms.", "mrs",  "mrs.", "sra",  "sra.", "señora", "senora", "madam",
	    "madame", "mme", "mme.", "dame", "doña", "dona", "excma",  "excma.", NULL};
	char first[32] = "";

	if (!lang || !strcasecmp(lang, "en"))
		return "Your Excellency";
	if (!strcasecmp(lang, "fr"))
		return "Excellence";
	if (strcasecmp(lang, "es"))
		return NULL;
	/* Only the honorific, or a title written before the name, tells; never guess from a
	 * first name. */
	if (name) {
		size_t n = strcspn(name, " \t");
		if (n < sizeof first) {
			memcpy(first, name, n);
			first[n] = '\0';
		}
	}
	if (parts_has_word(honorific, male) || parts_has_word(first, male))
		return "Excelentísimo Señor";
	if (parts_has_word(honorific, female) || parts_has_word(first, female))
		return "Excelentísima Señora";
	return "Excelencia";
}

/* The raw value of col: the roster's, else a joined table's; NULL when neither has it. */
static const char *raw_get(const struct roster_row *row, const char *col)
{
	const struct roster *r = row->r;
	size_t i = col_index(r->cols, r->ncols, col);

	if (i != NONE)
		return row->v[i];
	for (size_t t = 0; t < r->ntables; t++) {
		i = col_index(r->tables[t].names, r->tables[t].ncols, col);
		if (i != NONE)
			return row->joined[t] ? row->joined[t][i] : NULL;
	}
	return NULL;
}

const char *roster_get(const struct roster_row *row, const char *col)
{
	const char *v;

	if (str_ieq(col, "language"))
		return row->r->langs[row->lang];
	v = raw_get(row, col);
	if (str_ieq(col, "salutation") && (!v || is_blank(v)))
		return row->salutation;
	return v;
}

const char *roster_key(const struct roster_row *row)
{
	return row->v[row->r->keycol];
}

const char *roster_language(const struct roster_row *row)
{
	return row->r->langs[row->lang];
}

long roster_row_line(const struct roster_row *row)
{
	return row->line;
}

static json_t *json_value(const char *s)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true"))
		return json_true();
	if (!strcasecmp(s, "no") || !strcasecmp(s, "false"))
		return json_false();
	return json_string(s);
}

/*
 * A facts table's part of the context: for each fact column X, X (true only for yes: a
 * {{#X}} section can assert nothing unconfirmed), X_status (yes, no or unknown) and
 * X_known; the number of States Parties on the sending date; and the state's names in the
 * row's language (name_LANG, formal_LANG) as state_name and state_formal.
 */
static void add_facts(const struct roster_row *row, json_t *o)
{
	const struct roster *r = row->r;
	const char *lang = r->langs[row->lang], *v;
	char col[64];
	int counted = 0;

	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		if (!tb->as_of)
			continue;
		if (!counted) {
			json_object_set_new(o, "states_parties_count",
			                    json_integer((json_int_t)tb->parties));
			counted = 1;
		}
		if (!row->joined[t])
			continue;
		for (size_t c = 0; c < tb->ncols; c++) {
			char *name;
			if (!tb->fact[c] || fact_problem(row->joined[t][c]))
				continue;
			v = row->joined[t][c];
			json_object_set_new(o, tb->names[c], json_boolean(!strcasecmp(v, "yes")));
			name = xasprintf("%s_status", tb->names[c]);
			json_object_set_new(o, name,
			                    json_string(!strcasecmp(v, "yes")  ? "yes"
			                                : !strcasecmp(v, "no") ? "no"
			                                                       : "unknown"));
			free(name);
			name = xasprintf("%s_known", tb->names[c]);
			json_object_set_new(o, name, json_boolean(strcasecmp(v, "unknown") != 0));
			free(name);
		}
	}
	snprintf(col, sizeof col, "name_%s", lang);
	if ((v = raw_get(row, col)) && !is_blank(v))
		json_object_set_new(o, "state_name", json_string(v));
	snprintf(col, sizeof col, "formal_%s", lang);
	if ((v = raw_get(row, col)) && !is_blank(v))
		json_object_set_new(o, "state_formal", json_string(v));
}

json_t *roster_context(const struct roster_row *row)
{
	return roster_context_in(row, NULL);
}

json_t *roster_context_in(const struct roster_row *row, const char *letter_lang)
{
	const struct roster *r = row->r;
	json_t *o = json_object();
	const char *sal;

	for (size_t i = 0; i < r->ncols; i++)
		if (!is_blank(row->v[i]))
			json_object_set_new(o, r->cols[i], json_value(row->v[i]));
	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		if (!row->joined[t])
			continue;
		for (size_t c = 0; c < tb->ncols; c++)
			if (c != tb->jcol && tb->dup_src[c] == NONE && !is_blank(row->joined[t][c]))
				json_object_set_new(o, tb->names[c], json_value(row->joined[t][c]));
	}
	add_facts(row, o);
	json_object_set_new(o, "language", json_string(r->langs[row->lang]));
	/* A salutation the row gives is kept; else parts_add() derives one from the honorific
	 * and title, with the letter parts the layout uses (inside address, date line). */
	sal = raw_get(row, "salutation");
	if (!sal || is_blank(sal))
		json_object_del(o, "salutation");
	parts_add(o, letter_lang ? letter_lang : r->langs[row->lang], r->date, roster_key(row));
	return o;
}

/* ---- one pass ---- */

struct addr_ctx {
	struct roster *r;
	long line;
	const char *col;
	int single; /* the email column: exactly one address */
	size_t count;
};

static int check_one_address(void *user, const char *s, size_t len)
{
	struct addr_ctx *a = user;
	struct roster *r = a->r;
	const char *why = address_check(s, len, r->smtputf8);
	long first;

	a->count++;
	if (why) {
		diags_add(r->d, DIAG_ERROR, r->path, a->line, a->col, "'%.*s': %s", (int)len, s,
		          why);
		return 0;
	}
	first = hset_add(&r->addrs, hash_ci(s, len), a->line);
	if (first == a->line)
		diags_add(r->d, DIAG_ERROR, r->path, a->line, a->col,
		          "'%.*s' appears twice in this row", (int)len, s);
	else if (first)
		diags_add(r->d, DIAG_ERROR, r->path, a->line, a->col,
		          "duplicate address '%.*s' (also in row %ld): one message per address",
		          (int)len, s, first);
	return 0;
}

static void check_addresses(struct roster *r, const struct roster_row *row)
{
	struct addr_ctx a = {r, row->line, "email", 1, 0};
	const char *email = row->v[r->emailcol];
	size_t len = strlen(email);

	/* Tolerate spaces around the cell (a spreadsheet habit); nothing else. */
	while (*email == ' ' || *email == '\t') {
		email++;
		len--;
	}
	while (len && (email[len - 1] == ' ' || email[len - 1] == '\t'))
		len--;
	if (len == 0)
		diags_add(r->d, DIAG_ERROR, r->path, row->line, "email", "empty address");
	else if (strcspn(email, ",;") < len && !memchr(email, '"', len))
		diags_add(r->d, DIAG_ERROR, r->path, row->line, "email",
		          "'%.*s': one address only in the email column; put others in cc",
		          (int)len, email);
	else
		check_one_address(&a, email, len);
	if (r->cccol != NONE) {
		a.col = "cc";
		a.single = 0;
		address_split(row->v[r->cccol], check_one_address, &a);
	}
}

static void check_values(struct roster *r, const struct roster_row *row, const size_t *lens)
{
	for (size_t i = 0; i < r->ncols; i++) {
		if (strlen(row->v[i]) != lens[i])
			diags_add(r->d, DIAG_ERROR, r->path, row->line, r->cols[i],
			          "NUL byte in the value");
		else if (r->contact[i] && strpbrk(row->v[i], "\r\n"))
			diags_add(r->d, DIAG_ERROR, r->path, row->line, r->cols[i],
			          "line break in a value that can reach a mail header (CR/LF "
			          "injection); keep it on one line");
	}
}

/* The send calendar's columns (docs/design.md, "The send calendar"): a timezone the tz
 * database has, a weekend tz_weekend_parse() reads. Empty cells are fine. */
static void check_calendar(struct roster *r, const struct roster_row *row)
{
	const char *tz = roster_get(row, "timezone"), *we = roster_get(row, "weekend");
	unsigned mask;

	if (tz && *tz && !tz_known(tz))
		diags_add(r->d, DIAG_ERROR, r->path, row->line, "timezone",
		          "'%s' is not a time zone of the tz database (an IANA name such as "
		          "America/New_York or Europe/Brussels)",
		          tz);
	if (we && *we && tz_weekend_parse(we, &mask))
		diags_add(r->d, DIAG_ERROR, r->path, row->line, "weekend",
		          "'%s' is not a weekend: day names such as sat,sun or fri-sat", we);
}

static void derive(struct roster *r, struct roster_row *row)
{
	const char *lang = r->langcol != NONE ? row->v[r->langcol] : "";
	size_t i;

	row->lang = r->en;
	if (is_blank(lang))
		goto out;
	i = col_index(r->langs, r->nlangs, lang);
	/* A one-language appeal goes to every en, fr and es mission (the letter warns). */
	if (i != NONE &&
	    (!r->appeal || r->nappeal == 1 || col_index(r->appeal, r->nappeal, lang) != NONE)) {
		row->lang = i;
	} else if (!r->appeal) {
		diags_add(r->d, DIAG_WARNING, r->path, row->line, "language",
		          "unknown language '%s'; using en", lang);
	} else {
		/* A value the appeal has no version in ("French", "es-ES", "de") is not quietly
		 * sent in English: an error, unless a fallback was asked for. */
		struct buf b = BUF_INIT;
		const char *near = str_nearest(lang, (const char *const *)r->appeal, r->nappeal);
		const char *dflt =
		    col_index(r->appeal, r->nappeal, "en") != NONE ? "en" : r->appeal[0];

		langs_list(r, &b);
		if (r->fallback != NONE) {
			row->lang = r->fallback;
			diags_add(r->d, DIAG_WARNING, r->path, row->line, "language",
			          "the appeal has no '%s' version (it has %s); using %s "
			          "(--fallback-language)",
			          lang, buf_str(&b), r->langs[r->fallback]);
		} else {
			diags_add(r->d, DIAG_ERROR, r->path, row->line, "language",
			          "the appeal has no '%s' version; it has %s%s%s%s (or "
			          "--fallback-language %s sends these missions the %s version)",
			          lang, buf_str(&b), near ? " (did you mean '" : "",
			          near ? near : "", near ? "'?)" : "", dflt, dflt);
		}
		buf_free(&b);
	}
out:
	row->salutation =
	    roster_salutation(r->langs[row->lang], r->honcol != NONE ? row->v[r->honcol] : NULL,
	                      r->namecol != NONE ? row->v[r->namecol] : NULL);
}

static int selected(struct roster *r, const struct roster_row *row)
{
	const char *key = roster_key(row);
	int sel = 1;

	for (size_t i = 0; i < r->nwheres; i++) {
		const char *v = roster_get(row, r->wheres[i].col);
		if (str_ieq(v ? v : "", r->wheres[i].val) == r->wheres[i].neg)
			sel = 0;
	}
	if (r->nonly) {
		int hit = 0;
		for (size_t i = 0; i < r->nonly; i++)
			if (str_ieq(r->only[i].k, key))
				hit = r->only[i].seen = 1;
		if (!hit)
			sel = 0;
	}
	if (sel && r->exclude && r->exclude(r->exclude_user, key))
		sel = 0;
	if (sel && r->exclude_row && r->exclude_row(r->exclude_row_user, row))
		sel = 0;
	return sel;
}

static const char *source_path(const struct roster *r, size_t src)
{
	return src == ROSTER_SRC ? r->path : r->tables[src].path;
}

/* A column that two sources define must have the same value in both (ASCII case aside). */
static void check_agreement(struct roster *r, const struct roster_row *row)
{
	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		if (!row->joined[t])
			continue;
		for (size_t c = 0; c < tb->ncols; c++) {
			size_t src = tb->dup_src[c];
			const char *other;
			if (src == NONE)
				continue;
			if (src == ROSTER_SRC)
				other = row->v[tb->dup_col[c]];
			else if (row->joined[src])
				other = row->joined[src][tb->dup_col[c]];
			else
				continue;
			if (!str_ieq(other, row->joined[t][c]))
				diags_add(
				    r->d, DIAG_ERROR, r->path, row->line, tb->names[c],
				    "column defined by both %s and %s, which disagree: '%s' and "
				    "'%s'",
				    source_path(r, src), tb->path, other, row->joined[t][c]);
		}
	}
}

/*
 * The row's facts: every fact cell it joins must be yes, no or unknown (the error names
 * the facts file, its row and the column), and its state must be a State Party on the
 * sending date unless the appeal's audience is any.
 */
static void check_facts(struct roster *r, const struct roster_row *row)
{
	for (size_t t = 0; t < r->ntables; t++) {
		const struct table *tb = &r->tables[t];
		const struct trow *tr;
		const char *since, *jv = row->v[tb->rcol];
		int left;

		if (!tb->as_of || !row->joined[t] || !(tr = table_row(tb, jv)))
			continue;
		for (size_t c = 0; c < tb->ncols; c++) {
			const char *why = tb->fact[c] ? fact_problem(tr->v[c]) : NULL;
			if (why)
				diags_add(r->d, DIAG_ERROR, tb->path, tr->line, tb->names[c],
				          "'%s' (row %ld of %s): %s", jv, row->line, r->path, why);
		}
		if (r->audience_any || party_on(tb, tr, r->date, &since, &left))
			continue;
		if (left)
			diags_add(r->d, DIAG_ERROR, r->path, row->line, tb->col,
			          "'%s' is not a State Party on the sending date %s: its "
			          "withdrawal took effect on %s (%s row %ld); an appeal to former "
			          "parties needs the header 'Audience: any'",
			          jv, r->date, since, tb->path, tr->line);
		else
			diags_add(r->d, DIAG_ERROR, r->path, row->line, tb->col,
			          "'%s' is not yet a State Party on the sending date %s: its "
			          "instrument is dated %s (%s row %ld); an appeal to it needs the "
			          "header 'Audience: any'",
			          jv, r->date, since, tb->path, tr->line);
	}
}

static int row_cb(void *user, const struct csvr_record *rec)
{
	struct roster *r = user;
	struct roster_row row = {0};
	char **joined[8];
	size_t errs = r->d->errors;
	long first;
	int rc = 0;

	if (rec->index == 0) {
		/* The file changed under us between passes: stop rather than misread it. */
		int same = rec->n == r->ncols;
		for (size_t i = 0; same && i < rec->n; i++)
			same = !strcmp(rec->v[i], r->cols[i]);
		if (!same) {
			diags_add(r->d, DIAG_ERROR, r->path, rec->line, NULL,
			          "the header changed since the roster was opened");
			return EX_DATAERR;
		}
		return 0;
	}
	r->stats.rows++;
	if (rec->bad)
		return 0;
	row.r = r;
	row.line = rec->line;
	row.v = rec->v;
	row.joined = r->ntables <= 8 ? joined : xcalloc(r->ntables, sizeof(*row.joined));
	check_values(r, &row, rec->len);
	if (is_blank(row.v[r->keycol])) {
		diags_add(r->d, DIAG_ERROR, r->path, row.line, r->key, "empty key");
	} else {
		first = hset_add(&r->keys, hash_ci(row.v[r->keycol], strlen(row.v[r->keycol])),
		                 row.line);
		if (first)
			diags_add(r->d, DIAG_ERROR, r->path, row.line, r->key,
			          "duplicate key '%s' (also in row %ld)", row.v[r->keycol], first);
	}
	check_addresses(r, &row);
	for (size_t t = 0; t < r->ntables; t++) {
		const char *jv = row.v[r->tables[t].rcol];
		row.joined[t] = table_find(&r->tables[t], jv);
		if (!row.joined[t])
			diags_add(r->d, DIAG_WARNING, r->path, row.line, r->tables[t].col,
			          "'%s' is not in %s: its columns are missing for this row", jv,
			          r->tables[t].path);
	}
	check_agreement(r, &row);
	check_facts(r, &row);
	check_calendar(r, &row);
	derive(r, &row);
	if (r->d->errors == errs && selected(r, &row)) {
		r->stats.selected++;
		r->by_lang[row.lang]++;
		rc = r->fn(r->user, &row);
	}
	if (row.joined != joined)
		free(row.joined);
	return rc;
}

int roster_each(struct roster *r, int (*fn)(void *user, const struct roster_row *row), void *user,
                struct diags *d)
{
	size_t errs = d->errors, warns = d->warnings;
	int rc;

	hset_clear(&r->keys);
	hset_clear(&r->addrs);
	r->stats.rows = r->stats.selected = 0;
	memset(r->by_lang, 0, r->nlangs * sizeof(*r->by_lang));
	for (size_t i = 0; i < r->nonly; i++)
		r->only[i].seen = 0;
	r->fn = fn;
	r->user = user;
	r->d = d;
	rc = csvr_read(r->path, row_cb, r, d);
	if (rc == EX_OK || rc == EX_DATAERR) {
		for (size_t i = 0; i < r->nonly; i++)
			if (!r->only[i].seen)
				diags_add(d, DIAG_ERROR, r->path, 0, r->key,
				          "--only: no row has the key '%s'", r->only[i].k);
	}
	r->stats.errors = d->errors - errs;
	r->stats.warnings = d->warnings - warns;
	/* The sets are only for the pass; give the memory back at once. */
	hset_clear(&r->keys);
	hset_clear(&r->addrs);
	if (rc == EX_OK && r->stats.errors)
		rc = EX_DATAERR;
	return rc;
}

/* ---- demarche facts ---- */

/* Prints the rows of t whose state left by date (left 1) or has a withdrawal pending (0). */
static size_t list_withdrawals(const struct table *t, const char *date, int left, FILE *out)
{
	size_t c_state = col_index(t->names, t->ncols, "state"), n = 0;

	for (size_t i = 0; i < t->nrows; i++) {
		const struct trow *tr = &t->rows[i];
		const char *eff = cell(tr, t->c_effective), *notified = cell(tr, t->c_notified);
		const char *name = c_state != NONE ? tr->v[c_state] : tr->v[t->jcol];
		int gone = *eff && strcmp(date, eff) >= 0;

		if (!*eff || gone != left)
			continue;
		if (out)
			fprintf(out, "    %s (%s): notified %s, effective %s\n", name,
			        tr->v[t->jcol], *notified ? notified : "(date not recorded)", eff);
		n++;
	}
	return n;
}

int roster_facts_report(const char *path, const char *date, FILE *out, struct diags *d)
{
	struct table t = {0};
	char day[11];
	size_t errs = d->errors, c_state, notyet = 0;
	int rc;

	if (date && !valid_date(date)) {
		diags_add(d, DIAG_ERROR, NULL, 0, NULL,
		          "the date '%s' is not a date: write YYYY-MM-DD", date);
		return EX_USAGE;
	}
	if (date)
		memcpy(day, date, 11);
	else
		today(day);
	t.path = xstrdup(path);
	t.col = xstrdup("iso3");
	t.d = d;
	read_directives(&t, d);
	rc = csvr_read(t.path, table_cb, &t, d);
	if (rc != EX_OK)
		goto out;
	t.jcol = col_index(t.names, t.ncols, t.col);
	if (t.jcol == NONE)
		diags_add(d, DIAG_ERROR, t.path, 1, t.col, "missing column: the key of the facts");
	if (!t.as_of)
		diags_add(d, DIAG_ERROR, t.path, 1, NULL,
		          "not a facts table: no '# as_of: YYYY-MM-DD' line above the header");
	if (d->errors > errs) {
		rc = EX_DATAERR;
		goto out;
	}
	check_facts_table(&t, day, d);
	for (size_t i = 0; i < t.nrows; i++)
		for (size_t c = 0; c < t.ncols; c++) {
			const char *why = t.fact[c] ? fact_problem(t.rows[i].v[c]) : NULL;
			if (why)
				diags_add(d, DIAG_ERROR, t.path, t.rows[i].line, t.names[c], "%s",
				          why);
		}
	if (d->errors > errs) {
		rc = EX_DATAERR;
		goto out;
	}
	if (days_of(day) - days_of(t.as_of) > ROSTER_FACTS_MAX_AGE)
		diags_add(d, DIAG_WARNING, t.path, t.as_of_line, "as_of",
		          "the facts are as of %s, %ld days before %s (more than %d): check them "
		          "against the depositary and update them (recipients/README.md)",
		          t.as_of, days_of(day) - days_of(t.as_of), day, ROSTER_FACTS_MAX_AGE);
	c_state = col_index(t.names, t.ncols, "state");
	fprintf(out, "%s: facts as of %s, %zu rows; on %s:\n", t.path, t.as_of, t.nrows, day);
	fprintf(out, "  States Parties             %zu\n", t.parties);
	fprintf(out, "  withdrawn                  %zu\n", list_withdrawals(&t, day, 1, NULL));
	list_withdrawals(&t, day, 1, out);
	fprintf(out, "  withdrawal pending         %zu\n", list_withdrawals(&t, day, 0, NULL));
	list_withdrawals(&t, day, 0, out);
	for (size_t i = 0; i < t.nrows; i++) {
		const char *since;
		int left;
		if (!party_on(&t, &t.rows[i], day, &since, &left) && !left)
			notyet++;
	}
	fprintf(out, "  not yet a party            %zu\n", notyet);
	for (size_t i = 0; notyet && i < t.nrows; i++) {
		const char *since;
		int left;
		if (!party_on(&t, &t.rows[i], day, &since, &left) && !left)
			fprintf(out, "    %s (%s): instrument of %s\n",
			        c_state != NONE ? t.rows[i].v[c_state] : t.rows[i].v[t.jcol],
			        t.rows[i].v[t.jcol], since);
	}
	fprintf(out, "  fact column (over the %zu parties)   yes   no  unknown\n", t.parties);
	for (size_t c = 0; c < t.ncols; c++) {
		size_t yes = 0, no = 0, unk = 0;
		if (!t.fact[c])
			continue;
		for (size_t i = 0; i < t.nrows; i++) {
			const char *since, *v = t.rows[i].v[c];
			int left;
			if (!party_on(&t, &t.rows[i], day, &since, &left))
				continue;
			if (!strcasecmp(v, "yes"))
				yes++;
			else if (!strcasecmp(v, "no"))
				no++;
			else
				unk++;
		}
		fprintf(out, "  %-34s %5zu %4zu %8zu\n", t.names[c], yes, no, unk);
	}
	rc = EX_OK;
out:
	table_free(&t);
	return rc;
}
