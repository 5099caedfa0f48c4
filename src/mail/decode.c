/* Reading back a composed message: one text part, transfer-decoded (for preview). */
#include "mail/decode.h"

#include <libetpan/libetpan.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"

/* The first text/SUBTYPE single part at or inside m (RFC 2046 5.1: depth first). */
static struct mailmime *find_text(struct mailmime *m, const char *subtype)
{
	struct mailmime_content *ct = m->mm_content_type;
	clistiter *it;

	if (m->mm_type == MAILMIME_MESSAGE)
		return m->mm_data.mm_message.mm_msg_mime
		           ? find_text(m->mm_data.mm_message.mm_msg_mime, subtype)
		           : NULL;
	if (m->mm_type == MAILMIME_MULTIPLE) {
		for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it;
		     it = clist_next(it)) {
			struct mailmime *found = find_text(clist_content(it), subtype);
			if (found)
				return found;
		}
		return NULL;
	}
	/* No Content-Type: text/plain (RFC 2045 5.2). */
	if (!ct)
		return !strcasecmp(subtype, "plain") ? m : NULL;
	if (ct->ct_type->tp_type != MAILMIME_TYPE_DISCRETE_TYPE ||
	    ct->ct_type->tp_data.tp_discrete_type->dt_type != MAILMIME_DISCRETE_TYPE_TEXT ||
	    strcasecmp(ct->ct_subtype, subtype))
		return NULL;
	return m;
}

char *mail_text_part(const char *msg, size_t len, const char *subtype, size_t *outlen)
{
	struct mailmime *mime = NULL, *part;
	const struct mailmime_data *d;
	char *dec = NULL, *out = NULL;
	size_t idx = 0, n = 0;

	*outlen = 0;
	if (mailmime_parse(msg, len, &idx, &mime) != MAILIMF_NO_ERROR || !mime)
		return NULL;
	part = find_text(mime, subtype);
	d = part ? part->mm_data.mm_single : NULL;
	if (d && d->dt_type == MAILMIME_DATA_TEXT) {
		idx = 0;
		if (mailmime_part_parse(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length,
		                        &idx, d->dt_encoding, &dec, &n) == MAILIMF_NO_ERROR) {
			out = xmalloc(n + 1);
			memcpy(out, dec, n);
			out[n] = '\0';
			*outlen = n;
			mailmime_decoded_part_free(dec);
		}
	}
	mailmime_free(mime);
	return out;
}
