/* Ed25519 key pairs, key files and detached signatures through libsodium. */
#include "base/sign.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strutil.h"
#include "base/xalloc.h"

#define KEY_MAGIC "demarche-ed25519-secret-v1"
#define B64       sodium_base64_VARIANT_ORIGINAL

struct sign_key {
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char seed[crypto_sign_SEEDBYTES];
};

static int start(char **errstr)
{
	if (sodium_init() < 0)
		return error_set(errstr, EX_SOFTWARE, "libsodium cannot start (no entropy?)");
	return EX_OK;
}

/* Guarded memory (sodium_malloc: not swapped, guard pages), zeroed; ends the program when
 * there is none, as xmalloc() does. */
static void *guarded(size_t n)
{
	void *p = sodium_malloc(n);

	if (!p) {
		fprintf(stderr, "demarche: out of memory (locked memory for a key)\n");
		exit(EX_OSERR);
	}
	sodium_memzero(p, n);
	return p;
}

static struct sign_key *key_alloc(void)
{
	return guarded(sizeof(struct sign_key));
}

void sign_key_free(struct sign_key *k)
{
	if (k)
		sodium_free(k); /* zeroes it first */
}

int sign_key_new(struct sign_key **out, char **errstr)
{
	int rc = start(errstr);

	*out = NULL;
	if (rc != EX_OK)
		return rc;
	*out = key_alloc();
	randombytes_buf((*out)->seed, sizeof((*out)->seed));
	crypto_sign_seed_keypair((*out)->pk, (*out)->sk, (*out)->seed);
	return EX_OK;
}

static void b64(struct buf *b, const unsigned char *p, size_t n)
{
	size_t len = sodium_base64_ENCODED_LEN(n, B64);

	buf_grow(b, len);
	sodium_bin2base64(b->data + b->len, len, p, n, B64);
	b->len += len - 1;
}

/* Decodes exactly n bytes of base64 s[0..len) into out; 1 when it does. */
static int unb64(const char *s, size_t len, unsigned char *out, size_t n)
{
	size_t got = 0;
	const char *end = NULL;

	return sodium_base642bin(out, n, s, len, NULL, &got, &end, B64) == 0 && got == n &&
	       end == s + len;
}

void sign_key_public(const struct sign_key *k, char out[SIGN_PUBLIC_B64])
{
	sodium_bin2base64(out, SIGN_PUBLIC_B64, k->pk, sizeof(k->pk), B64);
}

int sign_public_valid(const char *s)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	return s && unb64(s, strlen(s), pk, sizeof(pk));
}

void sign_detached(const struct sign_key *k, const void *msg, size_t len, char sig[SIGN_SIG_B64])
{
	unsigned char s[crypto_sign_BYTES];

	crypto_sign_detached(s, NULL, msg, len, k->sk);
	sodium_bin2base64(sig, SIGN_SIG_B64, s, sizeof(s), B64);
}

int sign_verify(const char *public_key, const char *sig, const void *msg, size_t len)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], s[crypto_sign_BYTES];

	if (sodium_init() < 0 || !public_key || !sig ||
	    !unb64(public_key, strlen(public_key), pk, sizeof(pk)) ||
	    !unb64(sig, strlen(sig), s, sizeof(s)))
		return 0;
	return crypto_sign_verify_detached(s, msg, len, pk) == 0;
}

/*
 * The key file, one item a line:
 *   demarche-ed25519-secret-v1
 *   public BASE64
 *   seed BASE64                                  (in the clear), or
 *   argon2id OPSLIMIT MEMLIMIT SALT NONCE SEALED (the seed sealed with crypto_secretbox under
 *                                                 a key from crypto_pwhash)
 */
int sign_key_save(const struct sign_key *k, const char *path, const char *passphrase, char **errstr)
{
	struct buf b = BUF_INIT;
	struct stat st;
	int rc;

	if ((rc = start(errstr)) != EX_OK)
		return rc;
	if (lstat(path, &st) == 0)
		return error_set(errstr, EX_CANTCREAT,
		                 "%s exists: a key file is never overwritten (move it away first)",
		                 path);
	buf_addf(&b, "%s\npublic ", KEY_MAGIC);
	b64(&b, k->pk, sizeof(k->pk));
	if (!passphrase || !*passphrase) {
		buf_adds(&b, "\nseed ");
		b64(&b, k->seed, sizeof(k->seed));
	} else {
		unsigned char salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
		unsigned char box[crypto_secretbox_MACBYTES + crypto_sign_SEEDBYTES];
		unsigned char *key = guarded(crypto_secretbox_KEYBYTES);
		unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;

		randombytes_buf(salt, sizeof(salt));
		randombytes_buf(nonce, sizeof(nonce));
		if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, passphrase, strlen(passphrase),
		                  salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0) {
			sodium_free(key);
			buf_free(&b);
			return error_set(
			    errstr, EX_OSERR,
			    "not enough memory to seal the key (Argon2id needs %zu MB)", mem >> 20);
		}
		crypto_secretbox_easy(box, k->seed, sizeof(k->seed), nonce, key);
		sodium_free(key);
		buf_addf(&b, "\nargon2id %llu %zu ", ops, mem);
		b64(&b, salt, sizeof(salt));
		buf_addc(&b, ' ');
		b64(&b, nonce, sizeof(nonce));
		buf_addc(&b, ' ');
		b64(&b, box, sizeof(box));
	}
	buf_addc(&b, '\n');
	rc = file_write_atomic(path, b.data, b.len, 0600, FILE_SYNC, errstr);
	sodium_memzero(b.data, b.len);
	buf_free(&b);
	return rc;
}

/* The file's lines: magic, public, then the seed line (all pointing into data). */
struct key_lines {
	char *pub, *rest;
};

static int split(char *data, struct key_lines *kl)
{
	char *nl = strchr(data, '\n'), *nl2;

	if (!nl || (size_t)(nl - data) != strlen(KEY_MAGIC) || memcmp(data, KEY_MAGIC, nl - data))
		return 0;
	kl->pub = nl + 1;
	if (strncmp(kl->pub, "public ", 7) || !(nl2 = strchr(kl->pub, '\n')))
		return 0;
	*nl2 = '\0';
	kl->pub += 7;
	kl->rest = nl2 + 1;
	nl = strchr(kl->rest, '\n');
	if (nl)
		*nl = '\0';
	return 1;
}

int sign_key_sealed(const char *path)
{
	char *data = NULL;
	size_t len;
	struct key_lines kl;
	int sealed;

	if (read_file(path, &data, &len) != 0)
		return 0;
	sealed = split(data, &kl) && !strncmp(kl.rest, "argon2id ", 9);
	sodium_memzero(data, len);
	free(data);
	return sealed;
}

/* Opens the sealed seed line "argon2id OPS MEM SALT NONCE BOX" into k->seed. */
static int unseal(const char *path, char *line, const char *passphrase, struct sign_key *k,
                  char **errstr)
{
	char *f[6], *save = NULL;
	unsigned char salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
	unsigned char box[crypto_secretbox_MACBYTES + crypto_sign_SEEDBYTES], *key;
	unsigned long long ops;
	unsigned long long mem;
	int n = 0, ok;

	for (char *t = strtok_r(line, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n != 6)
		return error_set(errstr, EX_DATAERR, "%s: not a demarche key file (damaged)", path);
	ops = strtoull(f[1], NULL, 10);
	mem = strtoull(f[2], NULL, 10);
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE * 4 ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_SENSITIVE ||
	    !unb64(f[3], strlen(f[3]), salt, sizeof(salt)) ||
	    !unb64(f[4], strlen(f[4]), nonce, sizeof(nonce)) ||
	    !unb64(f[5], strlen(f[5]), box, sizeof(box)))
		return error_set(errstr, EX_DATAERR, "%s: not a demarche key file (damaged)", path);
	if (!passphrase || !*passphrase)
		return error_set(
		    errstr, EX_CONFIG,
		    "%s is sealed with a passphrase: set [approval] passphrase_command "
		    "(or DEMARCHE_KEY_PASSPHRASE)",
		    path);
	key = guarded(crypto_secretbox_KEYBYTES);
	ok = crypto_pwhash(key, crypto_secretbox_KEYBYTES, passphrase, strlen(passphrase), salt,
	                   ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) == 0 &&
	     crypto_secretbox_open_easy(k->seed, box, sizeof(box), nonce, key) == 0;
	sodium_free(key);
	if (!ok)
		return error_set(errstr, EX_DATAERR, "%s: the passphrase does not open this key",
		                 path);
	return EX_OK;
}

int sign_key_load(const char *path, const char *passphrase, struct sign_key **out, char **errstr)
{
	struct sign_key *k = NULL;
	struct key_lines kl;
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if ((rc = start(errstr)) != EX_OK)
		return rc;
	if (stat(path, &st) != 0)
		return error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
		                 "cannot read the key %s: %s", path, strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return error_set(errstr, EX_CONFIG,
		                 "the key %s can be read by others (mode %03o); fix it with: "
		                 "chmod 600 %s",
		                 path, (unsigned)(st.st_mode & 0777), path);
	if (read_file(path, &data, &len) != 0)
		return error_set(errstr, EX_IOERR, "cannot read the key %s: %s", path,
		                 strerror(errno));
	k = key_alloc();
	if (!split(data, &kl) || !unb64(kl.pub, strlen(kl.pub), k->pk, sizeof(k->pk))) {
		rc = error_set(errstr, EX_DATAERR, "%s: not a demarche key file", path);
	} else if (!strncmp(kl.rest, "seed ", 5)) {
		if (!unb64(kl.rest + 5, strlen(kl.rest + 5), k->seed, sizeof(k->seed)))
			rc = error_set(errstr, EX_DATAERR, "%s: not a demarche key file (damaged)",
			               path);
	} else if (!strncmp(kl.rest, "argon2id ", 9)) {
		rc = unseal(path, kl.rest, passphrase, k, errstr);
	} else {
		rc = error_set(errstr, EX_DATAERR, "%s: not a demarche key file", path);
	}
	if (rc == EX_OK) {
		unsigned char pk[crypto_sign_PUBLICKEYBYTES];

		crypto_sign_seed_keypair(pk, k->sk, k->seed);
		if (memcmp(pk, k->pk, sizeof(pk)))
			rc = error_set(errstr, EX_DATAERR,
			               "%s: the secret key does not match its public key (damaged)",
			               path);
	}
	sodium_memzero(data, len);
	free(data);
	if (rc != EX_OK) {
		sign_key_free(k);
		return rc;
	}
	*out = k;
	return EX_OK;
}
