/* Rosters: the header and the joins at open, the options, and what a roster says of a column. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "roster/roster_int.h"

/* csvr_read() returns this from our callback once the header is read. */
#define STOP_AFTER_HEADER 1000

/* Columns that can reach a mail header (To, Cc, Subject templates) and so must be one line. */
static const char *const contact_columns[] = {"email",      "cc",        "state", "mission",
                                              "name",       "honorific", "title", "language",
                                              "salutation", NULL};

/* ---- small helpers ---- */

size_t rs_col_index(char **names, size_t n, const char *col)
{
	for (size_t i = 0; i < n; i++)
		if (str_ieq(names[i], col))
			return i;
	return NONE;
}

int rs_is_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

char *rs_lower_dup(const char *s)
{
	char *p = xstrdup(s);

	for (char *q = p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

void rs_free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **rs_dup_strv(char *const *v, size_t n)
{
	char **c = xcalloc(n + 1, sizeof(*c));

	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

/* ---- opening ---- */

static int header_cb(void *user, const struct csvr_record *rec)
{
	struct roster *r = user;

	r->cols = rs_dup_strv(rec->v, rec->n);
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
	r->keycol = rs_col_index(r->cols, r->ncols, r->key);
	r->emailcol = rs_col_index(r->cols, r->ncols, "email");
	r->cccol = rs_col_index(r->cols, r->ncols, "cc");
	r->langcol = rs_col_index(r->cols, r->ncols, "language");
	r->salcol = rs_col_index(r->cols, r->ncols, "salutation");
	r->honcol = rs_col_index(r->cols, r->ncols, "honorific");
	r->namecol = rs_col_index(r->cols, r->ncols, "name");
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
	if (rs_col_index(r->cols, r->ncols, col) != NONE)
		return 1;
	for (size_t t = 0; t < r->ntables; t++)
		if (rs_col_index(r->tables[t].names, r->tables[t].ncols, col) != NONE)
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
void rs_langs_list(const struct roster *r, struct buf *b)
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
		r->appeal[r->nappeal++] = rs_lower_dup(appeal[i]);
		if (rs_col_index(r->langs, r->nlangs, appeal[i]) == NONE)
			r->langs[r->nlangs++] = rs_lower_dup(appeal[i]);
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
		age = rs_days_of(r->date) - rs_days_of(tb->as_of);
		if (age > ROSTER_FACTS_MAX_AGE)
			diags_add(d, DIAG_WARNING, tb->path, tb->as_of_line, "as_of",
			          "the facts are as of %s, %ld days before the sending date %s "
			          "(more than %d): check them against the depositary and update "
			          "them (recipients/README.md)",
			          tb->as_of, age, r->date, ROSTER_FACTS_MAX_AGE);
		for (size_t c = 0; c < tb->ncols; c++) {
			if (!tb->fact[c] ||
			    rs_col_index(r->fact_cols, r->nfact_cols, tb->names[c]) != NONE)
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
	r->key = rs_lower_dup(o->key && *o->key ? o->key : "iso3");
	r->smtputf8 = o->smtputf8;
	r->exclude = o->exclude;
	r->exclude_user = o->exclude_user;
	r->exclude_row = o->exclude_row;
	r->exclude_row_user = o->exclude_row_user;
	r->audience_any = o->audience_any;
	if (o->date && !rs_valid_date(o->date)) {
		diags_add(d, DIAG_ERROR, NULL, 0, NULL,
		          "the sending date '%s' is not a date: write YYYY-MM-DD", o->date);
		rc = EX_USAGE;
		goto out;
	}
	if (o->date)
		memcpy(r->date, o->date, 11);
	else
		rs_today(r->date);
	set_languages(r, o->languages);
	r->fallback = NONE;
	if (o->fallback_language) {
		r->fallback = rs_col_index(r->langs, r->nlangs, o->fallback_language);
		if (r->appeal && rs_col_index(r->appeal, r->nappeal, o->fallback_language) == NONE)
			r->fallback = NONE;
		if (r->fallback == NONE) {
			struct buf b = BUF_INIT;

			rs_langs_list(r, &b);
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
		rc2 = rs_load_table(r, *j, d);
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
	rs_free_strv(r->cols, r->ncols);
	free(r->contact);
	for (size_t i = 0; i < r->ntables; i++)
		rs_table_free(&r->tables[i]);
	free(r->tables);
	for (size_t i = 0; i < r->nwheres; i++) {
		free(r->wheres[i].col);
		free(r->wheres[i].val);
	}
	free(r->wheres);
	for (size_t i = 0; i < r->nonly; i++)
		free(r->only[i].k);
	free(r->only);
	rs_free_strv(r->langs, r->nlangs);
	rs_free_strv(r->appeal, r->nappeal);
	rs_free_strv(r->fact_cols, r->nfact_cols);
	free(r->by_lang);
	rs_hset_clear(&r->keys);
	rs_hset_clear(&r->addrs);
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
		    rs_col_index(r->tables[t].names, r->tables[t].ncols, col) != NONE)
			return 1;
	for (size_t w = 0; w < r->nwheres; w++)
		if (str_ieq(col, r->wheres[w].col))
			return 1;
	/* the send calendar's columns (send --window, --at --local) */
	if (str_ieq(col, "timezone") || str_ieq(col, "weekend"))
		return 1;
	return 0;
}
