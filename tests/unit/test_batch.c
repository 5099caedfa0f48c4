/*
 * Unit tests for src/campaign/batch: the parts stored with an approval (sorted, short
 * hashes, names on one line) and what batch_diff() says changed: a roster row, a language
 * file, the letterhead, the letters' date, a mission added or no longer selected, and the
 * messages named only when nothing else explains them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "campaign/batch.h"

static void part(struct batch *b, const char *name, char h, int in_batch)
{
	b->v = xreallocarray(b->v, b->n + 1, sizeof(*b->v));
	b->v[b->n].name = xstrdup(name);
	memset(b->v[b->n].hash, h, 64);
	b->v[b->n].hash[64] = '\0';
	b->v[b->n++].in_batch = in_batch;
}

/* The batch of two missions, sorted by name as batch_compute() leaves it. */
static void make(struct batch *b, char row_ken, char file_fr, char letterhead, char msg_ken)
{
	memset(b, 0, sizeof(*b));
	strcpy(b->date, "2026-12-02");
	part(b, "appeal", file_fr == 'a' ? '1' : '2', 1);
	part(b, "date", 'd', 1);
	part(b, "file en.md", 'e', 0);
	part(b, "file fr.md", file_fr, 0);
	part(b, "letterhead", letterhead, 1);
	part(b, "message BEL", 'm', 1);
	part(b, "message KEN", msg_ken, 1);
	part(b, "row BEL", 'r', 1);
	part(b, "row KEN", row_ken, 1);
	part(b, "sender", 's', 1);
}

static char *diff(const char *old, const struct batch *b, size_t *n)
{
	struct buf out = BUF_INIT;

	*n = batch_diff(old, "2026-12-01", b, 20, &out);
	return buf_detach(&out);
}

static void test_components(void **state)
{
	struct batch b;
	char *c;

	(void)state;
	make(&b, 'k', 'a', 'l', 'n');
	free(b.v[5].name);
	b.v[5].name = xstrdup("message B\nEL"); /* a control character stays on its line */
	c = batch_components(&b);
	assert_non_null(strstr(c, "1111111111111111 appeal\n"));
	assert_non_null(strstr(c, "kkkkkkkkkkkkkkkk row KEN\n"));
	assert_non_null(strstr(c, "mmmmmmmmmmmmmmmm message B\\nEL\n"));
	assert_null(strstr(c, "kkkkkkkkkkkkkkkkk")); /* cut to 16 digits */
	free(c);
	batch_free(&b);
}

static void test_diff(void **state)
{
	struct batch a, b;
	char *old, *d;
	size_t n;

	(void)state;
	make(&a, 'k', 'a', 'l', 'n');
	old = batch_components(&a);

	/* the same batch: nothing */
	d = diff(old, &a, &n);
	assert_int_equal(n, 0);
	assert_string_equal(d, "");
	free(d);

	/* one roster cell of KEN: its row and its message */
	make(&b, 'K', 'a', 'l', 'N');
	d = diff(old, &b, &n);
	assert_int_equal(n, 2);
	assert_non_null(strstr(d, "  roster row KEN changed\n"));
	assert_null(strstr(d, "BEL"));
	assert_non_null(strstr(d, "1 message differs from the approved ones\n"));
	free(d);
	batch_free(&b);

	/* one word of fr.md: the file is named, not "the appeal" */
	make(&b, 'k', 'b', 'l', 'n');
	d = diff(old, &b, &n);
	assert_non_null(strstr(d, "  fr.md changed\n"));
	assert_null(strstr(d, "en.md"));
	assert_null(strstr(d, "the appeal changed"));
	free(d);
	batch_free(&b);

	/* the letterhead, and the date */
	make(&b, 'k', 'a', 'L', 'n');
	b.v[1].hash[0] = 'D';
	strcpy(b.date, "2026-12-03");
	d = diff(old, &b, &n);
	assert_non_null(strstr(d, "the letterhead ([letterhead] in the configuration) changed"));
	assert_non_null(
	    strstr(d, "the letters' date changed (approved 2026-12-01, now 2026-12-03)"));
	free(d);
	batch_free(&b);

	/* only a message changed (a partial, an attachment): it is named */
	make(&b, 'k', 'a', 'l', 'N');
	d = diff(old, &b, &n);
	assert_non_null(strstr(d, "1 message differs from the approved ones (KEN)"));
	free(d);
	batch_free(&b);

	/* a mission no longer selected, another added */
	make(&b, 'k', 'a', 'l', 'n');
	free(b.v[8].name);
	b.v[8].name = xstrdup("row KEW");
	d = diff(old, &b, &n);
	assert_non_null(strstr(d, "  1 mission no longer selected (KEN)\n"));
	assert_non_null(strstr(d, "  1 mission added to the selection (KEW)\n"));
	free(d);
	batch_free(&b);

	/* a hostile key reaches the terminal escaped */
	make(&b, 'k', 'a', 'l', 'n');
	free(b.v[8].name);
	b.v[8].name = xstrdup("row K\x1b[2J");
	d = diff(old, &b, &n);
	assert_null(strchr(d, '\x1b'));
	free(d);
	batch_free(&b);

	free(old);
	batch_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_components),
	    cmocka_unit_test(test_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
