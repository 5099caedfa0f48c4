/* demarche bounces: read DSNs and replies into the ledger. */
#include "cmd/cmd.h"

const char usage_bounces[] =
    "usage: demarche bounces [--via IMAP-URL] [--folder NAME]\n"
    "\n"
    "Reads new messages over IMAP and records bounces, replies and auto-replies.\n";

int cmd_bounces(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("bounces");
}
