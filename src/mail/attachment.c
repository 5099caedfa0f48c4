/* Attachments: opened inside their letter's folder, read once per run, RFC 2231 names. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "mail/attachment.h"
#include "mail/compose.h"
#include "mail/encode.h"
#include "mail/rfc2047.h"

#define MAX_ASCII_NAME 60 /* keeps ' name="..."' within 78 columns */
#define MAX_SEGMENT    60 /* RFC 2231 section 3: one continuation's value per line */

static const struct {
	const char *ext, *type;
} types[] = {
    {"pdf", "application/pdf"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"txt", "text/plain"},
};

const char *mail_content_type(const char *filename)
{
	const char *dot = strrchr(filename, '.');
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* A readable ASCII stand-in: Latin-1 letters lose their accents, the rest becomes "_". */
static char *ascii_name(const char *name)
{
	static const char latin1[] =
	    "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo_ouuuuyty";
	const unsigned char *s = (const unsigned char *)name;
	struct buf b = BUF_INIT;
	const char *ext;
	char *r;

	while (*s) {
		if (*s < 0x80) {
			buf_addc(&b, *s < 0x20 || *s == 0x7F || *s == '"' || *s == '\\' ? '_'
			                                                                : (char)*s);
			s++;
			continue;
		}
		if (s[0] == 0xC3 && s[1] >= 0x80 && s[1] <= 0xBF)
			buf_addc(&b, latin1[s[1] - 0x80]);
		else
			buf_addc(&b, '_');
		for (s++; (*s & 0xC0) == 0x80; s++)
			;
	}
	r = buf_detach(&b);
	if (strlen(r) > MAX_ASCII_NAME) {
		/* Keep the extension: it is what tells a reader's system the type. */
		ext = strrchr(r, '.');
		if (!ext || strlen(ext) > 10)
			ext = "";
		memmove(r + MAX_ASCII_NAME - strlen(ext), ext, strlen(ext) + 1);
	}
	return r;
}

/* RFC 2231 section 7: attribute-char, what an extended value carries unencoded. */
static int attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* The next continuation's length from i: at most MAX_SEGMENT, never cutting a %XX. */
static size_t seg_len(const struct buf *enc, size_t i)
{
	size_t seg = enc->len - i > MAX_SEGMENT ? MAX_SEGMENT : enc->len - i;

	if (i + seg < enc->len && enc->data[i + seg - 1] == '%')
		seg -= 1;
	else if (i + seg < enc->len && enc->data[i + seg - 2] == '%')
		seg -= 2;
	return seg;
}

/*
 * "attachment; filename*=utf-8''..." with continuations (RFC 2231 sections 3 and 4), folded
 * by us: libetpan would write an extended value as a quoted-string, which RFC 2231 forbids
 * (and Python's parser flags), so the whole value goes to libetpan as a disposition type.
 */
static char *rfc2231_disposition(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)name;
	struct buf enc = BUF_INIT, b = BUF_INIT;
	size_t i, k = 0, nseg = 0;

	buf_adds(&enc, "utf-8''");
	for (; *s; s++) {
		if (attr_char(*s)) {
			buf_addc(&enc, (char)*s);
		} else {
			char t[3] = {'%', hex[*s >> 4], hex[*s & 15]};
			buf_add(&enc, t, 3);
		}
	}
	for (i = 0; i < enc.len; i += seg_len(&enc, i))
		nseg++;
	buf_adds(&b, "attachment");
	for (i = 0; i < enc.len; i += seg_len(&enc, i)) {
		if (nseg > 1)
			buf_addf(&b, ";\r\n filename*%zu*=", k++);
		else
			buf_adds(&b, ";\r\n filename*=");
		buf_add(&b, enc.data + i, seg_len(&enc, i));
	}
	buf_free(&enc);
	return buf_detach(&b);
}

static int simple_name(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;

	if (strlen(name) > MAX_ASCII_NAME)
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7F || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

int mail_attachment_new(const char *filename, const void *data, size_t len,
                        struct mail_attachment **out, char **errstr)
{
	struct mail_attachment *a;
	struct buf b = BUF_INIT;
	const unsigned char *s;

	*out = NULL;
	if (!*filename)
		return error_set(errstr, EX_DATAERR, "attachment: empty file name");
	if (!utf8_valid(filename, strlen(filename)))
		return error_set(errstr, EX_DATAERR, "attachment: file name is not valid UTF-8");
	for (s = (const unsigned char *)filename; *s; s++)
		if (*s < 0x20 || *s == 0x7F)
			return error_set(
			    errstr, EX_DATAERR,
			    "attachment: file name holds a control character (refused)");
	a = xcalloc(1, sizeof(*a));
	a->filename = xstrdup(filename);
	a->content_type = xstrdup(mail_content_type(filename));
	a->data = xmalloc(len + 1);
	if (len)
		memcpy(a->data, data, len);
	a->data[len] = '\0';
	a->len = len;
	mail_base64_encode(&b, data, len);
	a->encoded_len = b.len;
	a->encoded = buf_detach(&b);
	a->ascii_name = ascii_name(filename);
	if (!simple_name(filename))
		a->disposition = rfc2231_disposition(filename);
	*out = a;
	return EX_OK;
}

int mail_attachment_check_path(const char *rel, char **errstr)
{
	const char *s = rel;

	if (!*rel)
		return error_set(errstr, EX_DATAERR, "empty file name");
	if (rel[0] == '/')
		return error_set(errstr, EX_DATAERR,
		                 "an absolute path; an attachment must be a file inside the "
		                 "letter's folder, named relative to it");
	while (*s) {
		size_t n = strcspn(s, "/");

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return error_set(errstr, EX_DATAERR,
			                 "a '..' component; an attachment must be a file inside "
			                 "the letter's folder");
		s += n;
		while (*s == '/')
			s++;
	}
	return EX_OK;
}

/* O_PATH walks folders that can be searched but not listed; elsewhere, read access. */
#ifdef O_PATH
#define DIR_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#else
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#endif

/*
 * Opens the canonical path rest (no symlink, no "..", no "." in it) beneath dfd, one
 * component at a time with O_NOFOLLOW: a symlink swapped in since realpath() looked fails
 * with ELOOP (or ENOTDIR) instead of being followed. Takes dfd (closes it). Returns the
 * file's descriptor or -1 with errno.
 */
static int open_beneath(int dfd, const char *rest)
{
	char *copy = xstrdup(rest), *c = copy, *slash;
	int fd = -1, e;

	while ((slash = strchr(c, '/'))) {
		int nfd;

		*slash = '\0';
		nfd = openat(dfd, c, DIR_FLAGS);
		e = errno;
		close(dfd);
		dfd = nfd;
		if (dfd < 0) {
			free(copy);
			errno = e;
			return -1;
		}
		c = slash + 1;
	}
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat() then refuses it. */
	fd = openat(dfd, c, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	e = errno;
	close(dfd);
	free(copy);
	errno = e;
	return fd;
}

int mail_attachment_open(const char *dir, const char *rel, int *fdp, struct stat *st,
                         char **resolved, char **errstr)
{
	char *rdir = NULL, *full = NULL, *rfull = NULL;
	const char *rest;
	int dfd, fd = -1, rc, flags;
	size_t n;

	*fdp = -1;
	if (resolved)
		*resolved = NULL;
	rc = mail_attachment_check_path(rel, errstr);
	if (rc != EX_OK)
		return rc;
	rdir = realpath(dir, NULL);
	if (!rdir) {
		rc = error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR, "folder %s: %s",
		               dir, strerror(errno));
		goto out;
	}
	n = strlen(rdir);
	full = xasprintf("%s/%s", n == 1 ? "" : rdir, rel);
	rfull = realpath(full, NULL);
	if (!rfull) {
		if (errno == ENOENT || errno == ENOTDIR)
			rc = error_set(errstr, EX_NOINPUT, "no such file");
		else if (errno == ELOOP)
			rc = error_set(errstr, EX_DATAERR, "a loop of symlinks");
		else
			rc = error_set(errstr, EX_IOERR, "%s", strerror(errno));
		goto out;
	}
	/* Inside: below rdir, not rdir itself (a folder is refused below anyway). */
	if (n == 1 ? rfull[1] == '\0' : strncmp(rfull, rdir, n) != 0 || rfull[n] != '/') {
		rc = error_set(errstr, EX_DATAERR,
		               "it resolves through a symlink to %s, outside the letter's folder "
		               "%s; an attachment must be a file inside that folder",
		               rfull, rdir);
		goto out;
	}
	rest = rfull + (n == 1 ? 1 : n + 1);
	dfd = open(rdir, DIR_FLAGS);
	if (dfd < 0) {
		rc = error_set(errstr, EX_IOERR, "folder %s: %s", rdir, strerror(errno));
		goto out;
	}
	fd = open_beneath(dfd, rest);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			rc = error_set(errstr, EX_DATAERR,
			               "a symlink appeared on the way to %s while it was being "
			               "opened (refused)",
			               rfull);
		else
			rc = error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR, "%s",
			               strerror(errno));
		goto out;
	}
	if (fstat(fd, st) != 0) {
		rc = error_set(errstr, EX_IOERR, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = error_set(errstr, EX_DATAERR, "it is not a regular file");
		goto out;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	*fdp = fd;
	fd = -1;
	if (resolved) {
		*resolved = rfull;
		rfull = NULL;
	}
	rc = EX_OK;
out:
	if (fd >= 0)
		close(fd);
	free(rdir);
	free(full);
	free(rfull);
	return rc;
}

int mail_attachment_read(int fd, size_t max, char **data, size_t *len, char **errstr)
{
	struct buf b = BUF_INIT;
	char chunk[65536];

	*data = NULL;
	*len = 0;
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			buf_free(&b);
			return error_set(errstr, EX_IOERR, "%s", strerror(errno));
		}
		if (r == 0)
			break;
		/* Checked while reading: a file growing after fstat() is refused too. */
		if ((size_t)r > max - b.len) {
			buf_free(&b);
			return error_set(errstr, EX_DATAERR,
			                 "over the %zu byte limit of an attachment", max);
		}
		buf_add(&b, chunk, (size_t)r);
	}
	*len = b.len;
	*data = buf_detach(&b);
	return EX_OK;
}

/* Reads fd whole and makes the attachment named after path's last component. */
static int load_fd(int fd, const char *path, struct mail_attachment **out, char **errstr)
{
	const char *base = strrchr(path, '/');
	char *data = NULL, *err = NULL;
	size_t len;
	int rc = mail_attachment_read(fd, MAIL_ATTACHMENT_MAX, &data, &len, &err);

	if (rc != EX_OK) {
		error_set(errstr, rc, "attachment %s: %s", path, err);
		free(err);
		return rc;
	}
	rc = mail_attachment_new(base ? base + 1 : path, data, len, out, errstr);
	free(data);
	return rc;
}

int mail_attachment_load(const char *path, struct mail_attachment **out, char **errstr)
{
	struct stat st;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
		                 "attachment %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(errstr, EX_DATAERR, "attachment %s: not a regular file", path);
	}
	rc = load_fd(fd, path, out, errstr);
	close(fd);
	return rc;
}

int mail_attachment_load_in(const char *dir, const char *rel, struct mail_attachment **out,
                            char **errstr)
{
	struct stat st;
	char *err = NULL;
	int fd, rc;

	*out = NULL;
	rc = mail_attachment_open(dir, rel, &fd, &st, NULL, &err);
	if (rc != EX_OK) {
		error_set(errstr, rc, "attachment '%s' (in %s): %s", rel, dir, err);
		free(err);
		return rc;
	}
	rc = load_fd(fd, rel, out, errstr);
	close(fd);
	return rc;
}

void mail_attachment_free(struct mail_attachment *a)
{
	if (!a)
		return;
	free(a->filename);
	free(a->content_type);
	free(a->data);
	free(a->encoded);
	free(a->ascii_name);
	free(a->disposition);
	free(a);
}
