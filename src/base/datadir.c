/* Where demarche's data (templates/, recipients/) is found, wherever it was built or installed. */
#include "base/datadir.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/xalloc.h"

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds dir (taken) when it exists and is not listed already under another name. */
static void add(char ***v, size_t *n, char *dir)
{
	char *real = realpath(dir, NULL);

	free(dir);
	if (!real || !is_dir(real)) {
		free(real);
		return;
	}
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], real)) {
			free(real);
			return;
		}
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = real;
}

size_t datadir_list(char ***dirs)
{
	char **v = NULL, *exe = realpath("/proc/self/exe", NULL), *slash;
	size_t n = 0;

	if (exe && (slash = strrchr(exe, '/')) && slash != exe) {
		*slash = '\0';
		add(&v, &n, xasprintf("%s/../share/demarche", exe));
	}
#ifdef DEMARCHE_DATADIR
	add(&v, &n, xstrdup(DEMARCHE_DATADIR));
#endif
	while (exe && (slash = strrchr(exe, '/')) && slash != exe) {
		char *probe = xasprintf("%s/templates/_layout", exe);
		int found = is_dir(probe);

		free(probe);
		if (found) {
			add(&v, &n, xstrdup(exe));
			break;
		}
		*slash = '\0';
	}
	free(exe);
#ifdef DEMARCHE_SOURCE_DIR
	add(&v, &n, xstrdup(DEMARCHE_SOURCE_DIR));
#endif
	*dirs = v;
	return n;
}
