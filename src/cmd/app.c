/* Shared setup for the subcommands: configuration and ledger location, loaded once. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/term.h"
#include "cmd/cmd.h"
#include "ledger/ledger.h"

int app_config(struct app *app)
{
	char *err = NULL;
	int rc;

	if (app->cfg_loaded)
		return EX_OK;
	config_init(&app->cfg);
	rc = config_load(&app->cfg, app->config_path, &err);
	if (rc != EX_OK) {
		fprintf(stderr, "demarche %s: %s\n", app->cmd ? app->cmd : "", err);
		free(err);
		config_free(&app->cfg); /* what was read before the error */
		return rc;
	}
	app->cfg_loaded = 1;
	/* who writes the ledger, and how to reach a PostgreSQL one (issue 21) */
	ledger_set_operator(app->cfg.sender.operator);
	ledger_set_password_command(app->cfg.store.password_command);
	ledger_set_lease(app->cfg.store.lease);
	return EX_OK;
}

const char *app_store_path(struct app *app)
{
	if (app->store_path)
		return app->store_path;
	if (app->cfg_loaded && app->cfg.store.url && *app->cfg.store.url)
		return app->cfg.store.url;
	if (app->cfg_loaded && app->cfg.store.path && *app->cfg.store.path)
		return app->cfg.store.path;
	return "demarche.db";
}

int app_option(struct app *app, int c, const char *arg)
{
	int mode;

	switch (c) {
	case 'q':
		app->quiet = 1;
		app->verbose = 0;
		return 1;
	case 'v':
		app->verbose = 1;
		app->quiet = 0;
		return 1;
	case APP_OPT_COLOR:
		mode = term_colour_mode(arg);
		if (mode < 0) {
			fprintf(stderr,
			        "demarche%s%s: --color=%s: expected auto, always or never\n",
			        app->cmd ? " " : "", app->cmd ? app->cmd : "", arg);
			return -1;
		}
		term_set_colour((enum term_colour_mode)mode);
		return 1;
	default:
		return 0;
	}
}

int app_format_only(int argc, char **argv, struct app *app, const char *usage, int *json)
{
	static const struct option opts[] = {
	    APP_LONG_OPTIONS,
	    {"format", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*json = 0;
	while ((c = getopt_long(argc, argv, APP_SHORT_OPTIONS, opts, NULL)) != -1) {
		int took = app_option(app, c, optarg);

		if (took < 0)
			return EX_USAGE;
		if (took)
			continue;
		if (c == 'f' && (!strcmp(optarg, "json") || !strcmp(optarg, "text"))) {
			*json = !strcmp(optarg, "json");
			continue;
		}
		fputs(usage, stderr);
		return EX_USAGE;
	}
	if (optind < argc) {
		fputs(usage, stderr);
		return EX_USAGE;
	}
	return EX_OK;
}
