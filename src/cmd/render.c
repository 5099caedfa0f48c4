/* demarche render: render one Mustache file with a JSON context. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "letter/mustache.h"

const char usage_render[] =
    "usage: demarche render FILE [--data FILE.json] [--partials DIR] [--escape "
    "html|markdown|none]\n"
    "                       [--strict]\n"
    "\n"
    "Renders FILE with the JSON context to standard output. {{> NAME}} reads DIR/NAME.mustache.\n"
    "\n"
    "  --data FILE.json  the context (any JSON value; default {})\n"
    "  --partials DIR    where partials and parents are found (default: FILE's directory)\n"
    "  --escape KIND     how {{x}} escapes values: html (default), markdown, none;\n"
    "                    {{{x}}} and {{&x}} never escape\n"
    "  --strict          a name missing from the context is an error (all are listed);\n"
    "                    otherwise it renders empty, as the Mustache spec says\n"
    "\n"
    "Exit: 0 done; 64 usage; 65 bad JSON, template error or missing names; 66 missing file.\n";

struct dir_loader {
	const char *dir;
};

/* DIR/NAME.mustache; names may hold '/' (subfolders) but never leave DIR. */
static int load_from_dir(void *user, const char *name, char **src, size_t *len)
{
	const struct dir_loader *l = user;
	char *path;
	int rc;

	if (name[0] == '/' || !strcmp(name, "..") || str_startswith(name, "../") ||
	    strstr(name, "/../") || (strlen(name) >= 3 && !strcmp(name + strlen(name) - 3, "/..")))
		return -1;
	path = xasprintf("%s/%s.mustache", l->dir, name);
	rc = read_file(path, src, len);
	free(path);
	return rc;
}

static int bad_usage(const char *fmt, const char *arg)
{
	fputs("demarche render: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n", stderr);
	fputs(usage_render, stderr);
	return EX_USAGE;
}

/* Reads the context; 66 for a missing file, 65 with line and column for bad JSON. */
static int load_data(const char *path, json_t **out)
{
	json_error_t jerr;
	char *text = NULL;
	size_t len;

	if (read_file(path, &text, &len) != 0) {
		fprintf(stderr, "demarche render: %s: %s\n", path, strerror(errno));
		return EX_NOINPUT;
	}
	*out = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	free(text);
	if (!*out) {
		fprintf(stderr, "demarche render: %s:%d:%d: bad JSON: %s\n", path, jerr.line,
		        jerr.column, jerr.text);
		return EX_DATAERR;
	}
	return EX_OK;
}

int cmd_render(int argc, char **argv, struct app *app)
{
	static const struct option longopts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"partials", required_argument, NULL, 'p'},
	    {"escape", required_argument, NULL, 'e'},
	    {"strict", no_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *data_path = NULL, *partials_dir = NULL, *file;
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_HTML, 0, 0, NULL, NULL};
	struct mustache_template *t = NULL;
	struct diags diags = DIAGS_INIT;
	struct dir_loader loader;
	struct buf out = BUF_INIT;
	json_t *ctx = NULL;
	char *src = NULL, *err = NULL, *dir = NULL;
	size_t len;
	struct stat sb;
	int c, rc;

	(void)app;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data_path = optarg;
			break;
		case 'p':
			partials_dir = optarg;
			break;
		case 'e':
			if (!strcmp(optarg, "html"))
				opts.escape = MUSTACHE_ESCAPE_HTML;
			else if (!strcmp(optarg, "markdown"))
				opts.escape = MUSTACHE_ESCAPE_MARKDOWN;
			else if (!strcmp(optarg, "none"))
				opts.escape = MUSTACHE_ESCAPE_NONE;
			else
				return bad_usage("unknown escape '%s' (html, markdown or none)",
				                 optarg);
			break;
		case 's':
			opts.strict = 1;
			break;
		default:
			fputs(usage_render, stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc)
		return bad_usage("%s", "no FILE given");
	if (argc - optind > 1)
		return bad_usage("one FILE only ('%s' is one too many)", argv[optind + 1]);
	file = argv[optind];

	if (read_file(file, &src, &len) != 0) {
		fprintf(stderr, "demarche render: %s: %s\n", file, strerror(errno));
		rc = EX_NOINPUT;
		goto out;
	}
	if (partials_dir && (stat(partials_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
		fprintf(stderr, "demarche render: --partials %s: not a directory\n", partials_dir);
		rc = EX_NOINPUT;
		goto out;
	}
	if (!partials_dir) {
		const char *slash = strrchr(file, '/');
		dir =
		    slash ? xstrndup(file, (size_t)(slash - file) + (slash == file)) : xstrdup(".");
		partials_dir = dir;
	}
	if (data_path) {
		if ((rc = load_data(data_path, &ctx)) != EX_OK)
			goto out;
	} else {
		ctx = json_object();
	}
	if ((rc = mustache_compile(src, len, file, 1, &t, &err)) != EX_OK) {
		fprintf(stderr, "demarche render: %s\n", err);
		goto out;
	}
	loader.dir = partials_dir;
	opts.partials = mustache_partials_new(load_from_dir, &loader);
	opts.diags = &diags;
	rc = mustache_render(t, ctx, &opts, &out);
	mustache_partials_free(opts.partials);
	if (rc != EX_OK) {
		diags_print(&diags, stderr);
		fprintf(stderr, "demarche render: %s: %zu problem%s; nothing written\n", file,
		        diags.errors, diags.errors == 1 ? "" : "s");
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "demarche render: writing: %s\n", strerror(errno));
		rc = EX_IOERR;
	}
out:
	json_decref(ctx);
	mustache_free(t);
	diags_free(&diags);
	buf_free(&out);
	free(src);
	free(err);
	free(dir);
	return rc;
}
