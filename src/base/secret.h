/*
 * Secrets: a password or token from an environment variable or from running a command
 * (password_command, oauth_token_command), never logged, never in argv, never stored. The
 * caller frees a secret with secret_free(), which wipes it.
 */
#ifndef DEMARCHE_SECRET_H
#define DEMARCHE_SECRET_H

#define SECRET_TIMEOUT 30 /* seconds a command may take, when the configuration says nothing */

/*
 * Runs command with /bin/sh -c in a process group of its own, stdin and stderr inherited
 * (a prompt reaches the terminal, which is handed to the command's group while it runs),
 * no other file descriptor, and the environment without DEMARCHE_SMTP_PASSWORD and
 * DEMARCHE_IMAP_PASSWORD. Its first output line is the secret.
 * After timeout seconds (<= 0: SECRET_TIMEOUT) the whole group is killed (SIGKILL).
 * what names the command in messages ("[smtp] password_command"); its output never appears
 * in them. Returns EX_OK with *out set (allocated; secret_free()), or EX_CONFIG with *out
 * NULL and *errstr: cannot run, timed out, exit status not 0, killed by a signal, or empty
 * first line.
 */
int secret_command(const char *command, int timeout, const char *what, char **out, char **errstr);

/*
 * Returns EX_OK with *out set (or NULL when neither source is configured): the value of
 * environment variable env when set and not empty, else the first line of command's output
 * (secret_command() with SECRET_TIMEOUT). EX_CONFIG as secret_command().
 */
int secret_get(const char *env, const char *command, char **out, char **errstr);

void secret_free(char *s); /* wipes and frees; NULL is fine */
/*
 * The environment for a program we run (password_command, a sendmail program): environ
 * without DEMARCHE_SMTP_PASSWORD and DEMARCHE_IMAP_PASSWORD. The array is the caller's to
 * free (free() only: its strings are environ's). Can't fail.
 */
char **secret_child_environ(void);

#endif
