/* Secrets from an environment variable or a command run under a timeout, never logged. */
#include "base/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"

#define SECRET_MAX 65536 /* bytes of output kept; the rest is read and dropped */

extern char **environ;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The environment minus our own passwords: a command has no business seeing them. */
char **secret_child_environ(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = xcalloc(n + 1, sizeof(*env));
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "DEMARCHE_SMTP_PASSWORD=", 23) &&
		    strncmp(environ[i], "DEMARCHE_IMAP_PASSWORD=", 23))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
}

/*
 * The child, between fork() and exec: only async-signal-safe calls (the parent may have
 * threads). tty is the terminal to hand to the new group, or -1.
 */
static void child(const char *command, int out, int tty, char **env)
{
	struct sigaction sa;
	sigset_t none;
	char *argv[] = {"sh", "-c", (char *)command, NULL};

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGTTOU, &sa, NULL); /* tcsetpgrp() from a background group */
	setpgid(0, 0);
	if (tty >= 0)
		tcsetpgrp(tty, getpid());
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTTOU, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (out == STDOUT_FILENO)
		fcntl(out, F_SETFD, 0); /* dup2() would leave its close-on-exec set */
	else if (dup2(out, STDOUT_FILENO) < 0)
		_exit(127);
	/* No other descriptor: a lingering grandchild must not hold the ledger or its lock. */
	close_range(3, ~0U, 0);
	execve("/bin/sh", argv, env);
	_exit(127);
}

/* Gives the terminal back to our own group (we are in the background meanwhile). */
static void tty_reclaim(int tty)
{
	sigset_t block, old;

	if (tty < 0)
		return;
	sigemptyset(&block);
	sigaddset(&block, SIGTTOU);
	sigprocmask(SIG_BLOCK, &block, &old);
	tcsetpgrp(tty, getpgrp());
	sigprocmask(SIG_SETMASK, &old, NULL);
}

int secret_command(const char *command, int timeout, const char *what, char **out, char **errstr)
{
	/* One buffer, never reallocated: a realloc would leave copies of the secret behind. */
	char *sec = xmalloc(SECRET_MAX + 1), chunk[512], **env = NULL;
	size_t len = 0;
	int fds[2] = {-1, -1}, tty = -1, status = 0, rc = EX_OK, timed_out = 0, open_out = 1;
	long long deadline;
	pid_t pid;

	*out = NULL;
	if (timeout <= 0)
		timeout = SECRET_TIMEOUT;
	if (pipe2(fds, O_CLOEXEC) != 0)
		return error_set(errstr, EX_CONFIG, "cannot run %s: %s", what, strerror(errno));
	/* A command that prompts must own the terminal, or reading it would stop it. */
	if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp())
		tty = STDIN_FILENO;
	env = secret_child_environ();
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = error_set(errstr, EX_CONFIG, "cannot run %s: %s", what, strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(command, fds[1], tty, env);
	setpgid(pid, pid); /* also here: no race with the kill below */
	if (tty >= 0)
		tcsetpgrp(tty, pid);
	close(fds[1]);
	fds[1] = -1;
	deadline = now_ms() + (long long)timeout * 1000;
	/* Read to the end of the output, then wait for the exit, both within the deadline. */
	for (;;) {
		long long left = deadline - now_ms();
		pid_t w;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (open_out) {
			struct pollfd p = {fds[0], POLLIN, 0};
			int r = poll(&p, 1, (int)(left < 1000 ? left : 1000));
			ssize_t n;

			if (r < 0 && errno != EINTR)
				break;
			if (r <= 0)
				continue;
			if (len < SECRET_MAX)
				n = read(fds[0], sec + len, SECRET_MAX - len);
			else
				n = read(fds[0], chunk, sizeof(chunk)); /* dropped */
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				open_out = 0;
				continue;
			}
			if (len < SECRET_MAX)
				len += (size_t)n;
			continue;
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		{
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	if (timed_out || open_out) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	tty_reclaim(tty);
	explicit_bzero(chunk, sizeof(chunk));
	if (timed_out) {
		rc = error_set(errstr, EX_CONFIG,
		               "%s did not finish within %d s and was stopped (raise the section's "
		               "command_timeout if it needs longer)",
		               what, timeout);
		goto out;
	}
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (status != -1 && WIFSIGNALED(status))
			rc = error_set(errstr, EX_CONFIG, "%s was killed by signal %d", what,
			               WTERMSIG(status));
		else
			rc =
			    error_set(errstr, EX_CONFIG, "%s failed (exit status %d)", what,
			              status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto out;
	}
	sec[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (sec[i] == '\r' || sec[i] == '\n') {
			len = i;
			break;
		}
	}
	if (len == 0 || memchr(sec, '\0', len)) {
		rc = error_set(errstr, EX_CONFIG, "%s printed %s", what,
		               len ? "a NUL byte in its first line" : "nothing");
		goto out;
	}
	*out = xstrndup(sec, len);
out:
	explicit_bzero(sec, SECRET_MAX + 1);
	free(sec);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	free(env);
	return rc;
}

int secret_get(const char *env, const char *command, char **out, char **errstr)
{
	const char *v = env ? getenv(env) : NULL;

	*out = NULL;
	if (v && *v) {
		*out = xstrdup(v);
		return EX_OK;
	}
	if (!command || !*command)
		return EX_OK;
	return secret_command(command, SECRET_TIMEOUT, "password_command", out, errstr);
}

void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
