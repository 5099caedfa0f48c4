/* write_all() and atomic replacement of a file (file.h). */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"

/* write() or, with at, pwrite() at off, until all of it is written. */
static int write_loop(int fd, const void *data, size_t len, off_t off, int at)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = at ? pwrite(fd, p, len, off) : write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO; /* no progress and no error: do not spin */
			return -1;
		}
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

int write_all(int fd, const void *data, size_t len)
{
	return write_loop(fd, data, len, 0, 0);
}

int file_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
	return write_loop(fd, data, len, off, 1);
}

int file_pread_all(int fd, void *data, size_t len, off_t off)
{
	char *p = data;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO; /* the file is shorter than its records say */
			return -1;
		}
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

/* The folder holding path ("." when it has none); allocated. */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags,
                      char **errstr)
{
	char *tmp = NULL, *dir = NULL;
	int fd = -1, dfd = -1, rc = EX_OK, saved;
	const char *what = NULL;

	for (int tries = 0; fd < 0; tries++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		free(tmp);
		tmp = xasprintf("%s.%ld.%ld.tmp", path, (long)getpid(), (long)ts.tv_nsec + tries);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0 && (errno != EEXIST || tries >= 100)) {
			rc = error_set(errstr, EX_CANTCREAT, "cannot create %s: %s", tmp,
			               strerror(errno));
			goto out;
		}
	}
	if (write_all(fd, data, len) != 0)
		what = "write";
	else if ((flags & FILE_SYNC) && fsync(fd) != 0)
		what = "fsync";
	saved = errno;
	if (close(fd) != 0 && !what) {
		saved = errno;
		what = "close";
	}
	fd = -1;
	if (!what && rename(tmp, path) != 0) {
		saved = errno;
		what = "rename";
	}
	if (what) {
		unlink(tmp);
		rc = error_set(errstr, EX_IOERR, "cannot write %s (%s): %s", path, what,
		               strerror(saved));
		goto out;
	}
	if (flags & FILE_SYNC) {
		dir = folder_of(path);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			rc = error_set(errstr, EX_IOERR, "cannot fsync the folder %s: %s", dir,
			               strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(dir);
	return rc;
}
