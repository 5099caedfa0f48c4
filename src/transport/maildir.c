/* The Maildir transport: each message into DIR/new by way of DIR/tmp (cr.yp.to/proto/maildir). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "transport/backend.h"

struct maildir {
	char *dir;
	unsigned long seq;           /* deliveries by this process, for unique names */
	struct transport_rcpt *rcpt; /* the recipients' entries of the current result */
	size_t cap;
};

/* mkdir -p for DIR itself (mode 0700 for what we create). */
static int mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = -1;
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		rc = -1;
out:
	free(p);
	return rc;
}

int maildir_open(const char *dir, void **impl, char **errstr)
{
	static const char *const sub[] = {"tmp", "new", "cur"};
	struct maildir *md;
	size_t n = strlen(dir);

	if (n == 0)
		return error_set(errstr, EX_CONFIG, "maildir: needs a folder (maildir:DIR)");
	md = xcalloc(1, sizeof(*md));
	md->dir = xstrdup(dir);
	while (n > 1 && md->dir[n - 1] == '/')
		md->dir[--n] = '\0';
	if (mkdir_p(md->dir) < 0) {
		error_set(errstr, EX_IOERR, "cannot create maildir %s: %s", md->dir,
		          strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", md->dir, sub[i]);
		int bad = mkdir(p, 0700) < 0 && errno != EEXIST;

		if (bad)
			error_set(errstr, EX_IOERR, "cannot create %s: %s", p, strerror(errno));
		free(p);
		if (bad)
			goto fail;
	}
	*impl = md;
	return EX_OK;
fail:
	free(md->dir);
	free(md);
	return EX_IOERR;
}

/*
 * Writes one message: tmp/NAME (created exclusively), fsync, rename to new/NAME, fsync new/,
 * so the message appears whole or not at all. NAME is "sec.MusecPpidQseq.demarche" (the
 * modern unique-name form; the host part needs no real hostname). Returns 0 with *name set
 * (caller frees); -1 with errno set and *what naming the failed step when nothing reached
 * new/; -2 likewise when the message is in new/ but may not be on disk yet.
 */
static int deliver(struct maildir *md, const struct transport_msg *m, char **name,
                   const char **what)
{
	char *tmp = NULL, *new = NULL, *dir = NULL;
	int fd = -1, dfd = -1, rc = -1, saved;

	*name = NULL;
	for (int tries = 0; fd < 0; tries++) {
		struct timeval tv;

		gettimeofday(&tv, NULL);
		free(*name);
		free(tmp);
		*name = xasprintf("%lld.M%06ldP%ldQ%lu.demarche", (long long)tv.tv_sec,
		                  (long)tv.tv_usec, (long)getpid(), ++md->seq);
		tmp = xasprintf("%s/tmp/%s", md->dir, *name);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && (errno != EEXIST || tries > 100)) {
			*what = "create";
			goto out;
		}
	}
	if (write_all(fd, m->data, m->len) < 0) {
		*what = "write";
		goto out;
	}
	if (fsync(fd) < 0) {
		*what = "fsync";
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		*what = "close";
		goto out;
	}
	fd = -1;
	new = xasprintf("%s/new/%s", md->dir, *name);
	if (rename(tmp, new) < 0) {
		*what = "rename";
		goto out;
	}
	dir = xasprintf("%s/new", md->dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		*what = "fsync the folder for";
		rc = -2;
		goto out;
	}
	rc = 0;
out:
	saved = errno;
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(new);
	free(dir);
	errno = saved;
	return rc;
}

/* Sleeps ms milliseconds, in steps short enough to notice *stop. */
static void nap(long ms, volatile sig_atomic_t *stop)
{
	int64_t until = transport_now_ms() + ms;

	for (int64_t now = transport_now_ms(); now < until && !transport_stopping(stop);
	     now = transport_now_ms())
		poll(NULL, 0, until - now > 200 ? 200 : (int)(until - now));
}

static int maildir_run(void *impl, transport_next_fn next, transport_done_fn done, void *u,
                       volatile sig_atomic_t *stop, char **errstr)
{
	struct maildir *md = impl;

	for (;;) {
		struct transport_msg m = {0};
		struct transport_result r = {TX_SENT, 0, NULL, NULL, NULL};
		const char *why, *what = "";
		char *name = NULL, *reply = NULL;
		long wait_ms = 0;
		int n;

		if (transport_stopping(stop))
			return error_set(errstr, EX_TEMPFAIL, "interrupted");
		n = next(u, &m, &wait_ms);
		if (n == 0)
			return EX_OK;
		if (n < 0) {
			nap(wait_ms > 0 ? wait_ms : 1, stop);
			continue;
		}
		if (transport_msg_check(&m, &why) < 0) {
			r.state = TX_FAILED;
			r.error = why;
			transport_report_all(&md->rcpt, &md->cap, &m, &r, done, u);
			continue;
		}
		n = deliver(md, &m, &name, &what);
		if (n < 0) {
			char *err = xasprintf("maildir %s: cannot %s %s: %s", md->dir, what,
			                      name ? name : "a new file", strerror(errno));

			r.state = n == -2 ? TX_UNKNOWN : TX_DEFERRED;
			r.error = err;
			transport_report_all(&md->rcpt, &md->cap, &m, &r, done, u);
			error_set(errstr, EX_IOERR, "%s", err);
			free(err);
			free(name);
			return EX_IOERR;
		}
		reply = xasprintf("maildir: new/%s", name);
		r.reply = reply;
		transport_report_all(&md->rcpt, &md->cap, &m, &r, done, u);
		free(reply);
		free(name);
	}
}

static void maildir_free(void *impl)
{
	struct maildir *md = impl;

	if (!md)
		return;
	free(md->dir);
	free(md->rcpt);
	free(md);
}

/* A Maildir is a staging channel: nothing in it has reached a mission (docs/design.md,
 * "Staging is not delivery"). */
const struct transport_ops maildir_ops = {"maildir",    maildir_run, transport_no_connections,
                                          maildir_free, 1,           NULL};
