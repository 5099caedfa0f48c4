/* demarche preview: write the merged messages as .eml. */
#include "cmd/cmd.h"

const char usage_preview[] =
    "usage: demarche preview APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                        [--where COL=VAL]... [--only KEY,...] [--out DIR]\n"
    "\n"
    "Writes each selected mission's message as DIR/KEY.eml, or the first one to stdout.\n";

int cmd_preview(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("preview");
}
