/* demarche audit: report from the ledger. */
#include "cmd/cmd.h"

const char usage_audit[] =
    "usage: demarche audit [CAMPAIGN] [--missing --to ROSTER.csv] [--matrix --to ROSTER.csv]\n"
    "                      [--join FILE[:COL]]... [--where COL=VAL]... [--format table|csv|json]\n"
    "\n"
    "Without CAMPAIGN: one line per campaign. With it: one line per delivery.\n";

int cmd_audit(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("audit");
}
