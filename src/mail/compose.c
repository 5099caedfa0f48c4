/* One RFC 5322 / MIME message per mission, built and written with libetpan. */
#include "mail/compose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "base/address.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/xalloc.h"
#include "mail/encode.h"
#include "mail/rfc2047.h"

#define MAX_LINE 998 /* RFC 5322 section 2.1.1 */

/* libetpan's constructors return NULL only when out of memory: end as xmalloc() does. */
static void *must(void *p)
{
	if (!p) {
		fprintf(stderr, "demarche: out of memory (libetpan)\n");
		exit(EX_OSERR);
	}
	return p;
}

static void must_ok(int r)
{
	if (r != 0)
		must(NULL);
}

/*
 * Header safety: a CR or LF in a value would start a new header line (RFC 5322 section
 * 2.2), so any is refused here, before anything is built; the check after writing
 * (check_output) makes sure no other path adds a line either.
 */
static int check_text(const char *hdr, const char *what, const char *v, char **errstr)
{
	if (strpbrk(v, "\r\n"))
		return error_set(errstr, EX_DATAERR,
		                 "%s: %s holds a line break (CR or LF): refused", hdr, what);
	if (!utf8_valid(v, strlen(v)))
		return error_set(errstr, EX_DATAERR, "%s: %s is not valid UTF-8", hdr, what);
	return EX_OK;
}

/*
 * An address for a header: the one address syntax (base/address.h), ASCII only, and no
 * quoted local part (a header field holds it as it is, so nothing in it may need quoting).
 */
static int check_addr(const char *hdr, const char *a, char **errstr)
{
	const char *why;
	int r;

	if (!a || !*a)
		return error_set(errstr, EX_DATAERR, "%s: empty address", hdr);
	if ((r = check_text(hdr, "address", a, errstr)) != EX_OK)
		return r;
	why = address_check(a, strlen(a), 0);
	if (!why && (a[0] == '"' || strchr(a, '[')))
		why = "a quoted local part or a domain literal";
	if (why)
		return error_set(errstr, EX_DATAERR,
		                 "%s: address '%s' is not a plain addr-spec: %s", hdr, a, why);
	return EX_OK;
}

static int check_mailbox(const char *hdr, const struct mail_address *m, char **errstr)
{
	int r;

	if (m->name && (r = check_text(hdr, "display name", m->name, errstr)) != EX_OK)
		return r;
	return check_addr(hdr, m->addr, errstr);
}

/* RFC 5322 section 3.2.3 dot-atom-text over s[0..n). */
static int dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' ? s[i + 1] == '.'
		             : !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		                 (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c)))
			return 0;
	}
	return 1;
}

/* The id between the angle brackets (RFC 5322 section 3.6.4), or NULL when malformed. */
static char *msg_id_value(const char *id)
{
	size_t n = strlen(id);
	const char *at;

	if (n >= 2 && id[0] == '<' && id[n - 1] == '>') {
		id++;
		n -= 2;
	}
	at = memchr(id, '@', n);
	if (!at || !dot_atom(id, (size_t)(at - id)) ||
	    !dot_atom(at + 1, n - (size_t)(at - id) - 1) || n > 250)
		return NULL;
	return xstrndup(id, n);
}

static int validate(const struct mail_message *m, char **errstr)
{
	size_t i;
	int r;

	if ((r = check_mailbox("From", &m->from, errstr)) != EX_OK)
		return r;
	if (m->nto == 0)
		return error_set(errstr, EX_DATAERR, "To: no recipient");
	for (i = 0; i < m->nto; i++)
		if ((r = check_mailbox("To", &m->to[i], errstr)) != EX_OK)
			return r;
	for (i = 0; i < m->ncc; i++)
		if ((r = check_mailbox("Cc", &m->cc[i], errstr)) != EX_OK)
			return r;
	if (m->reply_to && (r = check_mailbox("Reply-To", m->reply_to, errstr)) != EX_OK)
		return r;
	if (!m->subject || !*m->subject)
		return error_set(errstr, EX_DATAERR, "Subject: empty");
	if ((r = check_text("Subject", "value", m->subject, errstr)) != EX_OK)
		return r;
	if (m->campaign && (r = check_text("X-Demarche-Campaign", "value", m->campaign, errstr)))
		return r;
	if (!m->message_id || strpbrk(m->message_id, "\r\n"))
		return error_set(errstr, EX_DATAERR, "Message-ID: missing or holds a line break");
	if (m->in_reply_to) {
		char *v = msg_id_value(m->in_reply_to);

		free(v);
		if (!v)
			return error_set(errstr, EX_DATAERR,
			                 "In-Reply-To: '%s' is not <left@right>", m->in_reply_to);
	}
	if (!m->text)
		return error_set(errstr, EX_DATAERR, "body: no text");
	/* A mail_body was checked when it was made. */
	if (!m->text_body && !utf8_valid(m->text, strlen(m->text)))
		return error_set(errstr, EX_DATAERR, "body: text is not valid UTF-8");
	if (m->html && !m->html_body && !utf8_valid(m->html, strlen(m->html)))
		return error_set(errstr, EX_DATAERR, "body: HTML is not valid UTF-8");
	for (i = 0; i < m->nattachments; i++)
		if ((r = check_text("Content-Disposition", "attachment file name",
		                    m->attachments[i]->filename, errstr)) != EX_OK)
			return r;
	return EX_OK;
}

/* A display name ready for libetpan, which quotes a name that is not all atext itself. */
static char *display_name(const char *name, size_t col)
{
	char *p, *q, *r;

	if (!name)
		return NULL;
	p = rfc2047_encode_phrase(name, col);
	if (!p || !*p) {
		free(p);
		return NULL;
	}
	if (*p != '"')
		return p;
	for (q = r = p + 1; *q && *q != '"'; q++) {
		if (*q == '\\')
			q++;
		*r++ = *q;
	}
	*r = '\0';
	memmove(p, p + 1, strlen(p + 1) + 1);
	return p;
}

static struct mailimf_mailbox *mailbox(const struct mail_address *a, size_t col)
{
	return must(mailimf_mailbox_new(display_name(a->name, col), xstrdup(a->addr)));
}

static struct mailimf_address_list *address_list(const struct mail_address *v, size_t n, size_t col)
{
	struct mailimf_address_list *l = must(mailimf_address_list_new_empty());
	size_t i;

	for (i = 0; i < n; i++) {
		struct mailimf_address *a = must(mailimf_address_new(
		    MAILIMF_ADDRESS_MAILBOX, mailbox(&v[i], i == 0 ? col : 0), NULL));
		must_ok(mailimf_address_list_add(l, a));
	}
	return l;
}

/* RFC 5322 section 3.3: local time with its offset from UTC. */
static struct mailimf_date_time *date_time(time_t t)
{
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	return must(mailimf_date_time_new(tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900, tm.tm_hour,
	                                  tm.tm_min, tm.tm_sec, (int)(off / 60 * 100 + off % 60)));
}

/* Sets a Content-Type parameter, replacing one of that name (libetpan's parser adds a
 * random boundary= to any multipart type it is given). */
static void set_param(struct mailmime_content *ct, const char *name, const char *value)
{
	clistiter *it;

	for (it = clist_begin(ct->ct_parameters); it; it = clist_next(it)) {
		struct mailmime_parameter *p = clist_content(it);

		if (strcasecmp(p->pa_name, name) == 0) {
			free(p->pa_value);
			p->pa_value = xstrdup(value);
			return;
		}
	}
	/* mailmime_param_new_with_data() copies its arguments. */
	must_ok(clist_append(ct->ct_parameters,
	                     must(mailmime_param_new_with_data((char *)name, (char *)value))));
}

/* A leaf part whose body is already encoded (dt_encoded = 1: libetpan copies it as is). */
static struct mailmime *leaf(struct mailmime_content *ct, struct mailmime_fields *f, int enc,
                             const char *body, size_t len)
{
	struct mailmime *p = must(mailmime_new_empty(ct, f));

	p->mm_data.mm_single = must(mailmime_data_new_data(enc, 1, body, len));
	return p;
}

/*
 * libetpan writes an encoded body octet by octet (mailimf_string_write_driver) and that
 * was a good part of a message's cost; so a text part hands it a stand-in, one line it
 * passes to write_buf() as a single write from this very address, and write_buf() puts
 * the whole encoded body there instead. The output is the same: libetpan copies CRLF
 * lines under 998 octets as they are, and the body and the stand-in both end with CRLF.
 */
static const char stand_in[2][4] = {"T\r\n", "H\r\n"};

struct writer {
	struct buf *out;
	const struct buf *body[2]; /* what stand_in[i] stands for; NULL: not used */
};

static int write_buf(void *data, const char *s, size_t n)
{
	struct writer *w = data;

	for (int i = 0; i < 2; i++)
		if (s == stand_in[i] && w->body[i] && n == 1) {
			/* libetpan writes the CRLF after the stand-in itself. */
			buf_add(w->out, w->body[i]->data, w->body[i]->len - 2);
			return 1;
		}
	buf_add(w->out, s, n);
	return 1;
}

/* The text part; which: 0 text/plain, 1 text/html. */
static struct mailmime *text_part(int which, const struct buf *qp, struct writer *w)
{
	struct mailmime_content *ct =
	    must(mailmime_content_new_with_str(which ? "text/html" : "text/plain"));
	const char *data = qp->data;
	size_t len = qp->len;

	if (len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n') {
		w->body[which] = qp;
		data = stand_in[which];
		len = 3;
	}
	set_param(ct, "charset", "utf-8");
	return leaf(ct, must(mailmime_fields_new_encoding(MAILMIME_MECHANISM_QUOTED_PRINTABLE)),
	            MAILMIME_MECHANISM_QUOTED_PRINTABLE, data, len);
}

static struct mailmime *attachment_part(const struct mail_attachment *a)
{
	struct mailmime_content *ct = must(mailmime_content_new_with_str(a->content_type));
	struct mailmime_fields *f;

	if (strcmp(a->content_type, "text/plain") == 0 && utf8_valid(a->data, a->len))
		set_param(ct, "charset", "utf-8");
	set_param(ct, "name", a->ascii_name);
	if (!a->disposition) {
		f = must(mailmime_fields_new_filename(MAILMIME_DISPOSITION_TYPE_ATTACHMENT,
		                                      xstrdup(a->filename),
		                                      MAILMIME_MECHANISM_BASE64));
	} else {
		struct mailmime_disposition *d = must(mailmime_disposition_new(
		    must(mailmime_disposition_type_new(MAILMIME_DISPOSITION_TYPE_EXTENSION,
		                                       xstrdup(a->disposition))),
		    must(clist_new())));

		f = must(mailmime_fields_new_encoding(MAILMIME_MECHANISM_BASE64));
		must_ok(mailmime_fields_add(
		    f, must(mailmime_field_new(MAILMIME_FIELD_DISPOSITION, NULL, NULL, NULL, NULL,
		                               0, d, NULL, NULL))));
	}
	return leaf(ct, f, MAILMIME_MECHANISM_BASE64, a->encoded, a->encoded_len);
}

/*
 * Boundaries start with "=_", which quoted-printable and base64 output can never contain
 * (RFC 2045 section 6.7 writes "=" only before two hex digits or a line end), so no part can
 * hold one; the rest is derived from the Message-ID so that output is reproducible.
 */
static struct mailmime *multipart(const char *type, const char *tag, const char *id)
{
	struct mailmime_content *ct = must(mailmime_content_new_with_str(type));
	unsigned long h = 5381;
	char b[64];

	for (; *id; id++)
		h = h * 33 ^ (unsigned char)*id;
	snprintf(b, sizeof(b), "=_demarche_%s_%08lx", tag, h & 0xFFFFFFFFUL);
	set_param(ct, "boundary", b);
	/* What mailmime_new_empty() does for a multipart, without the random boundary it makes
	 * (time, random(), and a gethostname() call per part) only for us to replace it. */
	return must(mailmime_new(MAILMIME_MULTIPLE, NULL, 0, must(mailmime_fields_new_empty()), ct,
	                         NULL, NULL, NULL, must(clist_new()), NULL, NULL));
}

/* Keeps [A-Za-z0-9_-] of s (at most max octets), "-" for anything else. */
static void id_part(struct buf *b, const char *s, size_t max)
{
	size_t n;

	for (n = 0; s && s[n] && n < max; n++) {
		unsigned char c = (unsigned char)s[n];

		buf_addc(b, (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		                    (c >= '0' && c <= '9') || c == '-' || c == '_'
		                ? (char)c
		                : '-');
	}
	if (n == 0)
		buf_addc(b, 'x');
}

/* A host name (RFC 1035 section 2.3.1 labels, RFC 5322 dot-atom). */
static int domain_ok(const char *d)
{
	size_t label = 0, total = 0;

	for (; *d; d++, total++) {
		unsigned char c = (unsigned char)*d;

		if (c == '.') {
			if (label == 0 || d[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c == '-' && label > 0)) ||
		    ++label > 63)
			return 0;
	}
	return total > 0 && total <= 253 && label > 0 && d[-1] != '-';
}

int mail_message_id(const char *campaign, const char *key, const char *content, const char *domain,
                    char **out, char **errstr)
{
	char hex[DIGEST_HEX_SIZE];
	struct buf in = BUF_INIT, b = BUF_INIT;

	*out = NULL;
	if (!domain || !domain_ok(domain))
		return error_set(errstr, EX_DATAERR,
		                 "Message-ID: sender domain '%s' is not a valid domain name",
		                 domain ? domain : "");
	/* NUL separators: ("ab", "c") and ("a", "bc") hash differently. */
	buf_add(&in, campaign ? campaign : "", campaign ? strlen(campaign) + 1 : 1);
	buf_add(&in, key ? key : "", key ? strlen(key) + 1 : 1);
	if (content)
		buf_adds(&in, content);
	digest_sha256_hex(in.data, in.len, hex);
	buf_free(&in);
	buf_addc(&b, '<');
	id_part(&b, campaign, 64);
	buf_addc(&b, '.');
	id_part(&b, key, 64);
	buf_addc(&b, '.');
	buf_add(&b, hex, 16); /* the first 8 bytes of the digest */
	buf_addf(&b, "@%s>", domain);
	*out = buf_detach(&b);
	return EX_OK;
}

int mail_body(struct mail_body *b, const char *s, size_t len)
{
	memset(b, 0, sizeof(*b));
	if (!utf8_valid(s, len))
		return 0;
	mail_qp_encode(&b->qp, s, len);
	return 1;
}

/*
 * The output's own check, on every message: CRLF only, no line over 998 octets, 7-bit
 * without NUL (RFC 5322 section 2.1.1, RFC 2045 section 2.7), and a header block holding
 * exactly the fields we meant to write, each once, so that no value can have added one.
 */
static int check_output(const char *s, size_t n, const char *const *want, size_t nwant,
                        char **errstr)
{
	size_t i = 0, k, seen[16] = {0};
	int in_header = 1;

	while (i < n) {
		const char *cr = memchr(s + i, '\r', n - i);
		size_t end = cr ? (size_t)(cr - s) : n, j;
		unsigned char odd = 0;

		if (end - i > MAX_LINE || !cr || end + 1 >= n || s[end + 1] != '\n')
			goto bad;
		/* NUL, LF, or 8-bit; no early exit, so that the compiler can vectorise it */
		for (j = i; j < end; j++)
			odd |= (unsigned char)((unsigned char)(s[j] - 1) >= 0x7F) | (s[j] == '\n');
		if (odd)
			goto bad;
		if (in_header && end == i) {
			in_header = 0;
		} else if (in_header && (s[i] == ' ' || s[i] == '\t')) {
			if (strspn(s + i, " \t") >= end - i)
				goto bad; /* a blank continuation line */
		} else if (in_header) {
			const char *colon = memchr(s + i, ':', end - i);

			if (!colon)
				goto bad;
			for (k = 0; k < nwant; k++)
				if ((size_t)(colon - (s + i)) == strlen(want[k]) &&
				    memcmp(s + i, want[k], strlen(want[k])) == 0)
					break;
			if (k == nwant || seen[k]++)
				return error_set(errstr, EX_SOFTWARE,
				                 "compose: unexpected header '%.*s'",
				                 (int)(colon - (s + i)), s + i);
		}
		i = end + 2;
	}
	for (k = 0; k < nwant; k++)
		if (!seen[k])
			return error_set(errstr, EX_SOFTWARE, "compose: header %s missing",
			                 want[k]);
	return EX_OK;
bad:
	return error_set(errstr, EX_SOFTWARE,
	                 "compose: output breaks RFC 5322 line rules near octet %zu", i);
}

int mail_compose(const struct mail_message *m, struct buf *out, char **errstr)
{
	struct mailimf_fields *imf;
	struct mailimf_mailbox_list *from;
	struct mailmime *msg = NULL, *body, *alt;
	struct buf text = BUF_INIT, html = BUF_INIT;
	const struct buf *tq = &text, *hq = &html;
	struct writer w = {out, {NULL, NULL}};
	const char *want[16];
	size_t nwant = 0, i, start = out->len;
	char *id = NULL, *subject;
	int col = 0, r;

	if ((r = validate(m, errstr)) != EX_OK)
		return r;
	if (!(id = msg_id_value(m->message_id)))
		return error_set(errstr, EX_DATAERR, "Message-ID: '%s' is not <left@right>",
		                 m->message_id);
	subject = rfc2047_encode_text(m->subject, sizeof("Subject: ") - 1);
	from = must(mailimf_mailbox_list_new_empty());
	must_ok(mailimf_mailbox_list_add(from, mailbox(&m->from, sizeof("From: ") - 1)));

	/* RFC 5322 section 3.6: the fields, in libetpan's order. Never a Bcc. */
	imf = must(mailimf_fields_new_with_data_all(
	    date_time(m->date), from, NULL,
	    m->reply_to ? address_list(m->reply_to, 1, sizeof("Reply-To: ") - 1) : NULL,
	    address_list(m->to, m->nto, sizeof("To: ") - 1),
	    m->ncc ? address_list(m->cc, m->ncc, sizeof("Cc: ") - 1) : NULL, NULL, xstrdup(id),
	    NULL, NULL, subject));
	want[nwant++] = "Date";
	want[nwant++] = "From";
	if (m->reply_to)
		want[nwant++] = "Reply-To";
	want[nwant++] = "To";
	if (m->ncc)
		want[nwant++] = "Cc";
	want[nwant++] = "Message-ID";
	want[nwant++] = "Subject";
	if (m->campaign) {
		must_ok(mailimf_fields_add(
		    imf,
		    must(mailimf_field_new_custom(
		        xstrdup("X-Demarche-Campaign"),
		        rfc2047_encode_text(m->campaign, sizeof("X-Demarche-Campaign: ") - 1)))));
		want[nwant++] = "X-Demarche-Campaign";
	}
	if (m->in_reply_to) { /* RFC 5322 section 3.6.4: a reply names its parent in both */
		char *v = msg_id_value(m->in_reply_to);

		must_ok(mailimf_fields_add(
		    imf,
		    must(mailimf_field_new_custom(xstrdup("In-Reply-To"), xasprintf("<%s>", v)))));
		must_ok(mailimf_fields_add(imf, must(mailimf_field_new_custom(
		                                    xstrdup("References"), xasprintf("<%s>", v)))));
		free(v);
		want[nwant++] = "In-Reply-To";
		want[nwant++] = "References";
	}
	want[nwant++] = "MIME-Version";
	want[nwant++] = "Content-Type";

	/* RFC 2046 section 5.1.4: plain text first, the richer HTML last. */
	if (m->text_body)
		tq = &m->text_body->qp;
	else
		mail_qp_encode(&text, m->text, strlen(m->text));
	body = text_part(0, tq, &w);
	if (m->html) {
		if (m->html_body)
			hq = &m->html_body->qp;
		else
			mail_qp_encode(&html, m->html, strlen(m->html));
		alt = multipart("multipart/alternative", "alt", id);
		must_ok(mailmime_smart_add_part(alt, body));
		must_ok(mailmime_smart_add_part(alt, text_part(1, hq, &w)));
		body = alt;
	}
	if (m->nattachments) {
		struct mailmime *mixed = multipart("multipart/mixed", "mix", id);

		must_ok(mailmime_smart_add_part(mixed, body));
		for (i = 0; i < m->nattachments; i++)
			must_ok(mailmime_smart_add_part(mixed, attachment_part(m->attachments[i])));
		body = mixed;
	}
	if (!m->html && !m->nattachments)
		want[nwant++] = "Content-Transfer-Encoding";

	/* The bodies and some room for the headers at once: no copying as it grows. */
	buf_grow(out, tq->len + (m->html ? hq->len : 0) + 4096);
	msg = must(mailmime_new_message_data(NULL));
	mailmime_set_imf_fields(msg, imf);
	must_ok(mailmime_add_part(msg, body));
	r = mailmime_write_driver(write_buf, &w, &col, msg);
	if (r != MAILIMF_NO_ERROR) {
		r = error_set(errstr, EX_SOFTWARE, "compose: libetpan could not write (%d)", r);
		goto out;
	}
	r = check_output(out->data + start, out->len - start, want, nwant, errstr);
out:
	if (r != EX_OK)
		buf_truncate(out, start);
	mailmime_free(msg);
	buf_free(&text);
	buf_free(&html);
	free(id);
	return r;
}
