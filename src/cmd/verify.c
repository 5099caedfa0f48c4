/* demarche verify: check the ledger's hash chain and every row against the chain's replay. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/escape.h"
#include "cmd/cmd.h"
#include "ledger/ledger.h"

const char usage_verify[] =
    "usage: demarche verify [--format text|json] [-q | -v]\n"
    "\n"
    "Recomputes the hash chain of the ledger's events, replays it, and compares the result\n"
    "with every delivery and campaign row: a row edited (key, address, message_id, state,\n"
    "attempts, last code or reply, a campaign's content hash...), inserted by hand or deleted\n"
    "is named. Prints \"N events, head HASH\" and exits 0: note the head somewhere else, since\n"
    "someone able to write the file could recompute the whole chain. Exits 65 naming what is\n"
    "broken; 66 when there is no ledger (an empty or missing file is left as it is). Opens the\n"
    "ledger read-only (it works on a read-only file system) and warns when the file can be\n"
    "read or written by its group or others.\n"
    "--format json prints {\"ok\": true|false, \"events\": N, \"head\": HASH, \"schema\": N,\n"
    "\"error\": ...} (error only when it fails; the exit code is the same). -q prints nothing\n"
    "when the chain verifies.\n"
    "\n"
    "  --format FMT       text (the default) or json\n" APP_OPTIONS_USAGE;

int cmd_verify(int argc, char **argv, struct app *app)
{
	struct ledger *l = NULL;
	char *err = NULL, *warning = NULL;
	const char *path;
	struct stat sb;
	char head[65];
	long n = 0;
	int rc, missing, json = 0;

	if (app_format_only(argc, argv, app, usage_verify, &json) != EX_OK)
		return EX_USAGE;
	if ((rc = app_config(app)))
		return rc;
	path = app_store_path(app);
	/* nothing to verify, and nothing written: not even SQLite's header into an empty file */
	if (!ledger_store_is_remote(path) &&
	    ((missing = stat(path, &sb) != 0) || (S_ISREG(sb.st_mode) && sb.st_size == 0))) {
		rc = error_set(&err, EX_NOINPUT,
		               "ledger %s: %s (nothing has been sent with this store)", path,
		               missing ? strerror(errno) : "empty file");
		goto out;
	}
	if (ledger_file_mode_check(path, &warning))
		fprintf(stderr, "demarche verify: warning: %s\n", warning);
	if ((rc = ledger_open(path, LEDGER_READONLY, &l, &err)))
		goto out;
	if ((rc = ledger_verify(l, &n, head, &err)))
		goto out;
	if (!json && !app->quiet)
		printf("%ld events, head %s\n", n, head);
	if (ledger_schema(l) < LEDGER_SCHEMA_VERSION && !app->quiet && !json)
		fprintf(
		    stderr,
		    "demarche verify: note: schema %d: the rows are compared with the chain from "
		    "schema %d on (the next demarche send upgrades it)\n",
		    ledger_schema(l), LEDGER_SCHEMA_VERSION);
out:
	if (json) {
		json_t *o = json_object();
		char *text;

		json_object_set_new(o, "ok", json_boolean(rc == EX_OK));
		if (rc == EX_OK) {
			json_object_set_new(o, "events", json_integer(n));
			json_object_set_new(o, "head", json_string(head));
			json_object_set_new(o, "schema", json_integer(ledger_schema(l)));
		} else {
			char *shown = esc_term_dup(err ? err : exit_name(rc));

			json_object_set_new(o, "error", json_string(shown));
			free(shown);
		}
		json_object_set_new(o, "exit", json_integer(rc));
		text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
		puts(text);
		free(text);
		json_decref(o);
	}
	if (rc)
		fprintf(stderr, "demarche verify: %s\n", err ? err : exit_name(rc));
	free(err);
	free(warning);
	ledger_close(l);
	return rc;
}
