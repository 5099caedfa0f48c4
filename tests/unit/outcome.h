/*
 * For the transport tests: what done() reported for one message and each recipient, kept
 * after the transport's strings are gone. Include after <cmocka.h> and transport/transport.h.
 */
#ifndef DEMARCHE_TESTS_OUTCOME_H
#define DEMARCHE_TESTS_OUTCOME_H

#include <stdlib.h>

#include "base/xalloc.h"
#include "transport/transport.h"

struct outcome_rcpt {
	enum transport_state state;
	int code;
	char *reply; /* a copy, owned */
};

struct outcome {
	int calls;
	enum transport_state state;
	int code;
	char *reply, *error;       /* copies, owned; freed by outcome_free() */
	size_t nrcpt;              /* entries of rcpt */
	struct outcome_rcpt *rcpt; /* one per recipient, as done() had them */
};

static inline void outcome_free(struct outcome *o)
{
	free(o->reply);
	free(o->error);
	for (size_t i = 0; i < o->nrcpt; i++)
		free(o->rcpt[i].reply);
	free(o->rcpt);
	o->reply = o->error = NULL;
	o->rcpt = NULL;
	o->nrcpt = 0;
}

/* Records r for m in o (a second report replaces the first; calls counts them). Fails the
 * test when r->rcpt is NULL, which the contract forbids. */
static inline void outcome_record(struct outcome *o, const struct transport_msg *m,
                                  const struct transport_result *r)
{
	int calls = o->calls;

	assert_non_null(r->rcpt);
	outcome_free(o);
	o->calls = calls + 1;
	o->state = r->state;
	o->code = r->code;
	o->reply = r->reply ? xstrdup(r->reply) : NULL;
	o->error = r->error ? xstrdup(r->error) : NULL;
	o->nrcpt = m->nrcpt;
	o->rcpt = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(*o->rcpt));
	for (size_t i = 0; i < m->nrcpt; i++) {
		o->rcpt[i].state = r->rcpt[i].state;
		o->rcpt[i].code = r->rcpt[i].code;
		o->rcpt[i].reply = r->rcpt[i].reply ? xstrdup(r->rcpt[i].reply) : NULL;
	}
}

#endif
