/* The merge of an appeal with a roster, shared by check, preview and send. */
#include "campaign/merge.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/xalloc.h"

static void push(const char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

int merge_option(struct merge_opts *o, int c, const char *arg)
{
	switch (c) {
	case 't':
		o->ro.path = arg;
		return 1;
	case 'k':
		o->ro.key = arg;
		return 1;
	case 'j':
		push(&o->joins, &o->njoins, arg);
		o->ro.joins = o->joins;
		return 1;
	case 'w':
		push(&o->wheres, &o->nwheres, arg);
		o->ro.wheres = o->wheres;
		return 1;
	case 'o':
		push(&o->only, &o->nonly, arg);
		o->ro.only = o->only;
		return 1;
	default:
		return 0;
	}
}

void merge_opts_free(struct merge_opts *o)
{
	free(o->joins);
	free(o->wheres);
	free(o->only);
	o->joins = o->wheres = o->only = NULL;
}

static void print_diags(struct diags *d)
{
	diags_print(d, stderr);
	diags_free(d);
}

/* A template folder (not drafted) may use the layouts beside it: APPEAL/../_layout. */
static char *layout_beside(const char *appeal)
{
	char *copy = xstrdup(appeal);
	char *dir = xasprintf("%s/_layout", dirname(copy));
	struct stat sb;

	free(copy);
	if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
		return dir;
	free(dir);
	return NULL;
}

int merge_open(struct merge_opts *o, const char *cmd, struct merge **out)
{
	struct merge *m = xcalloc(1, sizeof(*m));
	char *layout = NULL;
	int rc;

	*out = NULL;
	layout = layout_beside(o->appeal);
	rc = letter_load(o->appeal, layout, &m->letter, &m->d);
	free(layout);
	if (rc == EX_OK)
		rc = letter_campaign_id(m->letter, &m->campaign, &m->d);
	if (rc == EX_OK) {
		/* "Audience: any" lets the appeal reach states that are not parties that day. */
		o->ro.audience_any = letter_audience_any(m->letter);
		rc = roster_open(&o->ro, &m->roster, &m->d);
	}
	if (rc != EX_OK) {
		print_diags(&m->d);
		if (rc == EX_NOINPUT && !m->letter)
			fprintf(stderr, "demarche %s: cannot read the appeal %s\n", cmd, o->appeal);
		merge_free(m);
		return rc;
	}
	*out = m;
	return EX_OK;
}

struct pass {
	struct merge *m;
	merge_fn fn;
	void *user;
	int validating;
};

static int pass_row(void *user, const struct roster_row *row)
{
	struct pass *p = user;
	struct merge *m = p->m;
	struct letter_out lo = {0};
	const char *lang = roster_language(row);
	size_t nl;
	/* letters: the letter parts in the language of the file used (en on fallback) */
	json_t *ctx = roster_context_in(
	    row, letter_has_language(m->letter, lang) ? lang : letter_languages(m->letter, &nl)[0]);
	size_t before = m->d.errors;
	int rc = 0;

	/* The layout's reference (CICC/{{campaign}}/{{key}}) needs the campaign id. */
	json_object_set_new(ctx, "campaign", json_string(m->campaign ? m->campaign : ""));
	if (letter_render(m->letter, lang, ctx, &lo, &m->d) != EX_OK) {
		json_decref(ctx);
		/* Name the mission whose fields are missing: the row and its key. */
		diags_add(&m->d, DIAG_ERROR, roster_path(m->roster), roster_row_line(row), NULL,
		          "the appeal cannot be rendered for '%s' (%zu problem%s above)",
		          roster_key(row), m->d.errors - before,
		          m->d.errors - before == 1 ? "" : "s");
		return 0;
	}
	json_decref(ctx);
	m->rendered++;
	if (lo.fell_back && p->validating) {
		m->fell_back++;
		diags_add(&m->d, DIAG_WARNING, roster_path(m->roster), roster_row_line(row),
		          "language", "the appeal has no '%s' version: '%s' gets %s", lang,
		          roster_key(row), lo.language);
	}
	if (p->fn)
		rc = p->fn(p->user, m, row, &lo);
	letter_out_free(&lo);
	return rc;
}

int merge_validate(struct merge *m, const char *cmd, merge_fn fn, void *user)
{
	struct pass p = {m, fn, user, 1};
	int rc;

	m->rendered = m->fell_back = 0;
	rc = roster_each(m->roster, pass_row, &p, &m->d);
	if (rc == EX_OK && m->d.errors)
		rc = EX_DATAERR;
	diags_print(&m->d, stderr);
	if (rc == EX_DATAERR)
		fprintf(stderr, "demarche %s: %zu problem%s; nothing was sent\n", cmd, m->d.errors,
		        m->d.errors == 1 ? "" : "s");
	diags_free(&m->d);
	return rc;
}

int merge_each(struct merge *m, merge_fn fn, void *user)
{
	struct pass p = {m, fn, user, 0};
	int rc;

	m->rendered = 0;
	rc = roster_each(m->roster, pass_row, &p, &m->d);
	if (rc == EX_OK && m->d.errors)
		rc = EX_DATAERR;
	diags_print(&m->d, stderr);
	diags_free(&m->d);
	return rc;
}

void merge_free(struct merge *m)
{
	if (!m)
		return;
	letter_free(m->letter);
	roster_free(m->roster);
	free(m->campaign);
	diags_free(&m->d);
	free(m);
}
