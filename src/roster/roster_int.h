/*
 * Private to src/roster: the roster, its join tables and rows, and the helpers its files
 * share. roster.c opens and closes a roster and answers about its columns; tables.c loads
 * the join tables; facts.c reads facts tables (dates, directives, membership) and prints
 * demarche facts; pass.c streams a pass (validation, filters); row.c a row's values and
 * letter context.
 */
#ifndef DEMARCHE_ROSTER_INT_H
#define DEMARCHE_ROSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "roster/csvread.h"
#include "roster/roster.h"

#define NONE ((size_t)-1)

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

/* roster.c: small helpers */
size_t rs_col_index(char **names, size_t n, const char *col); /* case-insensitive; NONE */
int rs_is_blank(const char *s);                               /* only spaces and tabs */
char *rs_lower_dup(const char *s);
void rs_free_strv(char **v, size_t n); /* NULL is fine */
char **rs_dup_strv(char *const *v, size_t n);
void rs_langs_list(const struct roster *r, struct buf *b); /* "en, es, fr": the appeal's */

/* tables.c: join tables, sorted on the join column */
int rs_table_cb(void *user, const struct csvr_record *rec); /* csvr_read() into a table */
const struct trow *rs_table_row(const struct table *t, const char *val);
char **rs_table_find(const struct table *t, const char *val); /* the row's values, or NULL */
void rs_table_free(struct table *t);
int rs_load_table(struct roster *r, const char *spec, struct diags *d);

/* facts.c: dates and facts tables */
int rs_valid_date(const char *s); /* 1 when s is a calendar date written YYYY-MM-DD */
long rs_days_of(const char *s);   /* days since 1970-01-01 of a valid date */
void rs_today(char out[11]);      /* local time */
void rs_read_directives(struct table *t, struct diags *d);
int rs_party_on(const struct table *t, const struct trow *tr, const char *date, const char **since,
                int *left);
void rs_check_facts_table(struct table *t, const char *date, struct diags *d);
const char *rs_fact_problem(const char *v); /* NULL for yes, no or unknown */

/* pass.c */
void rs_hset_clear(struct hset *s);

#endif
