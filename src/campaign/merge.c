/* The merge of an appeal with a roster, shared by check, preview and send. */
#include "campaign/merge.h"

#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/strutil.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "campaign/message.h"

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
	case MERGE_OPT_FALLBACK:
		o->ro.fallback_language = arg;
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

/* ---- one line per distinct problem of the letter, with the missions it affects ---- */

#define GROUP_KEYS_SHOWN 8

struct merge_group {
	size_t idx;  /* the problem in m->d */
	size_t rows; /* missions it was found for */
	struct buf keys;
};

static int same_diag(const struct diag *a, const struct diag *b)
{
	return a->level == b->level && a->line == b->line &&
	       !strcmp(a->file ? a->file : "", b->file ? b->file : "") &&
	       !strcmp(a->column ? a->column : "", b->column ? b->column : "") &&
	       !strcmp(a->msg, b->msg);
}

static void diag_clear(struct diag *dg)
{
	free(dg->file);
	free(dg->column);
	free(dg->msg);
}

/*
 * The problems m->d holds from index before on were found rendering the letter for the
 * mission key: each one already seen for another mission is dropped, the mission added to
 * its group, so that 125 missions missing one variable make one line, not 125.
 */
static void group_render(struct merge *m, size_t before, const char *key)
{
	size_t w = before;

	for (size_t i = before; i < m->d.n; i++) {
		struct diag *dg = &m->d.v[i];
		struct merge_group *g = NULL;

		for (size_t k = 0; k < m->ngroups && !g; k++)
			if (same_diag(&m->d.v[m->groups[k].idx], dg))
				g = &m->groups[k];
		if (g) {
			diag_clear(dg);
			m->grouped++;
		} else {
			m->groups = xreallocarray(m->groups, m->ngroups + 1, sizeof(*m->groups));
			g = &m->groups[m->ngroups++];
			g->idx = w;
			g->rows = 0;
			buf_init(&g->keys);
			if (w != i)
				m->d.v[w] = *dg;
			w++;
		}
		if (g->rows < GROUP_KEYS_SHOWN) {
			if (g->rows)
				buf_adds(&g->keys, ", ");
			esc_term(&g->keys, key);
		} else if (g->rows == GROUP_KEYS_SHOWN) {
			buf_adds(&g->keys, ", \u2026");
		}
		g->rows++;
	}
	m->d.n = w;
}

static void groups_free(struct merge *m)
{
	for (size_t k = 0; k < m->ngroups; k++)
		buf_free(&m->groups[k].keys);
	free(m->groups);
	m->groups = NULL;
	m->ngroups = m->grouped = 0;
}

/* The name a "missing variable 'a.b'" (section, null variable) problem is about: "a". */
static char *missing_name(const char *msg)
{
	static const char *const kinds[] = {"missing variable '", "null variable '",
	                                    "missing section '", NULL};

	for (size_t k = 0; kinds[k]; k++)
		if (str_startswith(msg, kinds[k])) {
			const char *p = msg + strlen(kinds[k]);
			return xstrndup(p, strcspn(p, "'."));
		}
	return NULL;
}

/* Names a facts table gives (recipients/states-parties.csv): X_party, X_status, ... */
static int looks_like_fact(const char *name)
{
	static const char *const ends[] = {"_party", "_party_status", "_party_known", NULL};
	static const char *const names[] = {"states_parties_count", "state_name", "state_formal",
	                                    NULL};
	size_t n = strlen(name);

	for (size_t k = 0; names[k]; k++)
		if (!strcmp(name, names[k]))
			return 1;
	for (size_t k = 0; ends[k]; k++) {
		size_t e = strlen(ends[k]);
		if (n > e && !strcmp(name + n - e, ends[k]))
			return 1;
	}
	return 0;
}

/*
 * What a missing name most likely means: a facts column without --join, a typo of a
 * column (the nearest name), else the columns there are. Appended to b, escaped.
 */
static void missing_hint(const struct merge *m, const char *name, struct buf *b)
{
	static const char *const derived[] = {
	    "key",      "ref_label",  "letter_date", "inside_address", "excellency", "campaign",
	    "language", "salutation", NULL};
	size_t ncols, nfacts, nknown = 0, n = 0;
	const char *const *cols = roster_header(m->roster, &ncols);
	const char *const *known = roster_known_columns();
	const char **cand;
	const char *near;

	roster_fact_columns(m->roster, &nfacts);
	if (!nfacts && looks_like_fact(name)) {
		buf_adds(b, "; '");
		esc_term(b, name);
		buf_adds(b, "' comes from a facts table: add --join recipients/states-parties.csv");
		return;
	}
	while (known[nknown])
		nknown++;
	cand = xcalloc(ncols + nknown + 8, sizeof(*cand));
	for (size_t i = 0; i < ncols; i++)
		cand[n++] = cols[i];
	for (size_t i = 0; i < nknown; i++)
		cand[n++] = known[i];
	for (size_t i = 0; derived[i]; i++)
		cand[n++] = derived[i];
	near = str_nearest(name, cand, n);
	if (near) {
		buf_adds(b, " (did you mean '");
		esc_term(b, near);
		buf_adds(b, "'?)");
	}
	free(cand);
	buf_adds(b, "; the roster's columns are: ");
	for (size_t i = 0; i < ncols; i++) {
		if (i)
			buf_adds(b, ", ");
		esc_term(b, cols[i]);
	}
}

/* One problem as printed: a group's gets the missions it affects and a hint. */
static char *format_one(const struct merge *m, size_t i, int colour)
{
	const struct diag *dg = &m->d.v[i];
	char *s = diag_format_colour(dg, colour), *name;
	struct buf b = BUF_INIT;

	for (size_t k = 0; k < m->ngroups; k++) {
		const struct merge_group *g = &m->groups[k];

		if (g->idx != i)
			continue;
		buf_adds(&b, s);
		free(s);
		buf_addf(&b, " in %zu mission%s: %s", g->rows, g->rows == 1 ? "" : "s",
		         buf_str(&g->keys));
		name = missing_name(dg->msg);
		if (name && m->roster)
			missing_hint(m, name, &b);
		free(name);
		return buf_detach(&b);
	}
	return s;
}

/* Problems that differ only in their row sort together, then by where they are. */
static const struct diag *sort_base;

static int by_problem(const void *a, const void *b)
{
	const struct diag *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
	int c = (int)x->level - (int)y->level;

	if (!c)
		c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
	if (!c)
		c = strcmp(x->column ? x->column : "", y->column ? y->column : "");
	if (!c)
		c = strcmp(x->msg, y->msg);
	if (!c)
		c = *(const size_t *)a < *(const size_t *)b ? -1 : 1;
	return c;
}

static int same_problem(const struct diag *a, const struct diag *b)
{
	struct diag x = *a;

	x.line = b->line;
	return same_diag(&x, b);
}

/*
 * The problems on stderr, in blocks (stderr is unbuffered, and a roster with a warning on
 * every row would cost a write per line), one line per distinct problem: the same problem
 * on other rows ("the appeal has no 'French' version" on 25 rows) is named on the first
 * one's line. Returns the errors not printed on a line of their own.
 */
static size_t print_all(const struct merge *m)
{
	struct buf b = BUF_INIT;
	const struct diags *d = &m->d;
	size_t *ord = xcalloc(d->n + 1, sizeof(*ord)), *lead = xcalloc(d->n + 1, sizeof(*lead));
	size_t *pos = xcalloc(d->n + 1, sizeof(*pos)), hidden = 0;
	int colour = !m->silent && term_colour(stderr);

	for (size_t i = 0; i < d->n; i++)
		ord[i] = i;
	sort_base = d->v; /* qsort has no user pointer; only the caller's thread prints */
	qsort(ord, d->n, sizeof(*ord), by_problem);
	for (size_t k = 0; k < d->n; k++)
		pos[ord[k]] = k;
	for (size_t k = 0; k < d->n; k++)
		lead[ord[k]] =
		    k && d->v[ord[k]].line > 0 && same_problem(&d->v[ord[k - 1]], &d->v[ord[k]])
		        ? lead[ord[k - 1]]
		        : ord[k];
	for (size_t i = 0; i < d->n; i++) {
		char *s;
		size_t more = 0, start;

		if (lead[i] != i) {
			hidden += d->v[i].level == DIAG_ERROR;
			continue;
		}
		s = format_one(m, i, colour);
		start = b.len;
		buf_adds(&b, s);
		free(s);
		/* the same problem's other rows follow it in the sorted order */
		for (size_t k = pos[i] + 1; k < d->n && lead[ord[k]] == i; k++) {
			size_t j = ord[k];

			if (more < GROUP_KEYS_SHOWN)
				buf_addf(&b, "%s%ld", more ? ", " : " (and rows ", d->v[j].line);
			else if (more == GROUP_KEYS_SHOWN)
				buf_adds(&b, ", \u2026");
			more++;
		}
		if (more)
			buf_addf(&b, ": %zu more row%s)", more, more == 1 ? "" : "s");
		if (m->on_diag)
			m->on_diag(m->diag_user, &d->v[i], b.data + start);
		if (m->silent || (m->quiet && d->v[i].level == DIAG_WARNING))
			buf_truncate(&b, start);
		else
			buf_addc(&b, '\n');
		if (b.len >= 65536) {
			fwrite(b.data, 1, b.len, stderr);
			buf_reset(&b);
		}
	}
	if (b.len)
		fwrite(b.data, 1, b.len, stderr);
	buf_free(&b);
	free(ord);
	free(lead);
	free(pos);
	return hidden;
}

static void print_diags(struct merge *m)
{
	print_all(m);
	diags_free(&m->d);
	groups_free(m);
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
	m->quiet = o->quiet;
	m->silent = o->silent;
	m->on_diag = o->on_diag;
	m->diag_user = o->diag_user;
	layout = layout_beside(o->appeal);
	rc = letter_load(o->appeal, layout, &m->letter, &m->d);
	free(layout);
	if (rc == EX_OK)
		rc = letter_campaign_id(m->letter, &m->campaign, &m->d);
	if (rc == EX_OK) {
		size_t nl;
		const char *const *langs = letter_languages(m->letter, &nl);
		const char **v = xcalloc(nl + 1, sizeof(*v));

		/* The roster's language values are checked against the appeal's versions. */
		memcpy(v, langs, nl * sizeof(*v));
		o->ro.languages = v;
		/* "Audience: any" lets the appeal reach states that are not parties that day. */
		o->ro.audience_any = letter_audience_any(m->letter);
		rc = roster_open(&o->ro, &m->roster, &m->d);
		o->ro.languages = NULL;
		free(v);
	}
	if (rc != EX_OK) {
		print_diags(m);
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

/*
 * A mission's context: its row, the letter parts in the language of the file that will be
 * used (en on fallback, so a fr row falling back to en gets "Your Excellency"), and the
 * campaign id the layout's reference (CICC/{{campaign}}/{{key}}) needs.
 */
static json_t *mission_context(const struct merge *m, const struct roster_row *row)
{
	const char *lang = roster_language(row);
	size_t nl;
	json_t *ctx = roster_context_in(
	    row, letter_has_language(m->letter, lang) ? lang : letter_languages(m->letter, &nl)[0]);

	json_object_set_new(ctx, "campaign", json_string(m->campaign ? m->campaign : ""));
	if (m->extend) /* a reminder's first letter (campaign/followup.h) */
		m->extend(m->extend_user, roster_key(row),
		          letter_has_language(m->letter, lang)
		              ? lang
		              : letter_languages(m->letter, &nl)[0],
		          ctx);
	return ctx;
}

static int pass_row(void *user, const struct roster_row *row)
{
	struct pass *p = user;
	struct merge *m = p->m;
	struct letter_out lo = {0};
	const char *lang = roster_language(row);
	json_t *ctx = mission_context(m, row);
	size_t before = m->d.n;
	int rc = 0;

	/* Without fn (check) nobody reads the HTML: cmark is not run. */
	if ((p->fn ? letter_render : letter_render_text)(m->letter, lang, ctx, &lo, &m->d) !=
	    EX_OK) {
		json_decref(ctx);
		/* One line per problem, naming the missions it affects. */
		group_render(m, before, roster_key(row));
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

/* The end of a validating pass: every problem printed, in order, and the verdict. */
static int pass_end(struct merge *m, const char *cmd, int rc)
{
	size_t errors = m->d.errors - m->grouped;

	if (rc == EX_OK && m->d.errors)
		rc = EX_DATAERR;
	errors -= print_all(m);
	if (rc == EX_DATAERR && !m->silent)
		fprintf(stderr, "demarche %s: %zu problem%s; nothing was sent\n", cmd, errors,
		        errors == 1 ? "" : "s");
	diags_free(&m->d);
	groups_free(m);
	return rc;
}

int merge_validate(struct merge *m, const char *cmd, merge_fn fn, void *user)
{
	struct pass p = {m, fn, user, 1};
	int rc;

	m->rendered = m->fell_back = 0;
	rc = roster_each(m->roster, pass_row, &p, &m->d);
	return pass_end(m, cmd, rc);
}

int merge_each(struct merge *m, merge_fn fn, void *user)
{
	struct pass p = {m, fn, user, 0};
	int rc;

	m->rendered = 0;
	rc = roster_each(m->roster, pass_row, &p, &m->d);
	if (rc == EX_OK && m->d.errors)
		rc = EX_DATAERR;
	print_all(m);
	diags_free(&m->d);
	groups_free(m);
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
	groups_free(m);
	free(m);
}

/* ---- merge_compose: render and compose on worker threads, deliver in roster order ---- */

#define MAX_THREADS 64
#define PER_THREAD  64 /* messages in the window per worker: memory stays flat */

size_t merge_threads(void)
{
	const char *env = getenv("DEMARCHE_THREADS");
	long n;

	if (env && *env) {
		char *end;

		n = strtol(env, &end, 10);
		if (!*end && n >= 1)
			return n > MAX_THREADS ? MAX_THREADS : (size_t)n;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (size_t)n;
}

/* One selected row on its way: what the worker needs, and what it made. */
struct job {
	char *key, *lang;
	long line;
	json_t *ctx;      /* made on the reading thread, then used by the worker only */
	struct diags pre; /* the roster's problems from the rows read since the last job */
	struct diags d;   /* the worker's: render problems, fallback warning, compose error */
	int rendered, fell_back, built, done;
	struct message msg;
	int prep_rc; /* prep's code and message */
	char *prep_err;
};

struct compose {
	struct merge *m;
	struct message_run *mr;
	time_t date;
	merge_prep_fn prep;
	merge_msg_fn fn;
	void *user;
	char *err;       /* prep's message when it stopped the pass */
	struct diags rd; /* the roster's own problems, moved into the next job */
	int stop;        /* fn's non-zero value: the rest is dropped */
	/* threads > 1: the window, a ring of jobs numbered head <= taken <= tail */
	size_t nthreads, cap, head, taken, tail;
	struct job *ring;
	pthread_t *th;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	size_t idle; /* workers waiting for work: signalled only then */
	int waiting; /* the caller waits for the job at the head */
	int quit;
	struct message_cache *mc; /* threads == 1: the caller's */
};

/* Renders and composes one job, as pass_row() and message_check_row() do one after the
 * other; every problem goes to the job's own list. */
static void job_run(struct compose *c, struct job *j, struct message_cache *mc)
{
	struct merge *m = c->m;
	struct letter_out lo = {0};
	char *err = NULL;

	if (letter_render_md(m->letter, j->lang, j->ctx, &lo, &j->d) != EX_OK)
		goto out; /* grouped when delivered */
	j->rendered = 1;
	if (lo.fell_back) {
		j->fell_back = 1;
		diags_add(&j->d, DIAG_WARNING, roster_path(m->roster), j->line, "language",
		          "the appeal has no '%s' version: '%s' gets %s", j->lang, j->key,
		          lo.language);
	}
	if (message_build_cached(c->mr, mc, j->key, j->ctx, &lo, c->date, &j->msg, &err) != EX_OK)
		diags_add(&j->d, DIAG_ERROR, roster_path(m->roster), j->line, NULL, "%s", err);
	else
		j->built = 1;
	if (j->built && c->prep)
		j->prep_rc = c->prep(c->user, j->key, &j->msg, &j->prep_err);
out:
	free(err);
	letter_out_free(&lo);
	json_decref(j->ctx);
	j->ctx = NULL;
}

static void move_diags(struct diags *to, struct diags *from)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct diag *dg = &from->v[i];

		diags_add(to, dg->level, dg->file, dg->line, dg->column, "%s", dg->msg);
	}
	diags_free(from);
}

static void job_clear(struct job *j)
{
	free(j->key);
	free(j->lang);
	free(j->prep_err);
	json_decref(j->ctx);
	diags_free(&j->pre);
	diags_free(&j->d);
	message_free(&j->msg);
	memset(j, 0, sizeof(*j));
}

/* Hands a finished job to fn (its problems first), unless fn has stopped the pass. */
static void job_deliver(struct compose *c, struct job *j)
{
	struct merge *m = c->m;

	if (!c->stop) {
		size_t before;

		move_diags(&m->d, &j->pre);
		before = m->d.n;
		move_diags(&m->d, &j->d);
		if (!j->rendered && m->d.n > before)
			group_render(m, before, j->key);
		m->rendered += (size_t)j->rendered;
		m->fell_back += (size_t)j->fell_back;
		if (j->prep_rc && !m->d.errors) {
			c->stop = j->prep_rc;
			c->err = j->prep_err;
			j->prep_err = NULL;
		} else if (j->built && c->fn) {
			c->stop = c->fn(c->user, m, j->key, j->line, &j->msg);
		}
	}
	job_clear(j);
}

static void *worker(void *arg)
{
	struct compose *c = arg;
	struct message_cache *mc = message_cache_new();

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct job *j;

		while (!c->quit && c->taken == c->tail) {
			c->idle++;
			pthread_cond_wait(&c->work, &c->lock);
			c->idle--;
		}
		if (c->taken == c->tail)
			break;
		j = &c->ring[c->taken++ % c->cap];
		pthread_mutex_unlock(&c->lock);
		job_run(c, j, mc);
		pthread_mutex_lock(&c->lock);
		j->done = 1;
		if (c->waiting && j == &c->ring[c->head % c->cap])
			pthread_cond_signal(&c->done);
	}
	pthread_mutex_unlock(&c->lock);
	message_cache_free(mc);
	return NULL;
}

/* Delivers the finished jobs at the head of the window: all of them until the window
 * holds at most keep jobs, waiting for them to finish as needed. */
static void drain(struct compose *c, size_t keep)
{
	pthread_mutex_lock(&c->lock);
	while (c->head < c->tail) {
		struct job *j = &c->ring[c->head % c->cap];

		if (!j->done) {
			if (c->tail - c->head <= keep)
				break;
			c->waiting = 1;
			pthread_cond_wait(&c->done, &c->lock);
			c->waiting = 0;
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		job_deliver(c, j);
		pthread_mutex_lock(&c->lock);
		c->head++;
	}
	pthread_mutex_unlock(&c->lock);
}

static int compose_row(void *user, const struct roster_row *row)
{
	struct compose *c = user;
	struct job one = {0}, *j = &one;

	if (c->nthreads > 1) {
		drain(c, c->cap - 1); /* room for one more */
		if (c->stop)
			return c->stop;
		j = &c->ring[c->tail % c->cap];
	}
	j->key = xstrdup(roster_key(row));
	j->lang = xstrdup(roster_language(row));
	j->line = roster_row_line(row);
	j->ctx = mission_context(c->m, row);
	j->pre = c->rd;
	c->rd.v = NULL;
	c->rd.n = c->rd.cap = 0; /* the counts stay: the roster reads them */
	if (c->nthreads == 1) {
		job_run(c, j, c->mc);
		job_deliver(c, j);
		return c->stop;
	}
	pthread_mutex_lock(&c->lock);
	c->tail++;
	if (c->idle)
		pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	drain(c, c->cap); /* what is done already, without waiting */
	return c->stop;
}

int merge_compose(struct merge *m, struct message_run *mr, time_t date, const char *cmd,
                  merge_msg_fn fn, void *user)
{
	return merge_compose_prep(m, mr, date, cmd, NULL, fn, user);
}

int merge_compose_prep(struct merge *m, struct message_run *mr, time_t date, const char *cmd,
                       merge_prep_fn prep, merge_msg_fn fn, void *user)
{
	struct compose c = {0};
	size_t started = 0;
	int rc;

	c.m = m;
	c.mr = mr;
	c.date = date;
	c.prep = prep;
	c.fn = fn;
	c.user = user;
	c.nthreads = merge_threads();
	m->rendered = m->fell_back = 0;
	if (c.nthreads == 1) {
		c.mc = message_cache_new();
	} else {
		c.cap = c.nthreads * PER_THREAD;
		c.ring = xcalloc(c.cap, sizeof(*c.ring));
		c.th = xcalloc(c.nthreads, sizeof(*c.th));
		pthread_mutex_init(&c.lock, NULL);
		pthread_cond_init(&c.work, NULL);
		pthread_cond_init(&c.done, NULL);
		for (; started < c.nthreads; started++)
			if (pthread_create(&c.th[started], NULL, worker, &c) != 0)
				break;
		if (started == 0) { /* no thread at all: do it here */
			c.nthreads = 1;
			c.mc = message_cache_new();
		}
	}
	rc = roster_each(m->roster, compose_row, &c, &c.rd);
	if (c.nthreads > 1) {
		pthread_mutex_lock(&c.lock);
		c.quit = 1;
		pthread_cond_broadcast(&c.work);
		pthread_mutex_unlock(&c.lock);
		drain(&c, 0);
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(c.th[i], NULL);
	if (c.stop) /* perhaps only found while draining */
		rc = c.stop;
	if (c.stop)
		diags_free(&c.rd); /* the rows after the one fn stopped at */
	else
		move_diags(&m->d, &c.rd);
	rc = pass_end(m, cmd, rc);
	if (c.err)
		fprintf(stderr, "demarche %s: %s\n", cmd, c.err);
	free(c.err);
	if (c.ring) {
		pthread_mutex_destroy(&c.lock);
		pthread_cond_destroy(&c.work);
		pthread_cond_destroy(&c.done);
	}
	free(c.ring);
	free(c.th);
	message_cache_free(c.mc);
	return rc;
}
