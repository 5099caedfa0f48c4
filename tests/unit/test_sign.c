/*
 * Unit tests for src/base/sign (Ed25519 through libsodium) and the approvals it signs in the
 * ledger: a signature verifies for its message and key only; malformed keys and signatures
 * are refused; key files are 0600, never overwritten, sealed with a passphrase when asked
 * (a wrong or missing passphrase refused) and refused when others can read them; an approval
 * whose signature does not verify is not recorded, one that does is read back valid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/sign.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "ledger/ledger.h"

static char tmpdir[64];

static char *tpath(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_sign-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static void test_sign_verify(void **state)
{
	struct sign_key *a = NULL, *b = NULL;
	char pa[SIGN_PUBLIC_B64], pb[SIGN_PUBLIC_B64], sig[SIGN_SIG_B64], bad[SIGN_SIG_B64];
	static const char msg[] = "batch 3fa9c2d1";
	char *err = NULL;

	(void)state;
	assert_int_equal(sign_key_new(&a, &err), EX_OK);
	assert_int_equal(sign_key_new(&b, &err), EX_OK);
	sign_key_public(a, pa);
	sign_key_public(b, pb);
	assert_int_equal(strlen(pa), 44);
	assert_string_not_equal(pa, pb);
	assert_true(sign_public_valid(pa));
	sign_detached(a, msg, strlen(msg), sig);
	assert_int_equal(strlen(sig), 88);
	assert_true(sign_verify(pa, sig, msg, strlen(msg)));
	/* another message, another key, a changed signature: none verifies */
	assert_false(sign_verify(pa, sig, "batch 3fa9c2d2", strlen(msg)));
	assert_false(sign_verify(pb, sig, msg, strlen(msg)));
	memcpy(bad, sig, sizeof(bad));
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	assert_false(sign_verify(pa, bad, msg, strlen(msg)));
	/* malformed: not base64, the wrong size, NULL */
	assert_false(sign_verify("not a key", sig, msg, strlen(msg)));
	assert_false(sign_verify(pa, "c2lnbmF0dXJl", msg, strlen(msg)));
	assert_false(sign_verify(NULL, sig, msg, strlen(msg)));
	assert_false(sign_verify(pa, NULL, msg, strlen(msg)));
	assert_false(sign_public_valid("AAAA"));
	assert_false(sign_public_valid(NULL));
	/* a public key with something after it is not one */
	{
		char *longer = xasprintf("%s=", pa);

		assert_false(sign_public_valid(longer));
		free(longer);
	}
	sign_key_free(a);
	sign_key_free(b);
	sign_key_free(NULL);
	free(err);
}

static void test_key_file_plain(void **state)
{
	struct sign_key *k = NULL, *back = NULL;
	char *p = tpath("plain.key"), *err = NULL, *data = NULL;
	char pk[SIGN_PUBLIC_B64], pk2[SIGN_PUBLIC_B64], sig[SIGN_SIG_B64];
	struct stat st;
	size_t len;

	(void)state;
	assert_int_equal(sign_key_new(&k, &err), EX_OK);
	assert_int_equal(sign_key_save(k, p, NULL, &err), EX_OK);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_false(sign_key_sealed(p));
	/* never over an existing file */
	assert_int_equal(sign_key_save(k, p, NULL, &err), EX_CANTCREAT);
	assert_non_null(strstr(err, "exists"));
	assert_int_equal(sign_key_load(p, NULL, &back, &err), EX_OK);
	sign_key_public(k, pk);
	sign_key_public(back, pk2);
	assert_string_equal(pk, pk2);
	/* the loaded key signs for the same public key */
	sign_detached(back, "x", 1, sig);
	assert_true(sign_verify(pk, sig, "x", 1));
	/* the public key is in the file, the messages never show the secret */
	assert_int_equal(read_file(p, &data, &len), 0);
	assert_non_null(strstr(data, pk));
	free(data);
	/* readable by others: refused */
	assert_int_equal(chmod(p, 0640), 0);
	sign_key_free(back);
	back = NULL;
	assert_int_equal(sign_key_load(p, NULL, &back, &err), EX_CONFIG);
	assert_non_null(strstr(err, "chmod 600"));
	assert_null(back);
	sign_key_free(k);
	free(err);
	free(p);
}

static void test_key_file_sealed(void **state)
{
	struct sign_key *k = NULL, *back = NULL;
	char *p = tpath("sealed.key"), *err = NULL, *data = NULL;
	char pk[SIGN_PUBLIC_B64], pk2[SIGN_PUBLIC_B64];
	size_t len;

	(void)state;
	assert_int_equal(sign_key_new(&k, &err), EX_OK);
	assert_int_equal(sign_key_save(k, p, "correct horse", &err), EX_OK);
	assert_true(sign_key_sealed(p));
	assert_int_equal(read_file(p, &data, &len), 0);
	assert_non_null(strstr(data, "\nargon2id "));
	assert_null(strstr(data, "\nseed "));
	free(data);
	assert_int_equal(sign_key_load(p, NULL, &back, &err), EX_CONFIG);
	assert_non_null(strstr(err, "passphrase"));
	assert_int_equal(sign_key_load(p, "wrong horse", &back, &err), EX_DATAERR);
	assert_non_null(strstr(err, "passphrase does not open"));
	assert_null(back);
	assert_int_equal(sign_key_load(p, "correct horse", &back, &err), EX_OK);
	sign_key_public(k, pk);
	sign_key_public(back, pk2);
	assert_string_equal(pk, pk2);
	sign_key_free(back);
	sign_key_free(k);
	free(err);
	free(p);
}

static void test_key_file_damaged(void **state)
{
	struct sign_key *k = NULL;
	char *p = tpath("bad.key"), *q = tpath("missing.key"), *err = NULL;
	FILE *fp = fopen(p, "w");

	(void)state;
	assert_non_null(fp);
	fputs("demarche-ed25519-secret-v1\npublic AAAA\nseed AAAA\n", fp);
	fclose(fp);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(sign_key_load(p, NULL, &k, &err), EX_DATAERR);
	assert_null(k);
	assert_int_equal(sign_key_load(q, NULL, &k, &err), EX_NOINPUT);
	free(err);
	free(p);
	free(q);
}

static int count_valid(const struct ledger_approval *a, void *ctx)
{
	int *n = ctx;

	assert_string_equal(a->approver, "bob");
	assert_string_equal(a->components, "0123456789abcdef row KEN\n");
	*n += a->valid ? 1 : 100;
	return 0;
}

/* An approval is recorded only with a signature that verifies, and read back valid. */
static void test_ledger_approvals(void **state)
{
	struct sign_key *k = NULL;
	struct ledger *l = NULL;
	struct ledger_approval a = {0};
	char pk[SIGN_PUBLIC_B64], sig[SIGN_SIG_B64], *st, *err = NULL;
	char *p = tpath("ledger.db");
	size_t len;
	long n = 0;
	char head[65];

	(void)state;
	assert_int_equal(sign_key_new(&k, &err), EX_OK);
	sign_key_public(k, pk);
	assert_int_equal(ledger_open(p, LEDGER_CREATE, &l, &err), EX_OK);
	assert_int_equal(ledger_campaign_begin(l, "c1", "T", "S", "ab", 0, &err), EX_OK);
	a.campaign = "c1";
	a.approver = "bob";
	a.public_key = pk;
	a.batch = "0123456789abcdef";
	a.date = "2026-12-02";
	a.components = "0123456789abcdef row KEN\n";
	st = ledger_approval_statement(&a, &len);
	sign_detached(k, st, len, sig);
	free(st);
	/* signed for another batch: refused */
	a.signature = sig;
	a.batch = "fedcba9876543210";
	assert_int_equal(ledger_approval_add(l, &a, &err), EX_DATAERR);
	a.batch = "0123456789abcdef";
	assert_int_equal(ledger_approval_add(l, &a, &err), EX_OK);
	assert_int_equal(ledger_verify(l, &n, head, &err), EX_OK);
	assert_int_equal(n, 2); /* the campaign and the approval */
	{
		int valid = 0;

		assert_int_equal(ledger_approvals(l, "c1", count_valid, &valid, &err), EX_OK);
		assert_int_equal(valid, 1);
		valid = 0;
		assert_int_equal(ledger_approvals(l, "c2", count_valid, &valid, &err), EX_OK);
		assert_int_equal(valid, 0);
	}
	ledger_close(l);
	sign_key_free(k);
	free(err);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sign_verify),      cmocka_unit_test(test_key_file_plain),
	    cmocka_unit_test(test_key_file_sealed),  cmocka_unit_test(test_key_file_damaged),
	    cmocka_unit_test(test_ledger_approvals),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
