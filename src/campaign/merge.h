/*
 * The merge of an appeal with a roster, shared by check, preview and send: the common
 * options (--to, --key, --join, --where, --only), loading both, a validation pass that
 * renders the appeal strictly for every selected mission, and a working pass.
 */
#ifndef DEMARCHE_MERGE_H
#define DEMARCHE_MERGE_H

#include <getopt.h>
#include <time.h>

#include "base/error.h"
#include "letter/letter.h"
#include "roster/roster.h"

/* getopt's value for --fallback-language (not a character: no short option). */
#define MERGE_OPT_FALLBACK 0x4d01

/* getopt_long entries for the common options; handled by merge_option(). */
#define MERGE_LONG_OPTIONS                                                                         \
	{"to", required_argument, NULL, 't'}, {"key", required_argument, NULL, 'k'},               \
	    {"join", required_argument, NULL, 'j'}, {"where", required_argument, NULL, 'w'},       \
	    {"only", required_argument, NULL, 'o'},                                                \
	{                                                                                          \
		"fallback-language", required_argument, NULL, MERGE_OPT_FALLBACK                   \
	}

/* The usage lines of the common options, for the commands' usage texts. */
#define MERGE_OPTIONS_USAGE                                                                        \
	"  --to FILE          the roster (CSV with a header; at least the key column and email)\n" \
	"  --key COL          the column naming a recipient (default iso3)\n"                      \
	"  --join FILE[:COL]  left-join an attribute table on COL (default iso3); repeatable\n"    \
	"  --where COL=VAL    keep rows whose COL is VAL (COL!=VAL: is not); repeatable, all "     \
	"hold\n"                                                                                   \
	"  --only K1,K2,...   keep only these keys; each must be in the roster\n"                  \
	"  --fallback-language LANG  a mission whose language the appeal has no version in\n"      \
	"                     gets LANG's (a warning); without it, that is an error\n"

/*
 * Called for each problem as it is printed (one per distinct problem: line is the whole
 * line as printed, hints and missions included), for --format json.
 */
typedef void (*merge_diag_fn)(void *user, const struct diag *dg, const char *line);

struct merge_opts {
	const char *appeal;
	int quiet;             /* warnings are not printed (still counted) */
	int silent;            /* nothing is printed: problems go to on_diag only */
	merge_diag_fn on_diag; /* may be NULL */
	void *diag_user;
	struct roster_opts ro; /* path, key, joins, wheres, only; the caller may set the rest */
	const char **joins, **wheres, **only;
	size_t njoins, nwheres, nonly;
};

/* Takes getopt's c and optarg; returns 1 when c is a common option, 0 otherwise. */
int merge_option(struct merge_opts *o, int c, const char *arg);
void merge_opts_free(struct merge_opts *o); /* frees the arrays, not the strings */

struct merge_group;

struct merge {
	struct letter *letter;
	struct roster *roster;
	char *campaign; /* the appeal's campaign id */
	struct diags d; /* every problem found, printed by the functions below */
	size_t rendered, fell_back;
	/* A problem of the letter found for many missions ("missing variable 'nmae'") is kept
	 * once in d, with the missions it affects: printed as one line with a hint. */
	struct merge_group *groups;
	size_t ngroups, grouped; /* grouped: the repeats dropped from d */
	int quiet, silent;       /* from merge_opts */
	merge_diag_fn on_diag;
	void *diag_user;
	/* More of a mission's context (campaign/followup.h), called for every mission, maybe
	 * on several threads at once: it only reads. NULL: none. */
	void (*extend)(void *user, const char *key, const char *lang, json_t *ctx);
	void *extend_user;
};

/*
 * Loads the appeal (o->appeal) and opens the roster. Returns EX_OK with *out (free it with
 * merge_free()), or the error code (EX_USAGE, EX_NOINPUT, EX_DATAERR) having printed every
 * problem to stderr prefixed with cmd.
 */
int merge_open(struct merge_opts *o, const char *cmd, struct merge **out);

/*
 * Called for each selected mission with its rendered letter. Return 0 to go on, non-zero to
 * stop (that value is returned). Problems may be added to m->d (they make the pass fail).
 */
typedef int (*merge_fn)(void *user, struct merge *m, const struct roster_row *row,
                        const struct letter_out *lo);

/*
 * The validation pass: every row is validated and every selected one rendered strictly
 * (and handed to fn when fn is not NULL, to check more). Returns EX_OK, or EX_DATAERR
 * having printed every problem. Warnings are printed either way.
 */
int merge_validate(struct merge *m, const char *cmd, merge_fn fn, void *user);

/* The working pass: the same rows again, each rendered and handed to fn. Returns fn's
 * non-zero value, or the roster's code, or EX_OK. */
int merge_each(struct merge *m, merge_fn fn, void *user);

struct message_run;
struct message;

/*
 * Gets each selected mission's message in merge_compose(), on the caller's thread and in
 * roster order; key and msg are the callee's to read (msg may be taken: message_free() is
 * safe on what is left). Return 0 to go on, non-zero to stop (that value is returned).
 * Problems may be added to m->d (they make the pass fail); m->d holds every problem of the
 * rows before this one and of this one, as in merge_validate().
 */
typedef int (*merge_msg_fn)(void *user, struct merge *m, const char *key, long line,
                            struct message *msg);

/*
 * The validation pass of merge_validate() with each rendered mission's message composed
 * (message_build(), into a problem of the row when it cannot be) and handed to fn. The
 * letters are rendered and the messages composed on worker threads: as many as
 * DEMARCHE_THREADS says (1 to 64; anything else is ignored), else one per online CPU; with
 * 1, everything runs on the caller's thread. At most 64 messages per thread wait for fn. Whatever the number,
 * fn sees the same messages in the same order and the problems printed are the same, in
 * the same order. Returns EX_OK, fn's non-zero value, or EX_DATAERR (EX_NOINPUT, EX_IOERR
 * from the roster) having printed every problem, as merge_validate().
 */
int merge_compose(struct merge *m, struct message_run *mr, time_t date, const char *cmd,
                  merge_msg_fn fn, void *user);

/*
 * Work on a message that need not wait for its turn (preview writes it to its file): runs
 * on a worker thread as soon as the message is composed, in no particular order and perhaps
 * at the same time as another call, so it may only touch what is its own and msg. It may
 * change msg (free its data, say). Returns EX_OK, or an error code with *errstr (allocated;
 * merge_compose frees it): the pass then stops at that mission in roster order as if fn had
 * returned the code, and "demarche CMD: ERRSTR" is printed after the problems; unless a
 * problem had already been found by then (nothing is kept anyway: the code is dropped).
 */
typedef int (*merge_prep_fn)(void *user, const char *key, struct message *msg, char **errstr);

/* merge_compose() with prep (may be NULL) called for each message before fn. */
int merge_compose_prep(struct merge *m, struct message_run *mr, time_t date, const char *cmd,
                       merge_prep_fn prep, merge_msg_fn fn, void *user);

/* The worker threads merge_compose() would use (DEMARCHE_THREADS, or the online CPUs). */
size_t merge_threads(void);

void merge_free(struct merge *m); /* NULL is fine */

#endif
