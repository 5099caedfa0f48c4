/* demarche facts: the States Parties facts table's counts on a date. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/error.h"
#include "cmd/cmd.h"
#include "roster/roster.h"

const char usage_facts[] =
    "usage: demarche facts [--date YYYY-MM-DD] [TABLE.csv]\n"
    "\n"
    "Reads the facts table (default recipients/states-parties.csv) and prints, for the date\n"
    "(default today): its as_of date, the States Parties on that date, the withdrawals that\n"
    "have taken effect and those pending (with their dates), and for each fact column\n"
    "(named by the table's '# facts:' line) how many parties have yes, no and unknown.\n"
    "Facts more than 180 days old are a warning.\n"
    "\n"
    "  --date YYYY-MM-DD  count on this date (default today)\n"
    "\n"
    "Exit: 0; 64 usage; 65 a bad table (every bad cell named: file, row, column); 66 no\n"
    "such file.\n";

int cmd_facts(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"date", required_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	const char *date = NULL, *path = "recipients/states-parties.csv";
	struct diags d = DIAGS_INIT;
	int c, rc;

	(void)app;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'D') {
			date = optarg;
			continue;
		}
		fputs(usage_facts, stderr);
		return EX_USAGE;
	}
	if (optind + 1 < argc) {
		fputs(usage_facts, stderr);
		return EX_USAGE;
	}
	if (optind < argc)
		path = argv[optind];
	rc = roster_facts_report(path, date, stdout, &d);
	diags_print(&d, stderr);
	diags_free(&d);
	if (rc == EX_DATAERR)
		fprintf(stderr, "demarche facts: %s is not a usable facts table\n", path);
	return rc;
}
