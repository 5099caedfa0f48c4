/* demarche check: validate an appeal against a roster. */
#include "cmd/cmd.h"

const char usage_check[] =
    "usage: demarche check APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                      [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "\n"
    "Validates every row and renders the appeal for each selected mission; sends nothing.\n";

int cmd_check(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("check");
}
