/*
 * Ed25519 signatures through libsodium (crypto_sign_detached), for approvals
 * (docs/design.md, "Two-person approval"): key pairs, a secret key file (mode 0600, the seed
 * in the clear or sealed with a passphrase: crypto_pwhash Argon2id + crypto_secretbox),
 * signing, and checking a signature. Keys and signatures travel as standard base64 (a
 * public key is 44 characters, a signature 88). Only this file sees libsodium. A secret key
 * is never printed, logged or stored anywhere but its file; sign_key_free() wipes it.
 */
#ifndef DEMARCHE_SIGN_H
#define DEMARCHE_SIGN_H

#include <stddef.h>

#define SIGN_PUBLIC_B64 45 /* a public key in base64 and the NUL */
#define SIGN_SIG_B64    89 /* a signature in base64 and the NUL */

struct sign_key; /* a key pair; opaque, kept in guarded memory */

/* A new key pair. Returns EX_OK with *out (free with sign_key_free()), or EX_SOFTWARE with
 * *errstr when libsodium cannot start (no entropy). */
int sign_key_new(struct sign_key **out, char **errstr);

/* The key's public half in base64 (SIGN_PUBLIC_B64 bytes). Can't fail. */
void sign_key_public(const struct sign_key *k, char out[SIGN_PUBLIC_B64]);

/*
 * Writes the secret key file at path (mode 0600, atomically, durable; refused when the file
 * exists: EX_CANTCREAT). passphrase NULL or "": the seed in the clear; else sealed
 * (Argon2id, interactive limits). Returns EX_OK, EX_CANTCREAT or EX_IOERR with *errstr.
 */
int sign_key_save(const struct sign_key *k, const char *path, const char *passphrase,
                  char **errstr);

/* 1 when the key file at path is sealed with a passphrase, 0 when not (or unreadable). */
int sign_key_sealed(const char *path);

/*
 * Reads the secret key file at path (passphrase needed when it is sealed). Returns EX_OK
 * with *out, or: EX_NOINPUT (no such file), EX_CONFIG (readable by group or others, or a
 * passphrase is needed and none was given), EX_DATAERR (not a key file, damaged, or the
 * passphrase is wrong), EX_IOERR, each with *errstr naming the file (never the key).
 */
int sign_key_load(const char *path, const char *passphrase, struct sign_key **out, char **errstr);

void sign_key_free(struct sign_key *k); /* wipes; NULL is fine */

/* The detached signature of msg[0..len) in base64 (SIGN_SIG_B64 bytes). Can't fail. */
void sign_detached(const struct sign_key *k, const void *msg, size_t len, char sig[SIGN_SIG_B64]);

/*
 * 1 when sig (base64) is public_key's (base64) valid signature of msg[0..len); 0 when it is
 * not, or either does not decode to the right size. Can't fail.
 */
int sign_verify(const char *public_key, const char *sig, const void *msg, size_t len);

/* 1 when s is a well-formed public key (base64 of 32 bytes). */
int sign_public_valid(const char *s);

#endif
