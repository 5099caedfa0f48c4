/* Join tables: loaded whole at open (they are small), sorted on the join column. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "roster/roster_int.h"

/* ---- join tables ---- */

int rs_table_cb(void *user, const struct csvr_record *rec)
{
	struct table *t = user;

	if (rec->index == 0) {
		t->names = rs_dup_strv(rec->v, rec->n);
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
	t->rows[t->nrows].v = rs_dup_strv(rec->v, rec->n);
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

const struct trow *rs_table_row(const struct table *t, const char *val)
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

char **rs_table_find(const struct table *t, const char *val)
{
	const struct trow *tr = rs_table_row(t, val);

	return tr ? tr->v : NULL;
}

void rs_table_free(struct table *t)
{
	free(t->as_of);
	rs_free_strv(t->fact_names, t->nfact_names);
	free(t->fact);
	free(t->path);
	free(t->col);
	for (size_t i = 0; i < t->nrows; i++)
		rs_free_strv(t->rows[i].v, t->ncols);
	free(t->rows);
	rs_free_strv(t->names, t->ncols);
	free(t->dup_src);
	free(t->dup_col);
}

/* Loads one --join FILE[:COL] table; returns an exit code, problems in d. */
int rs_load_table(struct roster *r, const char *spec, struct diags *d)
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
		t->col = rs_lower_dup(colon + 1);
	} else {
		t->path = xstrdup(spec);
		t->col = xstrdup("iso3");
	}
	t->d = d;
	rs_read_directives(t, d);
	rc = csvr_read(t->path, rs_table_cb, t, d);
	if (rc != EX_OK)
		return rc;
	t->jcol = rs_col_index(t->names, t->ncols, t->col);
	t->rcol = rs_col_index(r->cols, r->ncols, t->col);
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
	 * 'state') only if they agree on every row: checked for each row in row_cb() (pass.c). */
	t->dup_src = xcalloc(t->ncols, sizeof(*t->dup_src));
	t->dup_col = xcalloc(t->ncols, sizeof(*t->dup_col));
	for (size_t c = 0; c < t->ncols; c++) {
		size_t i = rs_col_index(r->cols, r->ncols, t->names[c]);
		t->dup_src[c] = t->dup_col[c] = NONE;
		if (c == t->jcol)
			continue;
		if (i != NONE) {
			t->dup_src[c] = ROSTER_SRC;
			t->dup_col[c] = i;
			continue;
		}
		for (size_t k = 0; k + 1 < r->ntables; k++) {
			i = rs_col_index(r->tables[k].names, r->tables[k].ncols, t->names[c]);
			if (i != NONE) {
				t->dup_src[c] = k;
				t->dup_col[c] = i;
				break;
			}
		}
	}
	if (t->as_of)
		rs_check_facts_table(t, r->date, d);
	else if (t->nfact_names)
		diags_add(d, DIAG_ERROR, t->path, t->facts_line, NULL,
		          "'# facts:' without '# as_of: YYYY-MM-DD': date the facts");
	return d->errors > errs ? EX_DATAERR : EX_OK;
}
