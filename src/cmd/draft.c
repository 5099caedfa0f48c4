/* demarche draft: write a new appeal from a template, campaign params filled in. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "letter/letter.h"
#include "roster/signon.h"
#include "letter/params.h"

const char usage_draft[] =
    "usage: demarche draft TEMPLATE -o DIR [--set K=V]... [--params FILE.json] [--force]\n"
    "                      [--signatories FILE.csv] [-q]\n"
    "       demarche draft TEMPLATE --print-params\n"
    "\n"
    "Fills the campaign params of TEMPLATE (see 'demarche templates') and writes DIR/LANG.md\n"
    "for each language: the layout expanded, the Params header dropped, attachments copied\n"
    "into DIR, and the per-mission fields ({{salutation}}, {{state}}, ...) left open for\n"
    "'demarche check' and 'send' to fill from the roster. Edit the result freely.\n"
    "TEMPLATE is a template id, or a path to a template folder.\n"
    "\n"
    "An Attachment must be a file inside the template's folder (no absolute path, no '..',\n"
    "no symlink leading out); a copy keeps its source's read/write permissions, never wider.\n"
    "A Bcc header is refused. All or nothing: files are created new and renamed into place\n"
    "(a symlink in DIR is replaced, never written through; DIR itself must not be one), and\n"
    "a failed draft removes the folders it made.\n"
    "\n"
    "  -o, --output DIR     where to write (made if missing)\n"
    "  --set K=V            one param as a string (repeatable; overrides --params)\n"
    "  --params FILE.json   a JSON object of params (lists, e.g. organisations, go here);\n"
    "                       lines starting with // are comments\n"
    "  --signatories FILE.csv  the organisations param from a sign-on sheet\n"
    "                       (organisation[,country]): sorted, duplicates left out and\n"
    "                       reported, near-duplicates reported (warnings, row numbers)\n"
    "  --print-params       write a commented params file for TEMPLATE to stdout (the\n"
    "                       original letter's values) and exit; no -o needed\n"
    "  --force              write into DIR even when it is not empty\n" APP_OPTIONS_USAGE "\n"
    "Exit: 0; 64 usage; 65 a param missing (all are listed) or unknown, or a bad template\n"
    "(an Attachment outside its folder, a Bcc header); 66 no such template or params file;\n"
    "73 DIR is not empty (without --force), is a symlink, or cannot be written.\n";

/* The folders make_dir() created, deepest last: removed again when the draft fails. */
struct made_dirs {
	char **v;
	size_t n;
};

/* mkdir -p, noting each folder it made. */
static int make_dir(const char *dir, struct made_dirs *made)
{
	char *p = xstrdup(dir);
	int rc = 0;

	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		if (s[-1] != '/') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0777) == 0) {
				made->v = xreallocarray(made->v, made->n + 1, sizeof(*made->v));
				made->v[made->n++] = xstrdup(p);
			} else if (errno != EEXIST) {
				rc = -1;
			}
			*s = c;
		}
		if (!*s || rc != 0)
			break;
	}
	free(p);
	return rc;
}

/* Removes the folders make_dir() made (only if empty: rmdir() never removes more). */
static void unmake_dirs(struct made_dirs *made, int remove)
{
	for (size_t i = made->n; i-- > 0;) {
		if (remove)
			rmdir(made->v[i]);
		free(made->v[i]);
	}
	free(made->v);
	memset(made, 0, sizeof(*made));
}

static int dir_is_empty(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (!dp)
		return 1;
	while (empty && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(dp);
	return empty;
}

static int is_param(const struct letter *l, const char *name)
{
	size_t n;
	const char *const *params = letter_params(l, &n);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(params[i], name))
			return 1;
	return 0;
}

/* The nearest param name to name, for "did you mean"; NULL when none is close. */
static const char *nearest_param(const struct letter *l, const char *name)
{
	size_t n;
	const char *const *params = letter_params(l, &n);

	return str_nearest(name, params, n);
}

int cmd_draft(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"set", required_argument, NULL, 's'},
	    {"params", required_argument, NULL, 'p'},
	    {"force", no_argument, NULL, 'f'},
	    {"signatories", required_argument, NULL, 'S'},
	    {"print-params", no_argument, NULL, 'P'},
	    APP_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	const char *outdir = NULL, *params_file = NULL, *signon_file = NULL;
	char **sets = NULL, *tpath = NULL, *layout = NULL, *err = NULL, *top = NULL;
	size_t nsets = 0;
	struct diags d = DIAGS_INIT;
	struct letter *l = NULL, *check = NULL;
	json_t *params = NULL;
	struct made_dirs made = {0};
	struct stat st;
	int c, force = 0, drafted = 0, print_params = 0, rc = EX_OK;

	while ((c = getopt_long(argc, argv, "o:" APP_SHORT_OPTIONS, opts, NULL)) != -1) {
		int took = app_option(app, c, optarg);

		if (took < 0) {
			rc = EX_USAGE;
			goto out;
		}
		if (took)
			continue;
		switch (c) {
		case 'o':
			outdir = optarg;
			break;
		case 's':
			sets = xreallocarray(sets, nsets + 1, sizeof(*sets));
			sets[nsets++] = optarg;
			break;
		case 'p':
			params_file = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'S':
			signon_file = optarg;
			break;
		case 'P':
			print_params = 1;
			break;
		default:
			fputs(usage_draft, stderr);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (optind + 1 != argc || (!print_params && (!outdir || !*outdir))) {
		fputs(usage_draft, stderr);
		rc = EX_USAGE;
		goto out;
	}
	for (size_t i = 0; i < nsets; i++) {
		char *eq = strchr(sets[i], '=');
		if (!eq || eq == sets[i]) {
			fprintf(stderr, "demarche draft: --set %s: expected K=V\n", sets[i]);
			rc = EX_USAGE;
			goto out;
		}
	}

	rc = letter_find_template(argv[optind], &tpath, &layout, &err);
	if (rc != EX_OK) {
		fprintf(stderr, "demarche draft: %s\n", err);
		goto out;
	}
	rc = letter_load(tpath, layout, &l, &d);
	if (rc != EX_OK)
		goto out;
	if (print_params) { /* letters: draft --print-params (letter/signon.h) */
		char *ex = xasprintf("%s/original.json", tpath);
		json_t *example = json_load_file(ex, 0, NULL);
		params_skeleton(l, argv[optind], json_is_object(example) ? example : NULL, stdout);
		json_decref(example);
		free(ex);
		goto out;
	}

	if (params_file) {
		json_error_t jerr;

		params = params_load(params_file, &jerr);
		if (!params) {
			int e = errno;

			rc = e == ENOENT ? EX_NOINPUT : EX_DATAERR;
			/* jansson says line -1 (or 0) when the file could not be read at all */
			if (jerr.line < 1)
				fprintf(stderr, "demarche draft: %s: cannot open: %s\n",
				        params_file, e ? strerror(e) : jerr.text);
			else
				fprintf(stderr, "demarche draft: %s:%d:%d: bad JSON: %s\n",
				        params_file, jerr.line, jerr.column, jerr.text);
			goto out;
		}
		if (!json_is_object(params)) {
			fprintf(stderr, "demarche draft: %s: expected a JSON object of params\n",
			        params_file);
			rc = EX_DATAERR;
			goto out;
		}
	} else {
		params = json_object();
	}
	for (size_t i = 0; i < nsets; i++) {
		char *eq = strchr(sets[i], '=');
		char *key = xstrndup(sets[i], (size_t)(eq - sets[i]));

		if (!is_param(l, key)) {
			const char *near = nearest_param(l, key);
			diags_add(&d, DIAG_ERROR, NULL, 0, NULL,
			          "--set %s: '%s' is not a param of %s%s%s%s", sets[i], key,
			          argv[optind], near ? " (did you mean '" : "", near ? near : "",
			          near ? "'?)" : "");
		} else {
			json_object_set_new(params, key, json_string(eq + 1));
		}
		free(key);
	}
	if (signon_file && !is_param(l, "organisations")) {
		diags_add(&d, DIAG_ERROR, NULL, 0, NULL,
		          "--signatories: %s has no 'organisations' param to fill", argv[optind]);
	} else if (signon_file) { /* letters: the signatories from a sign-on sheet */
		json_t *orgs = NULL;
		rc = signon_read(signon_file, &orgs, &d);
		if (rc == EX_NOINPUT)
			goto out;
		if (orgs)
			json_object_set_new(params, "organisations", orgs);
		rc = EX_OK;
	}
	if (d.errors) {
		rc = EX_DATAERR;
		goto out;
	}

	if (make_dir(outdir, &made) != 0) {
		fprintf(stderr, "demarche draft: %s: %s\n", outdir, strerror(errno));
		rc = EX_CANTCREAT;
		goto out;
	}
	/* Without its trailing slashes: lstat("DIR/") would look through a symlink. */
	top = xstrdup(outdir);
	for (size_t n = strlen(top); n > 1 && top[n - 1] == '/'; n--)
		top[n - 1] = '\0';
	if (lstat(top, &st) == 0 && S_ISLNK(st.st_mode)) {
		fprintf(stderr,
		        "demarche draft: %s is a symlink; draft does not write through one (name "
		        "the real folder)\n",
		        outdir);
		rc = EX_CANTCREAT;
		goto out;
	}
	if (!force && !dir_is_empty(outdir)) {
		fprintf(stderr, "demarche draft: %s is not empty; use --force to write into it\n",
		        outdir);
		rc = EX_CANTCREAT;
		goto out;
	}
	rc = letter_draft(l, params, outdir, &d);
	if (rc != EX_OK)
		goto out;
	drafted = 1;

	/* The appeal must stand alone: it loads without the layout and its campaign is fixed. */
	rc = letter_load(outdir, NULL, &check, &d);
	if (rc == EX_OK) {
		char *id = NULL;

		rc = letter_campaign_id(check, &id, &d);
		if (rc == EX_OK) {
			size_t nl;
			const char *const *langs = letter_languages(check, &nl);

			for (size_t i = 0; i < nl; i++)
				printf("%s/%s.md\n", outdir, langs[i]);
			if (!app->quiet)
				fprintf(stderr,
				        "demarche draft: wrote campaign %s to %s; next: demarche "
				        "check %s "
				        "--to ROSTER.csv\n",
				        id, outdir, outdir);
		}
		free(id);
	}
out:
	/* A failed draft leaves no folder it made; letter_draft() removed its own files. A
	 * written appeal that fails the check below stays, for its errors to point into. */
	unmake_dirs(&made, rc != EX_OK && !drafted);
	if (d.n)
		diags_print(&d, stderr);
	diags_free(&d);
	letter_free(check);
	letter_free(l);
	json_decref(params);
	free(top);
	free(tpath);
	free(layout);
	free(err);
	free(sets);
	return rc;
}
