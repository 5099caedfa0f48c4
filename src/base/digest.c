/* SHA-256 with OpenSSL EVP, the algorithm fetched once (digest.h). */
#include "base/digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "base/xalloc.h"

struct digest {
	EVP_MD_CTX *ctx;
};

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void broken(const char *what)
{
	fprintf(stderr, "demarche: OpenSSL: %s failed (out of memory?)\n", what);
	exit(EX_OSERR);
}

/* An explicit fetch: the implicit one EVP_sha256() implies costs more than a short hash. */
static void fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void init(EVP_MD_CTX *ctx)
{
	pthread_once(&sha256_once, fetch);
	if (!sha256)
		broken("fetching SHA256");
	if (!EVP_DigestInit_ex2(ctx, sha256, NULL))
		broken("EVP_DigestInit_ex2");
}

void digest_to_hex(const unsigned char *md, size_t n, char *hex)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = x[md[i] >> 4];
		hex[2 * i + 1] = x[md[i] & 15];
	}
	hex[2 * n] = '\0';
}

struct digest *digest_new(void)
{
	struct digest *d = xcalloc(1, sizeof(*d));

	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx)
		broken("EVP_MD_CTX_new");
	init(d->ctx);
	return d;
}

void digest_update(struct digest *d, const void *data, size_t len)
{
	if (len && !EVP_DigestUpdate(d->ctx, data, len))
		broken("EVP_DigestUpdate");
}

void digest_final(struct digest *d, unsigned char md[DIGEST_SIZE])
{
	unsigned n = 0;

	if (!EVP_DigestFinal_ex(d->ctx, md, &n) || n != DIGEST_SIZE)
		broken("EVP_DigestFinal_ex");
	init(d->ctx);
}

void digest_final_hex(struct digest *d, char hex[DIGEST_HEX_SIZE])
{
	unsigned char md[DIGEST_SIZE];

	digest_final(d, md);
	digest_to_hex(md, sizeof(md), hex);
}

void digest_free(struct digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

void digest_sha256_hex(const void *data, size_t len, char hex[DIGEST_HEX_SIZE])
{
	struct digest *d = digest_new();

	digest_update(d, data, len);
	digest_final_hex(d, hex);
	digest_free(d);
}
