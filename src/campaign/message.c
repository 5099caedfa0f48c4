/* One mission's message: sender, recipients, Message-ID, attachments read once per run. */
#include "campaign/message.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "campaign/followup.h"
#include "mail/attachment.h"
#include "mail/compose.h"
#include "base/address.h"

#define EXAMPLE_NAME "Coalition for the International Criminal Court"
#define EXAMPLE_ADDR "secretariat@coalition.example"

int message_run_init(struct message_run *mr, const struct config *cfg, const struct merge *m,
                     char **errstr)
{
	const char *addr = cfg->sender.address;
	const char *at;

	memset(mr, 0, sizeof(*mr));
	pthread_mutex_init(&mr->lock, NULL);
	mr->campaign = m->campaign;
	mr->content_hash = letter_hash(m->letter);
	if (!addr || !*addr) {
		mr->example_sender = 1;
		addr = EXAMPLE_ADDR;
	}
	if (address_check(addr, strlen(addr), 0))
		return error_set(errstr, EX_CONFIG,
		                 "[sender] address '%s' is not a valid address: %s", addr,
		                 address_check(addr, strlen(addr), 0));
	mr->from_addr = xstrdup(addr);
	mr->from_name = xstrdup(cfg->sender.name && *cfg->sender.name
	                            ? cfg->sender.name
	                            : (mr->example_sender ? EXAMPLE_NAME : ""));
	at = strrchr(addr, '@');
	mr->domain =
	    xstrdup(cfg->sender.domain && *cfg->sender.domain ? cfg->sender.domain : at + 1);
	if (cfg->sender.reply_to && *cfg->sender.reply_to) {
		if (address_check(cfg->sender.reply_to, strlen(cfg->sender.reply_to), 0))
			return error_set(errstr, EX_CONFIG,
			                 "[sender] reply_to '%s' is not a valid address",
			                 cfg->sender.reply_to);
		mr->reply_to = xstrdup(cfg->sender.reply_to);
	}
	return EX_OK;
}

void message_run_free(struct message_run *mr)
{
	free(mr->from_name);
	free(mr->from_addr);
	free(mr->domain);
	free(mr->reply_to);
	for (size_t i = 0; i < mr->natts; i++) {
		free(mr->att_paths[i]);
		mail_attachment_free(mr->atts[i]);
	}
	free(mr->att_paths);
	free(mr->atts);
	pthread_mutex_destroy(&mr->lock);
	memset(mr, 0, sizeof(*mr));
}

/* Attachment i of lo, read (inside the letter's folder) and encoded on first use only (under
 * the run's lock: workers compose at once). */
static int attachment(struct message_run *mr, const struct letter_out *lo, size_t i,
                      struct mail_attachment **out, char **errstr)
{
	const char *path = lo->attachments[i];
	int rc = EX_OK;

	pthread_mutex_lock(&mr->lock);
	for (size_t k = 0; k < mr->natts; k++) {
		if (!strcmp(mr->att_paths[k], path)) {
			*out = mr->atts[k];
			goto out;
		}
	}
	rc = mail_attachment_load_in(lo->attachment_dir, lo->attachment_rel[i], out, errstr);
	if (rc != EX_OK)
		goto out;
	mr->att_paths = xreallocarray(mr->att_paths, mr->natts + 1, sizeof(char *));
	mr->atts = xreallocarray(mr->atts, mr->natts + 1, sizeof(*mr->atts));
	mr->att_paths[mr->natts] = xstrdup(path);
	mr->atts[mr->natts++] = *out;
out:
	pthread_mutex_unlock(&mr->lock);
	return rc;
}

struct addrs {
	struct mail_address *v;
	char **owned;
	size_t n;
	const char *bad; /* the first item that is not an addr-spec */
};

static int add_addr(void *user, const char *item, size_t len)
{
	struct addrs *a = user;
	char *s = xstrndup(item, len);

	if (address_check(s, len, 0) && !a->bad)
		a->bad = "";
	a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
	a->owned = xreallocarray(a->owned, a->n + 1, sizeof(char *));
	a->v[a->n].name = NULL;
	a->v[a->n].addr = s;
	a->owned[a->n++] = s;
	return 0;
}

static void addrs_free(struct addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->owned[i]);
	free(a->v);
	free(a->owned);
}

static void add_rcpt(struct message *msg, const char *addr)
{
	for (size_t i = 0; i < msg->nrcpt; i++)
		if (!strcasecmp(msg->rcpt[i], addr))
			return;
	msg->rcpt = xreallocarray(msg->rcpt, msg->nrcpt + 1, sizeof(char *));
	msg->rcpt[msg->nrcpt++] = xstrdup(addr);
}

static const char *ctx_str(json_t *ctx, const char *name)
{
	return json_string_value(json_object_get(ctx, name));
}

/* message_build() with the bodies already encoded (tb, hb; NULL: encoded by mail_compose). */
static int build(struct message_run *mr, const char *key, json_t *ctx, const struct letter_out *lo,
                 const struct mail_body *tb, const struct mail_body *hb, time_t date,
                 struct message *msg, char **errstr)
{
	struct mail_message mm = {0};
	struct mail_address to, reply;
	struct addrs cc = {0}, bcc = {0};
	struct mail_attachment **atts = NULL;
	const char *mission = ctx_str(ctx, "mission");
	const char *email = ctx_str(ctx, "email");
	const char *rcc = ctx_str(ctx, "cc");
	char *subject = NULL;
	int rc = EX_OK;

	memset(msg, 0, sizeof(*msg));
	rc = mail_message_id(mr->campaign, key, mr->content_hash, mr->domain, &msg->message_id,
	                     errstr);
	if (rc != EX_OK)
		goto out;
	if (!mission || !*mission)
		mission = ctx_str(ctx, "state");
	to.name = mr->test_to ? NULL : mission;
	if (!email && !mr->test_to) {
		rc = error_set(errstr, EX_DATAERR, "'%s' has no email address", key);
		goto out;
	}
	to.addr = mr->test_to ? mr->test_to : email;
	if (rcc && !mr->test_to)
		address_split(rcc, add_addr, &cc);
	if (lo->cc && !mr->test_to)
		address_split(lo->cc, add_addr, &cc);
	if (lo->bcc && !mr->test_to)
		address_split(lo->bcc, add_addr, &bcc);
	if (cc.bad || bcc.bad) {
		rc =
		    error_set(errstr, EX_DATAERR, "a Cc or Bcc address for '%s' is not valid", key);
		goto out;
	}
	mm.from.name = mr->from_name;
	mm.from.addr = mr->from_addr;
	mm.to = &to;
	mm.nto = 1;
	mm.cc = cc.v;
	mm.ncc = cc.n;
	if (lo->reply_to || mr->reply_to) {
		reply.name = NULL;
		reply.addr = lo->reply_to ? lo->reply_to : mr->reply_to;
		mm.reply_to = &reply;
	}
	if (mr->test_to)
		subject = xasprintf("[TEST] %s", lo->subject);
	mm.subject = subject ? subject : lo->subject;
	mm.date = date;
	mm.message_id = msg->message_id;
	mm.campaign = mr->campaign;
	/* a reminder replies to the mission's first letter (RFC 5322 section 3.6.4) */
	mm.in_reply_to = followup_thread(mr->follow, key);
	mm.text = lo->text;
	mm.html = lo->html;
	mm.text_body = tb;
	mm.html_body = hb;
	if (lo->nattachments) {
		atts = xcalloc(lo->nattachments, sizeof(*atts));
		for (size_t i = 0; i < lo->nattachments; i++) {
			rc = attachment(mr, lo, i, &atts[i], errstr);
			if (rc != EX_OK)
				goto out;
		}
		mm.attachments = atts;
		mm.nattachments = lo->nattachments;
	}
	rc = mail_compose(&mm, &msg->data, errstr);
	if (rc != EX_OK)
		goto out;
	add_rcpt(msg, to.addr);
	for (size_t i = 0; i < cc.n; i++)
		add_rcpt(msg, cc.v[i].addr);
	for (size_t i = 0; i < bcc.n; i++)
		add_rcpt(msg, bcc.v[i].addr);
out:
	if (rc != EX_OK)
		message_free(msg);
	addrs_free(&cc);
	addrs_free(&bcc);
	free(atts);
	free(subject);
	return rc;
}

int message_build(struct message_run *mr, const char *key, json_t *ctx, const struct letter_out *lo,
                  time_t date, struct message *msg, char **errstr)
{
	return build(mr, key, ctx, lo, NULL, NULL, date, msg, errstr);
}

#define CACHE_SLOTS 8 /* a few languages, or a few variants of one */

struct body_entry {
	char *title, *md, *html; /* the key: the title and the Markdown both parts come from */
	size_t mdlen;
	struct mail_body tb, hb; /* valid: both encoded (the texts are valid UTF-8) */
	int valid;
};

struct message_cache {
	struct body_entry e[CACHE_SLOTS];
	size_t next; /* the slot to reuse on a miss (round robin) */
};

struct message_cache *message_cache_new(void)
{
	return xcalloc(1, sizeof(struct message_cache));
}

static void entry_clear(struct body_entry *e)
{
	free(e->title);
	free(e->md);
	free(e->html);
	buf_free(&e->tb.qp);
	buf_free(&e->hb.qp);
	memset(e, 0, sizeof(*e));
}

void message_cache_free(struct message_cache *mc)
{
	if (!mc)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		entry_clear(&mc->e[i]);
	free(mc);
}

/*
 * The entry for lo's title and Markdown: found, or made in the next slot (HTML by cmark,
 * both parts encoded). The HTML and the plain text depend on nothing else (letter_html(),
 * letter/plaintext.h), and the encoded parts on nothing but those, so a hit gives exactly
 * what a fresh build would.
 */
static struct body_entry *cache_get(struct message_cache *mc, const struct letter_out *lo)
{
	size_t len = strlen(lo->md);
	const char *title = lo->title ? lo->title : "";
	struct body_entry *e;

	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		e = &mc->e[i];
		if (e->md && e->mdlen == len && !memcmp(e->md, lo->md, len) &&
		    !strcmp(e->title, title))
			return e;
	}
	e = &mc->e[mc->next];
	mc->next = (mc->next + 1) % CACHE_SLOTS;
	entry_clear(e);
	e->title = xstrdup(title);
	e->md = xstrdup(lo->md);
	e->mdlen = len;
	e->html = letter_html(lo);
	e->valid = mail_body(&e->tb, lo->text, strlen(lo->text));
	if (e->valid && !mail_body(&e->hb, e->html, strlen(e->html))) {
		buf_free(&e->tb.qp);
		e->valid = 0;
	}
	return e;
}

int message_build_cached(struct message_run *mr, struct message_cache *mc, const char *key,
                         json_t *ctx, struct letter_out *lo, time_t date, struct message *msg,
                         char **errstr)
{
	struct body_entry *e = cache_get(mc, lo);
	int rc;

	lo->html = e->html; /* borrowed for the build only */
	if (!e->valid)      /* mail_compose() says what is wrong */
		rc = build(mr, key, ctx, lo, NULL, NULL, date, msg, errstr);
	else
		rc = build(mr, key, ctx, lo, &e->tb, &e->hb, date, msg, errstr);
	lo->html = NULL;
	return rc;
}

void message_free(struct message *msg)
{
	buf_free(&msg->data);
	free(msg->message_id);
	for (size_t i = 0; i < msg->nrcpt; i++)
		free(msg->rcpt[i]);
	free(msg->rcpt);
	memset(msg, 0, sizeof(*msg));
}

int message_check_row(void *user, struct merge *m, const struct roster_row *row,
                      const struct letter_out *lo)
{
	struct message_check *mc = user;
	struct message msg;
	json_t *ctx = roster_context(row);
	int rc = message_build(mc->mr, roster_key(row), ctx, lo, mc->date, &msg, &mc->err);

	json_decref(ctx);
	if (rc != EX_OK) {
		diags_add(&m->d, DIAG_ERROR, roster_path(m->roster), roster_row_line(row), NULL,
		          "%s", mc->err);
		return 0;
	}
	message_free(&msg);
	return 0;
}
