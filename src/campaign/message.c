/* One mission's message: sender, recipients, Message-ID, attachments read once per run. */
#include "campaign/message.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "campaign/followup.h"
#include "mail/attachment.h"
#include "mail/compose.h"
#include "mail/encode.h"
#include "letter/markdown.h"
#include "letter/plaintext.h"
#include "base/utf8.h"
#include "base/address.h"
#include "campaign/document.h"

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
	if (letter_form_any_pdf(m->letter)) {
		struct diags d = {0};
		int rc;

		mr->doc = xcalloc(1, sizeof(*mr->doc));
		rc = document_run_init(mr->doc, cfg, letter_path(m->letter), cfg->sender.name, &d,
		                       errstr);
		diags_print(&d, stderr);
		diags_free(&d);
		if (rc != EX_OK)
			return rc;
	}
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
	if (mr->doc)
		document_run_free(mr->doc);
	free(mr->doc);
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

/*
 * What a reader decoding the text/html part gets (mail/decode.h): the HTML with its line
 * ends as quoted-printable writes them (mail/encode.h), CRLF, a CR before LF kept as it is.
 * Only for an HTML that ends with a line end (letter_html()'s always does): one that does
 * not gets a soft break, which the reader reads as nothing.
 */
static void html_view(struct buf *out, const char *html, size_t n)
{
	buf_grow(out, n + n / 16 + 16);
	for (size_t i = 0; i < n;) {
		const char *lf = memchr(html + i, '\n', n - i);
		size_t k = lf ? (size_t)(lf - html) : n;

		buf_add(out, html + i, k - i);
		if (!lf)
			break;
		if (k == 0 || html[k - 1] != '\r')
			buf_addc(out, '\r');
		buf_addc(out, '\n');
		i = k + 1;
	}
}

/* message_build() with the bodies already encoded (tb, hb; NULL: encoded by mail_compose)
 * and lo->html's html_view() (view; NULL: made here when wanted). */
static int build(struct message_run *mr, const char *key, json_t *ctx, const struct letter_out *lo,
                 const struct mail_body *tb, const struct mail_body *hb, const struct buf *view,
                 time_t date, struct message *msg, char **errstr)
{
	struct mail_message mm = {0};
	struct mail_address to, reply;
	struct addrs cc = {0}, bcc = {0};
	struct mail_attachment **atts = NULL;
	const char *mission = ctx_str(ctx, "mission");
	const char *email = ctx_str(ctx, "email");
	const char *rcc = ctx_str(ctx, "cc");
	char *subject = NULL, *cover_text = NULL, *cover_html = NULL;
	struct mail_attachment *pdf = NULL;
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
	if (lo->nattachments || (lo->form != LETTER_FORM_EMAIL && mr->doc)) {
		atts = xcalloc(lo->nattachments + 1, sizeof(*atts));
		for (size_t i = 0; i < lo->nattachments; i++) {
			rc = attachment(mr, lo, i, &atts[i], errstr);
			if (rc != EX_OK)
				goto out;
		}
		mm.attachments = atts;
		mm.nattachments = lo->nattachments;
	}
	/* Form: pdf or both: the letter as a PDF, first; with pdf the body is a cover note. */
	if (lo->form != LETTER_FORM_EMAIL && mr->doc) {
		rc = document_attach(mr->doc, mr->campaign, key, ctx, lo, date, &pdf,
		                     &msg->document, &cover_text, &cover_html, errstr);
		if (rc != EX_OK)
			goto out;
		memmove(atts + 1, atts, lo->nattachments * sizeof(*atts));
		atts[0] = pdf;
		mm.nattachments++;
		if (cover_text) {
			mm.text = cover_text;
			mm.html = cover_html;
			mm.text_body = mm.html_body = NULL;
		}
	}
	rc = mail_compose(&mm, &msg->data, errstr);
	if (rc != EX_OK)
		goto out;
	/* What the reader gets from a part that does not end with a line end is not this (a
	 * soft break ends it); letter_html() always ends with one. */
	if (mr->html_views && mm.html && mm.html == lo->html && *mm.html &&
	    mm.html[strlen(mm.html) - 1] == '\n') {
		struct buf b = BUF_INIT;

		if (view)
			buf_add(&b, view->data, view->len);
		else
			html_view(&b, mm.html, strlen(mm.html));
		msg->html_view_len = b.len;
		msg->html_view = buf_detach(&b);
	}
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
	mail_attachment_free(pdf);
	free(cover_text);
	free(cover_html);
	return rc;
}

int message_build(struct message_run *mr, const char *key, json_t *ctx, const struct letter_out *lo,
                  time_t date, struct message *msg, char **errstr)
{
	return build(mr, key, ctx, lo, NULL, NULL, NULL, date, msg, errstr);
}

#define CACHE_SLOTS 8   /* a few languages, or a few variants of one */
#define TAIL_SLOTS  8   /* the parts of those that stay the same */
#define RECENT      4   /* letters kept to find those parts in */
#define TAIL_MIN    256 /* bytes: a shorter part is not worth keeping */

/* A letter body seen whole: its title and Markdown, and both parts made from them. */
struct body_entry {
	char *title, *md, *text, *html; /* the key: the title and the Markdown */
	size_t mdlen;
	struct mail_body tb, hb; /* valid: both encoded (the texts are valid UTF-8) */
	int valid;
	struct buf view; /* html_view() of html, made when first wanted */
};

/*
 * The end of a letter's Markdown that is the same from mission to mission (after the
 * address and the salutation, say), rendered once: markdown_splits_at() says where a letter
 * may be cut so that the two ends render apart as they do together.
 */
struct tail_entry {
	char *md; /* the key: the Markdown from the cut to the end */
	size_t mdlen;
	char *text, *html; /* its text; its HTML fragment and the document's close */
	size_t textlen, htmllen;
	struct buf tqp, hqp; /* both quoted-printable: lines encode alone */
	struct buf view;     /* html_view() of html (it starts a line), made when first wanted */
	int valid;           /* both valid UTF-8 */
};

struct message_cache {
	struct body_entry e[CACHE_SLOTS];
	size_t next; /* the slot to reuse on a miss (round robin) */
	struct tail_entry t[TAIL_SLOTS];
	size_t tnext;
	char *recent[RECENT]; /* the last few letters rendered whole */
	size_t recent_len[RECENT], rnext;
};

struct message_cache *message_cache_new(void)
{
	return xcalloc(1, sizeof(struct message_cache));
}

static void entry_clear(struct body_entry *e)
{
	free(e->title);
	free(e->md);
	free(e->text);
	free(e->html);
	buf_free(&e->tb.qp);
	buf_free(&e->hb.qp);
	buf_free(&e->view);
	memset(e, 0, sizeof(*e));
}

static void tail_clear(struct tail_entry *t)
{
	free(t->md);
	free(t->text);
	free(t->html);
	buf_free(&t->tqp);
	buf_free(&t->hqp);
	buf_free(&t->view);
	memset(t, 0, sizeof(*t));
}

void message_cache_free(struct message_cache *mc)
{
	if (!mc)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		entry_clear(&mc->e[i]);
	for (size_t i = 0; i < TAIL_SLOTS; i++)
		tail_clear(&mc->t[i]);
	for (size_t i = 0; i < RECENT; i++)
		free(mc->recent[i]);
	free(mc);
}

/* The HTML document letter_html() makes, from a fragment already rendered. */
static char *html_document(const char *title, const char *fragment)
{
	struct buf b = BUF_INIT;

	markdown_html_open(&b, title);
	buf_adds(&b, fragment);
	markdown_html_close(&b);
	return buf_detach(&b);
}

/*
 * The entry for lo's title and Markdown, or NULL. The HTML and the plain text depend on
 * nothing else (letter_html(), letter/plaintext.h), and the encoded parts on nothing but
 * those, so a hit gives exactly what a fresh build would.
 */
static struct body_entry *cache_find(struct message_cache *mc, const struct letter_out *lo,
                                     size_t len)
{
	const char *title = lo->title ? lo->title : "";

	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		struct body_entry *e = &mc->e[i];

		if (e->md && e->mdlen == len && !memcmp(e->md, lo->md, len) &&
		    !strcmp(e->title, title))
			return e;
	}
	return NULL;
}

/* A new entry for lo in the next slot: HTML and text from one cmark run, both encoded. */
static struct body_entry *cache_add(struct message_cache *mc, const struct letter_out *lo,
                                    size_t len)
{
	struct body_entry *e = &mc->e[mc->next];
	char *fragment;

	mc->next = (mc->next + 1) % CACHE_SLOTS;
	entry_clear(e);
	e->title = xstrdup(lo->title ? lo->title : "");
	e->md = xstrndup(lo->md, len);
	e->mdlen = len;
	e->text = plaintext_and_html(lo->md, len, &fragment);
	e->html = html_document(lo->title, fragment);
	free(fragment);
	e->valid = mail_body(&e->tb, e->text, strlen(e->text));
	if (e->valid && !mail_body(&e->hb, e->html, strlen(e->html))) {
		buf_free(&e->tb.qp);
		e->valid = 0;
	}
	return e;
}

/* The tail that md (len bytes) ends with where it may be cut, or NULL; *at: the cut. */
static struct tail_entry *tail_find(struct message_cache *mc, const char *md, size_t len,
                                    size_t *at)
{
	for (size_t i = 0; i < TAIL_SLOTS; i++) {
		struct tail_entry *t = &mc->t[i];

		/* The tail was checked whole when it was made (tail_add()): only the head and
		 * the cut need checking, which markdown_splits_at() does on md up to the cut's
		 * first byte. */
		if (t->md && t->mdlen < len && !memcmp(md + len - t->mdlen, t->md, t->mdlen) &&
		    markdown_splits_at(md, len - t->mdlen + 1, len - t->mdlen)) {
			*at = len - t->mdlen;
			return t;
		}
	}
	return NULL;
}

/*
 * A tail for md made from what it has in common with a recent letter (a mission of the same
 * language), cut at the first place it may be; NULL when there is none worth keeping.
 */
static struct tail_entry *tail_add(struct message_cache *mc, const char *md, size_t len, size_t *at)
{
	size_t best = len;
	struct tail_entry *t;
	char *fragment;
	struct buf html = BUF_INIT;

	for (size_t i = 0; i < RECENT; i++) {
		const char *r = mc->recent[i];
		size_t rl = mc->recent_len[i], n = 0;

		if (!r)
			continue;
		while (n < len && n < rl && md[len - 1 - n] == r[rl - 1 - n])
			n++;
		for (size_t p = len - n; p + TAIL_MIN <= len && p < best; p++) {
			if (markdown_splits_at(md, len, p)) {
				best = p;
				break;
			}
		}
	}
	if (best == len)
		return NULL;
	t = &mc->t[mc->tnext];
	mc->tnext = (mc->tnext + 1) % TAIL_SLOTS;
	tail_clear(t);
	t->md = xstrndup(md + best, len - best);
	t->mdlen = len - best;
	t->text = plaintext_and_html(t->md, t->mdlen, &fragment);
	t->textlen = strlen(t->text);
	buf_adds(&html, fragment);
	free(fragment);
	markdown_html_close(&html);
	t->htmllen = html.len;
	t->html = buf_detach(&html);
	t->valid = utf8_valid(t->text, t->textlen) && utf8_valid(t->html, t->htmllen);
	if (t->valid) {
		mail_qp_encode(&t->tqp, t->text, t->textlen);
		mail_qp_encode(&t->hqp, t->html, t->htmllen);
	}
	*at = best;
	return t;
}

static void remember(struct message_cache *mc, const char *md, size_t len)
{
	free(mc->recent[mc->rnext]);
	mc->recent[mc->rnext] = xstrndup(md, len);
	mc->recent_len[mc->rnext] = len;
	mc->rnext = (mc->rnext + 1) % RECENT;
}

/*
 * A letter cut at at before tail t: the head rendered now, the tail's parts appended.
 * markdown_splits_at() makes this what a whole render gives; and as quoted-printable
 * encodes line by line, and both heads end with a line end, so are the encoded parts.
 * Sets lo->text and lo->html (the caller frees them) and, when valid, tb and hb.
 */
static int build_split(struct tail_entry *t, const struct letter_out *lo, size_t at, int views,
                       char **text, char **html, struct mail_body *tb, struct mail_body *hb,
                       struct buf *view)
{
	struct buf tx = BUF_INIT, h = BUF_INIT;
	char *fragment, *head = plaintext_and_html(lo->md, at, &fragment);
	size_t hlen = strlen(head);
	int valid;

	buf_grow(&tx, hlen + 1 + t->textlen);
	buf_add(&tx, head, hlen);
	if (hlen && t->textlen) /* plaintext_from_markdown(): one empty line between blocks */
		buf_addc(&tx, '\n');
	hlen = tx.len;
	buf_add(&tx, t->text, t->textlen);
	free(head);
	markdown_html_open(&h, lo->title);
	buf_adds(&h, fragment);
	free(fragment);
	valid = t->valid && utf8_valid(tx.data, hlen) && utf8_valid(h.data, h.len);
	memset(tb, 0, sizeof(*tb));
	memset(hb, 0, sizeof(*hb));
	if (valid) {
		buf_grow(&tb->qp, t->tqp.len + 3 * hlen);
		mail_qp_encode(&tb->qp, tx.data, hlen);
		buf_add(&tb->qp, t->tqp.data, t->tqp.len);
		buf_grow(&hb->qp, t->hqp.len + 3 * h.len);
		mail_qp_encode(&hb->qp, h.data, h.len);
		buf_add(&hb->qp, t->hqp.data, t->hqp.len);
	}
	if (views) { /* lines convert alone too, and the head ends with one */
		if (!t->view.len)
			html_view(&t->view, t->html, t->htmllen);
		html_view(view, h.data, h.len);
		buf_add(view, t->view.data, t->view.len);
	}
	buf_add(&h, t->html, t->htmllen);
	*text = buf_detach(&tx);
	*html = buf_detach(&h);
	return valid;
}

int message_build_cached(struct message_run *mr, struct message_cache *mc, const char *key,
                         json_t *ctx, struct letter_out *lo, time_t date, struct message *msg,
                         char **errstr)
{
	size_t len = strlen(lo->md), at = 0;
	struct body_entry *e = cache_find(mc, lo, len);
	struct tail_entry *t = NULL;
	char *text0 = lo->text, *text = NULL, *html = NULL;
	struct mail_body tb, hb;
	struct buf view = BUF_INIT;
	int rc;

	if (!e && !(t = tail_find(mc, lo->md, len, &at)) && !(t = tail_add(mc, lo->md, len, &at))) {
		remember(mc, lo->md, len);
		e = cache_add(mc, lo, len);
	}
	if (e) { /* borrowed for the build only */
		lo->text = e->text;
		lo->html = e->html;
		if (mr->html_views && !e->view.len)
			html_view(&e->view, e->html, strlen(e->html));
		if (!e->valid) /* mail_compose() says what is wrong */
			rc = build(mr, key, ctx, lo, NULL, NULL, &e->view, date, msg, errstr);
		else
			rc = build(mr, key, ctx, lo, &e->tb, &e->hb, &e->view, date, msg, errstr);
	} else {
		int valid = build_split(t, lo, at, mr->html_views, &text, &html, &tb, &hb, &view);

		lo->text = text;
		lo->html = html;
		rc = build(mr, key, ctx, lo, valid ? &tb : NULL, valid ? &hb : NULL, &view, date,
		           msg, errstr);
		buf_free(&view);
		buf_free(&tb.qp);
		buf_free(&hb.qp);
		free(text);
		free(html);
	}
	lo->text = text0;
	lo->html = NULL;
	return rc;
}

void message_free(struct message *msg)
{
	buf_free(&msg->data);
	free(msg->message_id);
	free(msg->document);
	free(msg->html_view);
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
