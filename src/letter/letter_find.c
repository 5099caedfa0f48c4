/* Where templates are found: the template folders and a template id's path. */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/confine.h"
#include "base/datadir.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/letter_int.h"

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void add_dir(char ***v, size_t *n, char *dir)
{
	char *real = realpath(dir, NULL);

	if (!real || !is_dir(real)) {
		free(real);
		free(dir);
		return;
	}
	for (size_t i = 0; i < *n; i++) {
		char *other = realpath((*v)[i], NULL);
		int same = other && !strcmp(other, real);

		free(other);
		if (same) {
			free(real);
			free(dir);
			return;
		}
	}
	free(real);
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = dir;
}

size_t letter_template_dirs(char ***dirs)
{
	const char *env = getenv("DEMARCHE_TEMPLATES");
	char **v = NULL, **data;
	size_t n = 0, ndata;

	if (env && *env) {
		add_dir(&v, &n, xstrdup(env));
		*dirs = v;
		return n;
	}
	add_dir(&v, &n, xstrdup("templates"));
	/* the installed share folder, the source tree (base/datadir.h) */
	ndata = datadir_list(&data);
	for (size_t i = 0; i < ndata; i++)
		add_dir(&v, &n, xasprintf("%s/templates", data[i]));
	for (size_t i = 0; i < ndata; i++)
		free(data[i]);
	free(data);
	*dirs = v;
	return n;
}

int letter_find_template(const char *id, char **path, char **layout_dir, char **errstr)
{
	char **dirs = NULL;
	size_t n = letter_template_dirs(&dirs);
	int rc = EX_NOINPUT;

	*path = *layout_dir = NULL;
	if (strchr(id, '/')) {
		if (is_dir(id) || access(id, R_OK) == 0) {
			char *copy = xstrdup(id), *parent, *lay;

			while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
				copy[strlen(copy) - 1] = '\0';
			*path = xstrdup(copy);
			parent = dirname(copy);
			lay = xasprintf("%s/_layout", parent);
			if (is_dir(lay))
				*layout_dir = lay;
			else
				free(lay);
			free(copy);
			rc = EX_OK;
		} else {
			error_set(errstr, EX_NOINPUT, "%s: no such template", id);
		}
		goto out;
	}
	if (!*id || id[0] == '_' || id[0] == '.' || strstr(id, "..")) {
		error_set(errstr, EX_NOINPUT, "'%s' is not a template name", id);
		goto out;
	}
	for (size_t i = 0; i < n && rc != EX_OK; i++) {
		char *p = xasprintf("%s/%s", dirs[i], id);

		if (is_dir(p)) {
			char *lay = xasprintf("%s/_layout", dirs[i]);

			*path = p;
			if (is_dir(lay))
				*layout_dir = lay;
			else
				free(lay);
			rc = EX_OK;
		} else {
			free(p);
		}
	}
	if (rc != EX_OK) {
		struct buf b = BUF_INIT;

		for (size_t i = 0; i < n; i++)
			buf_addf(&b, "%s%s", i ? ", " : "", dirs[i]);
		error_set(errstr, EX_NOINPUT,
		          "no template '%s' in %s (see 'demarche templates'; DEMARCHE_TEMPLATES "
		          "names another folder)",
		          id, n ? buf_str(&b) : "any template folder");
		buf_free(&b);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	return rc;
}
