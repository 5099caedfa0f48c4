/* audit's rows in any text format: an aligned table that fits 100 columns, CSV (RFC 4180) or
 * JSON; chosen columns; and the pager a long table goes through on a terminal. */
#ifndef DEMARCHE_CMD_AUDIT_OUT_H
#define DEMARCHE_CMD_AUDIT_OUT_H

#include <stddef.h>
#include <stdio.h>

#include "base/buf.h"

enum rp_format { RP_TABLE, RP_CSV, RP_JSON, RP_HTML, RP_XLSX, RP_ICS };
enum rp_kind { RP_STR, RP_INT };

#define RP_COL_TABLE 0x1 /* shown in a table by default (CSV and JSON show every column) */
#define RP_COL_FIT   0x2 /* may be cut (with …) for the table to fit its width */
#define RP_COL_STATE 0x4 /* a state: coloured on a terminal */
#define RP_COL_ASKED 0x8 /* shown only when --columns names it, in every format */

struct rp_col {
	const char *name;
	enum rp_kind kind;
	int flags;
};

struct rp_out_opts {
	enum rp_format fmt;  /* RP_TABLE, RP_CSV or RP_JSON */
	int colour;          /* a table on a terminal that may be coloured */
	int visible;         /* CSV to a terminal: cells escaped as in the table */
	int wide;            /* every column, nothing cut */
	int maxwidth;        /* the table's width (0: 100) */
	const char *columns; /* --columns "a,b,c" or NULL */
};

struct rp_out {
	struct rp_out_opts o;
	const struct rp_col *cols;
	size_t ncols;
	size_t *sel; /* the columns shown, as indexes into cols */
	size_t nsel;
	int *width; /* per shown column */
	int ready;  /* rp_out_init() succeeded */
	int widths_known, fitted;
	char **rows;   /* buffered cells, nsel per row (NULL: none) */
	size_t *order; /* each buffered row's sort key */
	size_t nrows, cap;
	int sorted; /* rows are sorted by key before they are written (stable) */
	size_t emitted;
	struct buf line;
};

/*
 * Sets o up for cols (borrowed: must outlive o). opts->columns chooses and orders the
 * columns; a name that is not one of cols: EX_USAGE, with *err naming it and the choices.
 * Otherwise EX_OK. Free with rp_out_end() (also after an error).
 */
int rp_out_init(struct rp_out *o, const struct rp_out_opts *opts, const struct rp_col *cols,
                size_t ncols, char **err);

/* The names in columns ("a,b") that are not among cols, as a new NULL-terminated array of
 * new strings (rp_strv_free()); NULL when none. */
char **rp_cols_unknown(const struct rp_col *cols, size_t ncols, const char *columns);
void rp_strv_free(char **v);

/* 1 when column name is shown. */
int rp_out_shows(const struct rp_out *o, const char *name);

/*
 * Widths known in advance (w[i]: the widest escaped cell of cols[i], -1 unknown): table rows
 * are then written as they come instead of being held (a million deliveries).
 */
void rp_out_widths(struct rp_out *o, const int *w);

/* One row: cells[i] for cols[i] (NULL: none). key orders the rows when o->sorted is set. */
void rp_out_row(struct rp_out *o, const char *const *cells, size_t key);

/* Writes what is held and frees o. */
void rp_out_end(struct rp_out *o);

/* --- the pager --------------------------------------------------------------------------- */

/* Where the rows go: stdout, or while a pager waits (rp_pager_start()) a memory stream. */
FILE *rp_stdout(void);

/*
 * When stdout is a terminal and $PAGER is not "" or "cat": what is written to rp_stdout()
 * is held in memory until rp_pager_end(), which writes what was written directly when it is shorter
 * than the screen (its rows: LINES, else the terminal's, else 24), else into $PAGER
 * (default "less -FRX"; LESS=FRX when LESS is unset, as git does). Returns 1 when the rows
 * are held. The table is then held in memory: a long table on a terminal is read in a pager
 * anyway.
 */
int rp_pager_start(void);
/* Ends what rp_pager_start() began (nothing when it returned 0). */
void rp_pager_end(void);

#endif
