/* Unit tests for src/mail: RFC 2047, encoders, Message-ID, composition, header safety. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libetpan/libetpan.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "mail/attachment.h"
#include "mail/compose.h"
#include "mail/encode.h"
#include "mail/rfc2047.h"

#define DATE_2024_12_01 1733040000 /* 2024-12-01 08:00:00 UTC */

/* tests/data/mail/NAME: $TESTDATA under ctest, else next to this file. */
static char *data_path(const char *name)
{
	const char *td = getenv("TESTDATA");

	if (td)
		return xasprintf("%s/mail/%s", td, name);
	return xasprintf("%.*s/../data/mail/%s", (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__,
	                 name);
}

static char *src_path(const char *rel)
{
	const char *src = getenv("SRCDIR");

	if (src)
		return xasprintf("%s/%s", src, rel);
	return xasprintf("%.*s/../../%s", (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, rel);
}

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* Whitespace runs to one space, ends trimmed: what the encoders promise to preserve. */
static char *normalize(const char *s)
{
	struct buf b = BUF_INIT;

	while (*s) {
		if (*s == ' ' || *s == '\t') {
			while (*s == ' ' || *s == '\t')
				s++;
			if (b.len && *s)
				buf_addc(&b, ' ');
			continue;
		}
		buf_addc(&b, *s++);
	}
	return buf_detach(&b);
}

/* ----- RFC 2047 ----- */

static const char *const samples[] = {
    "Côte d'Ivoire",
    "Türkiye",
    "São Tomé and Príncipe",
    "Plain ASCII subject for the 24th session",
    "日本国との協力に関する第二十四回締約国会議の優先事項について、ならびに今後の予定と課題の"
    "整理",
    "😀🎉 emoji 👍🏽 mixed with text 🇺🇳 and more "
    "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉",
    "Ελληνική Δημοκρατία",
    "Российская Федерация — Постоянное представительство при Организации Объединённых Наций",
    "مملكة البحرين",
    "a =?utf-8?q?fake?= encoded word",
    "under_score and = equals ? question",
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ",
    "https://www.example.org/a/very/long/url/that/cannot/be/folded/anywhere/because/it/has/no/"
    "spaces",
    "x",
    "ü",
    "   leading and   trailing   ",
    "tab\tseparated\t\twords",
    "S.E. M. Jean-Pierre O'Neil, Ambassadeur (Représentant permanent)",
    "\"Quoted\" name \\ backslash",
    "中华人民共和国中华人民共和国中华人民共和国中华人民共和国中华人民共和国中华人民共和国",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 run 𝔘𝔫𝔦𝔠𝔬𝔡𝔢𝔘𝔫𝔦𝔠𝔬𝔡𝔢𝔘𝔫𝔦𝔠𝔬𝔡𝔢𝔘𝔫𝔦𝔠𝔬𝔡𝔢𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "bell\x07here",
    "Mission permanente de la République démocratique du Congo auprès de l'Organisation des "
    "Nations Unies à New York",
};

/* Checks the token rules of an encoder's output and returns its decoded form. */
static char *check_encoded(const char *enc, size_t col, int phrase)
{
	const char *p = enc;
	size_t first_room = 72 - col - 1; /* libetpan 1.9.4 folds at 72 */
	int first = 1;
	char *dec;

	for (; *p; p++)
		assert_true(*p >= ' ' && *p < 0x7F);
	for (p = enc; *p;) {
		size_t n = strcspn(p, " ");

		assert_true(n <= 76); /* fits a continuation line: column 78 at most */
		if (n >= 2 && p[0] == '=' && p[1] == '?') {
			char *one = xstrndup(p, n);
			char *d = rfc2047_decode(one, 0);

			assert_true(n <= RFC2047_MAX_WORD);
			/* Decoded alone, so a split UTF-8 character would fail here. */
			assert_non_null(d);
			free(d);
			free(one);
		}
		if (first && first_room >= 30)
			assert_true(n <= first_room);
		first = 0;
		p += n;
		if (*p == ' ') {
			p++;
			assert_true(*p != ' ' && *p != '\0');
		}
	}
	dec = rfc2047_decode(enc, phrase);
	assert_non_null(dec);
	return dec;
}

static void test_utf8_valid(void **state)
{
	(void)state;
	assert_true(utf8_valid("", 0));
	assert_true(utf8_valid("Côte 日本 😀", strlen("Côte 日本 😀")));
	assert_false(utf8_valid("\xC3", 1));             /* truncated */
	assert_false(utf8_valid("\xC0\xAF", 2));         /* overlong */
	assert_false(utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
	assert_false(utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(utf8_valid("\xFF", 1));
}

static void test_rfc2047_round_trip(void **state)
{
	static const size_t cols[] = {0, 4, 6, 9, 10, 21, 60};
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		char *want = normalize(samples[i]);

		for (k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
			char *t = rfc2047_encode_text(samples[i], cols[k]);
			char *ph = rfc2047_encode_phrase(samples[i], cols[k]);
			char *d;

			assert_non_null(t);
			assert_non_null(ph);
			d = check_encoded(t, cols[k], 0);
			assert_string_equal(d, want);
			free(d);
			if (ph[0] == '"') {
				/* A quoted-string: one token, short enough for a line. */
				assert_true(strlen(ph) <= 72);
			} else {
				d = check_encoded(ph, cols[k], 1);
				assert_string_equal(d, want);
				free(d);
			}
			d = rfc2047_decode(ph, 1);
			assert_string_equal(d, want);
			free(d);
			free(t);
			free(ph);
		}
		free(want);
	}
}

static void test_rfc2047_choices(void **state)
{
	char *s;

	(void)state;
	/* ASCII stays readable and untouched. */
	s = rfc2047_encode_text("Priorities for the 24th session: budget", 9);
	assert_string_equal(s, "Priorities for the 24th session: budget");
	free(s);
	/* Only the non-ASCII word is encoded, Q or B whichever is shorter. */
	s = rfc2047_encode_text("Côte d'Ivoire", 9);
	assert_string_equal(s, "=?UTF-8?B?Q8O0dGU=?= d'Ivoire"); /* B 8 < Q 9 */
	free(s);
	s = rfc2047_encode_text("Assemblée des États Parties", 9);
	assert_string_equal(s, "=?UTF-8?Q?Assembl=C3=A9e?= des =?UTF-8?B?w4l0YXRz?= Parties");
	free(s);
	/* A run of non-ASCII words is one encoded text, spaces inside. */
	s = rfc2047_encode_text("Ünïcödé Ëvërÿwhérë and more", 9);
	assert_string_equal(s, "=?UTF-8?B?w5xuw69jw7Zkw6kgw4t2w6tyw793aMOpcsOr?= and more");
	free(s);
	/* A first word too long for the first line is encoded (so it can be split). */
	s = rfc2047_encode_text(
	    "https://www.example.org/a/very/long/path/that/does/not/fit/on/the/line"
	    " tail",
	    9);
	assert_true(str_startswith(s, "=?UTF-8?Q?https:"));
	assert_non_null(strstr(s, "?= tail"));
	free(s);
	/* CJK: B is shorter. */
	s = rfc2047_encode_text("日本国", 9);
	assert_string_equal(s, "=?UTF-8?B?5pel5pys5Zu9?=");
	free(s);
	/* Something that looks like an encoded word is encoded, so it reads back literally. */
	s = rfc2047_encode_text("=?utf-8?q?x?=", 9);
	assert_true(strncmp(s, "=?UTF-8?", 8) == 0 && strcmp(s, "=?utf-8?q?x?=") != 0);
	free(s);
	/* Phrases: atoms as they are; specials quoted; with non-ASCII, specials encoded. */
	s = rfc2047_encode_phrase("Jean Dupont", 4);
	assert_string_equal(s, "Jean Dupont");
	free(s);
	s = rfc2047_encode_phrase("S.E. M. \"Jean\" Dupont", 4);
	assert_string_equal(s, "\"S.E. M. \\\"Jean\\\" Dupont\"");
	free(s);
	s = rfc2047_encode_phrase("S.E. Mme Müller", 4);
	assert_string_equal(s, "=?UTF-8?Q?S=2EE=2E?= Mme =?UTF-8?Q?M=C3=BCller?=");
	free(s);
	s = rfc2047_encode_phrase("   ", 4);
	assert_string_equal(s, "");
	free(s);
	/* Refused: line breaks and invalid UTF-8. */
	assert_null(rfc2047_encode_text("a\r\nBcc: x@y", 9));
	assert_null(rfc2047_encode_text("a\nb", 9));
	assert_null(rfc2047_encode_phrase("a\rb", 9));
	assert_null(rfc2047_encode_text("caf\xE9", 9));
}

static void test_rfc2047_decode(void **state)
{
	char *s;

	(void)state;
	s = rfc2047_decode("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", 0);
	assert_string_equal(s, "ab"); /* RFC 2047 section 8 */
	free(s);
	s = rfc2047_decode("=?UTF-8?Q?a?=\r\n  =?UTF-8?Q?b?=", 0);
	assert_string_equal(s, "ab");
	free(s);
	s = rfc2047_decode("=?UTF-8?Q?a_b?= c", 0);
	assert_string_equal(s, "a b c");
	free(s);
	s = rfc2047_decode("=?utf-8?b?w7Q=?=", 0);
	assert_string_equal(s, "ô");
	free(s);
	s = rfc2047_decode("\"S.E. \\\"M\\\"\" <x@y>", 1);
	assert_string_equal(s, "S.E. \"M\" <x@y>");
	free(s);
	s = rfc2047_decode("\"Quoted\" text", 0); /* unstructured: quotes are text */
	assert_string_equal(s, "\"Quoted\" text");
	free(s);
	assert_null(rfc2047_decode("=?ISO-8859-1?Q?a?=", 0));
	assert_null(rfc2047_decode("=?UTF-8?Q?=C3?=", 0)); /* half a character */
	assert_null(rfc2047_decode("=?UTF-8?B?w7Q?=", 0)); /* bad length */
	assert_null(rfc2047_decode("=?UTF-8?X?abc?=", 0));
	assert_null(rfc2047_decode("=?UTF-8?Q?=ZZ?=", 0));
}

/* ----- body encoders ----- */

static char *qp(const char *s)
{
	struct buf b = BUF_INIT;

	mail_qp_encode(&b, s, strlen(s));
	return buf_detach(&b);
}

/* Decodes with libetpan, an independent decoder. */
static char *etpan_decode(const char *s, size_t n, int enc, size_t *outlen)
{
	size_t idx = 0, len;
	char *r, *copy;

	assert_int_equal(mailmime_part_parse(s, n, &idx, enc, &r, &len), MAILIMF_NO_ERROR);
	copy = xmalloc(len + 1);
	memcpy(copy, r, len);
	copy[len] = '\0';
	mailmime_decoded_part_free(r);
	*outlen = len;
	return copy;
}

static void assert_lines(const char *s, size_t max)
{
	const char *p = s;

	while (*p) {
		size_t n = strcspn(p, "\r\n");

		assert_true(n <= max);
		p += n;
		if (*p) {
			assert_true(p[0] == '\r' && p[1] == '\n');
			p += 2;
		}
	}
}

static void test_qp(void **state)
{
	static const char *const texts[] = {
	    "Hello world \nTrailing tab\t\nFrom here = equals\n",
	    "no final newline  ",
	    "CRLF\r\nlines\r\n",
	    "lone\rCR\n",
	    "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
	    "A very long line that goes on and on and on and on and on and on and on and on and "
	    "on and on and on, past the 76 columns of RFC 2045 with some éà and 日本 inside.\n",
	    ".\n..leading dots\n",
	    "",
	};
	char *s, *d;
	size_t i, len;

	(void)state;
	s = qp("a \nb\t\nFrom x\nc=d");
	assert_string_equal(s, "a=20\r\nb=09\r\n=46rom x\r\nc=3Dd=\r\n");
	free(s);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct buf want = BUF_INIT;
		const char *p;

		s = qp(texts[i]);
		assert_lines(s, 76);
		for (p = s; *p; p++)
			assert_true((unsigned char)*p < 0x80);
		assert_null(strstr(s, "=_"));
		/* libetpan decodes hard line breaks as CRLF. */
		for (p = texts[i]; *p; p++) {
			if (*p == '\n' && (p == texts[i] || p[-1] != '\r'))
				buf_addc(&want, '\r');
			buf_addc(&want, *p);
		}
		d = etpan_decode(s, strlen(s), MAILMIME_MECHANISM_QUOTED_PRINTABLE, &len);
		assert_int_equal(len, want.len);
		assert_memory_equal(d, buf_str(&want), len);
		free(d);
		free(s);
		buf_free(&want);
	}
	/* A soft break never splits a UTF-8 character: each line decodes to whole ones. */
	s = qp(texts[4]);
	for (d = s; *d;) {
		size_t n = strcspn(d, "\r");
		size_t k = n && d[n - 1] == '=' ? n - 1 : n;
		char *line = xstrndup(d, k);
		char *dec = etpan_decode(line, k, MAILMIME_MECHANISM_QUOTED_PRINTABLE, &len);

		assert_true(utf8_valid(dec, len));
		free(dec);
		free(line);
		d += n;
		if (*d)
			d += 2;
	}
	free(s);
}

static void test_base64(void **state)
{
	static const char *const v[][2] = {{"", ""},
	                                   {"f", "Zg=="},
	                                   {"fo", "Zm8="},
	                                   {"foo", "Zm9v"},
	                                   {"foob", "Zm9vYg=="},
	                                   {"fooba", "Zm9vYmE="},
	                                   {"foobar", "Zm9vYmFy"}}; /* RFC 4648 section 10 */
	unsigned char bin[1000];
	struct buf b = BUF_INIT;
	size_t i, len;
	char *d;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		buf_reset(&b);
		mail_base64_encode(&b, v[i][0], strlen(v[i][0]));
		assert_string_equal(buf_str(&b), v[i][1]);
	}
	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 131 + 7);
	for (len = 0; len < sizeof(bin); len += 37) {
		size_t dl;

		buf_reset(&b);
		mail_base64_encode(&b, bin, len);
		assert_lines(buf_str(&b), 76);
		d = etpan_decode(buf_str(&b), b.len, MAILMIME_MECHANISM_BASE64, &dl);
		assert_int_equal(dl, len);
		assert_memory_equal(d, bin, len);
		free(d);
	}
	buf_free(&b);
}

static void test_content_type(void **state)
{
	(void)state;
	assert_string_equal(mail_content_type("a.pdf"), "application/pdf");
	assert_string_equal(mail_content_type("A.PDF"), "application/pdf");
	assert_string_equal(
	    mail_content_type("x.docx"),
	    "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
	assert_string_equal(mail_content_type("x.odt"), "application/vnd.oasis.opendocument.text");
	assert_string_equal(mail_content_type("seal.png"), "image/png");
	assert_string_equal(mail_content_type("p.jpg"), "image/jpeg");
	assert_string_equal(mail_content_type("p.jpeg"), "image/jpeg");
	assert_string_equal(mail_content_type("notes.txt"), "text/plain");
	assert_string_equal(mail_content_type("archive.tar.gz"), "application/octet-stream");
	assert_string_equal(mail_content_type("README"), "application/octet-stream");
}

/* ----- Message-ID ----- */

static void test_message_id(void **state)
{
	char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *err = NULL;

	(void)state;
	assert_int_equal(
	    mail_message_id("asp24-priorities", "KEN", "hash1", "coalition.example", &a, &err),
	    EX_OK);
	assert_int_equal(
	    mail_message_id("asp24-priorities", "KEN", "hash1", "coalition.example", &b, &err),
	    EX_OK);
	assert_int_equal(
	    mail_message_id("asp24-priorities", "UGA", "hash1", "coalition.example", &c, &err),
	    EX_OK);
	assert_string_equal(a, b); /* stable across runs and retries */
	assert_string_not_equal(a, c);
	assert_true(str_startswith(a, "<asp24-priorities.KEN."));
	assert_int_equal(strlen(a),
	                 strlen("<asp24-priorities.KEN.") + 16 + strlen("@coalition.example>"));
	assert_non_null(strstr(a, "@coalition.example>"));
	assert_null(strstr(a, "etPan"));
	/* Characters outside [A-Za-z0-9_-] cannot break the id. */
	assert_int_equal(mail_message_id("asp 24/é", "K<E>N", NULL, "coalition.example", &d, &err),
	                 EX_OK);
	assert_true(str_startswith(d, "<asp-24---.K-E-N."));
	assert_int_equal(mail_message_id("c", "k", "x", "bad domain", &err, &err), EX_DATAERR);
	assert_non_null(strstr(err, "domain"));
	free(err);
	err = NULL;
	assert_int_equal(mail_message_id("c", "k", "x", "a\r\nBcc: x@y", &err, &err), EX_DATAERR);
	free(err);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* ----- composition ----- */

/* Wire rules on every generated message (RFC 5322 2.1.1, 2.2.3; RFC 2047 2). */
static void assert_wire_rules(const char *s, size_t n)
{
	size_t i, line = 0, hdr_end;
	const char *sep = strstr(s, "\r\n\r\n");
	const char *p;

	assert_non_null(sep);
	hdr_end = (size_t)(sep - s) + 2;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		assert_true(c != 0 && c < 0x80);
		if (c == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
			i++;
			line = 0;
			continue;
		}
		assert_true(c != '\n');
		line++;
		assert_true(line <= 998);
		if (i < hdr_end)
			assert_true(line <= 78);
	}
	/* Every encoded word in the header at most 75 characters. */
	for (p = s; (p = strstr(p, "=?")) && p < sep;) {
		const char *q = p + 2;
		int marks = 0;

		while (q < sep && *q != ' ' && *q != '\r' && !(marks == 3 && q[0] == '?'))
			marks += *q++ == '?';
		if (marks == 3 && q[0] == '?' && q[1] == '=') {
			assert_true((size_t)(q + 2 - p) <= RFC2047_MAX_WORD);
			p = q + 2;
		} else {
			p += 2;
		}
	}
}

/* The names of the top-level header fields, in order, comma-separated. */
static char *header_names(const char *s)
{
	struct buf b = BUF_INIT;
	const char *end = strstr(s, "\r\n\r\n");

	while (s < end) {
		const char *eol = strstr(s, "\r\n");

		if (*s != ' ' && *s != '\t') {
			if (b.len)
				buf_addc(&b, ',');
			buf_add(&b, s, strcspn(s, ":\r"));
		}
		s = eol + 2;
	}
	return buf_detach(&b);
}

struct fixture {
	struct mail_address from, to[3], cc[2], reply_to;
	struct mail_attachment *att[4];
	size_t natt;
	struct mail_message m;
	char *text, *html;
};

static void fixture_init(struct fixture *f)
{
	char *path;
	size_t len;

	memset(f, 0, sizeof(*f));
	f->from = (struct mail_address){"Coalition for the ICC", "asp@coalition.example"};
	f->to[0] = (struct mail_address){"Permanent Mission of Kenya", "kenya@missions.example"};
	f->reply_to = (struct mail_address){"CICC Secretariat", "secretariat@coalition.example"};
	path = data_path("letter.md");
	assert_int_equal(read_file(path, &f->text, &len), 0);
	free(path);
	path = data_path("letter.html");
	assert_int_equal(read_file(path, &f->html, &len), 0);
	free(path);
	f->m.from = f->from;
	f->m.to = f->to;
	f->m.nto = 1;
	f->m.subject = "24th session of the Assembly of States Parties: priorities";
	f->m.date = DATE_2024_12_01;
	f->m.message_id = "<asp24-priorities.KEN.0123456789abcdef@coalition.example>";
	f->m.campaign = "asp24-priorities";
	f->m.text = f->text;
	f->m.html = f->html;
}

static void fixture_free(struct fixture *f)
{
	size_t i;

	for (i = 0; i < f->natt; i++)
		mail_attachment_free(f->att[i]);
	free(f->text);
	free(f->html);
}

static void test_compose_basic(void **state)
{
	struct fixture f;
	struct buf out = BUF_INIT;
	char *err = NULL, *names;

	(void)state;
	set_tz("UTC0");
	fixture_init(&f);
	buf_adds(&out, "kept");
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	assert_null(err);
	assert_true(str_startswith(out.data, "keptDate: Sun, 1 Dec 2024 08:00:00 +0000\r\n"));
	assert_wire_rules(out.data + 4, out.len - 4);
	names = header_names(out.data + 4);
	assert_string_equal(names, "Date,From,To,Message-ID,Subject,X-Demarche-Campaign,"
	                           "MIME-Version,Content-Type");
	free(names);
	assert_non_null(strstr(
	    out.data,
	    "\r\nMessage-ID: <asp24-priorities.KEN.0123456789abcdef@coalition.example>\r\n"));
	assert_non_null(strstr(out.data, "\r\nX-Demarche-Campaign: asp24-priorities\r\n"));
	assert_non_null(strstr(out.data, "Content-Type: multipart/alternative; boundary="));
	assert_null(strstr(out.data, "etPan"));
	assert_null(strstr(out.data, "Bcc"));

	/* Local offsets (RFC 5322 3.3), including half hours west of UTC. */
	set_tz("NST3:30");
	buf_reset(&out);
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	assert_true(str_startswith(out.data, "Date: Sun, 1 Dec 2024 04:30:00 -0330\r\n"));
	set_tz("IST-5:30");
	buf_reset(&out);
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	assert_true(str_startswith(out.data, "Date: Sun, 1 Dec 2024 13:30:00 +0530\r\n"));

	/* Text only: a single text/plain part. */
	f.m.html = NULL;
	buf_reset(&out);
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	assert_wire_rules(out.data, out.len);
	assert_non_null(strstr(out.data, "Content-Type: text/plain; charset=\"utf-8\"\r\n"
	                                 "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_null(strstr(out.data, "multipart"));
	/* Still ends with CRLF when the text has no final line end (a soft break). */
	f.m.text = "no final newline";
	buf_reset(&out);
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	assert_wire_rules(out.data, out.len);
	{
		const char *tail = "\r\n\r\nno final newline=\r\n";

		assert_true(out.len > strlen(tail));
		assert_string_equal(out.data + out.len - strlen(tail), tail);
	}
	set_tz("UTC0");
	buf_free(&out);
	fixture_free(&f);
}

/* A reminder replies to its first letter: In-Reply-To and References (RFC 5322 3.6.4). */
static void test_compose_reply(void **state)
{
	struct fixture f;
	struct buf out = BUF_INIT;
	char *err = NULL, *names;

	(void)state;
	set_tz("UTC0");
	fixture_init(&f);
	f.m.in_reply_to = "<asp24-priorities.KEN.00aa@coalition.example>";
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	assert_wire_rules(out.data, out.len);
	names = header_names(out.data);
	assert_string_equal(names, "Date,From,To,Message-ID,Subject,X-Demarche-Campaign,"
	                           "In-Reply-To,References,MIME-Version,Content-Type");
	free(names);
	assert_non_null(
	    strstr(out.data, "\r\nIn-Reply-To: <asp24-priorities.KEN.00aa@coalition.example>\r\n"));
	assert_non_null(
	    strstr(out.data, "\r\nReferences: <asp24-priorities.KEN.00aa@coalition.example>\r\n"));
	/* a value from the ledger is checked like a Message-ID: no header injection */
	buf_reset(&out);
	f.m.in_reply_to = "<a@b>\r\nBcc: x@evil.example";
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_DATAERR);
	assert_non_null(strstr(err, "In-Reply-To"));
	assert_int_equal(out.len, 0);
	free(err);
	buf_free(&out);
	fixture_free(&f);
}

/* The golden message: letter + attachments -> tests/data/mail/golden.eml, byte for byte. */
static void test_compose_golden(void **state)
{
	struct fixture f;
	struct buf out = BUF_INIT;
	char *err = NULL, *path, *golden = NULL, *png;
	size_t len;

	(void)state;
	set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
	fixture_init(&f);
	f.to[0] =
	    (struct mail_address){"Mission permanente de la Côte d'Ivoire", "civ@missions.example"};
	f.cc[0] = (struct mail_address){"S.E. M. Koffi", "ambassadeur@missions.example"};
	f.m.cc = f.cc;
	f.m.ncc = 1;
	f.m.reply_to = &f.reply_to;
	f.m.subject = "24e session de l'Assemblée des États Parties : priorités";
	path = data_path("seal.png");
	assert_int_equal(mail_attachment_load(path, &f.att[0], &err), EX_OK);
	free(path);
	png = f.att[0]->data;
	assert_int_equal(
	    mail_attachment_new("Sceau de l'Assemblée.png", png, f.att[0]->len, &f.att[1], &err),
	    EX_OK);
	f.natt = 2;
	f.m.attachments = f.att;
	f.m.nattachments = 2;
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	path = data_path("golden.eml");
	if (getenv("MAIL_GOLDEN_UPDATE")) {
		FILE *fp = fopen(path, "wb");

		assert_non_null(fp);
		fwrite(out.data, 1, out.len, fp);
		fclose(fp);
	}
	assert_int_equal(read_file(path, &golden, &len), 0);
	assert_int_equal(len, out.len);
	assert_memory_equal(golden, out.data, len);
	free(golden);
	free(path);
	buf_free(&out);
	fixture_free(&f);
	set_tz("UTC0");
}

/* Bodies encoded once (mail_body) give the same message, byte for byte, as bodies encoded
 * by mail_compose() itself; text, HTML, an empty text and a text without a final line end. */
static void test_compose_prepared_bodies(void **state)
{
	static const char *const texts[] = {NULL, "", "no final newline", "From here\n\nend  \n"};
	struct fixture f;
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct mail_body tb, hb;
	char *err = NULL;

	(void)state;
	set_tz("UTC0");
	fixture_init(&f);
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		if (texts[i])
			f.m.text = texts[i];
		assert_int_equal(mail_body(&tb, f.m.text, strlen(f.m.text)), 1);
		assert_int_equal(mail_body(&hb, f.m.html, strlen(f.m.html)), 1);
		buf_reset(&a);
		buf_reset(&b);
		f.m.text_body = f.m.html_body = NULL;
		assert_int_equal(mail_compose(&f.m, &a, &err), EX_OK);
		f.m.text_body = &tb;
		f.m.html_body = &hb;
		assert_int_equal(mail_compose(&f.m, &b, &err), EX_OK);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		assert_wire_rules(b.data, b.len);
		buf_free(&tb.qp);
		buf_free(&hb.qp);
	}
	/* Invalid UTF-8 is not encoded: mail_compose() reports it when given the text. */
	assert_int_equal(mail_body(&tb, "caf\xe9", 4), 0);
	assert_null(tb.qp.data);
	buf_free(&a);
	buf_free(&b);
	fixture_free(&f);
}

static void test_compose_refuses(void **state)
{
	static const char *const evil[] = {"x\r\nBcc: x@y", "x\nBcc: x@y", "x\rBcc: x@y"};
	struct fixture f;
	struct buf out = BUF_INIT;
	char *err = NULL;
	size_t i;

	(void)state;
	fixture_init(&f);
	f.cc[0] = (struct mail_address){"Cc", "cc@missions.example"};
	f.m.cc = f.cc;
	f.m.ncc = 1;
	f.m.reply_to = &f.reply_to;
	buf_adds(&out, "before");
	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		struct {
			const char **slot;
			const char *header;
		} fields[] = {
		    {&f.m.from.name, "From:"},
		    {&f.m.from.addr, "From:"},
		    {&f.to[0].name, "To:"},
		    {&f.to[0].addr, "To:"},
		    {&f.cc[0].name, "Cc:"},
		    {&f.reply_to.name, "Reply-To:"},
		    {&f.reply_to.addr, "Reply-To:"},
		    {&f.m.subject, "Subject:"},
		    {&f.m.campaign, "X-Demarche-Campaign:"},
		    {&f.m.message_id, "Message-ID:"},
		};
		size_t k;

		for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
			const char *saved = *fields[k].slot;

			/* f.to[0] is what f.m.to points at; from is a copy. */
			f.m.from =
			    fields[k].slot == &f.m.from.name || fields[k].slot == &f.m.from.addr
			        ? f.m.from
			        : f.from;
			*fields[k].slot = evil[i];
			assert_int_equal(mail_compose(&f.m, &out, &err), EX_DATAERR);
			assert_non_null(err);
			assert_true(str_startswith(err, fields[k].header));
			assert_string_equal(out.data, "before"); /* nothing written */
			*fields[k].slot = saved;
			free(err);
			err = NULL;
		}
		/* An attachment's name, refused when loaded. */
		assert_int_equal(mail_attachment_new(evil[i], "x", 1, &f.att[0], &err), EX_DATAERR);
		assert_null(f.att[0]);
		free(err);
		err = NULL;
	}
	/* Other refusals. */
	f.m.from = f.from;
	f.to[0].addr = "not an address";
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_DATAERR);
	assert_true(str_startswith(err, "To:"));
	f.to[0].addr = "kenya@missions.example";
	f.m.subject = "caf\xE9";
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_DATAERR);
	assert_true(str_startswith(err, "Subject:"));
	f.m.subject = "ok";
	f.m.message_id = "<no-at-sign>";
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_DATAERR);
	assert_true(str_startswith(err, "Message-ID:"));
	f.m.message_id = "<a@b>";
	f.m.nto = 0;
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_DATAERR);
	f.m.nto = 1;
	assert_int_equal(mail_compose(&f.m, &out, &err), EX_OK);
	free(err);
	buf_free(&out);
	fixture_free(&f);
}

/* A deterministic generator (no libc rand state shared with other tests). */
static uint32_t rng(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static char *hostile(uint32_t *seed)
{
	static const char *const pieces[] = {
	    "Bcc: x@y",
	    ":",
	    "<",
	    ">",
	    "\"",
	    "=?",
	    "?=",
	    "=?utf-8?q?=0D=0ABcc:_x@y?=",
	    "é",
	    "日本",
	    "😀",
	    " ",
	    "  ",
	    "\t",
	    ",",
	    ";",
	    "\\",
	    "x@y",
	    "(",
	    ")",
	    "Subject",
	    "To: z@w",
	    "_",
	    "=",
	    "?",
	    ".",
	    "Content-Type: text/html",
	    "\x01",
	    "\x7f",
	    "averyveryveryveryveryveryveryveryveryveryveryveryveryveryverylongwordwithoutspaces",
	};
	struct buf b = BUF_INIT;
	uint32_t n = 1 + rng(seed) % 12, i;

	for (i = 0; i < n; i++)
		buf_adds(&b, pieces[rng(seed) % (sizeof(pieces) / sizeof(pieces[0]))]);
	return buf_detach(&b);
}

/*
 * No code path emits an extra header line: values full of header syntax (but no line
 * breaks) always give exactly the expected fields, and every value reads back intact.
 */
static void test_compose_no_extra_header(void **state)
{
	struct fixture f;
	struct buf out = BUF_INIT;
	uint32_t seed = 2047;
	char *err = NULL;
	int i;

	(void)state;
	fixture_init(&f);
	f.m.text = "short";
	f.m.html = "<p>short</p>";
	f.cc[0].addr = "cc@missions.example";
	f.m.cc = f.cc;
	f.m.ncc = 1;
	for (i = 0; i < 1500; i++) {
		char *subject = hostile(&seed), *name = hostile(&seed), *cc = hostile(&seed);
		char *campaign = hostile(&seed), *fname = hostile(&seed), *names, *dec;
		struct mail_attachment *att = NULL;
		const char *p;
		size_t idx = 0;
		struct mailimf_fields *fields = NULL;
		clistiter *it;
		int r;

		f.m.subject = subject;
		f.to[0].name = name;
		f.cc[0].name = cc;
		f.m.campaign = campaign;
		r = mail_attachment_new(fname, "data", 4, &att, &err);
		if (r == EX_OK) {
			f.m.attachments = &att;
			f.m.nattachments = 1;
		} else {
			/* Only control characters make a file name unacceptable. */
			assert_true(strpbrk(fname, "\x01\x7f\t") != NULL);
			f.m.nattachments = 0;
		}
		buf_reset(&out);
		r = mail_compose(&f.m, &out, &err);
		if (r != EX_OK) {
			/* Only an all-blank subject is refused here. */
			char *ns = normalize(subject);

			assert_int_equal(r, EX_DATAERR);
			assert_string_equal(ns, "");
			free(ns);
			goto next;
		}
		assert_wire_rules(out.data, out.len);
		names = header_names(out.data);
		assert_string_equal(names, "Date,From,To,Cc,Message-ID,Subject,X-Demarche-Campaign,"
		                           "MIME-Version,Content-Type");
		free(names);
		for (p = out.data; (p = strstr(p, "\r\n")); p += 2)
			assert_true(strncasecmp(p + 2, "Bcc", 3) != 0);
		/* libetpan parses the same number of fields, and no Bcc. */
		assert_int_equal(mailimf_fields_parse(out.data, out.len, &idx, &fields),
		                 MAILIMF_NO_ERROR);
		{
			int count = 0;

			for (it = clist_begin(fields->fld_list); it; it = clist_next(it)) {
				struct mailimf_field *fl = clist_content(it);

				assert_int_not_equal(fl->fld_type, MAILIMF_FIELD_BCC);
				count++;
			}
			assert_int_equal(count, 9);
		}
		mailimf_fields_free(fields);
		/* The subject reads back as given. */
		{
			const char *s = strstr(out.data, "\r\nSubject: ") + 11;
			const char *e = s;
			char *raw, *ns = normalize(subject);

			while (!(e[0] == '\r' && e[2] != ' ' && e[2] != '\t'))
				e++;
			raw = xstrndup(s, (size_t)(e - s));
			dec = rfc2047_decode(raw, 0);
			assert_non_null(dec);
			assert_string_equal(dec, ns);
			free(dec);
			free(raw);
			free(ns);
		}
	next:
		mail_attachment_free(att);
		f.m.nattachments = 0;
		free(err);
		err = NULL;
		free(subject);
		free(name);
		free(cc);
		free(campaign);
		free(fname);
	}
	buf_free(&out);
	fixture_free(&f);
}

/* ----- the independent check: Python's email package, and libetpan's parser ----- */

struct expect {
	const char *file;
	struct mail_message m;
	const char *att_path[4];
};

static json_t *jaddr(const struct mail_address *a)
{
	char *n = a->name ? normalize(a->name) : NULL;
	json_t *o = json_pack("{s:s?, s:s}", "name", n && *n ? n : NULL, "addr", a->addr);

	free(n);
	return o;
}

static json_t *jaddrs(const struct mail_address *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, jaddr(&v[i]));
	return a;
}

static char *lf(const char *s)
{
	struct buf b = BUF_INIT;

	for (; *s; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			buf_addc(&b, *s);
	return buf_detach(&b);
}

static json_t *jexpect(const struct expect *e)
{
	const struct mail_message *m = &e->m;
	char *subject = normalize(m->subject), *text = lf(m->text),
	     *html = m->html ? lf(m->html) : NULL;
	json_t *atts = json_array();
	json_t *o;
	size_t i;

	for (i = 0; i < m->nattachments; i++)
		json_array_append_new(atts, json_pack("{s:s, s:s, s:s}", "filename",
		                                      m->attachments[i]->filename, "content_type",
		                                      m->attachments[i]->content_type, "path",
		                                      e->att_path[i]));
	o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:s?, s:s, s:I, s:s, s:s?, s:o}", "file",
	              e->file, "from", jaddr(&m->from), "to", jaddrs(m->to, m->nto), "cc",
	              jaddrs(m->cc, m->ncc), "reply_to",
	              m->reply_to ? jaddr(m->reply_to) : json_null(), "subject", subject,
	              "campaign", m->campaign, "message_id", m->message_id, "date",
	              (json_int_t)m->date, "text", text, "html", html, "attachments", atts);
	assert_non_null(o);
	free(subject);
	free(text);
	free(html);
	return o;
}

static char *etpan_phrase(const char *s, size_t n)
{
	size_t idx = 0;
	char *r = NULL;

	assert_int_equal(mailmime_encoded_phrase_parse("utf-8", s, n, &idx, "utf-8", &r),
	                 MAILIMF_NO_ERROR);
	return r;
}

static void etpan_check_text(struct mailmime *part, const char *subtype, const char *want)
{
	struct mailmime_data *d = part->mm_data.mm_single;
	struct buf crlf = BUF_INIT;
	const char *p;
	char *dec;
	size_t len;

	assert_int_equal(part->mm_type, MAILMIME_SINGLE);
	assert_string_equal(part->mm_content_type->ct_subtype, subtype);
	for (p = want; *p; p++) {
		if (*p == '\n' && (p == want || p[-1] != '\r'))
			buf_addc(&crlf, '\r');
		buf_addc(&crlf, *p);
	}
	dec = etpan_decode(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length,
	                   MAILMIME_MECHANISM_QUOTED_PRINTABLE, &len);
	assert_int_equal(len, crlf.len);
	assert_memory_equal(dec, buf_str(&crlf), len);
	free(dec);
	buf_free(&crlf);
}

/* libetpan's own parser reads the message back into the structure we built. */
static void etpan_check(const char *raw, size_t n, const struct mail_message *m)
{
	struct mailmime *mime = NULL, *body;
	struct mailimf_single_fields *sf;
	size_t idx = 0, i;
	char *s, *want;
	clistiter *it;

	assert_int_equal(mailmime_parse(raw, n, &idx, &mime), MAILIMF_NO_ERROR);
	assert_int_equal(mime->mm_type, MAILMIME_MESSAGE);
	sf = mailimf_single_fields_new(mime->mm_data.mm_message.mm_fields);
	assert_non_null(sf);
	assert_null(sf->fld_bcc);
	assert_non_null(sf->fld_message_id);
	want = xstrndup(m->message_id + 1, strlen(m->message_id) - 2);
	assert_string_equal(sf->fld_message_id->mid_value, want);
	free(want);
	s = etpan_phrase(sf->fld_subject->sbj_value, strlen(sf->fld_subject->sbj_value));
	want = normalize(m->subject);
	assert_string_equal(s, want);
	free(s);
	free(want);
	{
		struct mailimf_mailbox *mb =
		    clist_content(clist_begin(sf->fld_from->frm_mb_list->mb_list));

		assert_string_equal(mb->mb_addr_spec, m->from.addr);
	}
	i = 0;
	for (it = clist_begin(sf->fld_to->to_addr_list->ad_list); it; it = clist_next(it), i++) {
		struct mailimf_address *a = clist_content(it);
		struct mailimf_mailbox *mb = a->ad_data.ad_mailbox;

		assert_int_equal(a->ad_type, MAILIMF_ADDRESS_MAILBOX);
		assert_string_equal(mb->mb_addr_spec, m->to[i].addr);
		if (mb->mb_display_name) {
			char *nn = normalize(m->to[i].name);

			s = etpan_phrase(mb->mb_display_name, strlen(mb->mb_display_name));
			assert_string_equal(s, nn);
			free(s);
			free(nn);
		}
	}
	assert_int_equal(i, m->nto);
	if (m->ncc)
		assert_non_null(sf->fld_cc);
	mailimf_single_fields_free(sf);

	body = mime->mm_data.mm_message.mm_msg_mime;
	if (m->nattachments) {
		assert_int_equal(body->mm_type, MAILMIME_MULTIPLE);
		assert_string_equal(body->mm_content_type->ct_subtype, "mixed");
		assert_int_equal(clist_count(body->mm_data.mm_multipart.mm_mp_list),
		                 1 + m->nattachments);
		it = clist_begin(body->mm_data.mm_multipart.mm_mp_list);
		for (i = 0; i < m->nattachments; i++) {
			struct mailmime *part = clist_content(
			    clist_nth(body->mm_data.mm_multipart.mm_mp_list, (unsigned)(i + 1)));
			struct mailmime_data *d = part->mm_data.mm_single;
			size_t len;
			char *dec =
			    etpan_decode(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length,
			                 MAILMIME_MECHANISM_BASE64, &len);

			assert_int_equal(len, m->attachments[i]->len);
			assert_memory_equal(dec, m->attachments[i]->data, len);
			free(dec);
		}
		body = clist_content(it);
	}
	if (m->html) {
		assert_int_equal(body->mm_type, MAILMIME_MULTIPLE);
		assert_string_equal(body->mm_content_type->ct_subtype, "alternative");
		assert_int_equal(clist_count(body->mm_data.mm_multipart.mm_mp_list), 2);
		etpan_check_text(clist_content(clist_begin(body->mm_data.mm_multipart.mm_mp_list)),
		                 "plain", m->text);
		etpan_check_text(clist_content(clist_nth(body->mm_data.mm_multipart.mm_mp_list, 1)),
		                 "html", m->html);
	} else {
		etpan_check_text(body, "plain", m->text);
	}
	mailmime_free(mime);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void test_compose_independent_check(void **state)
{
	static const char *const zones[] = {"UTC0", "NST3:30", "CET-1CEST,M3.5.0,M10.5.0/3",
	                                    "IST-5:30", "EST5EDT,M3.2.0,M11.1.0"};
	struct fixture f;
	struct expect e[9];
	struct mail_address to2[3], cc2[2];
	struct mail_attachment *att[5] = {0};
	struct mail_attachment *set1[3], *set2[2];
	char dir[] = "/tmp/demarche-mail-XXXXXX", *path, *err = NULL, *cmd, *script, *png_path;
	json_t *msgs = json_array(), *root;
	size_t i, ne = 0;
	int rc;

	(void)state;
	fixture_init(&f);
	assert_non_null(mkdtemp(dir));
	png_path = data_path("seal.png");
	assert_int_equal(mail_attachment_load(png_path, &att[0], &err), EX_OK);
	/* A non-ASCII file name, loaded from disk like any appeal's attachment. */
	path = xasprintf("%s/Sceau de l'Assemblée des États Parties — 第24回.png", dir);
	write_file(path, att[0]->data, att[0]->len);
	assert_int_equal(mail_attachment_load(path, &att[1], &err), EX_OK);
	assert_string_equal(att[1]->filename,
	                    "Sceau de l'Assemblée des États Parties — 第24回.png");
	assert_non_null(att[1]->disposition);
	free(path);
	path = xasprintf("%s/notes.txt", dir);
	write_file(path, "Notes — ünïcode\n", strlen("Notes — ünïcode\n"));
	assert_int_equal(mail_attachment_load(path, &att[2], &err), EX_OK);
	free(path);
	{
		unsigned char pdf[5000];

		for (i = 0; i < sizeof(pdf); i++)
			pdf[i] = (unsigned char)(i * 7 + (i >> 8));
		path =
		    xasprintf("%s/Lettre à l'Ambassadeur de Türkiye concernant la 24e session de "
		              "l'Assemblée des États Parties au Statut de Rome.pdf",
		              dir);
		write_file(path, pdf, sizeof(pdf));
		assert_int_equal(mail_attachment_load(path, &att[3], &err), EX_OK);
		free(path);
	}
	path = xasprintf("%s/empty.docx", dir);
	write_file(path, "", 0);
	assert_int_equal(mail_attachment_load(path, &att[4], &err), EX_OK);
	free(path);
	set1[0] = att[0];
	set1[1] = att[1];
	set1[2] = att[2];
	set2[0] = att[3];
	set2[1] = att[4];

	for (i = 0; i < 9; i++) {
		e[i].m = f.m;
		memset(e[i].att_path, 0, sizeof(e[i].att_path));
	}
	/* 0: ASCII, text + HTML. */
	e[ne].file = "0-ascii.eml";
	ne++;
	/* 1: Côte d'Ivoire, cc, reply-to, PNG + non-ASCII PNG + text attachments. */
	to2[0] = (struct mail_address){"Mission permanente de la Côte d'Ivoire auprès des Nations "
	                               "Unies",
	                               "civ@missions.example"};
	cc2[0] = (struct mail_address){"S.E. M. Kouadio (Ambassadeur)", "amb@missions.example"};
	cc2[1] = (struct mail_address){NULL, "archive@coalition.example"};
	e[ne].file = "1-civ.eml";
	e[ne].m.to = &to2[0];
	e[ne].m.cc = cc2;
	e[ne].m.ncc = 2;
	e[ne].m.reply_to = &f.reply_to;
	e[ne].m.subject = "24e session de l'Assemblée des États Parties : Côte d'Ivoire";
	e[ne].m.attachments = set1;
	e[ne].m.nattachments = 3;
	e[ne].att_path[0] = png_path;
	e[ne].att_path[1] = "";
	e[ne].att_path[2] = "";
	ne++;
	/* 2: Türkiye, long CJK + emoji subject, text only. */
	to2[1] = (struct mail_address){"Türkiye Cumhuriyeti Birleşmiş Milletler Daimi Temsilciliği",
	                               "tur@missions.example"};
	e[ne].file = "2-tur.eml";
	e[ne].m.to = &to2[1];
	e[ne].m.subject =
	    "Türkiye: 日本国との協力に関する第二十四回締約国会議の優先事項について 😀🎉 "
	    "and a long tail of ASCII words after the emoji to fold";
	e[ne].m.html = NULL;
	ne++;
	/* 3: São Tomé and Príncipe, long RFC 2231 name, empty attachment. */
	to2[2] = (struct mail_address){"São Tomé and Príncipe, Permanent Mission (H.E. Mr. Neves)",
	                               "stp@missions.example"};
	e[ne].file = "3-stp.eml";
	e[ne].m.to = &to2[2];
	e[ne].m.subject = "São Tomé and Príncipe";
	e[ne].m.attachments = set2;
	e[ne].m.nattachments = 2;
	e[ne].att_path[0] = "";
	e[ne].att_path[1] = "";
	ne++;
	/* 4: several recipients, ASCII names with specials and quotes. */
	{
		static struct mail_address many[3] = {
		    {"S.E. M. \"Jean\" Dupont, Ambassadeur", "jd@missions.example"},
		    {"O'Neil; Mary \\ Counsellor", "mo@missions.example"},
		    {"Permanent Mission of the Democratic Republic of the Congo to the U.N., New "
		     "York",
		     "cod@missions.example"},
		};

		e[ne].file = "4-specials.eml";
		e[ne].m.to = many;
		e[ne].m.nto = 3;
		e[ne].m.subject =
		    "Re: \"quoted\" (comment) <angle> Bcc: nobody@example.org; To: x@y";
		ne++;
	}
	/* 5: values that look like headers and encoded words; hostile but legal. */
	{
		static struct mail_address odd = {"=?utf-8?q?=0D=0ABcc:_x@y?= Évil: <x@y>",
		                                  "odd@missions.example"};

		e[ne].file = "5-hostile.eml";
		e[ne].m.to = &odd;
		e[ne].m.subject = "=?utf-8?q?=0D=0ABcc:_x@y?= Subject: Bcc: x@y";
		e[ne].m.campaign = "asp24 — priorités";
		ne++;
	}
	/* 6: awkward bodies: trailing spaces, From lines, CRLF, long lines, no final LF. */
	e[ne].file = "6-bodies.eml";
	e[ne].m.text =
	    "Trailing spaces   \nFrom the start\r\n. a dot\n\tTabbed\t\nA line far longer "
	    "than seventy-six characters, with é and 日本 and 😀 placed near the soft "
	    "break positions so they must not be split, repeated: é é é é é é é é é\n"
	    "= equals and ? and _ underscores\nno final newline  ";
	e[ne].m.html = "<p>A very long HTML line without any break at all: "
	               "<a href=\"https://www.icc-cpi.int/asp/24th-session/documents?lang=fr&x=y\">"
	               "Assemblée des États Parties</a> — la vingt-quatrième session.</p>";
	e[ne].m.subject = "A subject with a very-long-word-"
	                  "that-cannot-be-folded-anywhere-since-it-has-no-spaces-at-all-"
	                  "whatsoever and more";
	ne++;
	/* 7: only a To address without a name; no campaign. */
	{
		static struct mail_address bare = {NULL, "bare@missions.example"};

		e[ne].file = "7-bare.eml";
		e[ne].m.to = &bare;
		e[ne].m.campaign = NULL;
		e[ne].m.subject = "x";
		ne++;
	}
	/* 8: Russian and Arabic names, B vs Q. */
	{
		static struct mail_address ru[2] = {
		    {"Постоянное представительство Российской Федерации", "rus@missions.example"},
		    {"البعثة الدائمة لمملكة البحرين", "bhr@missions.example"},
		};

		e[ne].file = "8-scripts.eml";
		e[ne].m.to = ru;
		e[ne].m.nto = 2;
		e[ne].m.subject = "Российская Федерация — مملكة البحرين";
		ne++;
	}

	for (i = 0; i < ne; i++) {
		struct buf out = BUF_INIT;
		char *p;
		size_t k;

		/* Expected attachment bytes: the loaded data, written next to the messages. */
		for (k = 0; k < e[i].m.nattachments; k++) {
			if (e[i].att_path[k] && *e[i].att_path[k] && e[i].att_path[k] == png_path)
				continue;
			p = xasprintf("%s/expect-%zu-%zu.bin", dir, i, k);
			write_file(p, e[i].m.attachments[k]->data, e[i].m.attachments[k]->len);
			e[i].att_path[k] = p; /* freed below */
		}
		e[i].m.date = DATE_2024_12_01 + (time_t)i * 86400 * 40;
		set_tz(zones[i % 5]);
		assert_int_equal(mail_compose(&e[i].m, &out, &err), EX_OK);
		assert_wire_rules(out.data, out.len);
		etpan_check(out.data, out.len, &e[i].m);
		p = xasprintf("%s/%s", dir, e[i].file);
		write_file(p, out.data, out.len);
		free(p);
		json_array_append_new(msgs, jexpect(&e[i]));
		buf_free(&out);
	}
	set_tz("UTC0");
	root = json_pack("{s:o}", "messages", msgs);
	path = xasprintf("%s/expect.json", dir);
	assert_int_equal(json_dump_file(root, path, JSON_INDENT(1)), 0);
	json_decref(root);

	script = src_path("tests/integration/mime_check.py");
	cmd = xasprintf("python3 '%s' '%s' '%s'", script, dir, path);
	rc = system(cmd);
	assert_int_equal(rc, 0);
	free(cmd);
	free(script);
	free(path);
	cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	for (i = 0; i < ne; i++) {
		size_t k;

		for (k = 0; k < e[i].m.nattachments; k++)
			if (e[i].att_path[k] != png_path)
				free((char *)e[i].att_path[k]);
	}
	for (i = 0; i < 5; i++)
		mail_attachment_free(att[i]);
	free(png_path);
	free(err);
	fixture_free(&f);
}

/* ---- attachments opened inside their letter's folder (issue 14, point 8) ---- */

static char *tmp_write(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return p;
}

/* Opens rel beneath dir and expects code, and (when not NULL) why in the message. */
static void expect_open(const char *dir, const char *rel, int code, const char *why)
{
	struct stat st;
	char *err = NULL;
	int fd = 123;

	if (confine_open(dir, rel, &fd, &st, NULL, &err) != code)
		fail_msg("%s: %s", rel, err ? err : "EX_OK");
	if (code == EX_OK) {
		assert_true(fd >= 0);
		assert_true(S_ISREG(st.st_mode));
		close(fd);
	} else {
		assert_int_equal(fd, -1);
		if (why && !strstr(err, why))
			fail_msg("%s: '%s' lacks '%s'", rel, err, why);
	}
	free(err);
}

static void test_attachment_open_confined(void **state)
{
	char dtmpl[] = "/tmp/test_mail-XXXXXX", otmpl[] = "/tmp/test_mail-XXXXXX";
	char *dir = mkdtemp(dtmpl), *outside = mkdtemp(otmpl), *p, *q, *resolved = NULL;
	char *err = NULL, *data = NULL;
	struct mail_attachment *a = NULL;
	struct stat st;
	size_t len;
	int fd;

	(void)state;
	assert_non_null(dir);
	assert_non_null(outside);
	free(tmp_write(outside, "secret.txt", "SECRET"));
	free(tmp_write(dir, "annex.txt", "ANNEX"));
	p = xasprintf("%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	free(tmp_write(dir, "sub/deep.pdf", "%PDF"));

	expect_open(dir, "annex.txt", EX_OK, NULL);
	expect_open(dir, "sub/deep.pdf", EX_OK, NULL);
	expect_open(dir, "./sub//deep.pdf", EX_OK, NULL);
	expect_open(dir, "/etc/passwd", EX_DATAERR, "an absolute path");
	expect_open(dir, "../x", EX_DATAERR, "a '..' component");
	expect_open(dir, "sub/../annex.txt", EX_DATAERR, "a '..' component");
	expect_open(dir, "sub/..", EX_DATAERR, "a '..' component");
	expect_open(dir, "", EX_DATAERR, "empty");
	expect_open(dir, "missing.txt", EX_NOINPUT, NULL);
	expect_open(dir, "sub", EX_DATAERR, "not a regular file");
	expect_open(dir, "..x", EX_NOINPUT, NULL); /* a name, not a '..' component */

	/* Symlinks: out of the folder at any level refused, inside fine. */
	p = xasprintf("%s/secret.txt", outside);
	q = xasprintf("%s/out.txt", dir);
	assert_int_equal(symlink(p, q), 0);
	free(p);
	free(q);
	q = xasprintf("%s/outdir", dir);
	assert_int_equal(symlink(outside, q), 0);
	free(q);
	q = xasprintf("%s/sub/up.txt", dir);
	assert_int_equal(symlink("../annex.txt", q), 0);
	free(q);
	q = xasprintf("%s/loop", dir);
	assert_int_equal(symlink("loop", q), 0);
	free(q);
	q = xasprintf("%s/fifo", dir);
	assert_int_equal(mkfifo(q, 0600), 0);
	free(q);
	expect_open(dir, "out.txt", EX_DATAERR, "outside the letter's folder");
	expect_open(dir, "outdir/secret.txt", EX_DATAERR, "outside the letter's folder");
	expect_open(dir, "sub/up.txt", EX_OK, NULL);
	expect_open(dir, "loop", EX_DATAERR, "loop");
	expect_open(dir, "fifo", EX_DATAERR, "not a regular file"); /* and does not hang */

	/* The resolved path, the read from the descriptor, the limit. */
	assert_int_equal(confine_open(dir, "sub/up.txt", &fd, &st, &resolved, &err), EX_OK);
	assert_non_null(strstr(resolved, "/annex.txt"));
	assert_null(strstr(resolved, "/sub/"));
	assert_int_equal(confine_read(fd, 4, &data, &len, &err), EX_DATAERR);
	assert_non_null(strstr(err, "over the 4 byte limit"));
	assert_null(data);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(confine_read(fd, 5, &data, &len, &err), EX_OK);
	assert_int_equal(len, 5);
	assert_string_equal(data, "ANNEX");
	close(fd);
	free(data);
	free(resolved);

	/* load_in: named by its last component; a refusal names the file. */
	assert_int_equal(mail_attachment_load_in(dir, "sub/deep.pdf", &a, &err), EX_OK);
	assert_string_equal(a->filename, "deep.pdf");
	assert_string_equal(a->content_type, "application/pdf");
	assert_int_equal(a->len, 4);
	mail_attachment_free(a);
	assert_int_equal(mail_attachment_load_in(dir, "out.txt", &a, &err), EX_DATAERR);
	assert_null(a);
	assert_non_null(strstr(err, "attachment 'out.txt'"));
	assert_non_null(strstr(err, "outside the letter's folder"));
	/* mail_attachment_load() (a trusted path) still refuses what is not a regular file. */
	p = xasprintf("%s/fifo", dir);
	assert_int_equal(mail_attachment_load(p, &a, &err), EX_DATAERR);
	free(p);
	free(err);

	p = xasprintf("rm -rf '%s' '%s'", dir, outside);
	assert_int_equal(system(p), 0);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_rfc2047_round_trip),
	    cmocka_unit_test(test_rfc2047_choices),
	    cmocka_unit_test(test_rfc2047_decode),
	    cmocka_unit_test(test_qp),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_content_type),
	    cmocka_unit_test(test_message_id),
	    cmocka_unit_test(test_compose_basic),
	    cmocka_unit_test(test_compose_reply),
	    cmocka_unit_test(test_compose_golden),
	    cmocka_unit_test(test_compose_prepared_bodies),
	    cmocka_unit_test(test_compose_refuses),
	    cmocka_unit_test(test_compose_no_extra_header),
	    cmocka_unit_test(test_compose_independent_check),
	    cmocka_unit_test(test_attachment_open_confined),
	};

	set_tz("UTC0");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
