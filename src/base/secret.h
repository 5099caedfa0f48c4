/*
 * Secrets: a password from an environment variable or from running a password_command
 * (once). The secret is never logged; the caller frees it with secret_free(), which wipes it.
 */
#ifndef DEMARCHE_SECRET_H
#define DEMARCHE_SECRET_H

/*
 * Returns EX_OK with *out set (or NULL when neither source is configured): the value of
 * environment variable env when set, else the first line of command's output.
 * EX_CONFIG when the command fails or prints nothing; *errstr says so (without the output).
 */
int secret_get(const char *env, const char *command, char **out, char **errstr);
void secret_free(char *s); /* wipes and frees; NULL is fine */

#endif
