/* Secrets from an environment variable or a password_command, never logged. */
#include "base/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/xalloc.h"

int secret_get(const char *env, const char *command, char **out, char **errstr)
{
	const char *v = env ? getenv(env) : NULL;
	struct buf b = BUF_INIT;
	char chunk[512];
	size_t n;
	FILE *fp;
	int status;

	*out = NULL;
	if (v && *v) {
		*out = xstrdup(v);
		return EX_OK;
	}
	if (!command || !*command)
		return EX_OK;
	fp = popen(command, "r");
	if (!fp)
		return error_set(errstr, EX_CONFIG, "cannot run password_command");
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	status = pclose(fp);
	explicit_bzero(chunk, sizeof(chunk));
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		secret_free(buf_detach(&b));
		return error_set(errstr, EX_CONFIG, "password_command failed (exit status %d)",
		                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	b.len = strcspn(buf_str(&b), "\r\n");
	if (b.len == 0) {
		secret_free(buf_detach(&b));
		return error_set(errstr, EX_CONFIG, "password_command printed nothing");
	}
	b.data[b.len] = '\0';
	*out = buf_detach(&b);
	return EX_OK;
}

void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
