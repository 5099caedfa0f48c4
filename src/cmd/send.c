/* demarche send: send the appeal, one message per mission. */
#include "cmd/cmd.h"

const char usage_send[] =
    "usage: demarche send APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                     [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "                     [--not-received CAMPAIGN] [--via URL] [--rate N/minute|N/hour]\n"
    "                     [--concurrency N] [--limit N] [--test-to ADDR] [--retry-unknown]\n"
    "                     [--retry-failed] [--amend] [--yes]\n"
    "\n"
    "URL: smtp://HOST[:PORT], smtps://HOST[:PORT] or maildir:DIR (default maildir:./outbox).\n";

int cmd_send(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("send");
}
