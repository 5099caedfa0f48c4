/* Sent copies off the SMTP path: one thread, one IMAP session, its own ledger connection. */
#include "campaign/copyq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "ledger/ledger.h"

struct copy {
	struct copy *next;
	char *campaign;
	int64_t *deliv;
	size_t n;
	off_t off;
};

struct copyq {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct copy *head, **tail;
	int closing, abandon;

	/* the thread's own */
	struct sentcopy *sc;
	struct ledger *l;
	const struct plan *p;
	size_t appended, kept;
	int rc;
	char *err;     /* the ledger's, when rc != EX_OK */
	char *warning; /* the first reason a copy was kept */
};

static void copy_free(struct copy *c)
{
	free(c->campaign);
	free(c->deliv);
	free(c);
}

static void keep_warning(struct copyq *q, char *why)
{
	if (!q->warning)
		q->warning = why;
	else
		free(why);
}

/* One copy: appended, or kept in the ledger for the next run. */
static void one(struct copyq *q, struct copy *c, int abandon)
{
	struct plan_record r;
	char *err = NULL;
	int rc;

	if (q->rc != EX_OK)
		return;
	rc = plan_read(q->p, c->off, 1, &r, &err);
	if (rc != EX_OK) {
		keep_warning(q, err);
		return;
	}
	if (abandon) {
		rc = ledger_copy_failed(q->l, c->campaign, c->deliv, c->n, NULL, r.data, r.len,
		                        "not tried: the send was interrupted", 0, &err);
		if (rc == EX_OK)
			q->kept++;
	} else {
		rc = sentcopy_append(q->sc, q->l, c->campaign, c->deliv, c->n, r.data, r.len, &err);
		if (rc == EX_OK)
			q->appended++;
		else if (rc == EX_TEMPFAIL) {
			q->kept++;
			keep_warning(q, err);
			err = NULL;
			rc = EX_OK;
		}
	}
	if (rc != EX_OK) {
		q->rc = rc;
		q->err = err;
		err = NULL;
	}
	free(err);
	plan_record_free(&r);
}

static void *worker(void *arg)
{
	struct copyq *q = arg;
	char *err = NULL;

	/* Copies a previous run could not append go first. */
	if (sentcopy_retry(q->sc, q->l, NULL, NULL, &err) != EX_OK)
		keep_warning(q, err);
	else
		free(err);
	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct copy *c;
		int abandon;

		while (!q->head && !q->closing)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!q->head)
			break;
		c = q->head;
		q->head = c->next;
		if (!q->head)
			q->tail = &q->head;
		abandon = q->abandon;
		pthread_mutex_unlock(&q->mu);
		one(q, c, abandon);
		copy_free(c);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int copyq_start(struct sentcopy *sc, const char *store, const struct plan *p, struct copyq **out,
                char **errstr)
{
	struct copyq *q = xcalloc(1, sizeof(*q));
	int rc;

	*out = NULL;
	rc = ledger_open(store, 0, &q->l, errstr);
	if (rc != EX_OK) {
		sentcopy_close(sc);
		free(q);
		return rc;
	}
	q->sc = sc;
	q->p = p;
	q->tail = &q->head;
	q->rc = EX_OK;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (pthread_create(&q->thread, NULL, worker, q) != 0) {
		ledger_close(q->l);
		sentcopy_close(sc);
		pthread_mutex_destroy(&q->mu);
		pthread_cond_destroy(&q->cv);
		free(q);
		return error_set(errstr, EX_OSERR, "cannot start the thread for Sent copies");
	}
	*out = q;
	return EX_OK;
}

void copyq_push(struct copyq *q, const char *campaign, const int64_t *deliveries, size_t n,
                off_t off)
{
	struct copy *c = xcalloc(1, sizeof(*c));

	c->campaign = xstrdup(campaign);
	c->deliv = xcalloc(n ? n : 1, sizeof(int64_t));
	memcpy(c->deliv, deliveries, n * sizeof(int64_t));
	c->n = n;
	c->off = off;
	pthread_mutex_lock(&q->mu);
	*q->tail = c;
	q->tail = &c->next;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

int copyq_finish(struct copyq *q, int abandon, size_t *appended, size_t *kept, char **errstr)
{
	int rc;

	if (appended)
		*appended = 0;
	if (kept)
		*kept = 0;
	if (!q)
		return EX_OK;
	pthread_mutex_lock(&q->mu);
	q->closing = 1;
	q->abandon = abandon;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	if (q->warning)
		fprintf(stderr,
		        "demarche send: Sent copies: %s (%zu kept in the ledger for the "
		        "next run)\n",
		        q->warning, q->kept);
	if (appended)
		*appended = q->appended;
	if (kept)
		*kept = q->kept;
	rc = q->rc;
	if (rc != EX_OK && errstr) {
		free(*errstr);
		*errstr = q->err;
		q->err = NULL;
	}
	for (struct copy *c = q->head, *next; c; c = next) {
		next = c->next;
		copy_free(c);
	}
	ledger_close(q->l);
	sentcopy_close(q->sc);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->err);
	free(q->warning);
	free(q);
	return rc;
}
