/*
 * libFuzzer target: the CSV roster reader with validation (roster_open + roster_each, twice,
 * as check then send do). The input is the roster; after a line "====" it is a join table
 * (--join). Odd-sized inputs allow non-ASCII addresses (SMTPUTF8).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/error.h"
#include "fuzz_util.h"
#include "roster/roster.h"

#define SEP "\n====\n"

static int each_row(void *user, const struct roster_row *row)
{
	size_t *n = user;
	json_t *ctx = roster_context(row);
	const char *key = roster_key(row);

	/* A row handed over is valid: a key, an address, a known language, a context. */
	if (!ctx || !key || !*key || !roster_get(row, "email") || !roster_language(row) ||
	    roster_row_line(row) < 2)
		abort();
	(void)roster_get(row, "salutation");
	json_decref(ctx);
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memmem(data, size, SEP, strlen(SEP));
	size_t rlen = sep ? (size_t)(sep - data) : size;
	char *path = fuzz_write("roster.csv", data, rlen);
	char *table = NULL, *join = NULL;
	const char *joins[2] = {NULL, NULL};
	const char *wheres[] = {"language!=xx", NULL};
	struct roster_opts o = {0};
	struct roster *r = NULL;
	struct diags d = DIAGS_INIT;
	size_t n1 = 0, n2 = 0;
	int rc1, rc2;

	if (sep) {
		const uint8_t *t = sep + strlen(SEP);

		table = fuzz_write("table.csv", t, size - (size_t)(t - data));
		join = xasprintf("%s:iso3", table);
		joins[0] = join;
	}
	o.path = path;
	o.joins = joins;
	o.wheres = wheres;
	o.smtputf8 = (int)(size & 1);
	d.max = 50;
	if (roster_open(&o, &r, &d) == EX_OK) {
		rc1 = roster_each(r, each_row, &n1, &d);
		rc2 = roster_each(r, each_row, &n2, &d);
		/* Two passes over the same file see the same rows. */
		if (rc1 != rc2 || n1 != n2 || roster_stats(r)->selected != n2)
			abort();
		if (rc1 == EX_OK && d.errors)
			abort();
	}
	roster_free(r);
	diags_free(&d);
	free(path);
	free(table);
	free(join);
	return 0;
}
