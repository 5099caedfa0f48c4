/* The review pages: the campaign, each mission's message, the languages, the audit. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "letter/mustache.h"
#include "mail/encode.h"
#include "mail/rfc2047.h"
#include "review/assets.h"
#include "review/site.h"

struct review_templates {
	struct mustache_partials *partials;
	struct mustache_template *campaign, *mission, *languages, *changes;
};

/* A letter's HTML part in its frame: its inline styles, nothing else, and no script. */
#define LETTER_CSP                                                                                 \
	"default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; "                  \
	"frame-ancestors 'self'; form-action 'none'; base-uri 'none'"

static const struct review_asset *asset(const char *name)
{
	for (const struct review_asset *a = review_assets; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

/* Partials are the assets NAME.mustache. */
static int load_partial(void *user, const char *name, char **src, size_t *len)
{
	char *file = xasprintf("%s.mustache", name);
	const struct review_asset *a = asset(file);

	(void)user;
	free(file);
	if (!a)
		return -1;
	*src = xstrdup(a->data);
	*len = a->len;
	return 0;
}

static int compile(const char *name, struct mustache_template **t, char **errstr)
{
	const struct review_asset *a = asset(name);

	if (!a)
		return error_set(errstr, EX_SOFTWARE, "review: no template %s compiled in", name);
	return mustache_compile(a->data, a->len, name, 1, t, errstr) ? EX_SOFTWARE : EX_OK;
}

int review_site_init(struct review_site *s, char **errstr)
{
	int rc;

	s->t = xcalloc(1, sizeof(*s->t));
	s->t->partials = mustache_partials_new(load_partial, NULL);
	if ((rc = compile("campaign.mustache", &s->t->campaign, errstr)) ||
	    (rc = compile("mission.mustache", &s->t->mission, errstr)) ||
	    (rc = compile("languages.mustache", &s->t->languages, errstr)) ||
	    (rc = compile("changes.mustache", &s->t->changes, errstr)))
		return rc;
	return EX_OK;
}

static char *dup0(const char *s)
{
	return xstrdup(s ? s : "");
}

static void push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

/* The message's own headers, unfolded and decoded (RFC 5322 section 2.2.3, RFC 2047); the
 * MIME structure's (Content-*, MIME-Version) are left out: the parts are shown. */
static void decode_headers(struct review_mission *m, const char *eml, size_t len)
{
	const char *end = eml + len, *p = eml;

	while (p < end && !(p[0] == '\r' && p + 1 < end && p[1] == '\n')) {
		struct buf line = BUF_INIT;
		const char *colon;

		/* one field: its first line and every continuation line (CRLF then WSP) */
		do {
			const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

			if (!eol)
				eol = end;
			buf_add(&line, p, (size_t)(eol - p));
			p = eol < end ? eol + 2 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		colon = strchr(buf_str(&line), ':');
		if (colon && strncasecmp(buf_str(&line), "Content-", 8) &&
		    strncasecmp(buf_str(&line), "MIME-Version", 12)) {
			const char *v = colon + 1;
			int phrase = !strncasecmp(buf_str(&line), "From:", 5) ||
			             !strncasecmp(buf_str(&line), "To:", 3) ||
			             !strncasecmp(buf_str(&line), "Cc:", 3) ||
			             !strncasecmp(buf_str(&line), "Reply-To:", 9);
			char *dec;

			while (*v == ' ' || *v == '\t')
				v++;
			dec = rfc2047_decode(v, phrase);
			push(&m->hdr, &m->nhdr,
			     xstrndup(buf_str(&line), (size_t)(colon - buf_str(&line))));
			push(&m->hdr, &m->nhdr, dec ? dec : xstrdup(v));
		}
		buf_free(&line);
	}
}

void review_site_add(struct review_site *s, const char *key, const char *name, const char *lang,
                     const char *group, const char *subject, const char *text, const char *html,
                     const char *eml, size_t eml_len, enum review_plan plan, const char *plan_text)
{
	struct review_mission *m;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->m = xreallocarray(s->m, s->cap, sizeof(*s->m));
	}
	m = &s->m[s->n++];
	memset(m, 0, sizeof(*m));
	m->key = dup0(key);
	m->name = dup0(name);
	m->lang = dup0(lang);
	m->group = group ? xstrdup(group) : NULL;
	m->subject = dup0(subject);
	m->text = dup0(text);
	m->html = dup0(html);
	m->plan = plan;
	m->plan_text = dup0(plan_text);
	decode_headers(m, eml, eml_len);
}

void review_site_language(struct review_site *s, const char *lang, const char *subject)
{
	size_t n = s->nlangs;

	push(&s->langs, &n, dup0(lang));
	push(&s->lang_subject, &s->nlangs, dup0(subject));
}

void review_site_warning(struct review_site *s, const char *msg)
{
	push(&s->warnings, &s->nwarnings, dup0(msg));
}

void review_site_parity(struct review_site *s, const char *msg)
{
	push(&s->parity, &s->nparity, dup0(msg));
}

void review_site_changes(struct review_site *s, const char *text)
{
	const char *p = text ? text : "";

	s->has_ledger = 1;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char *line;

		if (!s->changes_summary) {
			s->changes_summary = xstrndup(p, len);
		} else {
			while (len && *p == ' ') { /* the list's indent */
				p++;
				len--;
			}
			line = xstrndup(p, len);
			push(&s->changes, &s->nchanges, line);
		}
		p += len;
		if (*p == '\n')
			p++;
	}
}

void review_site_approval(struct review_site *s, const char *batch, const char *date,
                          size_t missions, int required, size_t counted, const char *by,
                          const char *notes)
{
	free(s->batch);
	free(s->batch_date);
	free(s->approved_by);
	free(s->approval_notes);
	s->batch = dup0(batch);
	s->batch_date = dup0(date);
	s->batch_missions = missions;
	s->approvals_required = required;
	s->approvals_counted = counted;
	s->approved_by = by && *by ? xstrdup(by) : NULL;
	s->approval_notes = notes && *notes ? xstrdup(notes) : NULL;
}

static void set_s(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

static void set_i(json_t *o, const char *k, long v)
{
	json_object_set_new(o, k, json_integer(v));
}

static const char *plan_class(enum review_plan p)
{
	return p == REVIEW_SEND ? "send" : p == REVIEW_SENT ? "sent" : "held";
}

/* What every page has: the title, the campaign, the navigation. */
static json_t *page_ctx(const struct review_site *s, const char *title, const char *nav)
{
	json_t *c = json_object();

	set_s(c, "title", title);
	set_s(c, "campaign", s->campaign);
	set_s(c, "version", DEMARCHE_VERSION);
	json_object_set_new(c, "has_audit", json_boolean(s->audit != NULL));
	if (nav)
		json_object_set_new(c, nav, json_true());
	return c;
}

static json_t *strings(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void render(const struct review_site *s, const struct mustache_template *t, json_t *ctx,
                   struct review_reply *rp)
{
	struct mustache_render_opts o = {.escape = MUSTACHE_ESCAPE_HTML,
	                                 .partials = s->t->partials};

	if (mustache_render(t, ctx, &o, &rp->body) != EX_OK) {
		buf_reset(&rp->body);
		buf_adds(&rp->body, "the page's template did not render\n");
		rp->status = 500;
		rp->type = "text/plain; charset=utf-8";
	}
	json_decref(ctx);
}

static size_t lang_index(const struct review_site *s, const char *lang)
{
	for (size_t i = 0; i < s->nlangs; i++)
		if (!strcmp(s->langs[i], lang))
			return i;
	return s->nlangs;
}

/* A mission's group as shown: "(none)" for a blank or missing value. */
static const char *group_label(const struct review_mission *m)
{
	return m->group && *m->group ? m->group : "(none)";
}

static int cmp_group(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int nx = !strcmp(x, "(none)"), ny = !strcmp(y, "(none)");

	return nx != ny ? nx - ny : strcmp(x, y); /* "(none)" last */
}

/* The groups, sorted, and their missions per language; none when no mission has a group. */
static json_t *groups(const struct review_site *s)
{
	json_t *arr = json_array();
	const char **names = NULL;
	size_t ng = 0, grouped = 0;

	for (size_t i = 0; i < s->n; i++) {
		const char *label = group_label(&s->m[i]);
		size_t g;

		grouped += s->m[i].group != NULL;
		for (g = 0; g < ng && strcmp(names[g], label); g++)
			;
		if (g == ng) {
			names = xreallocarray(names, ng + 1, sizeof(*names));
			names[ng++] = label;
		}
	}
	if (!grouped)
		ng = 0;
	if (ng)
		qsort(names, ng, sizeof(*names), cmp_group);
	for (size_t g = 0; g < ng; g++) {
		json_t *o = json_object(), *counts = json_array();
		long total = 0;

		for (size_t l = 0; l < s->nlangs; l++) {
			long k = 0;

			for (size_t i = 0; i < s->n; i++)
				k += !strcmp(group_label(&s->m[i]), names[g]) &&
				     lang_index(s, s->m[i].lang) == l;
			json_array_append_new(counts, json_integer(k));
			total += k;
		}
		set_s(o, "name", names[g]);
		json_object_set_new(o, "counts", counts);
		set_i(o, "total", total);
		json_array_append_new(arr, o);
	}
	free(names);
	return arr;
}

static const char *header(const struct review_mission *m, const char *name)
{
	for (size_t i = 0; i + 1 < m->nhdr; i += 2)
		if (!strcasecmp(m->hdr[i], name))
			return m->hdr[i + 1];
	return NULL;
}

static void page_campaign(const struct review_site *s, const char *csrf, struct review_reply *rp)
{
	json_t *c = page_ctx(s, "Campaign", "nav_campaign"), *langs = json_array(),
	       *rows = json_array(), *g;
	long plan[3] = {0, 0, 0};

	for (size_t l = 0; l < s->nlangs; l++) {
		json_t *o = json_object();
		long k = 0;

		for (size_t i = 0; i < s->n; i++)
			k += !strcmp(s->m[i].lang, s->langs[l]);
		set_s(o, "lang", s->langs[l]);
		set_s(o, "subject", s->lang_subject[l]);
		set_i(o, "count", k);
		json_array_append_new(langs, o);
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct review_mission *m = &s->m[i];
		json_t *o = json_object();

		plan[m->plan]++;
		set_i(o, "index", (long)i + 1);
		set_s(o, "key", m->key);
		set_s(o, "name", m->name);
		set_s(o, "lang", m->lang);
		set_s(o, "group", group_label(m));
		set_s(o, "to", header(m, "To"));
		set_s(o, "plan", m->plan_text);
		set_s(o, "plan_class", plan_class(m->plan));
		json_array_append_new(rows, o);
	}
	set_s(c, "subject", s->nlangs ? s->lang_subject[0] : s->campaign);
	set_s(c, "appeal", s->appeal);
	set_s(c, "roster", s->roster);
	set_s(c, "by", s->by);
	if (s->content_hash) {
		char shorth[13];

		snprintf(shorth, sizeof(shorth), "%.12s", s->content_hash);
		set_s(c, "content_hash", shorth);
	}
	set_i(c, "missions", (long)s->n);
	set_i(c, "nlanguages", (long)s->nlangs);
	set_i(c, "plan_send", plan[REVIEW_SEND]);
	set_i(c, "plan_sent", plan[REVIEW_SENT]);
	set_i(c, "plan_held", plan[REVIEW_HELD]);
	set_s(c, "plan_note", s->plan_note);
	if (s->batch) {
		json_t *a = json_object();

		set_s(a, "hash", s->batch);
		set_s(a, "date", s->batch_date);
		set_i(a, "missions", (long)s->batch_missions);
		set_i(a, "required", s->approvals_required);
		set_i(a, "counted", (long)s->approvals_counted);
		json_object_set_new(
		    a, "enough",
		    json_boolean(s->approvals_counted >= (size_t)s->approvals_required));
		set_s(a, "by", s->approved_by);
		set_s(a, "notes", s->approval_notes);
		if (s->approve) {
			json_object_set_new(a, "can_approve", json_true());
			set_s(a, "csrf", csrf);
			set_s(a, "approver", s->approver);
			json_object_set_new(a, "approver_is_sender",
			                    json_boolean(s->approver_is_sender));
		}
		json_object_set_new(c, "approval", a);
	}
	json_object_set_new(c, "warnings", strings(s->warnings, s->nwarnings));
	json_object_set_new(c, "has_warnings", json_boolean(s->nwarnings > 0));
	json_object_set_new(c, "languages", langs);
	g = groups(s);
	json_object_set_new(c, "has_groups", json_boolean(json_array_size(g) > 0));
	json_object_set_new(c, "groups", g);
	json_object_set_new(c, "rows", rows);
	render(s, s->t->campaign, c, rp);
}

static void page_mission(const struct review_site *s, size_t i, struct review_reply *rp)
{
	const struct review_mission *m = &s->m[i];
	json_t *c = page_ctx(s, m->key, NULL), *h = json_array();

	for (size_t k = 0; k + 1 < m->nhdr; k += 2) {
		json_t *o = json_object();

		set_s(o, "name", m->hdr[k]);
		set_s(o, "value", m->hdr[k + 1]);
		json_array_append_new(h, o);
	}
	set_i(c, "index", (long)i + 1);
	set_i(c, "pos", (long)i + 1);
	set_i(c, "missions", (long)s->n);
	if (i > 0) {
		set_i(c, "prev", (long)i);
		set_s(c, "prev_key", s->m[i - 1].key);
	}
	if (i + 1 < s->n) {
		set_i(c, "next", (long)i + 2);
		set_s(c, "next_key", s->m[i + 1].key);
	}
	set_s(c, "key", m->key);
	set_s(c, "name", m->name);
	set_s(c, "lang", m->lang);
	set_s(c, "group", m->group);
	set_s(c, "plan", m->plan_text);
	set_s(c, "plan_class", plan_class(m->plan));
	set_s(c, "text", m->text);
	json_object_set_new(c, "headers", h);
	render(s, s->t->mission, c, rp);
}

static void page_changes(const struct review_site *s, struct review_reply *rp)
{
	json_t *c = page_ctx(s, "Roster changes", "nav_changes");

	json_object_set_new(c, "has_ledger", json_boolean(s->has_ledger));
	set_s(c, "summary", s->changes_summary);
	json_object_set_new(c, "changes", strings(s->changes, s->nchanges));
	json_object_set_new(c, "has_changes", json_boolean(s->nchanges > 0));
	render(s, s->t->changes, c, rp);
}

static void page_languages(const struct review_site *s, struct review_reply *rp)
{
	json_t *c = page_ctx(s, "Languages", "nav_languages"), *cols = json_array();

	for (size_t l = 0; l < s->nlangs; l++)
		for (size_t i = 0; i < s->n; i++) {
			json_t *o;

			if (strcmp(s->m[i].lang, s->langs[l]))
				continue;
			o = json_object();
			set_s(o, "lang", s->langs[l]);
			set_i(o, "index", (long)i + 1);
			set_s(o, "key", s->m[i].key);
			set_s(o, "subject", s->m[i].subject);
			set_s(o, "text", s->m[i].text);
			json_array_append_new(cols, o);
			break;
		}
	json_object_set_new(c, "columns", cols);
	json_object_set_new(c, "parity", strings(s->parity, s->nparity));
	json_object_set_new(c, "has_parity", json_boolean(s->nparity > 0));
	render(s, s->t->languages, c, rp);
}

/*
 * The audit report (cmd/audit_html.c's document, self-contained) under a policy that allows
 * its one <style> block by hash, and nothing else inline.
 */
static void page_audit(struct review_site *s, struct review_reply *rp)
{
	char *err = NULL;
	const char *a, *b;

	if (s->audit(s->audit_user, &rp->body, &err) != EX_OK) {
		buf_reset(&rp->body);
		buf_addf(&rp->body, "the audit report failed: %s\n", err ? err : "?");
		rp->status = 500;
		rp->type = "text/plain; charset=utf-8";
		free(err);
		return;
	}
	a = strstr(buf_str(&rp->body), "<style>");
	b = a ? strstr(a, "</style>") : NULL;
	if (a && b) {
		struct digest *d = digest_new();
		unsigned char md[DIGEST_SIZE];
		struct buf b64 = BUF_INIT, csp = BUF_INIT;

		digest_update(d, a + 7, (size_t)(b - a - 7));
		digest_final(d, md);
		digest_free(d);
		mail_base64_encode(&b64, md, sizeof(md));
		buf_addf(&csp,
		         "default-src 'none'; style-src 'sha256-%s'; img-src data:; "
		         "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
		         buf_str(&b64));
		buf_free(&b64);
		/* the reply outlives this call: kept by the site until the next one */
		free(s->audit_csp);
		s->audit_csp = buf_detach(&csp);
		rp->csp = s->audit_csp;
	}
}

void review_site_route(void *user, const struct review_request *rq, struct review_reply *rp)
{
	struct review_site *s = user;
	const char *p = rq->path;
	char *end;

	if (!strcmp(rq->method, "POST")) {
		/* the CSRF check has passed (review/http.c); the only action is approving */
		rp->type = "text/plain; charset=utf-8";
		if (strcmp(p, "/approve")) {
			rp->status = 404;
			buf_adds(&rp->body, "no such action\n");
		} else if (!s->approve) {
			rp->status = 403;
			buf_adds(&rp->body,
			         "approving is off: start review with --allow-approve\n");
		} else {
			char *hash = review_form_value(rq->body, rq->body_len, "batch");

			if (!hash || !*hash) {
				rp->status = 400;
				buf_adds(&rp->body, "no batch hash in the form\n");
			} else {
				rp->status = s->approve(s->approve_user, hash, &rp->body);
				if (rp->status == 303)
					rp->location = xstrdup("/#approval");
			}
			free(hash);
		}
		return;
	}
	if (!strcmp(p, "/")) {
		page_campaign(s, rq->csrf, rp);
		return;
	}
	if (!strcmp(p, "/style.css")) {
		const struct review_asset *a = asset("style.css");

		rp->type = "text/css; charset=utf-8";
		buf_add(&rp->body, a->data, a->len);
		return;
	}
	if (!strcmp(p, "/languages")) {
		page_languages(s, rp);
		return;
	}
	if (!strcmp(p, "/changes")) {
		page_changes(s, rp);
		return;
	}
	if (!strcmp(p, "/audit") && s->audit) {
		page_audit(s, rp);
		return;
	}
	if (!strncmp(p, "/m/", 3) && p[3] >= '1' && p[3] <= '9') {
		unsigned long i;

		errno = 0;
		i = strtoul(p + 3, &end, 10);
		if (!errno && i >= 1 && i <= s->n && !*end) {
			page_mission(s, i - 1, rp);
			return;
		}
		if (!errno && i >= 1 && i <= s->n && !strcmp(end, "/html")) {
			rp->csp = LETTER_CSP;
			rp->framable = 1;
			buf_adds(&rp->body, s->m[i - 1].html);
			return;
		}
	}
	rp->status = 404;
	rp->type = "text/plain; charset=utf-8";
	buf_adds(&rp->body, "not found\n");
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void review_site_free(struct review_site *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct review_mission *m = &s->m[i];

		free(m->key);
		free(m->name);
		free(m->lang);
		free(m->group);
		free(m->subject);
		free(m->text);
		free(m->html);
		free(m->plan_text);
		free_strings(m->hdr, m->nhdr);
	}
	free(s->m);
	free_strings(s->langs, s->nlangs);
	free_strings(s->lang_subject, s->nlangs);
	free_strings(s->warnings, s->nwarnings);
	free_strings(s->parity, s->nparity);
	free(s->plan_note);
	free(s->changes_summary);
	free_strings(s->changes, s->nchanges);
	free(s->batch);
	free(s->batch_date);
	free(s->approved_by);
	free(s->approval_notes);
	if (s->t) {
		mustache_free(s->t->campaign);
		mustache_free(s->t->mission);
		mustache_free(s->t->languages);
		mustache_free(s->t->changes);
		mustache_partials_free(s->t->partials);
		free(s->t);
	}
	free(s->audit_csp);
}
