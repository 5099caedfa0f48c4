/* One pass over the roster: every row validated, joined, filtered and handed over. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/address.h"
#include "base/buf.h"
#include "base/strutil.h"
#include "base/tz.h"
#include "base/xalloc.h"
#include "roster/roster_int.h"

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

void rs_hset_clear(struct hset *s)
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
	if (rs_is_blank(lang))
		goto out;
	i = rs_col_index(r->langs, r->nlangs, lang);
	/* A one-language appeal goes to every en, fr and es mission (the letter warns). */
	if (i != NONE &&
	    (!r->appeal || r->nappeal == 1 || rs_col_index(r->appeal, r->nappeal, lang) != NONE)) {
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
		    rs_col_index(r->appeal, r->nappeal, "en") != NONE ? "en" : r->appeal[0];

		rs_langs_list(r, &b);
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

		if (!tb->as_of || !row->joined[t] || !(tr = rs_table_row(tb, jv)))
			continue;
		for (size_t c = 0; c < tb->ncols; c++) {
			const char *why = tb->fact[c] ? rs_fact_problem(tr->v[c]) : NULL;
			if (why)
				diags_add(r->d, DIAG_ERROR, tb->path, tr->line, tb->names[c],
				          "'%s' (row %ld of %s): %s", jv, row->line, r->path, why);
		}
		if (r->audience_any || rs_party_on(tb, tr, r->date, &since, &left))
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
	if (rs_is_blank(row.v[r->keycol])) {
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
		row.joined[t] = rs_table_find(&r->tables[t], jv);
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

	rs_hset_clear(&r->keys);
	rs_hset_clear(&r->addrs);
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
	rs_hset_clear(&r->keys);
	rs_hset_clear(&r->addrs);
	if (rc == EX_OK && r->stats.errors)
		rc = EX_DATAERR;
	return rc;
}
