/* Classifies a received message (DSN, reply, auto-reply, other) with libetpan's MIME parser. */
#include "imap/report.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"

const char *report_kind_name(enum report_kind kind)
{
	switch (kind) {
	case REPORT_DSN:
		return "dsn";
	case REPORT_REPLY:
		return "reply";
	case REPORT_AUTOREPLY:
		return "auto-reply";
	default:
		return "other";
	}
}

static void recipient_free(struct report_recipient *rc)
{
	free(rc->final_recipient);
	free(rc->original_recipient);
	free(rc->action);
	free(rc->status);
	free(rc->diagnostic);
	free(rc->remote_mta);
}

void report_free(struct report *r)
{
	size_t i;

	if (!r)
		return;
	free(r->message_id);
	free(r->from);
	free(r->from_name);
	free(r->subject);
	for (i = 0; i < r->nrefs; i++)
		free(r->refs[i]);
	free(r->refs);
	free(r->auto_reason);
	free(r->reporting_mta);
	for (i = 0; i < r->nrcpt; i++)
		recipient_free(&r->rcpt[i]);
	free(r->rcpt);
	free(r->orig_message_id);
	free(r->orig_campaign);
	memset(r, 0, sizeof(*r));
}

/* A copy of s[0..n) with folding (CR, LF and the blanks after) made one space, trimmed. */
static char *unfold(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	for (; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			while (i + 1 < n && strchr("\r\n \t", s[i + 1]))
				i++;
			buf_addc(&b, ' ');
		} else {
			buf_addc(&b, s[i]);
		}
	}
	while (b.len && (b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
		buf_truncate(&b, b.len - 1);
	return buf_detach(&b);
}

/* Unfolds and decodes RFC 2047 encoded words into UTF-8 (undecodable: kept as is). */
static char *decode_header(const char *raw)
{
	char *flat = unfold(raw, strlen(raw)), *dec = NULL, *out;
	size_t idx = 0;

	if (mailmime_encoded_phrase_parse("utf-8", flat, strlen(flat), &idx, "utf-8", &dec) !=
	    MAILIMF_NO_ERROR)
		return flat;
	out = unfold(dec, strlen(dec));
	free(dec);
	free(flat);
	return out;
}

static void add_ref(struct report *r, const char *id, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	for (i = 0; i < r->nrefs; i++)
		if (strlen(r->refs[i]) == n && memcmp(r->refs[i], id, n) == 0)
			return;
	r->refs = xreallocarray(r->refs, r->nrefs + 1, sizeof(*r->refs));
	r->refs[r->nrefs++] = xstrndup(id, n);
}

static void add_ref_list(struct report *r, clist *ids)
{
	clistiter *it;

	for (it = ids ? clist_begin(ids) : NULL; it; it = clist_next(it)) {
		const char *id = clist_content(it);
		add_ref(r, id, strlen(id));
	}
}

/* For In-Reply-To / References that libetpan could not parse: every <...> in the value. */
static void add_ref_text(struct report *r, const char *v)
{
	const char *lt, *gt;

	while ((lt = strchr(v, '<')) && (gt = strchr(lt, '>'))) {
		add_ref(r, lt + 1, (size_t)(gt - lt - 1));
		v = gt + 1;
	}
}

/* Date as UTC seconds (RFC 5322 3.3: the zone is +hhmm / -hhmm). */
static time_t date_utc(const struct mailimf_date_time *dt)
{
	struct tm tm = {0};
	time_t t;

	/* libetpan hands over any number it read ("+19088742"): RFC 5322 3.3 ranges only. */
	if (dt->dt_year < 1970 || dt->dt_year > 9999 || dt->dt_month < 1 || dt->dt_month > 12 ||
	    dt->dt_day < 1 || dt->dt_day > 31 || dt->dt_hour < 0 || dt->dt_hour > 23 ||
	    dt->dt_min < 0 || dt->dt_min > 59 || dt->dt_sec < 0 || dt->dt_sec > 60 ||
	    dt->dt_zone < -9959 || dt->dt_zone > 9959)
		return 0;
	tm.tm_year = dt->dt_year - 1900;
	tm.tm_mon = dt->dt_month - 1;
	tm.tm_mday = dt->dt_day;
	tm.tm_hour = dt->dt_hour;
	tm.tm_min = dt->dt_min;
	tm.tm_sec = dt->dt_sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	return t - ((dt->dt_zone / 100) * 3600 + (dt->dt_zone % 100) * 60);
}

/* The first token of a header value, lower case ("auto-replied (vacation)" -> "auto-replied"). */
static char *first_token(const char *v)
{
	size_t n;
	char *t;

	v += strspn(v, " \t\r\n");
	n = strcspn(v, " \t\r\n;(");
	t = xstrndup(v, n);
	for (n = 0; t[n]; n++)
		t[n] = (char)tolower((unsigned char)t[n]);
	return t;
}

static int starts_with_nocase(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Subjects of out-of-office replies from clients that set no header (Outlook, Exchange). */
static const char *const autoreply_subjects[] = {
    "Automatic reply:",     "Autoreply:",           "Auto-reply:",
    "Auto reply:",          "Out of Office",        "Réponse automatique",
    "Respuesta automática", "Automatische Antwort", NULL,
};

static void set_auto(struct report *r, const char *fmt, const char *a, const char *b)
{
	if (!r->auto_reason)
		r->auto_reason = xasprintf(fmt, a, b);
}

/* Reads the header fields of the message itself. */
static void read_fields(struct report *r, struct mailimf_fields *fields)
{
	clistiter *it;

	for (it = clist_begin(fields->fld_list); it; it = clist_next(it)) {
		struct mailimf_field *f = clist_content(it);
		switch (f->fld_type) {
		case MAILIMF_FIELD_MESSAGE_ID:
			if (!r->message_id)
				r->message_id = xstrdup(f->fld_data.fld_message_id->mid_value);
			break;
		case MAILIMF_FIELD_FROM: {
			clist *mbs = f->fld_data.fld_from->frm_mb_list->mb_list;
			struct mailimf_mailbox *mb =
			    clist_begin(mbs) ? clist_content(clist_begin(mbs)) : NULL;
			if (mb && !r->from) {
				r->from = xstrdup(mb->mb_addr_spec);
				if (mb->mb_display_name)
					r->from_name = decode_header(mb->mb_display_name);
			}
			break;
		}
		case MAILIMF_FIELD_SUBJECT:
			if (!r->subject)
				r->subject = decode_header(f->fld_data.fld_subject->sbj_value);
			break;
		case MAILIMF_FIELD_ORIG_DATE:
			if (!r->date)
				r->date = date_utc(f->fld_data.fld_orig_date->dt_date_time);
			break;
		case MAILIMF_FIELD_IN_REPLY_TO:
			add_ref_list(r, f->fld_data.fld_in_reply_to->mid_list);
			break;
		case MAILIMF_FIELD_REFERENCES:
			add_ref_list(r, f->fld_data.fld_references->mid_list);
			break;
		case MAILIMF_FIELD_OPTIONAL_FIELD: {
			const char *name = f->fld_data.fld_optional_field->fld_name;
			const char *value = f->fld_data.fld_optional_field->fld_value;
			char *tok = first_token(value);
			if (str_ieq(name, "In-Reply-To") || str_ieq(name, "References")) {
				add_ref_text(r, value);
			} else if (str_ieq(name, "Auto-Submitted")) {
				/* RFC 3834 5: anything but "no" is automatic. */
				if (strcmp(tok, "no") != 0)
					set_auto(r, "%s: %s", "Auto-Submitted", tok);
			} else if (str_ieq(name, "X-Autoreply") || str_ieq(name, "X-Autorespond")) {
				if (strcmp(tok, "no") != 0)
					set_auto(r, "%s: %s", name, tok);
			} else if (str_ieq(name, "Precedence") && strcmp(tok, "auto_reply") == 0) {
				set_auto(r, "%s: %s", "Precedence", tok);
			}
			free(tok);
			break;
		}
		default:
			break;
		}
	}
}

/* "text", "message", ... of a Content-Type; "" when unknown. */
static const char *ct_main(const struct mailmime_content *ct)
{
	const struct mailmime_type *t = ct ? ct->ct_type : NULL;

	if (!t)
		return "";
	if (t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
		switch (t->tp_data.tp_discrete_type->dt_type) {
		case MAILMIME_DISCRETE_TYPE_TEXT:
			return "text";
		case MAILMIME_DISCRETE_TYPE_IMAGE:
			return "image";
		case MAILMIME_DISCRETE_TYPE_AUDIO:
			return "audio";
		case MAILMIME_DISCRETE_TYPE_VIDEO:
			return "video";
		case MAILMIME_DISCRETE_TYPE_APPLICATION:
			return "application";
		case MAILMIME_DISCRETE_TYPE_EXTENSION:
			return t->tp_data.tp_discrete_type->dt_extension;
		}
	} else if (t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE) {
		switch (t->tp_data.tp_composite_type->ct_type) {
		case MAILMIME_COMPOSITE_TYPE_MESSAGE:
			return "message";
		case MAILMIME_COMPOSITE_TYPE_MULTIPART:
			return "multipart";
		case MAILMIME_COMPOSITE_TYPE_EXTENSION:
			return t->tp_data.tp_composite_type->ct_token;
		}
	}
	return "";
}

static int ct_is(const struct mailmime_content *ct, const char *type, const char *subtype)
{
	return ct && ct->ct_subtype && str_ieq(ct_main(ct), type) &&
	       str_ieq(ct->ct_subtype, subtype);
}

static const char *ct_param(const struct mailmime_content *ct, const char *name)
{
	clistiter *it;

	for (it = ct && ct->ct_parameters ? clist_begin(ct->ct_parameters) : NULL; it;
	     it = clist_next(it)) {
		struct mailmime_parameter *p = clist_content(it);
		if (str_ieq(p->pa_name, name))
			return p->pa_value;
	}
	return NULL;
}

/* The multipart/report; report-type=delivery-status part (RFC 6522 3) at or inside m. */
static struct mailmime *find_report(struct mailmime *m)
{
	clistiter *it;

	if (m->mm_type != MAILMIME_MULTIPLE)
		return NULL;
	if (ct_is(m->mm_content_type, "multipart", "report")) {
		const char *rt = ct_param(m->mm_content_type, "report-type");
		return rt && str_ieq(rt, "delivery-status") ? m : NULL;
	}
	for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it; it = clist_next(it)) {
		struct mailmime *found = find_report(clist_content(it));
		if (found)
			return found;
	}
	return NULL;
}

/* n bytes and a NUL: unlike xstrndup() it keeps a NUL byte inside, so that n stays true. */
static char *copy_bytes(const char *p, size_t n)
{
	char *s = xmalloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* A single part's body, transfer-decoded, in a new buffer (n bytes, NUL-terminated). */
static char *part_body(const struct mailmime *part, size_t *len)
{
	const struct mailmime_data *d = part->mm_body;
	char *dec = NULL, *out;
	size_t idx = 0, n = 0;

	*len = 0;
	if (!d || d->dt_type != MAILMIME_DATA_TEXT)
		return NULL;
	if (d->dt_encoding == MAILMIME_MECHANISM_BASE64 ||
	    d->dt_encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
		if (mailmime_part_parse(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length,
		                        &idx, d->dt_encoding, &dec, &n) != MAILIMF_NO_ERROR)
			return NULL;
		out = copy_bytes(dec, n);
		mailmime_decoded_part_free(dec);
		*len = n;
		return out;
	}
	*len = d->dt_data.dt_text.dt_length;
	return copy_bytes(d->dt_data.dt_text.dt_data, *len);
}

/* Message-ID and X-Demarche-Campaign of the returned message (RFC 3464 2: third part). */
static void read_original(struct report *r, struct mailimf_fields *fields)
{
	clistiter *it;

	for (it = clist_begin(fields->fld_list); it; it = clist_next(it)) {
		struct mailimf_field *f = clist_content(it);
		if (f->fld_type == MAILIMF_FIELD_MESSAGE_ID && !r->orig_message_id) {
			r->orig_message_id = xstrdup(f->fld_data.fld_message_id->mid_value);
		} else if (f->fld_type == MAILIMF_FIELD_OPTIONAL_FIELD) {
			struct mailimf_optional_field *o = f->fld_data.fld_optional_field;
			if (str_ieq(o->fld_name, "X-Demarche-Campaign") && !r->orig_campaign)
				r->orig_campaign = unfold(o->fld_value, strlen(o->fld_value));
			else if (str_ieq(o->fld_name, "Message-ID") && !r->orig_message_id) {
				/* An id libetpan's strict grammar refused: take what is in <>. */
				const char *lt = strchr(o->fld_value, '<');
				const char *gt = lt ? strchr(lt, '>') : NULL;
				if (gt)
					r->orig_message_id =
					    xstrndup(lt + 1, (size_t)(gt - lt - 1));
			}
		}
	}
}

/*
 * Of the returned headers, only the fields read_original() reads, each with its continuation
 * lines. libetpan 1.9.4's mailimf_fields_parse() leaks on malformed trace fields (the
 * address of a Return-Path "<a@b]c", also as "Return-Path :"; found by tests/fuzz/
 * fuzz_report), so hostile fields we never read are never parsed.
 */
static char *keep_original_fields(const char *s, size_t len, size_t *out_len)
{
	struct buf b = BUF_INIT;
	const char *p = s, *end = s + len;
	int keep = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		size_t n = (size_t)(next - p);

		if (*p == '\n' || (*p == '\r' && n == 2 && p[1] == '\n'))
			break; /* the end of the header */
		if (*p != ' ' && *p != '\t') {
			const char *colon = memchr(p, ':', n);
			size_t name = colon ? (size_t)(colon - p) : 0;

			keep = (name == 10 && strncasecmp(p, "Message-ID", 10) == 0) ||
			       (name == 19 && strncasecmp(p, "X-Demarche-Campaign", 19) == 0);
		}
		if (keep)
			buf_add(&b, p, n);
		p = next;
	}
	*out_len = b.len;
	return buf_detach(&b);
}

static void read_returned_headers(struct report *r, struct mailmime *part)
{
	struct mailimf_fields *fields = NULL;
	size_t len, klen = 0, idx = 0;
	char *text, *kept;

	if (part->mm_type == MAILMIME_MESSAGE) {
		if (part->mm_data.mm_message.mm_fields)
			read_original(r, part->mm_data.mm_message.mm_fields);
		return;
	}
	text = part_body(part, &len);
	kept = text ? keep_original_fields(text, len, &klen) : NULL;
	if (kept && mailimf_fields_parse(kept, klen, &idx, &fields) == MAILIMF_NO_ERROR) {
		read_original(r, fields);
		mailimf_fields_free(fields);
	}
	free(kept);
	free(text);
}

/* "rfc822; a@b" -> "a@b" (RFC 3464 2.3.2: address-type ";" generic-address). */
static char *after_type(const char *v)
{
	const char *semi = strchr(v, ';');
	char *s = unfold(semi ? semi + 1 : v, strlen(semi ? semi + 1 : v));
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = 0;
	}
	return s;
}

/* RFC 3463 2: class "." subject "." detail, 1-3 digits each; class 2, 4 or 5. */
static char *status_code(const char *v)
{
	char *tok = first_token(v);
	const char *p = tok;
	int part, digits;

	if (*p != '2' && *p != '4' && *p != '5')
		goto bad;
	p++;
	for (part = 0; part < 2; part++) {
		if (*p++ != '.')
			goto bad;
		for (digits = 0; isdigit((unsigned char)*p); p++)
			digits++;
		if (digits < 1 || digits > 3)
			goto bad;
	}
	if (*p)
		goto bad;
	return tok;
bad:
	free(tok);
	return NULL;
}

static int valid_action(const char *a)
{
	static const char *const actions[] = {"failed",  "delayed",  "delivered",
	                                      "relayed", "expanded", NULL};
	int i;

	for (i = 0; actions[i]; i++)
		if (strcmp(a, actions[i]) == 0)
			return 1;
	return 0;
}

struct field {
	char *name;
	char *value;
};

/* Validates one per-recipient block and appends it (RFC 3464 2.3). */
static int add_recipient(struct report *r, struct field *f, size_t n, size_t block, char **errstr)
{
	struct report_recipient rc = {0};
	size_t i;

	for (i = 0; i < n; i++) {
		if (str_ieq(f[i].name, "Final-Recipient") && !rc.final_recipient)
			rc.final_recipient = after_type(f[i].value);
		else if (str_ieq(f[i].name, "Original-Recipient") && !rc.original_recipient)
			rc.original_recipient = after_type(f[i].value);
		else if (str_ieq(f[i].name, "Action") && !rc.action)
			rc.action = first_token(f[i].value);
		else if (str_ieq(f[i].name, "Status") && !rc.status) {
			rc.status = status_code(f[i].value);
			if (!rc.status) {
				error_set(errstr, EX_DATAERR,
				          "delivery-status block %zu: bad Status '%s'", block,
				          f[i].value);
				goto bad;
			}
		} else if (str_ieq(f[i].name, "Diagnostic-Code") && !rc.diagnostic)
			rc.diagnostic = after_type(f[i].value);
		else if (str_ieq(f[i].name, "Remote-MTA") && !rc.remote_mta)
			rc.remote_mta = after_type(f[i].value);
	}
	if (!rc.final_recipient || !*rc.final_recipient) {
		error_set(errstr, EX_DATAERR, "delivery-status block %zu: no Final-Recipient",
		          block);
		goto bad;
	}
	if (!rc.action || !valid_action(rc.action)) {
		error_set(errstr, EX_DATAERR, "delivery-status block %zu: %s Action", block,
		          rc.action ? "unknown" : "no");
		goto bad;
	}
	if (!rc.status) {
		error_set(errstr, EX_DATAERR, "delivery-status block %zu: no Status", block);
		goto bad;
	}
	r->rcpt = xreallocarray(r->rcpt, r->nrcpt + 1, sizeof(*r->rcpt));
	r->rcpt[r->nrcpt++] = rc;
	return EX_OK;
bad:
	recipient_free(&rc);
	return EX_DATAERR;
}

static int is_recipient_block(struct field *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (str_ieq(f[i].name, "Final-Recipient") || str_ieq(f[i].name, "Action") ||
		    str_ieq(f[i].name, "Status"))
			return 1;
	return 0;
}

static void fields_clear(struct field *f, size_t *n)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		free(f[i].name);
		free(f[i].value);
	}
	*n = 0;
}

/* Ends one block of fields: the per-message one (the first), or a per-recipient one. */
static int end_block(struct report *r, struct field *f, size_t *n, size_t *block, char **errstr)
{
	size_t i;
	int rc = EX_OK;

	if (*n == 0)
		return EX_OK;
	(*block)++;
	if (*block == 1 && !is_recipient_block(f, *n)) {
		for (i = 0; i < *n; i++)
			if (str_ieq(f[i].name, "Reporting-MTA") && !r->reporting_mta)
				r->reporting_mta = after_type(f[i].value);
	} else {
		rc = add_recipient(r, f, *n, *block, errstr);
	}
	fields_clear(f, n);
	return rc;
}

/*
 * message/delivery-status body (RFC 3464 2.1): blocks of header-style fields separated by
 * blank lines; continuation lines start with a blank.
 */
static int parse_delivery_status(struct report *r, const char *s, size_t len, char **errstr)
{
	struct field *f = NULL;
	size_t n = 0, cap = 0, block = 0, line = 0;
	const char *p = s, *end = s + len;
	int rc = EX_OK;

	while (p < end && rc == EX_OK) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		size_t ll = (size_t)((eol ? eol : end) - p);
		line++;
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (strspn(p, " \t") >= ll) { /* blank (or only blanks): end of a block */
			rc = end_block(r, f, &n, &block, errstr);
		} else if (p[0] == ' ' || p[0] == '\t') {
			if (n == 0) {
				rc = error_set(errstr, EX_DATAERR,
				               "delivery-status line %zu: continuation of nothing",
				               line);
				break;
			}
			size_t lead = strspn(p, " \t");
			char *v = xasprintf("%s %.*s", f[n - 1].value, (int)(ll - lead), p + lead);
			free(f[n - 1].value);
			f[n - 1].value = unfold(v, strlen(v));
			free(v);
		} else {
			const char *colon = memchr(p, ':', ll);
			if (!colon || colon == p) {
				rc = error_set(errstr, EX_DATAERR,
				               "delivery-status line %zu: not a field: '%.*s'",
				               line, (int)(ll > 60 ? 60 : ll), p);
				break;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				f = xreallocarray(f, cap, sizeof(*f));
			}
			f[n].name = unfold(p, (size_t)(colon - p));
			f[n].value = unfold(colon + 1, (size_t)(p + ll - colon - 1));
			n++;
		}
		p = next;
	}
	if (rc == EX_OK)
		rc = end_block(r, f, &n, &block, errstr);
	fields_clear(f, &n);
	free(f);
	if (rc == EX_OK && r->nrcpt == 0)
		rc = error_set(errstr, EX_DATAERR, "delivery-status: no per-recipient block");
	return rc;
}

static int read_dsn(struct report *r, struct mailmime *report, char **errstr)
{
	clistiter *it;
	char *body;
	size_t len;
	int rc, seen = 0;

	for (it = clist_begin(report->mm_data.mm_multipart.mm_mp_list); it; it = clist_next(it)) {
		struct mailmime *part = clist_content(it);
		struct mailmime_content *ct = part->mm_content_type;
		if (ct_is(ct, "message", "delivery-status") && !seen) {
			seen = 1;
			body = part_body(part, &len);
			if (!body)
				return error_set(errstr, EX_DATAERR,
				                 "DSN: unreadable delivery-status part");
			rc = parse_delivery_status(r, body, len, errstr);
			free(body);
			if (rc)
				return rc;
		} else if (ct_is(ct, "message", "rfc822") || ct_is(ct, "text", "rfc822-headers") ||
		           ct_is(ct, "message", "rfc822-headers")) {
			read_returned_headers(r, part);
		}
	}
	if (!seen)
		return error_set(errstr, EX_DATAERR, "DSN without a message/delivery-status part");
	return EX_OK;
}

static int is_autoreply_subject(const char *subject)
{
	int i;

	for (i = 0; autoreply_subjects[i]; i++)
		if (starts_with_nocase(subject, autoreply_subjects[i]))
			return 1;
	return 0;
}

int report_parse(const char *data, size_t len, struct report *out, char **errstr)
{
	struct mailmime *mime = NULL, *body, *rep;
	struct mailimf_fields *fields;
	size_t idx = 0;
	int rc = EX_OK;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return error_set(errstr, EX_DATAERR, "empty message");
	if (len > REPORT_MAX_SIZE)
		return error_set(errstr, EX_DATAERR, "message of %zu bytes is over the %u limit",
		                 len, REPORT_MAX_SIZE);
	if (mailmime_parse(data, len, &idx, &mime) != MAILIMF_NO_ERROR || !mime)
		return error_set(errstr, EX_DATAERR, "not a MIME message");
	fields = mime->mm_type == MAILMIME_MESSAGE ? mime->mm_data.mm_message.mm_fields : NULL;
	if (!fields || clist_count(fields->fld_list) == 0) {
		rc = error_set(errstr, EX_DATAERR, "not a message: no header fields");
		goto out;
	}
	read_fields(out, fields);
	if (!out->auto_reason && out->subject && is_autoreply_subject(out->subject))
		set_auto(out, "%s%s", "Subject: ", out->subject);

	body = mime->mm_data.mm_message.mm_msg_mime;
	rep = body ? find_report(body) : NULL;
	if (rep) {
		out->kind = REPORT_DSN;
		rc = read_dsn(out, rep, errstr);
	} else if (out->auto_reason) {
		out->kind = REPORT_AUTOREPLY;
	} else if (out->nrefs) {
		out->kind = REPORT_REPLY;
	} else {
		out->kind = REPORT_OTHER;
	}
out:
	mailmime_free(mime);
	return rc;
}
