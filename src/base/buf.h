/* A growable byte buffer, always NUL-terminated. */
#ifndef DEMARCHE_BUF_H
#define DEMARCHE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* None of these can fail (allocation failure ends the program). */
void buf_init(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b); /* len = 0, keeps the memory */
void buf_truncate(struct buf *b, size_t len);
/* Returns the contents ("" if empty) for the caller to free(); the buffer is emptied. */
char *buf_detach(struct buf *b);
/* The contents, "" when empty; owned by the buffer. */
const char *buf_str(const struct buf *b);
void buf_free(struct buf *b); /* safe on an empty or freed buffer */

#endif
