/* demarche draft: write a new appeal from a template. */
#include "cmd/cmd.h"

const char usage_draft[] =
    "usage: demarche draft TEMPLATE -o DIR [--set K=V]... [--params FILE.json] [--force]\n"
    "\n"
    "Fills the campaign params of TEMPLATE and writes DIR/LANG.md for each language,\n"
    "leaving the per-mission fields open.\n";

int cmd_draft(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("draft");
}
