/* demarche init: make a workspace: demarche.ini, appeals/, outbox/. */
#include "cmd/cmd.h"

const char usage_init[] =
    "usage: demarche init [DIR]\n"
    "\n"
    "Makes a workspace in DIR (default: the current folder): a commented demarche.ini,\n"
    "appeals/, outbox/ and an example roster under recipients/.\n";

int cmd_init(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("init");
}
