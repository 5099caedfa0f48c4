/* Facts tables: dates, the directives above the header, membership; demarche facts. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/xalloc.h"
#include "roster/roster_int.h"

/* ---- facts tables: dates, directives, membership ---- */

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* 1 when s is a calendar date written YYYY-MM-DD. */
int rs_valid_date(const char *s)
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
long rs_days_of(const char *s)
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

void rs_today(char out[11])
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
void rs_read_directives(struct table *t, struct diags *d)
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
			if (!rs_valid_date(val)) {
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
				t->fact_names[t->nfact_names++] = rs_lower_dup(tok);
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
int rs_party_on(const struct table *t, const struct trow *tr, const char *date, const char **since,
                int *left)
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
void rs_check_facts_table(struct table *t, const char *date, struct diags *d)
{
	size_t date_cols[3];

	t->fact = xcalloc(t->ncols + 1, 1);
	for (size_t i = 0; i < t->nfact_names; i++) {
		size_t c = rs_col_index(t->names, t->ncols, t->fact_names[i]);
		if (c == NONE)
			diags_add(d, DIAG_ERROR, t->path, t->facts_line, t->fact_names[i],
			          "'# facts:' names a column the table does not have");
		else
			t->fact[c] = 1;
	}
	t->c_status = rs_col_index(t->names, t->ncols, "status");
	t->c_instrument = rs_col_index(t->names, t->ncols, "instrument_date");
	t->c_notified = rs_col_index(t->names, t->ncols, "withdrawal_notified");
	t->c_effective = rs_col_index(t->names, t->ncols, "withdrawal_effective");
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
			    !rs_valid_date(tr->v[date_cols[k]]))
				diags_add(d, DIAG_ERROR, t->path, tr->line, t->names[date_cols[k]],
				          "'%s' is not a date: write YYYY-MM-DD, or leave it empty",
				          tr->v[date_cols[k]]);
		if (t->c_status != NONE) {
			if (!strcasecmp(st, "withdrawn")) {
				if (!*eff || !rs_valid_date(eff) || strcmp(eff, t->as_of) > 0)
					diags_add(
					    d, DIAG_ERROR, t->path, tr->line, "status",
					    "'withdrawn' needs the withdrawal_effective date, on "
					    "or before as_of %s",
					    t->as_of);
			} else if (!strcasecmp(st, "party")) {
				if (*eff && rs_valid_date(eff) && strcmp(eff, t->as_of) <= 0)
					diags_add(d, DIAG_ERROR, t->path, tr->line, "status",
					          "'party', but its withdrawal took effect on %s, "
					          "before as_of %s: write 'withdrawn'",
					          eff, t->as_of);
			} else {
				diags_add(d, DIAG_ERROR, t->path, tr->line, "status",
				          "'%s': write 'party' or 'withdrawn'", st);
			}
		}
		if (rs_party_on(t, tr, date, &since, &left))
			t->parties++;
	}
}

/* A fact cell's problem, or NULL when it is yes, no or unknown. */
const char *rs_fact_problem(const char *v)
{
	if (rs_is_blank(v))
		return "empty cell in a fact column: write yes, no or unknown (unknown when no "
		       "source settles it)";
	if (strcasecmp(v, "yes") && strcasecmp(v, "no") && strcasecmp(v, "unknown"))
		return "not yes, no or unknown";
	return NULL;
}

/* ---- demarche facts ---- */

/* Prints the rows of t whose state left by date (left 1) or has a withdrawal pending (0). */
static size_t list_withdrawals(const struct table *t, const char *date, int left, FILE *out)
{
	size_t c_state = rs_col_index(t->names, t->ncols, "state"), n = 0;

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

	if (date && !rs_valid_date(date)) {
		diags_add(d, DIAG_ERROR, NULL, 0, NULL,
		          "the date '%s' is not a date: write YYYY-MM-DD", date);
		return EX_USAGE;
	}
	if (date)
		memcpy(day, date, 11);
	else
		rs_today(day);
	t.path = xstrdup(path);
	t.col = xstrdup("iso3");
	t.d = d;
	rs_read_directives(&t, d);
	rc = csvr_read(t.path, rs_table_cb, &t, d);
	if (rc != EX_OK)
		goto out;
	t.jcol = rs_col_index(t.names, t.ncols, t.col);
	if (t.jcol == NONE)
		diags_add(d, DIAG_ERROR, t.path, 1, t.col, "missing column: the key of the facts");
	if (!t.as_of)
		diags_add(d, DIAG_ERROR, t.path, 1, NULL,
		          "not a facts table: no '# as_of: YYYY-MM-DD' line above the header");
	if (d->errors > errs) {
		rc = EX_DATAERR;
		goto out;
	}
	rs_check_facts_table(&t, day, d);
	for (size_t i = 0; i < t.nrows; i++)
		for (size_t c = 0; c < t.ncols; c++) {
			const char *why = t.fact[c] ? rs_fact_problem(t.rows[i].v[c]) : NULL;
			if (why)
				diags_add(d, DIAG_ERROR, t.path, t.rows[i].line, t.names[c], "%s",
				          why);
		}
	if (d->errors > errs) {
		rc = EX_DATAERR;
		goto out;
	}
	if (rs_days_of(day) - rs_days_of(t.as_of) > ROSTER_FACTS_MAX_AGE)
		diags_add(d, DIAG_WARNING, t.path, t.as_of_line, "as_of",
		          "the facts are as of %s, %ld days before %s (more than %d): check them "
		          "against the depositary and update them (recipients/README.md)",
		          t.as_of, rs_days_of(day) - rs_days_of(t.as_of), day,
		          ROSTER_FACTS_MAX_AGE);
	c_state = rs_col_index(t.names, t.ncols, "state");
	fprintf(out, "%s: facts as of %s, %zu rows; on %s:\n", t.path, t.as_of, t.nrows, day);
	fprintf(out, "  States Parties             %zu\n", t.parties);
	fprintf(out, "  withdrawn                  %zu\n", list_withdrawals(&t, day, 1, NULL));
	list_withdrawals(&t, day, 1, out);
	fprintf(out, "  withdrawal pending         %zu\n", list_withdrawals(&t, day, 0, NULL));
	list_withdrawals(&t, day, 0, out);
	for (size_t i = 0; i < t.nrows; i++) {
		const char *since;
		int left;
		if (!rs_party_on(&t, &t.rows[i], day, &since, &left) && !left)
			notyet++;
	}
	fprintf(out, "  not yet a party            %zu\n", notyet);
	for (size_t i = 0; notyet && i < t.nrows; i++) {
		const char *since;
		int left;
		if (!rs_party_on(&t, &t.rows[i], day, &since, &left) && !left)
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
			if (!rs_party_on(&t, &t.rows[i], day, &since, &left))
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
	rs_table_free(&t);
	return rc;
}
