/* demarche ledger copy: move a ledger between SQLite and PostgreSQL, chain verified. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cmd/cmd.h"
#include "ledger/ledger.h"

const char usage_ledger[] =
    "usage: demarche ledger copy FROM TO\n"
    "\n"
    "Copies a whole ledger (campaigns, deliveries, events, IMAP states, Sent copies) from\n"
    "FROM to TO, each an SQLite file or a PostgreSQL store (postgresql://... or a libpq\n"
    "\"host=... dbname=...\" string, never with a password: see [store] password_command),\n"
    "so a team can start from one person's history, or take a team's ledger home. FROM's\n"
    "chain is verified first, TO's after; both must end in the same head, which is printed:\n"
    "  copied C campaigns, D deliveries, N events; head HASH on both sides\n"
    "TO must be new (a missing file, or a database without a ledger) or hold no event.\n"
    "Exits 65 when FROM does not verify, 73 when TO is not empty, 66 when FROM is missing.\n";

int cmd_ledger(int argc, char **argv, struct app *app)
{
	struct ledger *from = NULL, *to = NULL;
	struct ledger_copy_report r;
	char *err = NULL;
	int rc;

	if (argc != 4 || strcmp(argv[1], "copy")) {
		fputs(usage_ledger, stderr);
		return EX_USAGE;
	}
	if ((rc = app_config(app)))
		return rc;
	if ((rc = ledger_open(argv[2], 0, &from, &err)) ||
	    (rc = ledger_open(argv[3], LEDGER_CREATE | LEDGER_EXCLUSIVE, &to, &err)) ||
	    (rc = ledger_copy_all(from, to, &r, &err)))
		goto out;
	printf("copied %ld campaigns, %ld deliveries, %ld events; head %s on both sides\n",
	       r.campaigns, r.deliveries, r.events, r.head_to);
out:
	if (rc)
		fprintf(stderr, "demarche ledger: %s\n", err ? err : exit_name(rc));
	free(err);
	ledger_close(to);
	ledger_close(from);
	return rc;
}
