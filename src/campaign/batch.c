/* The batch an approval covers: its parts, its hash, and what differs from an approved one. */
#include "campaign/batch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/strutil.h"
#include "base/xalloc.h"

/* Part of the batch hash: bumped only with a new canonical encoding. */
#define BATCH_DOMAIN "demarche-batch-v1\n"
#define SHORT        16 /* hex digits of a part's hash kept with an approval */

static struct batch_part *add(struct batch *b, int in_batch, const char *fmt, const char *arg)
{
	struct batch_part *p;

	b->v = xreallocarray(b->v, b->n + 1, sizeof(*b->v));
	p = &b->v[b->n++];
	p->name = xasprintf(fmt, arg);
	p->hash[0] = '\0';
	p->in_batch = in_batch;
	return p;
}

static void add_hash(struct batch *b, int in_batch, const char *name, const void *data, size_t len)
{
	digest_sha256_hex(data, len, add(b, in_batch, "%s", name)->hash);
}

/* A file's bytes as a part (missing: the hash of nothing, so a new file shows). */
static void add_file(struct batch *b, const char *fmt, const char *label, const char *path)
{
	char *data = NULL;
	size_t len = 0;

	if (read_file(path, &data, &len) != 0)
		len = 0;
	digest_sha256_hex(data ? data : "", len, add(b, 0, fmt, label)->hash);
	free(data);
}

/* Each language file of the appeal, named as the drafter knows it ("fr.md"). */
static void add_letter_files(struct batch *b, const struct merge *m)
{
	const char *path = letter_path(m->letter);
	size_t nlang;
	const char *const *langs = letter_languages(m->letter, &nlang);
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		for (size_t i = 0; i < nlang; i++) {
			char *file = xasprintf("%s/%s.md", path, langs[i]);
			char *label = xasprintf("%s.md", langs[i]);

			add_file(b, "file %s", label, file);
			free(label);
			free(file);
		}
	} else {
		const char *slash = strrchr(path, '/');

		add_file(b, "file %s", slash ? slash + 1 : path, path);
	}
}

struct rows {
	struct batch *b;
};

/* A selected row: every value of its letter context (its joined facts too), less the date
 * line's date (the letters' date is a part of its own). */
static int add_row(void *user, const struct roster_row *row)
{
	struct rows *r = user;
	json_t *ctx = roster_context(row);
	char *s;

	json_object_del(ctx, "letter_date");
	s = json_dumps(ctx, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
	digest_sha256_hex(s ? s : "", s ? strlen(s) : 0,
	                  add(r->b, 1, "row %s", roster_key(row))->hash);
	free(s);
	json_decref(ctx);
	return 0;
}

/* The message as approved: its envelope, then its bytes without the Date header field (and
 * its folded lines, RFC 5322 2.2.3), which says when it is sent, not what. */
static void add_message(struct batch *b, const struct plan_record *rec)
{
	struct digest *d = digest_new();
	const char *s = rec->data, *end = rec->data + rec->len, *p = s;
	struct batch_part *part = add(b, 1, "message %s", rec->key);

	for (uint32_t i = 0; i < rec->nrcpt; i++)
		digest_update(d, rec->rcpt[i], strlen(rec->rcpt[i]) + 1);
	digest_update(d, "\n", 1);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;

		if (p == next - 1 || (p + 1 < end && p[0] == '\r' && p[1] == '\n')) {
			digest_update(d, p, (size_t)(end - p)); /* the body, whole */
			break;
		}
		if (!strncasecmp(p, "Date:", 5)) {
			while (next < end && (*next == ' ' || *next == '\t')) {
				nl = memchr(next, '\n', (size_t)(end - next));
				next = nl ? nl + 1 : end;
			}
		} else {
			digest_update(d, p, (size_t)(next - p));
		}
		p = next;
	}
	digest_final_hex(d, part->hash);
	digest_free(d);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct batch_part *)a)->name, ((const struct batch_part *)b)->name);
}

int batch_compute(struct batch *b, const struct config *cfg, const struct merge_opts *mo,
                  struct merge *m, const struct message_run *mr, const struct plan *p,
                  char **errstr)
{
	struct diags d = DIAGS_INIT;
	struct rows rows = {b};
	struct digest *dg;
	struct buf s = BUF_INIT;
	char hex[65];
	int rc;

	memset(b, 0, sizeof(*b));
	snprintf(b->date, sizeof(b->date), "%s", roster_date(m->roster));
	snprintf(add(b, 1, "%s", "appeal")->hash, sizeof(hex), "%s", letter_hash(m->letter));
	add_letter_files(b, m);
	add_hash(b, 1, "date", b->date, strlen(b->date));
	buf_adds(&s, mr->from_name ? mr->from_name : "");
	buf_addc(&s, '\n');
	buf_adds(&s, mr->from_addr ? mr->from_addr : "");
	buf_addc(&s, '\n');
	buf_adds(&s, mr->reply_to ? mr->reply_to : "");
	buf_addc(&s, '\n');
	buf_adds(&s, mr->domain ? mr->domain : "");
	add_hash(b, 1, "sender", s.data, s.len);
	buf_free(&s);
	if (config_section_hash(cfg, "letterhead", hex))
		snprintf(add(b, 1, "%s", "letterhead")->hash, sizeof(hex), "%s", hex);
	for (size_t i = 0; i < mo->njoins; i++) {
		char *file = xstrdup(mo->joins[i]), *colon = strrchr(file, ':');

		if (colon && access(file, F_OK) != 0)
			*colon = '\0'; /* FILE:COL */
		add_file(b, "table %s", file, file);
		free(file);
	}

	/* The rows, read once more (nothing rendered): the same selection the spool holds. */
	rc = roster_each(m->roster, add_row, &rows, &d);
	diags_free(&d);
	if (rc != EX_OK)
		return error_set(errstr, rc, "the roster %s changed while it was read",
		                 roster_path(m->roster));

	/* The messages, as composed for sending. When letters are documents (issue 20), each
	 * mission's PDF joins here as a part "pdf KEY" of its own (it is in the message already
	 * when attached, but a part of its own says "the PDF for KEN changed"). */
	for (off_t off = 0; off < p->end;) {
		struct plan_record rec;

		if ((rc = plan_read(p, off, 1, &rec, errstr)) != EX_OK)
			return rc;
		add_message(b, &rec);
		b->missions++;
		off = rec.next;
		plan_record_free(&rec);
	}

	qsort(b->v, b->n, sizeof(*b->v), by_name);
	dg = digest_new();
	digest_update(dg, BATCH_DOMAIN, strlen(BATCH_DOMAIN));
	for (size_t i = 0; i < b->n; i++) {
		if (!b->v[i].in_batch)
			continue;
		digest_update(dg, b->v[i].name, strlen(b->v[i].name) + 1);
		digest_update(dg, b->v[i].hash, 64);
		digest_update(dg, "\n", 1);
	}
	digest_final_hex(dg, b->hash);
	digest_free(dg);
	return EX_OK;
}

/* A part's name as stored: one line, controls as \n, \xHH, and \ as \\. */
static void put_name(struct buf *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\')
			buf_adds(o, "\\\\");
		else if (c == '\n')
			buf_adds(o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			buf_addf(o, "\\x%02x", c);
		else
			buf_addc(o, (char)c);
	}
}

char *batch_components(const struct batch *b)
{
	struct buf o = BUF_INIT;

	for (size_t i = 0; i < b->n; i++) {
		buf_add(&o, b->v[i].hash, SHORT);
		buf_addc(&o, ' ');
		put_name(&o, b->v[i].name);
		buf_addc(&o, '\n');
	}
	return buf_detach(&o);
}

/* One stored part: its short hash and its name, pointing into a components string. */
struct entry {
	const char *hash, *name;
	size_t nlen;
};

static size_t parse_entries(const char *s, struct entry **out)
{
	struct entry *v = NULL;
	size_t n = 0;

	while (s && *s) {
		const char *nl = strchr(s, '\n'), *end = nl ? nl : s + strlen(s);

		if (end - s > SHORT + 1 && s[SHORT] == ' ') {
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n].hash = s;
			v[n].name = s + SHORT + 1;
			v[n++].nlen = (size_t)(end - s) - SHORT - 1;
		}
		s = nl ? nl + 1 : end;
	}
	*out = v;
	return n;
}

static int entry_cmp(const struct entry *a, const struct entry *b)
{
	size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
	int c = memcmp(a->name, b->name, n);

	return c ? c : (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

static int by_entry(const void *a, const void *b)
{
	return entry_cmp(a, b);
}

static int starts(const struct entry *e, const char *prefix)
{
	size_t n = strlen(prefix);

	return e->nlen >= n && !memcmp(e->name, prefix, n);
}

/* Appends "  " what " " the rest of e's name after prefix (escaped for the terminal) how. */
static void say(struct buf *out, const char *what, const struct entry *e, const char *prefix,
                const char *how)
{
	char *name = xstrndup(e->name + strlen(prefix), e->nlen - strlen(prefix));

	buf_addf(out, "  %s", what);
	esc_term(out, name);
	buf_addf(out, " %s\n", how);
	free(name);
}

size_t batch_diff(const char *old, const char *old_date, const struct batch *b, size_t max,
                  struct buf *out)
{
	char *cur_s = batch_components(b);
	struct entry *o = NULL, *c = NULL;
	size_t no = parse_entries(old, &o), nc = parse_entries(cur_s, &c);
	size_t i = 0, j = 0, found = 0, rows = 0, messages = 0, files = 0;
	int appeal = 0;
	struct buf keys = BUF_INIT, added = BUF_INIT, removed = BUF_INIT;
	size_t nadded = 0, nremoved = 0;

	qsort(o, no, sizeof(*o), by_entry);
	qsort(c, nc, sizeof(*c), by_entry);
	while (i < no || j < nc) {
		int cmp = i == no ? 1 : j == nc ? -1 : entry_cmp(&o[i], &c[j]);
		const struct entry *e = cmp <= 0 ? &o[i] : &c[j];
		const char *how = cmp < 0 ? "removed" : cmp > 0 ? "added" : "changed";

		if (cmp == 0 && !memcmp(o[i].hash, c[j].hash, SHORT)) {
			i++, j++;
			continue;
		}
		found++;
		if (starts(e, "message ")) {
			if (cmp == 0 && messages++ < 5) {
				char *k = xstrndup(e->name + 8, e->nlen - 8);

				buf_adds(&keys, keys.len ? ", " : "");
				esc_term(&keys, k);
				free(k);
			}
		} else if (starts(e, "row ") && cmp != 0) {
			struct buf *k = cmp > 0 ? &added : &removed;
			size_t *nk = cmp > 0 ? &nadded : &nremoved;

			if ((*nk)++ < 5) {
				char *key = xstrndup(e->name + 4, e->nlen - 4);

				buf_adds(k, k->len ? ", " : "");
				esc_term(k, key);
				free(key);
			}
		} else if (starts(e, "row ")) {
			if (rows++ < max)
				say(out, "roster row ", e, "row ", "changed");
		} else if (starts(e, "file ")) {
			files++;
			say(out, "", e, "file ", how);
		} else if (starts(e, "table ")) {
			say(out, "the joined table ", e, "table ", how);
		} else if (e->nlen == 6 && !memcmp(e->name, "appeal", 6)) {
			appeal = 1;
		} else if (e->nlen == 4 && !memcmp(e->name, "date", 4)) {
			buf_adds(out, "  the letters' date changed (approved ");
			esc_term(out, old_date ? old_date : "?");
			buf_addf(out, ", now %s)\n", b->date);
		} else if (e->nlen == 6 && !memcmp(e->name, "sender", 6)) {
			buf_adds(out, "  the sender ([sender] in the configuration) changed\n");
		} else if (e->nlen == 10 && !memcmp(e->name, "letterhead", 10)) {
			buf_addf(out, "  the letterhead ([letterhead] in the configuration) %s\n",
			         how);
		} else {
			say(out, "", e, "", how);
		}
		if (cmp <= 0)
			i++;
		if (cmp >= 0)
			j++;
	}
	if (appeal && !files)
		buf_adds(out, "  the appeal changed\n");
	if (rows > max)
		buf_addf(out, "  ... and %zu more roster rows\n", rows - max);
	if (nadded)
		buf_addf(out, "  %zu mission%s added to the selection (%s%s)\n", nadded,
		         nadded == 1 ? "" : "s", added.data, nadded > 5 ? ", ..." : "");
	if (nremoved)
		buf_addf(out, "  %zu mission%s no longer selected (%s%s)\n", nremoved,
		         nremoved == 1 ? "" : "s", removed.data, nremoved > 5 ? ", ..." : "");
	/* the messages: named only when nothing above explains them (a partial, the layout, an
	 * attachment changed) */
	if (messages && messages == found)
		buf_addf(out, "  %zu message%s differ%s from the approved ones (%s%s)\n", messages,
		         messages == 1 ? "" : "s", messages == 1 ? "s" : "", buf_str(&keys),
		         messages > 5 ? ", ..." : "");
	else if (messages)
		buf_addf(out, "  %zu message%s differ%s from the approved ones\n", messages,
		         messages == 1 ? "" : "s", messages == 1 ? "s" : "");
	buf_free(&keys);
	buf_free(&added);
	buf_free(&removed);
	free(o);
	free(c);
	free(cur_s);
	return found;
}

void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].name);
	free(b->v);
	memset(b, 0, sizeof(*b));
}
