/* demarche verify: check the ledger's hash chain and its deliveries against their events. */
#include <stdio.h>
#include <stdlib.h>

#include "base/error.h"
#include "cmd/cmd.h"
#include "ledger/ledger.h"

const char usage_verify[] =
    "usage: demarche verify\n"
    "\n"
    "Recomputes the hash chain of the ledger's events and checks every delivery against its\n"
    "events. Prints \"N events, head HASH\" and exits 0; exits 65 naming the first broken row\n"
    "(edited, deleted or reordered); 66 when there is no ledger.\n";

int cmd_verify(int argc, char **argv, struct app *app)
{
	struct ledger *l = NULL;
	char *err = NULL;
	char head[65];
	long n = 0;
	int rc;

	(void)argv;
	if (argc > 1) {
		fputs(usage_verify, stderr);
		return EX_USAGE;
	}
	if ((rc = app_config(app)))
		return rc;
	if ((rc = ledger_open(app_store_path(app), 0, &l, &err)))
		goto out;
	if ((rc = ledger_verify(l, &n, head, &err)))
		goto out;
	printf("%ld events, head %s\n", n, head);
out:
	if (rc)
		fprintf(stderr, "demarche verify: %s\n", err ? err : exit_name(rc));
	free(err);
	ledger_close(l);
	return rc;
}
