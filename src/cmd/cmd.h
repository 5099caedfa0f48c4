/*
 * The subcommands (git's builtin.h): one file each under src/cmd/, dispatched from the
 * table in src/main.c. Each returns a sysexits(3) code.
 */
#ifndef DEMARCHE_CMD_H
#define DEMARCHE_CMD_H

#include "base/config.h"

/* What the dispatcher sets up once from the global options. */
struct app {
	const char *config_path; /* --config, or NULL */
	const char *store_path;  /* --store, or NULL */
	const char *cmd;         /* the command's name, for "demarche CMD: ..." messages */
	int quiet;               /* -q: only errors */
	int verbose;             /* -v: more detail */
	struct config cfg;
	int cfg_loaded;
};

/*
 * Loads the configuration once (see config_load()); returns EX_OK or the config's code,
 * having printed the error. Later calls return at once.
 */
int app_config(struct app *app);
/* The ledger file: --store, else [store] path, else ./demarche.db. Loads the config. */
const char *app_store_path(struct app *app);

/*
 * The output options every command accepts, globally (demarche -q check ...) or after the
 * command (check -q): -q/--quiet, -v/--verbose, --color[=auto|always|never]. Add
 * APP_LONG_OPTIONS to the command's long options and APP_SHORT_OPTIONS to its short ones,
 * and give getopt's c to app_option() first: it returns 1 when it took c, -1 (having
 * printed why) for a bad --color value, 0 otherwise.
 */
#define APP_OPT_COLOR     0x4101
#define APP_SHORT_OPTIONS "qv"
#define APP_LONG_OPTIONS                                                                           \
	{"quiet", no_argument, NULL, 'q'}, {"verbose", no_argument, NULL, 'v'},                    \
	    {"color", optional_argument, NULL, APP_OPT_COLOR},                                     \
	{                                                                                          \
		"colour", optional_argument, NULL, APP_OPT_COLOR                                   \
	}
#define APP_OPTIONS_USAGE                                                                          \
	"  -q, --quiet        only errors\n"                                                       \
	"  -v, --verbose      more detail\n"                                                       \
	"  --color[=WHEN]     auto (the default: on a terminal, unless NO_COLOR is set),\n"        \
	"                     always or never\n"
int app_option(struct app *app, int c, const char *arg);
/*
 * All the options of a command that takes the output options and --format text|json and
 * no operand (doctor, verify): EX_OK with *json, or EX_USAGE having printed the usage (or,
 * for a bad --color, why).
 */
int app_format_only(int argc, char **argv, struct app *app, const char *usage, int *json);

#define DECLARE_COMMAND(name)                                                                      \
	int cmd_##name(int argc, char **argv, struct app *app);                                    \
	extern const char usage_##name[]

DECLARE_COMMAND(init);
DECLARE_COMMAND(templates);
DECLARE_COMMAND(draft);
DECLARE_COMMAND(render);
DECLARE_COMMAND(check);
DECLARE_COMMAND(facts);
DECLARE_COMMAND(preview);
DECLARE_COMMAND(send);
DECLARE_COMMAND(audit);
DECLARE_COMMAND(verify);
DECLARE_COMMAND(bounces);
DECLARE_COMMAND(doctor);
DECLARE_COMMAND(keygen);
DECLARE_COMMAND(approve);
DECLARE_COMMAND(followup);
DECLARE_COMMAND(letter);
DECLARE_COMMAND(roster);
DECLARE_COMMAND(review);
DECLARE_COMMAND(ledger);

#endif
