/*
 * What the Mustache engine's two halves share (mustache.c compiles, mustache_render.c
 * renders): the compiled tree. Private to src/letter/mustache*.c.
 */
#ifndef DEMARCHE_MUSTACHE_INT_H
#define DEMARCHE_MUSTACHE_INT_H

#include <stddef.h>

#include "letter/mustache.h"

enum node_type { N_TEXT, N_VAR, N_RAW, N_SECTION, N_INVERTED, N_PARTIAL, N_PARENT, N_BLOCK };

struct node {
	enum node_type type;
	char *str;  /* text, or the tag's name as written ("a.b", ".") */
	size_t len; /* of str */
	char **path;
	size_t npath; /* 0 for the implicit iterator "." */
	const char *file;
	long line;
	int standalone, close_standalone; /* for residual write-back */
	/*
	 * Partial and parent: the indentation of their standalone line (NULL when inline).
	 * Block: what its content is indented by where it is expanded (NULL: nothing).
	 */
	char *indent;
	struct node *kids;
	size_t nkids, cap;
};

struct mustache_template {
	char *name;
	struct node root;
};
/* A space or tab: what a standalone tag's line may hold besides it. */
static inline int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

#endif
