/* demarche roster diff: what changed between two roster files (missions, addresses, names). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "cmd/cmd.h"
#include "roster/diff.h"
#include "roster/roster.h"

const char usage_roster[] =
    "usage: demarche roster diff OLD.csv NEW.csv [--key COL]\n"
    "\n"
    "Compares two rosters mission by mission (by the key column, without case) and prints\n"
    "one line per change: missions new and removed, changed addresses (email and cc, in any\n"
    "order) and changed names (name and title). send and check print the same comparison\n"
    "between the roster and the ledger's previous campaign to the same missions.\n"
    "\n"
    "  --key COL  the column naming a mission (default iso3)\n"
    "\n"
    "Exit: 0 no change; 1 changes were found (as diff(1)); 64 usage; 65 a roster is not\n"
    "valid (every problem named: file, row, column); 66 a file cannot be read.\n";

static void print_change(void *ctx, const struct roster_change *c)
{
	struct buf *b = ctx;

	buf_reset(b);
	roster_change_format(b, c);
	buf_addc(b, '\n');
	fwrite(b->data, 1, b->len, stdout);
}

/* Reads one roster into s. EX_OK, or its code with every problem printed. */
static int read_one(const char *path, const char *key, struct roster_snap *s)
{
	struct roster_opts ro = {0};
	struct diags d = DIAGS_INIT;
	struct roster *r = NULL;
	int rc;

	ro.path = path;
	ro.key = key;
	ro.audience_any = 1; /* a comparison, not a letter: former parties count too */
	if ((rc = roster_open(&ro, &r, &d)) == EX_OK)
		rc = roster_snap_read(r, s, &d);
	if (rc == EX_OK && d.errors)
		rc = EX_DATAERR;
	diags_print(&d, stderr);
	diags_free(&d);
	roster_free(r);
	return rc;
}

int cmd_roster(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {NULL, 0, NULL, 0},
	};
	struct roster_snap old = {0}, new = {0};
	struct roster_diff_counts n;
	struct buf b = BUF_INIT;
	const char *key = NULL;
	int c, rc;

	(void)app;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'k') {
			key = optarg;
			continue;
		}
		fputs(usage_roster, stderr);
		return EX_USAGE;
	}
	if (argc - optind != 3 || strcmp(argv[optind], "diff")) {
		fputs(usage_roster, stderr);
		return EX_USAGE;
	}
	if ((rc = read_one(argv[optind + 1], key, &old)) != EX_OK ||
	    (rc = read_one(argv[optind + 2], key, &new)) != EX_OK) {
		fprintf(stderr, "demarche roster: nothing compared\n");
		goto out;
	}
	rc = roster_diff(&old, &new, print_change, &b, &n) ? 1 : EX_OK;
	printf("%zu new, %zu removed, %zu with other addresses, %zu with another name\n", n.added,
	       n.removed, n.address, n.name);
out:
	buf_free(&b);
	roster_snap_free(&old);
	roster_snap_free(&new);
	return rc;
}
