/* Files opened only inside a folder: no absolute path, no "..", no symlink leading out. */
#include "base/confine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"

int confine_check_path(const char *rel, char **errstr)
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

int confine_open(const char *dir, const char *rel, int *fdp, struct stat *st, char **resolved,
                 char **errstr)
{
	char *rdir = NULL, *full = NULL, *rfull = NULL;
	const char *rest;
	int dfd, fd = -1, rc, flags;
	size_t n;

	*fdp = -1;
	if (resolved)
		*resolved = NULL;
	rc = confine_check_path(rel, errstr);
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

int confine_read(int fd, size_t max, char **data, size_t *len, char **errstr)
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
