/*
 * Rosters: a CSV of recipients (one row per mission), left-joined with attribute tables,
 * filtered, validated row by row and streamed to the caller; plus each row's letter context.
 */
#ifndef DEMARCHE_ROSTER_H
#define DEMARCHE_ROSTER_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "base/error.h"

struct roster_row;

/*
 * What to read and select. Only borrowed: every string must outlive roster_open() (it
 * copies what it keeps). The arrays are NULL-terminated and may be NULL.
 */
struct roster_opts {
	const char *path;             /* the roster CSV */
	const char *key;              /* the column naming a recipient; NULL: "iso3" */
	const char *const *joins;     /* --join "FILE" or "FILE:COL" (COL default "iso3") */
	const char *const *wheres;    /* --where "COL=VAL" or "COL!=VAL"; all must hold */
	const char *const *only;      /* --only values, each "K1,K2,..." */
	int smtputf8;                 /* non-ASCII addresses allowed (transport offers SMTPUTF8) */
	const char *const *languages; /* the languages the appeal has; NULL: en, fr, es */
	/* A language value not in languages: NULL, an error listing them (exit 65); else a
	 * warning, and the row gets this language (one of languages) */
	const char *fallback_language;
	/* --not-received hook: returns 1 to leave the row with this key out. May be NULL. */
	int (*exclude)(void *user, const char *key);
	void *exclude_user;
	const char *date; /* the sending date, YYYY-MM-DD; NULL: today (local time) */
	int audience_any; /* the appeal says "Audience: any": former parties may be written to */
	/* The send calendar's hook: returns 1 to leave this (valid) row out. May be NULL. */
	int (*exclude_row)(void *user, const struct roster_row *row);
	void *exclude_row_user;
};

/*
 * Facts tables. A joined table whose first lines (above the header) say
 *     # as_of: 2026-12-02
 *     # facts: apic_party, kampala_aggression_party
 * is a facts table: as_of dates the whole table (a warning when it is more than
 * ROSTER_FACTS_MAX_AGE days before the sending date), and each fact column holds yes, no or
 * unknown (an empty or other cell is an error naming the table's file, row and column, for
 * every roster row that joins it). The letter context then has, for a fact column X: X
 * (true only for yes), X_status ("yes", "no" or "unknown") and X_known (false for unknown);
 * states_parties_count (the rows that are States Parties on the sending date); and
 * state_name / state_formal (the table's name_LANG / formal_LANG for the row's language).
 * Membership comes from the columns status (party / withdrawn, as at as_of),
 * instrument_date and withdrawal_effective (YYYY-MM-DD or empty): a state is a party on a
 * date when it deposited its instrument by then (empty: long since) and no withdrawal has
 * taken effect. A roster row whose state is not a party on the sending date is an error
 * (naming the row and the date the state left) unless audience_any is set.
 */
#define ROSTER_FACTS_MAX_AGE 180

struct roster;
struct roster_row;

/* Counts from the last roster_each() pass; owned by the roster. */
struct roster_stats {
	size_t rows;     /* data records read */
	size_t selected; /* valid rows that passed the filters (handed to the callback) */
	size_t errors, warnings;
	size_t nlangs;
	const char *const *langs; /* nlangs names, the known languages */
	const size_t *by_lang;    /* selected rows per language, parallel to langs */
};

/*
 * Reads the roster's header and loads the join tables (held in memory; they are small),
 * and checks the options: the key and email columns exist; each join column exists in the
 * roster and its table, a table's values are unique, no column is defined twice (naming
 * both files); --where names a known column. Returns EX_OK with *out set (free it with
 * roster_free()); EX_NOINPUT when the roster or a table cannot be opened; EX_USAGE for a
 * malformed --where; EX_DATAERR for the rest. Every problem goes to d.
 */
int roster_open(const struct roster_opts *o, struct roster **out, struct diags *d);

/*
 * Streams the roster once, validating every row (RFC 5322 addresses in email and cc,
 * duplicate keys and addresses, empty key or email, CR/LF in contact columns, NUL
 * anywhere, a language the appeal has not: an error naming them, or with
 * fallback_language a warning and that language; join values missing from a table: a
 * warning), and calls fn for every valid row that passes the filters, in file order. All
 * problems go to d, with file, row (the line where the record starts) and column.
 * Memory stays flat: one row at a time, plus 12 bytes per key and address for duplicates.
 * Can be called again (a validation pass, then a working pass); each pass starts afresh.
 * The row is valid only during the call. Returns fn's non-zero value if fn stopped the
 * pass; else EX_DATAERR if this pass found errors (rows handed to fn before an error was
 * found are then not to be acted on: validate with a whole pass first), EX_NOINPUT or
 * EX_IOERR if the file went away, else EX_OK.
 */
int roster_each(struct roster *r, int (*fn)(void *user, const struct roster_row *row), void *user,
                struct diags *d);

const struct roster_stats *roster_stats(const struct roster *r); /* never NULL */
const char *roster_path(const struct roster *r);                 /* the roster file */
/* The roster's own columns as its header names them; owned by the roster. */
const char *const *roster_header(const struct roster *r, size_t *n);
/*
 * 1 when the roster's code reads column col whatever the letter says: the key, the contact
 * and letter-part columns (email, cc, name, language, city, ...), a join's or a --where's
 * column. A column that neither this nor the letter uses is worth a warning (a typo).
 */
int roster_column_used(const struct roster *r, const char *col);
/* The columns the code knows by name (NULL-terminated, static), for "did you mean". */
const char *const *roster_known_columns(void);
const char *roster_date(const struct roster *r); /* the sending date, YYYY-MM-DD */
/* The fact columns of the joined facts tables (see above), each once, NULL-terminated and
 * owned by the roster; *n gets the count. */
const char *const *roster_fact_columns(const struct roster *r, size_t *n);
/* The as_of of the first facts table (NULL: none) and, in *parties when not NULL, its
 * number of States Parties on the sending date. */
const char *roster_facts_as_of(const struct roster *r, long *parties);

/*
 * demarche facts: reads the facts table at path (joined on iso3) and prints to out, for
 * date (NULL: today), its as_of, the States Parties on that date, the withdrawn and
 * pending withdrawals with their dates, and per fact column the yes/no/unknown counts over
 * the parties. Every bad cell goes to d (file, row, column). Returns EX_OK; EX_NOINPUT;
 * EX_USAGE for a bad date; EX_DATAERR when the table is not a facts table or has errors
 * (the counts are then not printed).
 */
int roster_facts_report(const char *path, const char *date, FILE *out, struct diags *d);
void roster_free(struct roster *r); /* NULL is fine */

/*
 * A row's value of col (case-insensitive): the roster's own columns, then the joined ones;
 * "language" is the effective language (en when empty or unknown) and "salutation" is
 * derived from it when the row has none. NULL when there is no such column or the row
 * had no match in that column's table. Owned by the row.
 */
const char *roster_get(const struct roster_row *row, const char *col);
const char *roster_key(const struct roster_row *row);      /* never NULL */
const char *roster_language(const struct roster_row *row); /* effective; never NULL */
long roster_row_line(const struct roster_row *row);        /* 1-based line in the file */

/*
 * The letter context for the row: a new JSON object (the caller decrefs it) holding every
 * non-empty roster and joined value (yes/no/true/false, any case, as JSON booleans,
 * everything else as strings), plus the derived "language" and "salutation" and the letter
 * parts of roster/parts.h (key, ref_label, letter_date, inside_address, excellency). Empty
 * cells are left out, so that strict rendering reports them as missing.
 */
json_t *roster_context(const struct roster_row *row);
/*
 * The same, with the letter parts (roster/parts.h: date line, salutation when the row has
 * none, reference label) in letter_lang, the language of the letter file actually used (en
 * when the appeal has no version in the row's language); NULL: the row's language.
 */
json_t *roster_context_in(const struct roster_row *row, const char *letter_lang);

/* The salutation for a language and honorific/name when the row gives none; static. */
const char *roster_salutation(const char *lang, const char *honorific, const char *name);

#endif
