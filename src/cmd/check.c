/* demarche check: validate an appeal against a roster; sends nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cmd/cmd.h"
#include "campaign/merge.h"

const char usage_check[] =
    "usage: demarche check APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                      [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "\n"
    "Validates every row and renders the appeal for each selected mission; sends nothing.\n"
    "Prints a summary and exits 0, or lists every problem and exits 65.\n"
    "\n" MERGE_OPTIONS_USAGE;

static void print_summary(const struct merge *m)
{
	const struct roster_stats *s = roster_stats(m->roster);
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);

	printf("appeal %s: campaign %s, languages", letter_path(m->letter), m->campaign);
	for (size_t i = 0; i < nlang; i++)
		printf(" %s", langs[i]);
	printf("\nroster %s: %zu rows, %zu selected, %zu missions rendered\n",
	       roster_path(m->roster), s->rows, s->selected, m->rendered);
	printf("by language:");
	for (size_t i = 0; i < s->nlangs; i++)
		if (s->by_lang[i])
			printf(" %s %zu", s->langs[i], s->by_lang[i]);
	/* The roster counts every warning of its pass, the letter's fallbacks among them. */
	printf("\n%zu warning%s\n", s->warnings, s->warnings == 1 ? "" : "s");
}

int cmd_check(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {MERGE_LONG_OPTIONS, {NULL, 0, NULL, 0}};
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	int c, rc;

	(void)app;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (!merge_option(&mo, c, optarg)) {
			fputs(usage_check, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (optind + 1 != argc || !mo.ro.path) {
		fputs(usage_check, stderr);
		rc = EX_USAGE;
		goto out;
	}
	mo.appeal = argv[optind];
	rc = merge_open(&mo, "check", &m);
	if (rc == EX_OK)
		rc = merge_validate(m, "check", NULL, NULL);
	if (rc == EX_OK)
		print_summary(m);
out:
	merge_free(m);
	merge_opts_free(&mo);
	return rc;
}
