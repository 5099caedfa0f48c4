/* demarche templates: list the letter templates with their languages and params. */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "letter/letter.h"

const char usage_templates[] =
    "usage: demarche templates [--format text|json]\n"
    "\n"
    "Lists each template: id, title, languages and params (one per line).\n"
    "Templates are the folders (not starting with '_') of ./templates, then the installed\n"
    "share folder, then the source tree's templates/; $DEMARCHE_TEMPLATES replaces them all.\n"
    "A template found earlier hides one of the same id found later.\n"
    "\n"
    "  --format text|json  output format (default text)\n"
    "\n"
    "Exit: 0; 64 usage; 65 a template does not load (the others are still listed).\n";

struct entry {
	char *id, *path, *layout;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->id, ((const struct entry *)b)->id);
}

/* The templates of every folder, each id once (the first folder wins), sorted. */
static size_t collect(struct entry **out)
{
	char **dirs = NULL;
	size_t ndirs = letter_template_dirs(&dirs), n = 0;
	struct entry *v = NULL;

	for (size_t i = 0; i < ndirs; i++) {
		DIR *dp = opendir(dirs[i]);
		struct dirent *de;

		while (dp && (de = readdir(dp))) {
			char *p;
			struct stat st;
			int seen = 0;

			if (de->d_name[0] == '_' || de->d_name[0] == '.')
				continue;
			for (size_t j = 0; j < n; j++)
				seen |= !strcmp(v[j].id, de->d_name);
			p = xasprintf("%s/%s", dirs[i], de->d_name);
			if (seen || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
				free(p);
				continue;
			}
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n].id = xstrdup(de->d_name);
			v[n].path = p;
			v[n].layout = xasprintf("%s/_layout", dirs[i]);
			n++;
		}
		if (dp)
			closedir(dp);
		free(dirs[i]);
	}
	free(dirs);
	if (n)
		qsort(v, n, sizeof(*v), cmp_entry);
	*out = v;
	return n;
}

int cmd_templates(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	const char *format = "text";
	struct entry *v = NULL;
	json_t *arr = NULL;
	size_t n;
	int c, rc = EX_OK;

	(void)app;
	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		if (c == 'f') {
			format = optarg;
			continue;
		}
		fputs(usage_templates, stderr);
		return EX_USAGE;
	}
	if (optind < argc || (strcmp(format, "text") && strcmp(format, "json"))) {
		fputs(usage_templates, stderr);
		return EX_USAGE;
	}
	n = collect(&v);
	if (!strcmp(format, "json"))
		arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct diags d = DIAGS_INIT;
		struct letter *l = NULL;
		const char *const *langs, *const *params;
		size_t nl, np;
		const char *title;

		if (letter_load(v[i].path, v[i].layout, &l, &d) != EX_OK) {
			diags_print(&d, stderr);
			diags_free(&d);
			rc = EX_DATAERR;
			continue;
		}
		diags_free(&d);
		langs = letter_languages(l, &nl);
		params = letter_params(l, &np);
		title = letter_header_source(l, "en", "Title");
		if (!title)
			title = letter_header_source(l, "en", "Subject");
		if (arr) {
			json_t *o = json_object(), *jl = json_array(), *jp = json_array();

			for (size_t j = 0; j < nl; j++)
				json_array_append_new(jl, json_string(langs[j]));
			for (size_t j = 0; j < np; j++)
				json_array_append_new(jp, json_string(params[j]));
			json_object_set_new(o, "id", json_string(v[i].id));
			json_object_set_new(o, "path", json_string(v[i].path));
			json_object_set_new(o, "title", json_string(title ? title : ""));
			json_object_set_new(o, "languages", jl);
			json_object_set_new(o, "params", jp);
			json_array_append_new(arr, o);
		} else {
			printf("%s%s\n", i ? "\n" : "", v[i].id);
			printf("    title      %s\n", title ? title : "");
			printf("    languages ");
			for (size_t j = 0; j < nl; j++)
				printf(" %s", langs[j]);
			printf("\n");
			for (size_t j = 0; j < np; j++)
				printf("    param      %s\n", params[j]);
		}
		letter_free(l);
	}
	if (arr) {
		char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(arr);
	}
	if (!n) {
		fprintf(stderr,
		        "demarche templates: no templates found (set DEMARCHE_TEMPLATES)\n");
		rc = EX_NOINPUT;
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		free(v[i].path);
		free(v[i].layout);
	}
	free(v);
	return rc;
}
