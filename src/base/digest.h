/*
 * SHA-256 through OpenSSL's EVP interface (the one digest helper): of a buffer, or streamed.
 * The algorithm is fetched once per process, not once per digest. Nothing here fails except
 * on exhausted memory or a broken OpenSSL, which end the program like xmalloc() (EX_OSERR).
 * Thread-safe: separate struct digest objects may be used from separate threads.
 */
#ifndef DEMARCHE_DIGEST_H
#define DEMARCHE_DIGEST_H

#include <stddef.h>

#define DIGEST_SIZE     32 /* bytes of a SHA-256 */
#define DIGEST_HEX_SIZE 65 /* its lower-case hex and the NUL */

/* hex = the lower-case hex SHA-256 of data[0..len). Can't fail. */
void digest_sha256_hex(const void *data, size_t len, char hex[DIGEST_HEX_SIZE]);

/* Lower-case hex of md[0..n) into hex (2n + 1 bytes). Can't fail. */
void digest_to_hex(const unsigned char *md, size_t n, char *hex);

struct digest;

/* A streaming SHA-256, ready for digest_update(); free with digest_free(). Can't fail. */
struct digest *digest_new(void);
void digest_update(struct digest *d, const void *data, size_t len);
/* The digest of everything added; d is then reset, ready for a new one. Can't fail. */
void digest_final(struct digest *d, unsigned char md[DIGEST_SIZE]);
void digest_final_hex(struct digest *d, char hex[DIGEST_HEX_SIZE]);
void digest_free(struct digest *d); /* NULL is safe */

#endif
