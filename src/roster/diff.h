/*
 * What changed between two lists of missions (docs/design.md, "What changed since the last
 * letter"): missions new and removed, changed addresses, changed names. A list is made from a
 * roster (roster_snap_read()) or from anything else that knows keys, addresses and names
 * (roster_snap_add(): the ledger's deliveries of an earlier campaign). Keys and addresses
 * compare without ASCII case (base/ident.h), as the ledger compares them.
 */
#ifndef DEMARCHE_ROSTER_DIFF_H
#define DEMARCHE_ROSTER_DIFF_H

#include <stddef.h>

#include "base/buf.h"
#include "roster/roster.h"

struct roster_mission {
	char *key;
	char **addr; /* email first, then cc, as written; naddr of them */
	size_t naddr;
	char *name; /* "name, title" as the roster has them; NULL when not known */
};

/* A list of missions; zero it to start. Everything in it is owned by it. */
struct roster_snap {
	struct roster_mission *m;
	size_t n, cap;
	int sorted;
};

/*
 * Adds address (may be NULL) and name (may be NULL: not known) to mission key, making it
 * when new. An address already there (without case) is not added twice. Can't fail.
 */
void roster_snap_add(struct roster_snap *s, const char *key, const char *address, const char *name);

/*
 * Every row of the roster r selects (roster_each(): its filters, its validation): key,
 * email, cc and "name, title". Returns roster_each()'s code; problems go to d.
 */
int roster_snap_read(struct roster *r, struct roster_snap *s, struct diags *d);

void roster_snap_free(struct roster_snap *s); /* safe on a zeroed one */

/* A row's "name, title" as a snapshot keeps it (either may be missing), in a new string. */
char *roster_row_who(const struct roster_row *row);

enum roster_change_kind {
	RC_NEW,     /* in the new list only */
	RC_REMOVED, /* in the old list only */
	RC_ADDRESS, /* addresses differ: old and new are each list's, ", "-joined */
	RC_NAME,    /* names differ (compared only when both lists know the name) */
};

struct roster_change {
	enum roster_change_kind kind;
	const char *key;
	const char *old, *new; /* RC_ADDRESS and RC_NAME; otherwise NULL */
};

/* Counts of a comparison. */
struct roster_diff_counts {
	size_t added, removed, address, name;
};

/*
 * Compares old with new (both sorted here), calling fn (may be NULL) for each change in key
 * order; the strings live during the call. Fills *c. Returns the number of changes. Can't
 * fail.
 */
size_t roster_diff(struct roster_snap *old, struct roster_snap *new,
                   void (*fn)(void *ctx, const struct roster_change *c), void *ctx,
                   struct roster_diff_counts *c);

/*
 * One change on one line, escaped for the terminal, without a newline: "new      KEN",
 * "removed  ALB", "address  KEN: a@x, b@x -> a@x", "name     KEN: old -> new". Can't fail.
 */
void roster_change_format(struct buf *b, const struct roster_change *c);

#endif
