/* What changed between two lists of missions: new, removed, addresses, names. */
#include "roster/diff.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/address.h"
#include "base/escape.h"
#include "base/ident.h"
#include "base/xalloc.h"

static struct roster_mission *find_or_add(struct roster_snap *s, const char *key)
{
	struct roster_mission *m;

	/* a mission's addresses come together (a roster row, the ledger's key order); one that
	 * comes back later is merged when the list is sorted */
	if (s->n && !strcasecmp(s->m[s->n - 1].key, key))
		return &s->m[s->n - 1];
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->m = xreallocarray(s->m, s->cap, sizeof(*s->m));
	}
	m = &s->m[s->n++];
	memset(m, 0, sizeof(*m));
	m->key = xstrdup(key);
	s->sorted = 0;
	return m;
}

void roster_snap_add(struct roster_snap *s, const char *key, const char *address, const char *name)
{
	struct roster_mission *m = find_or_add(s, key);

	if (name && !m->name)
		m->name = xstrdup(name);
	if (!address || !*address)
		return;
	for (size_t i = 0; i < m->naddr; i++)
		if (!strcasecmp(m->addr[i], address))
			return;
	m->addr = xreallocarray(m->addr, m->naddr + 1, sizeof(char *));
	m->addr[m->naddr++] = xstrdup(address);
}

struct read_ctx {
	struct roster_snap *s;
	const char *key;
};

static int add_cc(void *user, const char *item, size_t len)
{
	struct read_ctx *rc = user;
	char *a = xstrndup(item, len);

	roster_snap_add(rc->s, rc->key, a, NULL);
	free(a);
	return 0;
}

char *roster_row_who(const struct roster_row *row)
{
	const char *name = roster_get(row, "name"), *title = roster_get(row, "title");

	return xasprintf("%s%s%s", name ? name : "", name && *name && title && *title ? ", " : "",
	                 title ? title : "");
}

static int read_row(void *user, const struct roster_row *row)
{
	struct read_ctx *rc = user;
	char *who = roster_row_who(row);

	rc->key = roster_key(row);
	roster_snap_add(rc->s, rc->key, roster_get(row, "email"), who);
	if (roster_get(row, "cc"))
		address_split(roster_get(row, "cc"), add_cc, rc);
	free(who);
	return 0;
}

int roster_snap_read(struct roster *r, struct roster_snap *s, struct diags *d)
{
	struct read_ctx rc = {s, NULL};

	return roster_each(r, read_row, &rc, d);
}

static void mission_free(struct roster_mission *m)
{
	free(m->key);
	for (size_t k = 0; k < m->naddr; k++)
		free(m->addr[k]);
	free(m->addr);
	free(m->name);
}

void roster_snap_free(struct roster_snap *s)
{
	for (size_t i = 0; i < s->n; i++)
		mission_free(&s->m[i]);
	free(s->m);
	memset(s, 0, sizeof(*s));
}

static int cmp_mission(const void *a, const void *b)
{
	return strcasecmp(((const struct roster_mission *)a)->key,
	                  ((const struct roster_mission *)b)->key);
}

static int cmp_str(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted by key, the entries of one key merged into one mission. */
static void snap_sort(struct roster_snap *s)
{
	size_t k = 0;

	if (s->sorted)
		return;
	if (s->n)
		qsort(s->m, s->n, sizeof(*s->m), cmp_mission);
	for (size_t i = 0; i < s->n; i++) {
		struct roster_mission *m = &s->m[i];

		if (k && !strcasecmp(s->m[k - 1].key, m->key)) {
			struct roster_snap one = {&s->m[k - 1], 1, 1, 0};

			roster_snap_add(&one, m->key, NULL, m->name);
			for (size_t a = 0; a < m->naddr; a++)
				roster_snap_add(&one, m->key, m->addr[a], NULL);
			mission_free(m);
			continue;
		}
		s->m[k++] = *m;
	}
	s->n = k;
	s->sorted = 1;
}

/* The addresses as a set: sorted copies, joined. */
static char *addr_set(const struct roster_mission *m)
{
	char **v = xcalloc(m->naddr ? m->naddr : 1, sizeof(char *));
	struct buf b = BUF_INIT;

	memcpy(v, m->addr, m->naddr * sizeof(char *));
	if (m->naddr)
		qsort(v, m->naddr, sizeof(char *), cmp_str);
	for (size_t i = 0; i < m->naddr; i++) {
		char *f = ident_fold(v[i]);

		buf_adds(&b, i ? ", " : "");
		buf_adds(&b, f);
		free(f);
	}
	free(v);
	return buf_detach(&b);
}

static char *addr_list(const struct roster_mission *m)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < m->naddr; i++) {
		buf_adds(&b, i ? ", " : "");
		buf_adds(&b, m->addr[i]);
	}
	buf_adds(&b, "");
	return buf_detach(&b);
}

size_t roster_diff(struct roster_snap *old, struct roster_snap *new,
                   void (*fn)(void *ctx, const struct roster_change *c), void *ctx,
                   struct roster_diff_counts *c)
{
	size_t i = 0, k = 0;

	memset(c, 0, sizeof(*c));
	snap_sort(old);
	snap_sort(new);
	while (i < old->n || k < new->n) {
		int d = i == old->n   ? 1
		        : k == new->n ? -1
		                      : strcasecmp(old->m[i].key, new->m[k].key);
		struct roster_change ch = {0};

		if (d < 0) {
			ch.kind = RC_REMOVED;
			ch.key = old->m[i++].key;
			c->removed++;
			if (fn)
				fn(ctx, &ch);
			continue;
		}
		if (d > 0) {
			ch.kind = RC_NEW;
			ch.key = new->m[k++].key;
			c->added++;
			if (fn)
				fn(ctx, &ch);
			continue;
		}
		{
			const struct roster_mission *a = &old->m[i++], *b = &new->m[k++];
			char *sa = addr_set(a), *sb = addr_set(b);

			if (strcmp(sa, sb)) {
				char *la = addr_list(a), *lb = addr_list(b);

				ch = (struct roster_change){RC_ADDRESS, b->key, la, lb};
				c->address++;
				if (fn)
					fn(ctx, &ch);
				free(la);
				free(lb);
			}
			if (a->name && b->name && strcmp(a->name, b->name)) {
				ch = (struct roster_change){RC_NAME, b->key, a->name, b->name};
				c->name++;
				if (fn)
					fn(ctx, &ch);
			}
			free(sa);
			free(sb);
		}
	}
	return c->added + c->removed + c->address + c->name;
}

void roster_change_format(struct buf *b, const struct roster_change *c)
{
	static const char *const what[] = {"new      ", "removed  ", "address  ", "name     "};

	buf_adds(b, what[c->kind]);
	esc_term(b, c->key);
	if (c->kind == RC_ADDRESS || c->kind == RC_NAME) {
		buf_adds(b, ": ");
		esc_term(b, c->old && *c->old ? c->old : "(none)");
		buf_adds(b, " -> ");
		esc_term(b, c->new && * c->new ? c->new : "(none)");
	}
}
