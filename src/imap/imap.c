/* IMAP client over libetpan: connect, verify TLS peers with OpenSSL, APPEND, read a folder. */
#include "imap/imap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "base/error.h"
#include "base/net.h"
#include "base/strutil.h"
#include "base/url.h"
#include "base/xalloc.h"

#define IMAP_TIMEOUT 30 /* seconds, for connect and every read */

struct imap_session {
	mailimap *imap;
	int uidplus;
};

/* The server's last response text, for messages; never NULL. */
static const char *server_text(const mailimap *imap)
{
	return imap && imap->imap_response ? imap->imap_response : "(no text)";
}

/* Maps a libetpan result to our codes; "what" names the step for the message. */
static int imap_fail(const mailimap *imap, int r, const char *what, char **errstr)
{
	switch (r) {
	case MAILIMAP_ERROR_STREAM:
	case MAILIMAP_ERROR_FATAL:
		return error_set(errstr, EX_TEMPFAIL, "IMAP %s: connection lost or timed out",
		                 what);
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
		return error_set(errstr, EX_TEMPFAIL, "IMAP %s: connection refused", what);
	case MAILIMAP_ERROR_PARSE:
		return error_set(errstr, EX_PROTOCOL, "IMAP %s: unparsable server response", what);
	case MAILIMAP_ERROR_MEMORY:
		return error_set(errstr, EX_OSERR, "IMAP %s: out of memory", what);
	case MAILIMAP_ERROR_SSL:
		return error_set(errstr, EX_UNAVAILABLE, "IMAP %s: TLS handshake failed", what);
	case MAILIMAP_ERROR_BAD_STATE:
	case MAILIMAP_ERROR_INVAL:
		return error_set(errstr, EX_SOFTWARE, "IMAP %s: not possible in this state", what);
	default:
		return error_set(errstr, EX_UNAVAILABLE, "IMAP %s refused by the server: %.200s",
		                 what, server_text(imap));
	}
}

/*
 * Reads "imap[s]://HOST[:PORT][/]" with libcurl's URL API (base/url.h), as the SMTP URL is;
 * *host is allocated, an IPv6 address without its brackets (as libetpan wants it).
 * The URL shown in messages is redacted: a password in it never reaches them.
 */
static int parse_url(const char *url, char **host, uint16_t *port, int *tls, char **errstr)
{
	struct url u;
	char *shown = url_redact(url);
	size_t n;
	int rc = EX_CONFIG;

	*host = NULL;
	if (url_parse(url, &u) != 0) {
		error_set(errstr, rc, "IMAP URL '%s': expected imap[s]://HOST[:PORT]", shown);
		goto out;
	}
	if (strcmp(u.scheme, "imaps") && strcmp(u.scheme, "imap")) {
		error_set(errstr, rc, "IMAP URL '%s': expected imaps:// or imap://", shown);
		goto out;
	}
	if (u.userinfo) {
		error_set(errstr, rc,
		          "IMAP URL '%s' holds credentials: give [imap] user and "
		          "password_command instead",
		          shown);
		goto out;
	}
	if (u.path || u.query || u.zone || u.port == 0) {
		error_set(errstr, rc, "IMAP URL '%s': expected imap[s]://HOST[:PORT]", shown);
		goto out;
	}
	*tls = !strcmp(u.scheme, "imaps");
	*port = u.port > 0 ? (uint16_t)u.port : *tls ? 993 : 143;
	n = strlen(u.host);
	if (n >= 2 && u.host[0] == '[' && u.host[n - 1] == ']')
		*host = xstrndup(u.host + 1, n - 2);
	else
		*host = xstrdup(u.host);
	rc = EX_OK;
out:
	url_free(&u);
	free(shown);
	return rc;
}

/*
 * Verifies the chain the server presented against ca_file (or the system store) and HOST.
 * The handshake already proved the server holds the leaf's key; this decides whether to trust
 * it. Done before LOGIN, so no credential reaches an unverified peer.
 */
static int verify_peer(mailimap *imap, const char *host, const char *ca_file, char **errstr)
{
	carray *chain = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509 *leaf = NULL;
	X509_VERIFY_PARAM *param;
	unsigned i;
	int rc = EX_OK;

	chain = mailstream_get_certificate_chain(imap->imap_stream);
	if (!chain || carray_count(chain) == 0) {
		rc = error_set(errstr, EX_UNAVAILABLE, "IMAP TLS: %s presented no certificate",
		               host);
		goto out;
	}
	untrusted = sk_X509_new_null();
	for (i = 0; i < carray_count(chain); i++) {
		MMAPString *der = carray_get(chain, i);
		const unsigned char *p = (const unsigned char *)der->str;
		X509 *x = d2i_X509(NULL, &p, (long)der->len);
		if (!x) {
			rc = error_set(errstr, EX_UNAVAILABLE,
			               "IMAP TLS: unreadable certificate "
			               "from %s",
			               host);
			goto out;
		}
		if (i == 0)
			leaf = x;
		else
			sk_X509_push(untrusted, x);
	}
	store = X509_STORE_new();
	if (ca_file) {
		FILE *fp = fopen(ca_file, "r");
		if (!fp) {
			rc = error_set(errstr, EX_CONFIG, "IMAP CA file %s: %s", ca_file,
			               strerror(errno));
			goto out;
		}
		fclose(fp);
		if (X509_STORE_load_file(store, ca_file) != 1) {
			rc = error_set(errstr, EX_CONFIG,
			               "IMAP CA file %s: no PEM certificate in it", ca_file);
			goto out;
		}
	} else if (X509_STORE_set_default_paths(store) != 1) {
		rc = error_set(errstr, EX_CONFIG, "IMAP TLS: cannot load the system's CAs");
		goto out;
	}
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
		rc = error_set(errstr, EX_SOFTWARE, "IMAP TLS: cannot set up verification");
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	param = X509_STORE_CTX_get0_param(ctx);
	if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
		X509_VERIFY_PARAM_set1_host(param, host, 0);
	if (X509_verify_cert(ctx) != 1) {
		rc = error_set(errstr, EX_UNAVAILABLE,
		               "IMAP TLS: cannot verify the certificate of %s: %s", host,
		               X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(leaf);
	sk_X509_pop_free(untrusted, X509_free);
	if (chain)
		mailstream_certificate_chain_free(chain);
	return rc;
}

void imap_close(struct imap_session *s)
{
	if (!s)
		return;
	if (s->imap->imap_stream)
		mailimap_logout(s->imap);
	mailimap_free(s->imap);
	free(s);
}

int imap_open(const char *url, const char *user, const char *password, const char *ca_file,
              struct imap_session **out, char **errstr)
{
	struct imap_session *s = NULL;
	struct mailimap_capability_data *cap = NULL;
	char *host = NULL;
	uint16_t port = 0;
	int tls = 0, r, rc;

	*out = NULL;
	rc = parse_url(url, &host, &port, &tls, errstr);
	if (rc)
		goto out;
	s = xcalloc(1, sizeof(*s));
	s->imap = mailimap_new(0, NULL);
	if (!s->imap) {
		rc = error_set(errstr, EX_OSERR, "IMAP: out of memory");
		goto out;
	}
	mailimap_set_timeout(s->imap, IMAP_TIMEOUT);
	if (tls)
		r = mailimap_ssl_connect(s->imap, host, port);
	else
		r = mailimap_socket_connect(s->imap, host, port);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		char *what = xasprintf("connect to %s:%u", host, (unsigned)port);
		rc = imap_fail(s->imap, r, what, errstr);
		free(what);
		goto out;
	}
	if (!tls && !net_host_is_loopback(host)) {
		/* RFC 3501 6.2.1: credentials only after STARTTLS, except to loopback. */
		r = mailimap_capability(s->imap, &cap);
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_fail(s->imap, r, "CAPABILITY", errstr);
			goto out;
		}
		if (!mailimap_has_extension(s->imap, "STARTTLS")) {
			rc = error_set(errstr, EX_UNAVAILABLE,
			               "IMAP server %s offers no STARTTLS; refusing to log in in "
			               "cleartext (use imaps://)",
			               host);
			goto out;
		}
		r = mailimap_socket_starttls(s->imap);
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_fail(s->imap, r, "STARTTLS", errstr);
			goto out;
		}
		tls = 1;
	}
	if (tls) {
		rc = verify_peer(s->imap, host, ca_file, errstr);
		if (rc)
			goto out;
	}
	r = mailimap_login(s->imap, user, password);
	if (r == MAILIMAP_ERROR_LOGIN) {
		rc = error_set(errstr, EX_CONFIG, "IMAP login as %s refused by %s: %.200s", user,
		               host, server_text(s->imap));
		goto out;
	} else if (r != MAILIMAP_NO_ERROR) {
		rc = imap_fail(s->imap, r, "LOGIN", errstr);
		goto out;
	}
	if (cap)
		mailimap_capability_data_free(cap);
	/* The capabilities may change after STARTTLS and LOGIN (RFC 3501 6.2.1, 6.2.3). */
	cap = NULL;
	r = mailimap_capability(s->imap, &cap);
	if (r != MAILIMAP_NO_ERROR) {
		rc = imap_fail(s->imap, r, "CAPABILITY", errstr);
		goto out;
	}
	s->uidplus = mailimap_has_uidplus(s->imap) ? 1 : 0;
	*out = s;
	s = NULL;
	rc = EX_OK;
out:
	if (cap)
		mailimap_capability_data_free(cap);
	if (s) {
		mailimap_free(s->imap);
		free(s);
	}
	free(host);
	return rc;
}

int imap_has_uidplus(const struct imap_session *s)
{
	return s->uidplus;
}

int imap_folder_exists(struct imap_session *s, const char *folder, int *exists, char **errstr)
{
	clist *list = NULL;
	clistiter *it;
	int r;

	*exists = 0;
	r = mailimap_list(s->imap, "", folder, &list);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(s->imap, r, "LIST", errstr);
	for (it = clist_begin(list); it; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		int same = strcmp(mb->mb_name, folder) == 0 ||
		           (str_ieq(folder, "INBOX") && str_ieq(mb->mb_name, "INBOX"));
		int noselect =
		    mb->mb_flag && mb->mb_flag->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT;
		if (same && !noselect)
			*exists = 1;
	}
	mailimap_list_result_free(list);
	return EX_OK;
}

/* The internal date for APPEND: from date, or the message's Date header; NULL if none. */
static int append_date(const char *data, size_t len, const char *date,
                       struct mailimap_date_time **out, char **errstr)
{
	struct mailimf_date_time *dt = NULL;
	struct mailimf_fields *fields = NULL;
	size_t idx = 0;

	*out = NULL;
	if (date) {
		if (mailimf_date_time_parse(date, strlen(date), &idx, &dt) != MAILIMF_NO_ERROR)
			return error_set(errstr, EX_DATAERR, "IMAP APPEND: bad date '%s'", date);
	} else if (mailimf_fields_parse(data, len, &idx, &fields) == MAILIMF_NO_ERROR) {
		clistiter *it;
		for (it = clist_begin(fields->fld_list); it; it = clist_next(it)) {
			struct mailimf_field *f = clist_content(it);
			if (f->fld_type == MAILIMF_FIELD_ORIG_DATE) {
				dt = f->fld_data.fld_orig_date->dt_date_time;
				break;
			}
		}
	}
	if (dt && dt->dt_day >= 1 && dt->dt_day <= 31 && dt->dt_month >= 1 && dt->dt_month <= 12 &&
	    dt->dt_year >= 1970 && dt->dt_year <= 9999)
		*out = mailimap_date_time_new(dt->dt_day, dt->dt_month, dt->dt_year, dt->dt_hour,
		                              dt->dt_min, dt->dt_sec, dt->dt_zone);
	if (fields)
		mailimf_fields_free(fields);
	else if (dt)
		mailimf_date_time_free(dt);
	return EX_OK;
}

int imap_append(struct imap_session *s, const char *folder, const char *data, size_t len, int flags,
                const char *date, uint32_t *uid, uint32_t *uidvalidity, char **errstr)
{
	struct mailimap_flag_list *fl = NULL;
	struct mailimap_date_time *dt = NULL;
	uint32_t got_uid = 0, got_validity = 0;
	int r, rc;

	if (uid)
		*uid = 0;
	if (uidvalidity)
		*uidvalidity = 0;
	if (len == 0)
		return error_set(errstr, EX_DATAERR, "IMAP APPEND: empty message");
	rc = append_date(data, len, date, &dt, errstr);
	if (rc)
		return rc;
	fl = mailimap_flag_list_new_empty();
	if (flags & IMAP_SEEN)
		mailimap_flag_list_add(fl, mailimap_flag_new_seen());
	/* RFC 3501 6.3.11; RFC 4315 3 for APPENDUID. */
	if (s->uidplus)
		r = mailimap_uidplus_append(s->imap, folder, fl, dt, data, len, &got_validity,
		                            &got_uid);
	else
		r = mailimap_append(s->imap, folder, fl, dt, data, len);
	if (r != MAILIMAP_NO_ERROR) {
		char *what = xasprintf("APPEND to %s", folder);
		rc = imap_fail(s->imap, r, what, errstr);
		free(what);
		goto out;
	}
	if (uid)
		*uid = got_uid;
	if (uidvalidity)
		*uidvalidity = got_validity;
	rc = EX_OK;
out:
	mailimap_flag_list_free(fl);
	if (dt)
		mailimap_date_time_free(dt);
	return rc;
}

static struct mailimap_msg_att_static *find_att(struct mailimap_msg_att *att, int type)
{
	clistiter *it;

	for (it = clist_begin(att->att_list); it; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);
		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    item->att_data.att_static->att_type == type)
			return item->att_data.att_static;
	}
	return NULL;
}

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The UIDs above last_uid, ascending; *uids is allocated. */
static int list_uids(struct imap_session *s, uint32_t last_uid, uint32_t **uids, size_t *n,
                     char **errstr)
{
	struct mailimap_set *set;
	struct mailimap_fetch_type *ft;
	clist *res = NULL;
	clistiter *it;
	size_t cap = 0;
	int r;

	*uids = NULL;
	*n = 0;
	/* "last+1:*" also names the highest message when none is newer (RFC 3501 6.4.8, 9:
	   "*" is the largest UID in use and a range is unordered): filtered below. */
	set = mailimap_set_new_interval(last_uid + 1, 0);
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(s->imap, r, "UID FETCH", errstr);
	for (it = clist_begin(res); it; it = clist_next(it)) {
		struct mailimap_msg_att_static *a =
		    find_att(clist_content(it), MAILIMAP_MSG_ATT_UID);
		if (!a || a->att_data.att_uid <= last_uid)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*uids = xreallocarray(*uids, cap, sizeof(**uids));
		}
		(*uids)[(*n)++] = a->att_data.att_uid;
	}
	mailimap_fetch_list_free(res);
	if (*n > 1)
		qsort(*uids, *n, sizeof(**uids), cmp_uid);
	return EX_OK;
}

/* Fetches one message's bytes and hands them to fn. */
static int fetch_one(struct imap_session *s, uint32_t uid, imap_message_fn *fn, void *arg,
                     char **errstr)
{
	struct mailimap_set *set = mailimap_set_new_single(uid);
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_msg_att_body_section *sec;
	clist *res = NULL;
	clistiter *it;
	int r, rc = EX_OK, found = 0;

	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(
	    ft, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(s->imap, r, "UID FETCH", errstr);
	for (it = clist_begin(res); it && !found; it = clist_next(it)) {
		struct mailimap_msg_att *att = clist_content(it);
		struct mailimap_msg_att_static *u = find_att(att, MAILIMAP_MSG_ATT_UID);
		struct mailimap_msg_att_static *b = find_att(att, MAILIMAP_MSG_ATT_BODY_SECTION);
		if (!u || u->att_data.att_uid != uid || !b || !b->att_data.att_body_section)
			continue;
		found = 1;
		sec = b->att_data.att_body_section;
		rc = fn(arg, uid, sec->sec_body_part ? sec->sec_body_part : "",
		        sec->sec_body_part ? sec->sec_length : 0);
	}
	mailimap_fetch_list_free(res);
	/* Expunged by another client between the two fetches: nothing to read. */
	return rc;
}

int imap_fetch_since(struct imap_session *s, const char *folder, uint32_t uidvalidity,
                     uint32_t last_uid, uint32_t *uidvalidity_now, imap_message_fn *fn, void *arg,
                     char **errstr)
{
	struct mailimap_selection_info *sel;
	uint32_t *uids = NULL, now;
	size_t i, n = 0;
	int r, rc;

	r = mailimap_examine(s->imap, folder);
	if (r != MAILIMAP_NO_ERROR) {
		char *what = xasprintf("EXAMINE %s", folder);
		rc = imap_fail(s->imap, r, what, errstr);
		free(what);
		return rc;
	}
	sel = s->imap->imap_selection_info;
	now = sel ? sel->sel_uidvalidity : 0;
	if (uidvalidity_now)
		*uidvalidity_now = now;
	if (now != uidvalidity)
		last_uid = 0; /* RFC 3501 2.3.1.1: the old UIDs name nothing now */
	if (last_uid == UINT32_MAX || (sel && sel->sel_has_exists && sel->sel_exists == 0))
		return EX_OK;
	if (sel && sel->sel_uidnext && last_uid >= sel->sel_uidnext - 1)
		return EX_OK;
	rc = list_uids(s, last_uid, &uids, &n, errstr);
	for (i = 0; rc == EX_OK && i < n; i++)
		rc = fetch_one(s, uids[i], fn, arg, errstr);
	free(uids);
	return rc;
}
