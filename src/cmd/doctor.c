/* demarche doctor: check config, SMTP, IMAP and ledger; sends nothing. */
#include "cmd/cmd.h"

const char usage_doctor[] =
    "usage: demarche doctor\n"
    "\n"
    "Checks the configuration, the SMTP and IMAP servers and the ledger, one line each.\n";

int cmd_doctor(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("doctor");
}
