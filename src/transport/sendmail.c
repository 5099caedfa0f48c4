/*
 * The sendmail transport: each message piped to a sendmail-compatible program (sendmail,
 * msmtp, Postfix's sendmail) as "PROGRAM ARGS... -i -f SENDER -- RCPT...", its exit status
 * mapped as sendmail's callers do (sysexits.h): 0 accepted, 75 deferred, anything else
 * failed (docs/design.md, "The sendmail transport"). Never through a shell.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/secret.h"
#include "base/xalloc.h"
#include "transport/backend.h"

#define OUTPUT_MAX 4096 /* bytes of the program's output kept for the reply */

struct sendmail {
	char **argv; /* the program and its own arguments, NULL-terminated */
	size_t argc;
	int timeout;                 /* seconds for one message */
	struct transport_rcpt *rcpt; /* the recipients' entries of the current result */
	size_t cap;
};

static void free_argv(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/*
 * Splits cmd into words the way a shell would split plain words: blanks separate, '...'
 * keeps everything, "..." keeps everything but \" and \\, a backslash outside quotes
 * keeps the next character. No expansion of any kind. Returns 0, or -1 with *why.
 */
static int split_words(const char *cmd, char ***out, size_t *n, const char **why)
{
	char **v = NULL;
	size_t k = 0;
	const char *p = cmd;

	for (;;) {
		struct buf w = BUF_INIT;
		int any = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		while (*p && *p != ' ' && *p != '\t') {
			any = 1;
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');

				if (!e)
					goto unterminated;
				buf_add(&w, p + 1, (size_t)(e - p - 1));
				p = e + 1;
			} else if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					buf_addc(&w, *p);
				}
				if (!*p)
					goto unterminated;
				p++;
			} else if (*p == '\\' && p[1]) {
				buf_addc(&w, p[1]);
				p += 2;
			} else {
				buf_addc(&w, *p++);
			}
		}
		if (any) {
			v = xreallocarray(v, k + 2, sizeof(*v));
			v[k++] = xstrdup(buf_str(&w));
			v[k] = NULL;
		}
		buf_free(&w);
		continue;
	unterminated:
		buf_free(&w);
		free_argv(v);
		*why = "a quote is not closed";
		return -1;
	}
	*out = v;
	*n = k;
	if (!k) {
		*why = "no program given";
		return -1;
	}
	return 0;
}

/* The program as a path: one with a '/' as given, else found in $PATH. NULL when none. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t len = strcspn(p, ":");
		/* an empty element is the current folder */
		char *c = len ? xasprintf("%.*s/%s", (int)len, p, name) : xasprintf("./%s", name);
		struct stat sb;

		if (access(c, X_OK) == 0 && stat(c, &sb) == 0 && S_ISREG(sb.st_mode))
			return c;
		free(c);
		p += len + (p[len] == ':');
	}
	return NULL;
}

int sendmail_open(const struct transport_opts *o, void **impl, char **errstr)
{
	const char *cmd = o->url + strlen("sendmail:");
	struct sendmail *sm;
	const char *why = NULL;
	char **argv = NULL, *prog;
	size_t argc = 0;

	if (o->user && *o->user)
		return error_set(errstr, EX_CONFIG,
		                 "sendmail: the program logs in itself ([smtp] user is for smtp:// "
		                 "only): remove [smtp] user or configure the program");
	if (split_words(cmd, &argv, &argc, &why) < 0)
		return error_set(errstr, EX_CONFIG, "sendmail:%s: %s (sendmail:PROGRAM [ARG...])",
		                 cmd, why);
	if (!(prog = find_program(argv[0]))) {
		error_set(errstr, EX_CONFIG, "sendmail: %s is not an executable program", argv[0]);
		free_argv(argv);
		return EX_CONFIG;
	}
	free(argv[0]);
	argv[0] = prog;
	sm = xcalloc(1, sizeof(*sm));
	sm->argv = argv;
	sm->argc = argc;
	sm->timeout = o->timeout > 0 ? o->timeout : 60;
	*impl = sm;
	return EX_OK;
}

/* The child, between fork() and exec: only async-signal-safe calls. */
static void child(char *const *argv, int in, int out, char **env)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(out, STDERR_FILENO) < 0)
		_exit(127);
	/* No other descriptor: the program must not hold the ledger or its lock. */
	close_range(3, ~0U, 0);
	execve(argv[0], argv, env);
	_exit(127);
}

/* The message as the program reads it: LF line ends (the sendmail interface is text). */
static int write_message(int fd, const struct transport_msg *m)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_grow(&b, m->len);
	for (size_t i = 0; i < m->len; i++)
		if (!(m->data[i] == '\r' && i + 1 < m->len && m->data[i + 1] == '\n'))
			buf_addc(&b, m->data[i]);
	rc = write_all(fd, b.data, b.len);
	buf_free(&b);
	return rc;
}

/* The first line of what the program printed, or "" (from the start of the file fd). */
static char *first_line(int fd)
{
	char out[OUTPUT_MAX + 1];
	ssize_t n = pread(fd, out, OUTPUT_MAX, 0);
	size_t len;

	if (n < 0)
		n = 0;
	out[n] = '\0';
	len = strcspn(out, "\r\n");
	out[len] = '\0';
	return xstrdup(out);
}

/* An unlinked 0600 file in $TMPDIR for what the program prints, or -1. */
static int output_file(void)
{
	const char *dir = getenv("TMPDIR");
	char *tmpl;
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	tmpl = xasprintf("%s/demarche-sendmail.XXXXXX", dir);
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd >= 0)
		unlink(tmpl);
	free(tmpl);
	return fd;
}

static int sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	return nanosleep(&ts, NULL);
}

/*
 * One message through the program. Fills r (its strings allocated into *reply, *error);
 * returns EX_OK, or EX_TEMPFAIL when stopped at 2 (the program killed).
 */
static int pipe_one(struct sendmail *sm, const struct transport_msg *m, volatile sig_atomic_t *stop,
                    struct transport_result *r, char **reply, char **error)
{
	size_t n = sm->argc + 4 + m->nrcpt, k = 0;
	char **argv = xcalloc(n + 1, sizeof(char *)), **env = NULL;
	int in[2] = {-1, -1}, out = -1, status = 0, written = 0, rc = EX_OK, killed = 0;
	int64_t deadline;
	pid_t pid;

	for (size_t i = 0; i < sm->argc; i++)
		argv[k++] = sm->argv[i];
	argv[k++] = "-i"; /* a line with a single dot does not end the message */
	if (*m->from) {
		argv[k++] = "-f";
		argv[k++] = (char *)m->from;
	}
	argv[k++] = "--"; /* a recipient is never an option */
	for (size_t i = 0; i < m->nrcpt; i++)
		argv[k++] = (char *)m->rcpt[i];
	argv[k] = NULL;
	out = output_file();
	if (out < 0 || pipe2(in, O_CLOEXEC) != 0) {
		*error = xasprintf("sendmail: cannot run %s: %s", sm->argv[0], strerror(errno));
		r->state = TX_DEFERRED;
		goto out;
	}
	env = secret_child_environ();
	pid = fork();
	if (pid < 0) {
		*error = xasprintf("sendmail: cannot run %s: %s", sm->argv[0], strerror(errno));
		r->state = TX_DEFERRED;
		goto out;
	}
	if (pid == 0)
		child(argv, in[0], out, env);
	setpgid(pid, pid);
	close(in[0]);
	in[0] = -1;
	/* A program that stops reading early is answered by its exit status, not SIGPIPE. */
	{
		struct sigaction ign, old;

		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &ign, &old);
		written = write_message(in[1], m) == 0;
		sigaction(SIGPIPE, &old, NULL);
	}
	close(in[1]);
	in[1] = -1;
	deadline = transport_now_ms() + (int64_t)sm->timeout * 1000;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		if ((stop && *stop >= 2) || transport_now_ms() > deadline) {
			killed = 1;
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		sleep_ms(20);
	}
	{
		char *said = first_line(out);

		if (killed) {
			/* It had the whole message and may have passed it on: in doubt. */
			r->state = written ? TX_UNKNOWN : TX_DEFERRED;
			*error = xasprintf("%s stopped: %s", sm->argv[0],
			                   stop && *stop >= 2 ? "interrupted" : "timed out");
			if (stop && *stop >= 2)
				rc = EX_TEMPFAIL;
		} else if (WIFEXITED(status)) {
			int code = WEXITSTATUS(status);

			r->state = code == EX_OK         ? TX_SENT
			           : code == EX_TEMPFAIL ? TX_DEFERRED
			                                 : TX_FAILED;
			*reply = xasprintf("sendmail: exit %d%s%s", code, *said ? ": " : "", said);
			/* it said yes without reading it all: what did it pass on? */
			if (code == EX_OK && !written) {
				r->state = TX_UNKNOWN;
				*error = xasprintf("%s exited 0 before reading the whole message",
				                   sm->argv[0]);
			}
		} else {
			r->state = written ? TX_UNKNOWN : TX_DEFERRED;
			*error = xasprintf("%s was killed by signal %d", sm->argv[0],
			                   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		}
		free(said);
	}
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (out >= 0)
		close(out);
	free(argv);
	free(env);
	return rc;
}

static int sendmail_run(void *impl, transport_next_fn next, transport_done_fn done, void *u,
                        volatile sig_atomic_t *stop, char **errstr)
{
	struct sendmail *sm = impl;

	for (;;) {
		struct transport_msg m = {0};
		struct transport_result r = {TX_SENT, 0, NULL, NULL, NULL};
		char *reply = NULL, *error = NULL;
		const char *why;
		long wait_ms = 0;
		int n, rc;

		if (transport_stopping(stop))
			return error_set(errstr, EX_TEMPFAIL, "interrupted");
		n = next(u, &m, &wait_ms);
		if (n == 0)
			return EX_OK;
		if (n < 0) {
			int64_t until = transport_now_ms() + (wait_ms > 0 ? wait_ms : 1);

			while (transport_now_ms() < until && !transport_stopping(stop))
				sleep_ms(50);
			continue;
		}
		if (transport_msg_check(&m, &why) < 0) {
			r.state = TX_FAILED;
			r.error = why;
			transport_report_all(&sm->rcpt, &sm->cap, &m, &r, done, u);
			continue;
		}
		rc = pipe_one(sm, &m, stop, &r, &reply, &error);
		r.reply = reply;
		r.error = error;
		transport_report_all(&sm->rcpt, &sm->cap, &m, &r, done, u);
		free(reply);
		free(error);
		if (rc != EX_OK)
			return error_set(errstr, rc, "interrupted");
	}
}

static void sendmail_free(void *impl)
{
	struct sendmail *sm = impl;

	if (!sm)
		return;
	free_argv(sm->argv);
	free(sm->rcpt);
	free(sm);
}

const struct transport_ops sendmail_ops = {
    "sendmail", sendmail_run, transport_no_connections, sendmail_free, 0, NULL};
