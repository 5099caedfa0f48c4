/* demarche verify: check the ledger's hash chain. */
#include "cmd/cmd.h"

const char usage_verify[] =
    "usage: demarche verify\n"
    "\n"
    "Recomputes the hash chain of the ledger's events; exits 65 at the first broken row.\n";

int cmd_verify(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("verify");
}
