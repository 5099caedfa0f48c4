/*
 * demarche: draft formal appeals to the States Parties of the Rome Statute, send one
 * message per diplomatic mission through SMTP, and audit the ledger of what was sent.
 * This file holds only the table of subcommands and the global options (as git.c).
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv, struct app *app);
	const char *usage;
	const char *summary;
};

static const struct command commands[] = {
    {"init", cmd_init, usage_init, "make a workspace: demarche.ini, appeals/, outbox/"},
    {"templates", cmd_templates, usage_templates, "list the letter templates"},
    {"draft", cmd_draft, usage_draft, "write a new appeal from a template"},
    {"render", cmd_render, usage_render, "render one Mustache file with a JSON context"},
    {"check", cmd_check, usage_check, "validate an appeal against a roster; sends nothing"},
    {"facts", cmd_facts, usage_facts, "count the States Parties facts on a date"},
    {"preview", cmd_preview, usage_preview, "write the merged messages as .eml files"},
    {"send", cmd_send, usage_send, "send the appeal, one message per mission, into the ledger"},
    {"audit", cmd_audit, usage_audit, "report from the ledger: campaigns, deliveries, missing"},
    {"verify", cmd_verify, usage_verify, "check the ledger's hash chain"},
    {"bounces", cmd_bounces, usage_bounces, "read bounces and replies over IMAP into the ledger"},
    {"doctor", cmd_doctor, usage_doctor, "check config, SMTP, IMAP and ledger; sends nothing"},
    {"keygen", cmd_keygen, usage_keygen, "make an approver's key pair (Ed25519)"},
    {"approve", cmd_approve, usage_approve, "sign off the exact batch of letters send will send"},
    {"followup", cmd_followup, usage_followup, "draft a reminder for missions that did not answer"},
    {"letter", cmd_letter, usage_letter, "one mission's letter as a PDF on letterhead"},
    {"roster", cmd_roster, usage_roster, "roster diff OLD NEW: missions, addresses, names changed"},
    {"review", cmd_review, usage_review, "serve the campaign to a browser on 127.0.0.1; read-only"},
    {"ledger", cmd_ledger, usage_ledger, "ledger copy FROM TO: between SQLite and PostgreSQL"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: demarche [--config FILE] [--store FILE] [-q | -v] [--color=WHEN] COMMAND "
	        "[ARGS]\n"
	        "       demarche --help | --version | COMMAND --help\n\n"
	        "Drafts formal appeals, sends one message per mission, and audits the ledger.\n\n"
	        "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp,
	        "\nGlobal options:\n"
	        "  --config FILE  configuration (default ./demarche.ini, then\n"
	        "                 $XDG_CONFIG_HOME/demarche/config.ini)\n"
	        "  --store FILE   the ledger (default [store] path, then ./demarche.db)\n"
	        "  -q, --quiet    only errors      -v, --verbose  more detail\n"
	        "  --color[=WHEN] auto (on a terminal, unless NO_COLOR is set), always or never\n"
	        "  --help         this text; COMMAND --help shows a command's options\n"
	        "  --version      the version\n\n"
	        "Exit codes: 0 done; 64 usage; 65 bad input (nothing sent); 66 missing file;\n"
	        "69 some recipients failed permanently; 75 some deferred or in doubt (run again);\n"
	        "78 configuration error.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* As git's help_unknown_cmd(): suggest the commands nearest to what was typed. */
static void suggest(const char *name)
{
	size_t best = (size_t)-1;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		size_t d = str_distance(name, commands[i].name);
		if (str_startswith(commands[i].name, name))
			d = 0;
		if (d < best)
			best = d;
	}
	fprintf(stderr, "demarche: '%s' is not a demarche command. See 'demarche --help'.\n", name);
	if (best > 3)
		return;
	fprintf(stderr, "\nThe most similar command%s\n", best == 0 ? "s start with it:" : ":");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		size_t d = str_distance(name, commands[i].name);
		if (str_startswith(commands[i].name, name))
			d = 0;
		if (d == best)
			fprintf(stderr, "\t%s\n", commands[i].name);
	}
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"store", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    APP_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct app app = {0};
	const struct command *cmd;
	char *prog;
	int c, rc;

	/* One message after another allocates and frees the same sizes: keep the heap instead of
	 * giving it back to the kernel after each (12% of a send's time went there). */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_TOP_PAD, 1 << 20);

	/* '+': stop at the command name; its own options are its own. */
	while ((c = getopt_long(argc, argv, "+c:s:hV" APP_SHORT_OPTIONS, opts, NULL)) != -1) {
		int took = app_option(&app, c, optarg);

		if (took < 0)
			return EX_USAGE;
		if (took)
			continue;
		switch (c) {
		case 'c':
			app.config_path = optarg;
			break;
		case 's':
			app.store_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("demarche %s\n", DEMARCHE_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[optind], "help")) {
		if (optind + 1 < argc && (cmd = find_command(argv[optind + 1]))) {
			fputs(cmd->usage, stdout);
			return EX_OK;
		}
		usage(stdout);
		return EX_OK;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		suggest(argv[optind]);
		return EX_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (wants_help(argc, argv)) {
		fputs(cmd->usage, stdout);
		return EX_OK;
	}
	optind = 0; /* reset getopt for the command's own parsing */
	app.cmd = cmd->name;
	/* getopt names argv[0] in its messages: "demarche send: unrecognized option", as ours */
	prog = xasprintf("demarche %s", cmd->name);
	argv[0] = prog;
	rc = cmd->fn(argc, argv, &app);
	free(prog);
	if (app.cfg_loaded)
		config_free(&app.cfg);
	return rc;
}
