/* Ledger benchmarks: generate a store of N sent deliveries; time durable transitions. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "ledger/ledger.h"

#define HASH "be0c4e1b7ad2b0b8b7cbe1cf1a0c3a1e5b1d8c0a4e2f6a9d3c7b5e1f0a2d4c6e"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * generate only: every connection the ledger opens gets a 512 MB page cache, so the growing
 * B-trees (deliveries, its three indexes, events) stay in memory until the one commit
 * instead of spilling to the file page by page. Through an auto-extension, so the ledger's
 * own code path is unchanged.
 */
static int big_cache(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api)
{
	(void)api;
	return sqlite3_exec(db, "PRAGMA cache_size = -524288", NULL, NULL, errmsg);
}

/* One delivery: pending -> sending -> sent, as send records it. */
static int one(struct ledger *l, long i, char **err)
{
	struct ledger_delivery d;
	char key[32], addr[64], mid[96], reply[64];
	struct ledger_outcome o = {250, reply, "smtp://bench@127.0.0.1:2525", NULL};
	int rc;

	snprintf(key, sizeof(key), "K%07ld", i);
	snprintf(addr, sizeof(addr), "mission-%07ld@example.org", i);
	snprintf(mid, sizeof(mid), "<bench.K%07ld.3f9a2c@coalition.example>", i);
	snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %lX", 0x4A000000L + i);
	if ((rc = ledger_delivery_get(l, "bench", key, addr, mid, &d, err)) ||
	    (rc = ledger_transition(l, d.id, LS_SENDING, 0, &o, NULL, err)))
		return rc;
	return ledger_transition(l, d.id, LS_SENT, 0, &o, NULL, err);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * The quick integrity check (what send, audit and bounces run first), RUNS times on a
 * read-only open, the median printed; then one full verify. Both in-process: the time is
 * the check's, not the program's start.
 */
static int check(const char *path, int runs)
{
	struct ledger *l = NULL;
	char *err = NULL, head[65];
	double t[64];
	long nev = 0;
	int rc;

	if (runs < 1 || runs > 64)
		runs = 5;
	if ((rc = ledger_open(path, LEDGER_READONLY, &l, &err)))
		goto out;
	for (int i = 0; i < runs; i++) {
		double t0 = now_s();

		if ((rc = ledger_quick_check(l, &err)))
			goto out;
		t[i] = now_s() - t0;
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	printf("quick check: median %.4f s (min %.4f, max %.4f) over %d runs\n", t[runs / 2], t[0],
	       t[runs - 1], runs);
	t[0] = now_s();
	if ((rc = ledger_verify(l, &nev, head, &err)))
		goto out;
	printf("verify (in-process): %.2f s, %ld events, head %.16s...\n", now_s() - t[0], nev,
	       head);
out:
	if (rc)
		fprintf(stderr, "ledger_bench check: %s\n", err);
	free(err);
	ledger_close(l);
	return rc;
}

int main(int argc, char **argv)
{
	struct ledger *l = NULL;
	char *err = NULL;
	long n;
	double t;
	int rc, batch;

	if (argc == 4 && !strcmp(argv[1], "check"))
		return check(argv[2], atoi(argv[3]));
	if (argc != 4 || (strcmp(argv[1], "generate") && strcmp(argv[1], "durable"))) {
		fprintf(stderr,
		        "usage: ledger_bench generate|durable STORE N | check STORE RUNS\n");
		return EX_USAGE;
	}
	batch = !strcmp(argv[1], "generate");
	n = atol(argv[3]);
	unlink(argv[2]);
	if (batch)
		sqlite3_auto_extension((void (*)(void))big_cache);
	if ((rc = ledger_open(argv[2], LEDGER_CREATE, &l, &err)) ||
	    (rc =
	         ledger_campaign_begin(l, "bench", "Benchmark appeal", "Benchmark", HASH, 0, &err)))
		goto out;
	t = now_s();
	/* generate: one big transaction, same code path; durable: one commit per transition */
	if (batch && (rc = ledger_batch_begin(l, &err)))
		goto out;
	for (long i = 0; i < n; i++)
		if ((rc = one(l, i, &err)))
			goto out;
	if (batch && (rc = ledger_batch_end(l, 1, &err)))
		goto out;
	t = now_s() - t;
	if (batch)
		printf("generated %ld deliveries (%ld events) in %.1f s\n", n, 3 * n + 1, t);
	else
		printf("%ld durable transitions (+%ld delivery inserts) in %.2f s: %.3f ms per "
		       "transition (commit incl.), %.3f ms per delivery (get + 2 transitions)\n",
		       2 * n, n, t, t * 1000 / (2.0 * n), t * 1000 / (double)n);
out:
	if (rc)
		fprintf(stderr, "ledger_bench: %s\n", err);
	free(err);
	ledger_close(l);
	return rc;
}
