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
DECLARE_COMMAND(ledger);

#endif
