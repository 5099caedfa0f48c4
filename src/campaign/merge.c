/* The merge of an appeal with a roster, shared by check, preview and send. */
#include "campaign/merge.h"

#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/*
 * diags_print() on stderr, in blocks: stderr is unbuffered, and a roster with a warning on
 * every row would cost a write per line.
 */
static void print_all(const struct diags *d)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < d->n; i++) {
		char *s = diag_format(&d->v[i]);

		buf_adds(&b, s);
		buf_addc(&b, '\n');
		free(s);
		if (b.len >= 65536 || i + 1 == d->n) {
			fwrite(b.data, 1, b.len, stderr);
			buf_reset(&b);
		}
	}
	buf_free(&b);
}

static void print_diags(struct diags *d)
{
	print_all(d);
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
	size_t before = m->d.errors;
	int rc = 0;

	/* Without fn (check) nobody reads the HTML: cmark is not run. */
	if ((p->fn ? letter_render : letter_render_text)(m->letter, lang, ctx, &lo, &m->d) !=
	    EX_OK) {
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

/* The end of a validating pass: every problem printed, in order, and the verdict. */
static int pass_end(struct merge *m, const char *cmd, int rc)
{
	if (rc == EX_OK && m->d.errors)
		rc = EX_DATAERR;
	print_all(&m->d);
	if (rc == EX_DATAERR)
		fprintf(stderr, "demarche %s: %zu problem%s; nothing was sent\n", cmd, m->d.errors,
		        m->d.errors == 1 ? "" : "s");
	diags_free(&m->d);
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
	print_all(&m->d);
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

	if (letter_render_text(m->letter, j->lang, j->ctx, &lo, &j->d) != EX_OK) {
		diags_add(&j->d, DIAG_ERROR, roster_path(m->roster), j->line, NULL,
		          "the appeal cannot be rendered for '%s' (%zu problem%s above)", j->key,
		          j->d.errors, j->d.errors == 1 ? "" : "s");
		goto out;
	}
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
		move_diags(&m->d, &j->pre);
		move_diags(&m->d, &j->d);
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
