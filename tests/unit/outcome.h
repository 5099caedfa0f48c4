/*
 * For the transport tests: what done() reported for one message, kept after the transport's
 * strings are gone. Include after <cmocka.h> and transport/transport.h.
 */
#ifndef DEMARCHE_TESTS_OUTCOME_H
#define DEMARCHE_TESTS_OUTCOME_H

#include <stdlib.h>

#include "base/xalloc.h"
#include "transport/transport.h"

struct outcome {
	int calls;
	enum transport_state state;
	int code;
	char *reply, *error; /* copies, owned; freed by outcome_free() */
};

/* Records r in o (a second report replaces the first; calls counts them). Can't fail. */
static inline void outcome_record(struct outcome *o, const struct transport_result *r)
{
	o->calls++;
	o->state = r->state;
	o->code = r->code;
	free(o->reply);
	free(o->error);
	o->reply = r->reply ? xstrdup(r->reply) : NULL;
	o->error = r->error ? xstrdup(r->error) : NULL;
}

static inline void outcome_free(struct outcome *o)
{
	free(o->reply);
	free(o->error);
	o->reply = o->error = NULL;
}

#endif
