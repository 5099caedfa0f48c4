/* Attachments: opened inside their letter's folder, read once per run, RFC 2231 names. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "mail/attachment.h"
#include "mail/compose.h"
#include "mail/encode.h"
#include "mail/rfc2047.h"

#define MAX_ASCII_NAME 60 /* keeps ' name="..."' within 78 columns */
#define MAX_SEGMENT    60 /* RFC 2231 section 3: one continuation's value per line */

static const struct {
	const char *ext, *type;
} types[] = {
    {"pdf", "application/pdf"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"txt", "text/plain"},
};

const char *mail_content_type(const char *filename)
{
	const char *dot = strrchr(filename, '.');
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* A readable ASCII stand-in: Latin-1 letters lose their accents, the rest becomes "_". */
static char *ascii_name(const char *name)
{
	static const char latin1[] =
	    "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo_ouuuuyty";
	const unsigned char *s = (const unsigned char *)name;
	struct buf b = BUF_INIT;
	const char *ext;
	char *r;

	while (*s) {
		if (*s < 0x80) {
			buf_addc(&b, *s < 0x20 || *s == 0x7F || *s == '"' || *s == '\\' ? '_'
			                                                                : (char)*s);
			s++;
			continue;
		}
		if (s[0] == 0xC3 && s[1] >= 0x80 && s[1] <= 0xBF)
			buf_addc(&b, latin1[s[1] - 0x80]);
		else
			buf_addc(&b, '_');
		for (s++; (*s & 0xC0) == 0x80; s++)
			;
	}
	r = buf_detach(&b);
	if (strlen(r) > MAX_ASCII_NAME) {
		/* Keep the extension: it is what tells a reader's system the type. */
		ext = strrchr(r, '.');
		if (!ext || strlen(ext) > 10)
			ext = "";
		memmove(r + MAX_ASCII_NAME - strlen(ext), ext, strlen(ext) + 1);
	}
	return r;
}

/* RFC 2231 section 7: attribute-char, what an extended value carries unencoded. */
static int attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* The next continuation's length from i: at most MAX_SEGMENT, never cutting a %XX. */
static size_t seg_len(const struct buf *enc, size_t i)
{
	size_t seg = enc->len - i > MAX_SEGMENT ? MAX_SEGMENT : enc->len - i;

	if (i + seg < enc->len && enc->data[i + seg - 1] == '%')
		seg -= 1;
	else if (i + seg < enc->len && enc->data[i + seg - 2] == '%')
		seg -= 2;
	return seg;
}

/*
 * "attachment; filename*=utf-8''..." with continuations (RFC 2231 sections 3 and 4), folded
 * by us: libetpan would write an extended value as a quoted-string, which RFC 2231 forbids
 * (and Python's parser flags), so the whole value goes to libetpan as a disposition type.
 */
static char *rfc2231_disposition(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)name;
	struct buf enc = BUF_INIT, b = BUF_INIT;
	size_t i, k = 0, nseg = 0;

	buf_adds(&enc, "utf-8''");
	for (; *s; s++) {
		if (attr_char(*s)) {
			buf_addc(&enc, (char)*s);
		} else {
			char t[3] = {'%', hex[*s >> 4], hex[*s & 15]};
			buf_add(&enc, t, 3);
		}
	}
	for (i = 0; i < enc.len; i += seg_len(&enc, i))
		nseg++;
	buf_adds(&b, "attachment");
	for (i = 0; i < enc.len; i += seg_len(&enc, i)) {
		if (nseg > 1)
			buf_addf(&b, ";\r\n filename*%zu*=", k++);
		else
			buf_adds(&b, ";\r\n filename*=");
		buf_add(&b, enc.data + i, seg_len(&enc, i));
	}
	buf_free(&enc);
	return buf_detach(&b);
}

static int simple_name(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;

	if (strlen(name) > MAX_ASCII_NAME)
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7F || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

int mail_attachment_new(const char *filename, const void *data, size_t len,
                        struct mail_attachment **out, char **errstr)
{
	struct mail_attachment *a;
	struct buf b = BUF_INIT;
	const unsigned char *s;

	*out = NULL;
	if (!*filename)
		return error_set(errstr, EX_DATAERR, "attachment: empty file name");
	if (!utf8_valid(filename, strlen(filename)))
		return error_set(errstr, EX_DATAERR, "attachment: file name is not valid UTF-8");
	for (s = (const unsigned char *)filename; *s; s++)
		if (*s < 0x20 || *s == 0x7F)
			return error_set(
			    errstr, EX_DATAERR,
			    "attachment: file name holds a control character (refused)");
	a = xcalloc(1, sizeof(*a));
	a->filename = xstrdup(filename);
	a->content_type = xstrdup(mail_content_type(filename));
	a->data = xmalloc(len + 1);
	if (len)
		memcpy(a->data, data, len);
	a->data[len] = '\0';
	a->len = len;
	mail_base64_encode(&b, data, len);
	a->encoded_len = b.len;
	a->encoded = buf_detach(&b);
	a->ascii_name = ascii_name(filename);
	if (!simple_name(filename))
		a->disposition = rfc2231_disposition(filename);
	*out = a;
	return EX_OK;
}

/* Reads fd whole and makes the attachment named after path's last component. */
static int load_fd(int fd, const char *path, struct mail_attachment **out, char **errstr)
{
	const char *base = strrchr(path, '/');
	char *data = NULL, *err = NULL;
	size_t len;
	int rc = confine_read(fd, MAIL_ATTACHMENT_MAX, &data, &len, &err);

	if (rc != EX_OK) {
		error_set(errstr, rc, "attachment %s: %s", path, err);
		free(err);
		return rc;
	}
	rc = mail_attachment_new(base ? base + 1 : path, data, len, out, errstr);
	free(data);
	return rc;
}

int mail_attachment_load(const char *path, struct mail_attachment **out, char **errstr)
{
	struct stat st;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
		                 "attachment %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(errstr, EX_DATAERR, "attachment %s: not a regular file", path);
	}
	rc = load_fd(fd, path, out, errstr);
	close(fd);
	return rc;
}

int mail_attachment_load_in(const char *dir, const char *rel, struct mail_attachment **out,
                            char **errstr)
{
	struct stat st;
	char *err = NULL;
	int fd, rc;

	*out = NULL;
	rc = confine_open(dir, rel, &fd, &st, NULL, &err);
	if (rc != EX_OK) {
		error_set(errstr, rc, "attachment '%s' (in %s): %s", rel, dir, err);
		free(err);
		return rc;
	}
	rc = load_fd(fd, rel, out, errstr);
	close(fd);
	return rc;
}

void mail_attachment_free(struct mail_attachment *a)
{
	if (!a)
		return;
	free(a->filename);
	free(a->content_type);
	free(a->data);
	free(a->encoded);
	free(a->ascii_name);
	free(a->disposition);
	free(a);
}
