/* Letter files: headers + Markdown body per language, compiled once, rendered per mission. */
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/confine.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/utf8.h"
#include "base/strutil.h"
#include "base/datadir.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/markdown.h"
#include "letter/plaintext.h"
#include "letter/mustache.h"

/* One header value: its source, where it was, and its compiled template. */
struct header {
	char *name; /* canonical spelling: "Title", "Reply-To", ... */
	char *src;
	long line;
	struct mustache_template *tpl;
};

struct letter_file {
	char *language;
	char *path; /* as opened */
	char *dir;  /* its folder: attachments and partials are relative to it */
	char *bytes;
	size_t len;
	struct header *headers;
	size_t nheaders;
	char **params;
	size_t nparams;
	long body_line;
	char *body_src;
	struct mustache_template *body;
};

struct letter {
	char *path;
	char *layout_dir;
	struct letter_file *files;
	size_t nfiles;
	const char **languages;
	char **params;
	size_t nparams;
	char hash[65];
	struct mustache_partials *partials;
};

/*
 * Input limits: a letter is a few pages (the longest of the Coalition's is 12 KB), and what
 * goes out must fit the mail providers' message size limits (commonly 25 MB, base64 adds
 * a third). Each is refused with an error naming the limit.
 */
#define LETTER_MAX_SIZE        (1024 * 1024)       /* bytes in one LANG.md or partial */
#define LETTER_MAX_ATTACHMENTS 20                  /* Attachment headers in one file */
#define LETTER_MAX_ATTACH_SIZE (25L * 1000 * 1000) /* their total size in bytes */

/* Follows: a reminder names the campaign it follows (campaign/followup.h). */
static const char *const known_headers[] = {
    "Title", "Campaign", "Subject",  "Params",   "Attachment", "Cc",
    "Bcc",   "Reply-To", "Language", "Audience", "Follows",
};
#define NKNOWN (sizeof(known_headers) / sizeof(known_headers[0]))

/* Headers a file may give more than once. */
static int repeatable(const char *name)
{
	return !strcmp(name, "Attachment");
}

static void file_clear(struct letter_file *f)
{
	free(f->language);
	free(f->path);
	free(f->dir);
	free(f->bytes);
	for (size_t i = 0; i < f->nheaders; i++) {
		free(f->headers[i].name);
		free(f->headers[i].src);
		mustache_free(f->headers[i].tpl);
	}
	free(f->headers);
	for (size_t i = 0; i < f->nparams; i++)
		free(f->params[i]);
	free(f->params);
	free(f->body_src);
	mustache_free(f->body);
	memset(f, 0, sizeof(*f));
}

void letter_free(struct letter *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nfiles; i++)
		file_clear(&l->files[i]);
	free(l->files);
	free(l->languages);
	for (size_t i = 0; i < l->nparams; i++)
		free(l->params[i]);
	free(l->params);
	mustache_partials_free(l->partials);
	free(l->path);
	free(l->layout_dir);
	free(l);
}

/*
 * Refuses what is not a regular file (a FIFO or /dev/zero would never end) or is over
 * LETTER_MAX_SIZE, before reading it. Returns EX_OK, EX_NOINPUT (missing) or EX_DATAERR,
 * with a problem in d (when not NULL) at file:line.
 */
static int check_size(const char *path, const char *file, long line, struct diags *d)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		if (d)
			diags_add(d, DIAG_ERROR, file ? file : path, line, NULL,
			          "cannot read %s: %s", path, strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : EX_DATAERR;
	}
	if (!S_ISREG(st.st_mode)) {
		if (d)
			diags_add(d, DIAG_ERROR, file ? file : path, line, NULL,
			          "%s is not a regular file", path);
		return EX_DATAERR;
	}
	if (st.st_size > LETTER_MAX_SIZE) {
		if (d)
			diags_add(d, DIAG_ERROR, file ? file : path, line, NULL,
			          "%s: %lld bytes, over the %d byte limit (1 MiB) of a letter file",
			          path, (long long)st.st_size, LETTER_MAX_SIZE);
		return EX_DATAERR;
	}
	return EX_OK;
}

/* Partials and parents: NAME.mustache in the letter's folder, then in the layout folder. */
static int load_partial(void *user, const char *name, char **src, size_t *len)
{
	const struct letter *l = user;
	const char *dirs[2];

	if (!*name || strstr(name, "..") || name[0] == '/')
		return -1;
	dirs[0] = l->nfiles ? l->files[0].dir : NULL;
	dirs[1] = l->layout_dir;
	for (size_t i = 0; i < 2; i++) {
		char *p;
		int rc;

		if (!dirs[i])
			continue;
		p = xasprintf("%s/%s.mustache", dirs[i], name);
		rc = check_size(p, NULL, 0, NULL) == EX_OK ? read_file(p, src, len) : -1;
		free(p);
		if (rc == 0)
			return 0;
	}
	return -1;
}

/* Reports each line holding invalid UTF-8 or a NUL byte; returns how many. */
static int check_utf8(const char *path, const char *s, size_t n, struct diags *d)
{
	long line = 1, bad_line = 0;
	int bad = 0;

	for (size_t i = 0; i < n;) {
		size_t k = s[i] ? utf8_seq(s + i, n - i) : 0;

		if (k == 0) {
			if (bad_line != line)
				diags_add(d, DIAG_ERROR, path, line, NULL,
				          "invalid UTF-8 (byte 0x%02x); letters must be UTF-8",
				          (unsigned char)s[i]);
			bad_line = line;
			bad++;
			i++;
			continue;
		}
		if (s[i] == '\n')
			line++;
		i += k;
	}
	return bad;
}

/* Adds the message of a failed mustache_compile() as a diagnostic with its own location. */
static void add_compile_error(struct diags *d, const char *path, long line, const char *err)
{
	size_t n = strlen(path);
	char *end;
	long at;

	/* The engine says "NAME:LINE: message"; keep the location as a location. */
	if (err && !strncmp(err, path, n) && err[n] == ':') {
		at = strtol(err + n + 1, &end, 10);
		if (end != err + n + 1 && end[0] == ':') {
			end++;
			while (*end == ' ')
				end++;
			diags_add(d, DIAG_ERROR, path, at, NULL, "%s", end);
			return;
		}
	}
	diags_add(d, DIAG_ERROR, path, line, NULL, "%s", err ? err : "bad template");
}

static int compile(const char *path, const char *src, size_t len, long line,
                   struct mustache_template **out, struct diags *d)
{
	char *err = NULL;
	int rc = mustache_compile(src, len, path, (int)line, out, &err);

	if (rc != EX_OK) {
		add_compile_error(d, path, line, err);
		*out = NULL;
	}
	free(err);
	return rc;
}

static const struct header *find_header(const struct letter_file *f, const char *name)
{
	for (size_t i = 0; i < f->nheaders; i++)
		if (!strcmp(f->headers[i].name, name))
			return &f->headers[i];
	return NULL;
}

static int valid_param_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static int has_string(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static void parse_params(struct letter_file *f, const struct header *h, struct diags *d)
{
	char *copy = xstrdup(h->src), *save = NULL;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *e;

		while (isspace((unsigned char)*tok))
			tok++;
		e = tok + strlen(tok);
		while (e > tok && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!valid_param_name(tok)) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
			          "Params: '%s' is not a name (letters, digits, '_' or '-')", tok);
			continue;
		}
		if (has_string(f->params, f->nparams, tok))
			continue;
		f->params = xreallocarray(f->params, f->nparams + 1, sizeof(*f->params));
		f->params[f->nparams++] = xstrdup(tok);
	}
	free(copy);
}

static const char *canonical_header(const char *name, size_t n)
{
	for (size_t i = 0; i < NKNOWN; i++)
		if (strlen(known_headers[i]) == n && !strncasecmp(known_headers[i], name, n))
			return known_headers[i];
	return NULL;
}

/* A language code as in a file name: "en", "fr", "pt-BR". */
static int valid_language(const char *s)
{
	size_t n = 0;

	while (islower((unsigned char)s[n]))
		n++;
	if (n < 2 || n > 3)
		return 0;
	if (!s[n])
		return 1;
	if (s[n] != '-' || !s[n + 1])
		return 0;
	for (s += n + 1; *s; s++)
		if (!isalnum((unsigned char)*s))
			return 0;
	return 1;
}

/*
 * Parses f->bytes: headers (RFC 5322 section 2.2: "Name: value", unfolded per section
 * 2.2.3), a blank line, the body. Returns the number of errors added.
 */
static size_t parse_file(struct letter_file *f, struct diags *d)
{
	size_t errors0 = d->errors;
	const char *p = f->bytes, *end = f->bytes + f->len;
	long line = 1;
	int nattach = 0;

	if (f->len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	for (;;) {
		const char *eol, *colon, *nm;
		struct buf val = BUF_INIT;
		const char *canon;
		long hline = line;
		size_t nlen;

		if (p >= end) {
			diags_add(d, DIAG_ERROR, f->path, line, NULL,
			          "no blank line after the headers (a letter is headers, a blank "
			          "line, then the Markdown body)");
			return d->errors - errors0;
		}
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (eol == p || (eol == p + 1 && *p == '\r')) {
			p = eol < end ? eol + 1 : end;
			line++;
			break;
		}
		colon = memchr(p, ':', (size_t)(eol - p));
		nm = p;
		nlen = colon ? (size_t)(colon - p) : 0;
		if (!colon || nlen == 0 || memchr(p, ' ', nlen) || memchr(p, '\t', nlen)) {
			diags_add(
			    d, DIAG_ERROR, f->path, line, NULL,
			    "not a header line (expected 'Name: value' headers, a blank line, "
			    "then the Markdown body)");
			return d->errors - errors0;
		}
		buf_add(&val, colon + 1, (size_t)(eol - colon - 1));
		p = eol < end ? eol + 1 : end;
		line++;
		/* Continuation lines (folding) start with blank space. */
		while (p < end && (*p == ' ' || *p == '\t')) {
			eol = memchr(p, '\n', (size_t)(end - p));
			if (!eol)
				eol = end;
			buf_addc(&val, ' ');
			buf_add(&val, p, (size_t)(eol - p));
			p = eol < end ? eol + 1 : end;
			line++;
		}
		/* Trim blank space and a CR from both ends. */
		{
			char *v = val.data ? val.data : (char *)"";
			size_t vl = val.len, s = 0;

			while (s < vl && isspace((unsigned char)v[s]))
				s++;
			while (vl > s && isspace((unsigned char)v[vl - 1]))
				vl--;
			canon = canonical_header(nm, nlen);
			if (!canon) {
				diags_add(d, DIAG_ERROR, f->path, hline, NULL,
				          "unknown header '%.*s' (known: Title, Campaign, Subject, "
				          "Params, Attachment, Cc, Reply-To, Language, "
				          "Audience, Follows)",
				          (int)nlen, nm);
			} else if (!strcmp(canon, "Bcc")) {
				/* Known only to be refused with its reason, not as unknown. */
				diags_add(
				    d, DIAG_ERROR, f->path, hline, NULL,
				    "Bcc is refused: a hidden recipient is not allowed in a "
				    "letter to a mission (every address it goes to shows; use "
				    "Cc)");
			} else if (!repeatable(canon) && find_header(f, canon)) {
				diags_add(d, DIAG_ERROR, f->path, hline, NULL,
				          "header '%s' given twice", canon);
			} else if (!strcmp(canon, "Attachment") &&
			           ++nattach > LETTER_MAX_ATTACHMENTS) {
				if (nattach == LETTER_MAX_ATTACHMENTS + 1)
					diags_add(d, DIAG_ERROR, f->path, hline, NULL,
					          "more than %d attachments",
					          LETTER_MAX_ATTACHMENTS);
			} else {
				struct header *h;

				f->headers =
				    xreallocarray(f->headers, f->nheaders + 1, sizeof(*f->headers));
				h = &f->headers[f->nheaders++];
				h->name = xstrdup(canon);
				h->src = xstrndup(v + s, vl - s);
				h->line = hline;
				h->tpl = NULL;
			}
		}
		buf_free(&val);
	}
	f->body_line = line;
	f->body_src = xstrndup(p, (size_t)(end - p));

	for (size_t i = 0; i < f->nheaders; i++) {
		struct header *h = &f->headers[i];

		if (!strcmp(h->name, "Params")) {
			parse_params(f, h, d);
			continue;
		}
		if (!strcmp(h->name, "Language"))
			continue;
		/* Audience: who may receive the appeal; a fixed word, not a template. */
		if (!strcmp(h->name, "Audience")) {
			if (strcasecmp(h->src, "any") && strcasecmp(h->src, "parties"))
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "Audience: '%s': write 'parties' (the default: States "
				          "Parties on the sending date) or 'any' (former parties "
				          "too)",
				          h->src);
			continue;
		}
		if (!strcmp(h->name, "Attachment") && !strstr(h->src, "{{")) {
			/* Known now: refused at load; a rendered one is checked when opened. */
			char *why = NULL;

			if (confine_check_path(h->src, &why) != EX_OK)
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "Attachment '%s' refused: %s", h->src, why);
			free(why);
		}
		compile(f->path, h->src, strlen(h->src), h->line, &h->tpl, d);
	}
	compile(f->path, f->body_src, strlen(f->body_src), f->body_line, &f->body, d);
	if (!find_header(f, "Subject"))
		diags_add(d, DIAG_ERROR, f->path, 1, NULL, "no Subject header");
	if (!find_header(f, "Campaign"))
		diags_add(d, DIAG_ERROR, f->path, 1, NULL,
		          "no Campaign header (the id the ledger records, e.g. asp24-priorities)");
	return d->errors - errors0;
}

/* Reads and parses one file into f; returns EX_OK, EX_NOINPUT or EX_DATAERR. */
static int load_file(struct letter_file *f, const char *path, const char *language, struct diags *d)
{
	char *copy;
	const struct header *lang;
	int rc;

	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	copy = xstrdup(path);
	f->dir = xstrdup(dirname(copy));
	free(copy);
	rc = check_size(path, NULL, 0, d);
	if (rc != EX_OK)
		return rc;
	if (read_file(path, &f->bytes, &f->len) != 0) {
		diags_add(d, DIAG_ERROR, path, 0, NULL, "cannot read: %s", strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : EX_DATAERR;
	}
	if (check_utf8(path, f->bytes, f->len, d))
		return EX_DATAERR;
	if (parse_file(f, d))
		return EX_DATAERR;
	lang = find_header(f, "Language");
	if (lang && !valid_language(lang->src)) {
		diags_add(d, DIAG_ERROR, path, lang->line, NULL,
		          "Language: '%s' is not a language code such as en, fr, es", lang->src);
		return EX_DATAERR;
	}
	if (language && lang && strcmp(lang->src, language)) {
		diags_add(d, DIAG_ERROR, path, lang->line, NULL,
		          "Language: %s disagrees with the file name (%s.md)", lang->src, language);
		return EX_DATAERR;
	}
	f->language = xstrdup(language ? language : lang ? lang->src : "en");
	return EX_OK;
}

static int cmp_language(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	if (!strcmp(x, y))
		return 0;
	if (!strcmp(x, "en"))
		return -1;
	if (!strcmp(y, "en"))
		return 1;
	return strcmp(x, y);
}

/* The LANG.md names in dir, sorted en first; returns how many. */
static size_t list_languages(const char *dir, char ***out)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*out = NULL;
	if (!dp)
		return 0;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);
		char *lang;

		if (len < 4 || strcmp(de->d_name + len - 3, ".md"))
			continue;
		lang = xstrndup(de->d_name, len - 3);
		if (!valid_language(lang)) {
			free(lang);
			continue;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = lang;
	}
	closedir(dp);
	if (n)
		qsort(v, n, sizeof(*v), cmp_language);
	*out = v;
	return n;
}

static void compute_hash(struct letter *l)
{
	struct digest *d = digest_new();

	for (size_t i = 0; i < l->nfiles; i++)
		digest_update(d, l->files[i].bytes, l->files[i].len);
	digest_final_hex(d, l->hash);
	digest_free(d);
}

int letter_load(const char *path, const char *layout_dir, struct letter **out, struct diags *d)
{
	struct letter *l = xcalloc(1, sizeof(*l));
	char **langs = NULL;
	size_t nlangs = 0;
	struct stat st;
	int rc = EX_OK;

	*out = NULL;
	l->path = xstrdup(path);
	l->layout_dir = layout_dir ? xstrdup(layout_dir) : NULL;
	if (stat(path, &st) != 0) {
		diags_add(d, DIAG_ERROR, path, 0, NULL, "no such letter: %s", strerror(errno));
		rc = EX_NOINPUT;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		nlangs = list_languages(path, &langs);
		if (!nlangs) {
			diags_add(d, DIAG_ERROR, path, 0, NULL,
			          "no letter files here (expected en.md, fr.md, ...)");
			rc = EX_NOINPUT;
			goto out;
		}
		l->files = xcalloc(nlangs, sizeof(*l->files));
		for (size_t i = 0; i < nlangs; i++) {
			char *p = xasprintf("%s/%s.md", path, langs[i]);
			int r = load_file(&l->files[l->nfiles++], p, langs[i], d);

			free(p);
			if (r != EX_OK && rc == EX_OK)
				rc = r;
		}
	} else {
		l->files = xcalloc(1, sizeof(*l->files));
		rc = load_file(&l->files[l->nfiles++], path, NULL, d);
	}
	if (rc != EX_OK)
		goto out;

	l->languages = xcalloc(l->nfiles, sizeof(*l->languages));
	for (size_t i = 0; i < l->nfiles; i++) {
		struct letter_file *f = &l->files[i];

		l->languages[i] = f->language;
		for (size_t j = 0; j < f->nparams; j++) {
			if (has_string(l->params, l->nparams, f->params[j]))
				continue;
			l->params = xreallocarray(l->params, l->nparams + 1, sizeof(*l->params));
			l->params[l->nparams++] = xstrdup(f->params[j]);
		}
	}
	compute_hash(l);
	l->partials = mustache_partials_new(load_partial, l);
	*out = l;
	l = NULL;
out:
	for (size_t i = 0; i < nlangs; i++)
		free(langs[i]);
	free(langs);
	letter_free(l);
	return rc;
}

int letter_audience_any(const struct letter *l)
{
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct header *h = find_header(&l->files[i], "Audience");
		if (h && !strcasecmp(h->src, "any"))
			return 1;
	}
	return 0;
}

const char *letter_path(const struct letter *l)
{
	return l->path;
}

const char *const *letter_languages(const struct letter *l, size_t *n)
{
	*n = l->nfiles;
	return l->languages;
}

int letter_has_language(const struct letter *l, const char *language)
{
	for (size_t i = 0; i < l->nfiles; i++)
		if (!strcmp(l->files[i].language, language))
			return 1;
	return 0;
}

const char *const *letter_params(const struct letter *l, size_t *n)
{
	*n = l->nparams;
	return (const char *const *)l->params;
}

const char *letter_hash(const struct letter *l)
{
	return l->hash;
}

/* The file for language, else en, else the first; *fell_back = 1 when not language's own. */
static const struct letter_file *pick_file(const struct letter *l, const char *language,
                                           int *fell_back)
{
	*fell_back = 0;
	if (!language)
		language = "en";
	for (size_t i = 0; i < l->nfiles; i++)
		if (!strcmp(l->files[i].language, language))
			return &l->files[i];
	*fell_back = 1;
	for (size_t i = 0; i < l->nfiles; i++)
		if (!strcmp(l->files[i].language, "en"))
			return &l->files[i];
	return &l->files[0];
}

const char *letter_header_source(const struct letter *l, const char *language, const char *name)
{
	int fb;
	const struct header *h = find_header(pick_file(l, language, &fb), name);

	return h ? h->src : NULL;
}

/* Renders one header value; a rendered line break is refused (header injection). */
static int render_header(const struct letter_file *f, const struct header *h, json_t *ctx,
                         const struct mustache_render_opts *opts, char **out, struct diags *d)
{
	struct buf b = BUF_INIT;
	int rc = mustache_render(h->tpl, ctx, opts, &b);

	*out = NULL;
	if (rc != EX_OK) {
		buf_free(&b);
		return rc;
	}
	if (strpbrk(buf_str(&b), "\r\n")) {
		diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
		          "%s renders with a line break; a header value must be one line", h->name);
		buf_free(&b);
		return EX_DATAERR;
	}
	*out = buf_detach(&b);
	return EX_OK;
}

int letter_campaign_id(const struct letter *l, char **id, struct diags *d)
{
	struct mustache_render_opts opts = {MUSTACHE_ESCAPE_NONE, 1, 0, l->partials, d};
	json_t *empty = json_object();
	int rc = EX_OK;

	*id = NULL;
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct letter_file *f = &l->files[i];
		const struct header *h = find_header(f, "Campaign");
		size_t e0 = d->errors;
		char *v = NULL;

		if (!h) {
			diags_add(d, DIAG_ERROR, f->path, 1, NULL, "no Campaign header");
			rc = EX_DATAERR;
			continue;
		}
		if (render_header(f, h, empty, &opts, &v, d) != EX_OK) {
			if (d->errors > e0)
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "Campaign needs variables: this is a template; draft an "
				          "appeal from it first");
			rc = EX_DATAERR;
			continue;
		}
		if (!*v) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL, "Campaign is empty");
			rc = EX_DATAERR;
		} else if (*id && strcmp(*id, v)) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
			          "Campaign '%s' differs from '%s' in %s", v, *id,
			          l->files[0].path);
			rc = EX_DATAERR;
		}
		if (!*id)
			*id = v;
		else
			free(v);
	}
	json_decref(empty);
	if (rc != EX_OK) {
		free(*id);
		*id = NULL;
	}
	return rc;
}

void letter_out_free(struct letter_out *out)
{
	if (!out)
		return;
	free(out->language);
	free(out->title);
	free(out->subject);
	free(out->campaign);
	free(out->cc);
	free(out->bcc);
	free(out->reply_to);
	for (size_t i = 0; i < out->nattachments; i++) {
		free(out->attachments[i]);
		free(out->attachment_rel[i]);
	}
	free(out->attachments);
	free(out->attachment_rel);
	free(out->attachment_dir);
	free(out->text);
	free(out->md);
	free(out->html);
	memset(out, 0, sizeof(*out));
}

static char *resolve_path(const char *dir, const char *rel)
{
	if (rel[0] == '/' || !strcmp(dir, "."))
		return xstrdup(rel);
	return xasprintf("%s/%s", dir, rel);
}

int letter_render_text(const struct letter *l, const char *language, json_t *ctx,
                       struct letter_out *out, struct diags *d)
{
	struct mustache_render_opts hopts = {MUSTACHE_ESCAPE_NONE, 1, 0, l->partials, d};
	struct mustache_render_opts bopts = {MUSTACHE_ESCAPE_MARKDOWN, 1, 0, l->partials, d};
	const struct letter_file *f;
	struct buf body = BUF_INIT;
	size_t e0 = d->errors;
	int fell_back, rc = EX_OK;
	long long attach_size = 0;
	struct stat st;

	memset(out, 0, sizeof(*out));
	f = pick_file(l, language, &fell_back);
	out->language = xstrdup(f->language);
	out->fell_back = fell_back;
	for (size_t i = 0; i < f->nheaders; i++) {
		const struct header *h = &f->headers[i];
		char *v = NULL, **slot = NULL;

		if (!h->tpl)
			continue; /* Params, Language */
		if (render_header(f, h, ctx, &hopts, &v, d) != EX_OK) {
			rc = EX_DATAERR;
			continue;
		}
		if (!strcmp(h->name, "Title"))
			slot = &out->title;
		else if (!strcmp(h->name, "Subject"))
			slot = &out->subject;
		else if (!strcmp(h->name, "Campaign"))
			slot = &out->campaign;
		else if (!strcmp(h->name, "Cc"))
			slot = &out->cc;
		else if (!strcmp(h->name, "Reply-To"))
			slot = &out->reply_to;
		if (slot) {
			*slot = v;
			continue;
		}
		if (!strcmp(h->name, "Follows")) { /* read as its source (letter_header_source) */
			free(v);
			continue;
		}
		/* Attachment */
		if (!*v) {
			diags_add(d, DIAG_ERROR, f->path, h->line, NULL, "Attachment is empty");
			rc = EX_DATAERR;
			free(v);
			continue;
		}
		if (!out->attachment_dir)
			out->attachment_dir = xstrdup(f->dir);
		out->attachments = xreallocarray(out->attachments, out->nattachments + 1,
		                                 sizeof(*out->attachments));
		out->attachment_rel = xreallocarray(out->attachment_rel, out->nattachments + 1,
		                                    sizeof(*out->attachment_rel));
		out->attachments[out->nattachments] = resolve_path(f->dir, v);
		out->attachment_rel[out->nattachments] = v;
		out->nattachments++;
		/* Opened as send will open it: inside the folder, a regular file. */
		{
			char *why = NULL;
			int fd, r = confine_open(f->dir, v, &fd, &st, NULL, &why);

			if (r != EX_OK) {
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "Attachment '%s' refused: %s", v, why);
				rc = EX_DATAERR;
			} else if ((attach_size += st.st_size) > LETTER_MAX_ATTACH_SIZE) {
				diags_add(d, DIAG_ERROR, f->path, h->line, NULL,
				          "attachments up to '%s' total %lld bytes, over the %ld "
				          "byte limit (25 MB)",
				          out->attachments[out->nattachments - 1], attach_size,
				          LETTER_MAX_ATTACH_SIZE);
				rc = EX_DATAERR;
			}
			if (fd >= 0)
				close(fd);
			free(why);
		}
	}
	/* About the size of its source: no regrowth as it is rendered. */
	buf_grow(&body, strlen(f->body_src) + 256);
	if (mustache_render(f->body, ctx, &bopts, &body) != EX_OK)
		rc = EX_DATAERR;
	if (rc == EX_OK && d->errors > e0)
		rc = EX_DATAERR;
	if (rc != EX_OK) {
		buf_free(&body);
		letter_out_free(out);
		return rc;
	}
	if (!out->title)
		out->title = xstrdup(out->subject ? out->subject : "");
	/* The text part from cmark's tree (letter/plaintext.h), not from the source; the
	 * Markdown is kept for letter_html(). */
	out->md = markdown_renumber(buf_str(&body));
	out->text = plaintext_from_markdown(out->md, strlen(out->md));
	buf_free(&body);
	return EX_OK;
}

char *letter_html(const struct letter_out *lo)
{
	return markdown_html_document(lo->md, strlen(lo->md), lo->title);
}

int letter_render(const struct letter *l, const char *language, json_t *ctx, struct letter_out *out,
                  struct diags *d)
{
	int rc = letter_render_text(l, language, ctx, out, d);

	if (rc == EX_OK)
		out->html = letter_html(out);
	return rc;
}

/* One file draft writes: its name in the appeal's folder and its bytes. */
struct draft_out {
	char *name;
	char *data;
	size_t len;
	mode_t mode;
	char *source; /* an attachment's canonical path; NULL for LANG.md */
	char *tmp;    /* its temporary name while written, NULL once renamed or removed */
	int placed;   /* renamed into place over nothing: removed again when a later one fails */
};

struct draft_outs {
	struct draft_out *v;
	size_t n;
};

static void draft_outs_free(struct draft_outs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].name);
		free(o->v[i].data);
		free(o->v[i].source);
		free(o->v[i].tmp);
	}
	free(o->v);
	memset(o, 0, sizeof(*o));
}

/*
 * Adds a file to write (takes data and source). The same attachment named twice (e.g. by
 * each language) is written once; two different files under one name are refused, so that
 * one never silently replaces the other (an attachment called fr.md, or a/x.pdf and b/x.pdf).
 */
static int draft_add(struct draft_outs *o, const char *name, char *data, size_t len, mode_t mode,
                     char *source, const char *file, long line, struct diags *d)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->v[i].name, name))
			continue;
		if (source && o->v[i].source && !strcmp(source, o->v[i].source)) {
			free(data);
			free(source);
			return EX_OK;
		}
		diags_add(d, DIAG_ERROR, file, line, NULL,
		          "two different files would be written as '%s' in the appeal's folder",
		          name);
		free(data);
		free(source);
		return EX_DATAERR;
	}
	o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
	o->v[o->n] = (struct draft_out){xstrdup(name), data, len, mode, source, NULL, 0};
	o->n++;
	return EX_OK;
}

/* Reads the attachment rel of f (as confine_open() allows) into o. */
static int draft_attachment(const struct letter_file *f, const struct header *h, const char *rel,
                            struct draft_outs *o, struct diags *d)
{
	char *why = NULL, *resolved = NULL, *data = NULL;
	const char *base = strrchr(rel, '/');
	struct stat st;
	size_t len = 0;
	int fd, rc;

	rc = confine_open(f->dir, rel, &fd, &st, &resolved, &why);
	if (rc == EX_OK) {
		rc = confine_read(fd, LETTER_MAX_ATTACH_SIZE, &data, &len, &why);
		close(fd);
	}
	if (rc != EX_OK) {
		diags_add(d, DIAG_ERROR, f->path, h->line, NULL, "Attachment '%s' refused: %s", rel,
		          why);
		free(why);
		free(resolved);
		return EX_DATAERR;
	}
	/* The copy is never more open than its source: its read and write bits, no more. */
	return draft_add(o, base ? base + 1 : rel, data, len, st.st_mode & 0666, resolved, f->path,
	                 h->line, d);
}

/* Removes what this draft created: temporary files, and files it put where none was. */
static void draft_rollback(int dfd, struct draft_outs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		if (o->v[i].tmp)
			unlinkat(dfd, o->v[i].tmp, 0);
		if (o->v[i].placed)
			unlinkat(dfd, o->v[i].name, 0);
	}
}

/*
 * Writes o into dir: each file new under a temporary name (O_EXCL | O_NOFOLLOW: nothing
 * planted there is followed), then each renamed into place. rename() replaces a symlink
 * or a hard link at the name instead of writing through it.
 */
static int draft_write(const char *dir, struct draft_outs *o, struct diags *d)
{
	char *path = xstrdup(dir);
	int dfd, rc = EX_OK;

	/* "DIR/" would make O_NOFOLLOW follow DIR itself. */
	for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
		path[n - 1] = '\0';
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		diags_add(d, DIAG_ERROR, dir, 0, NULL, "%s",
		          errno == ELOOP || errno == ENOTDIR
		              ? "a symlink or not a folder; draft does not write through a "
		                "symlink (name the real folder)"
		              : strerror(errno));
		free(path);
		return EX_CANTCREAT;
	}
	for (size_t i = 0; i < o->n && rc == EX_OK; i++) {
		struct draft_out *w = &o->v[i];
		int fd = -1;

		for (unsigned k = 0; k < 100 && fd < 0; k++) {
			free(w->tmp);
			w->tmp = xasprintf(".draft-%ld-%zu-%u.tmp", (long)getpid(), i, k);
			fd = openat(dfd, w->tmp,
			            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, w->mode);
			if (fd < 0 && errno != EEXIST)
				break;
		}
		if (fd < 0) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot create %s: %s", w->tmp,
			          strerror(errno));
			free(w->tmp);
			w->tmp = NULL;
			rc = EX_CANTCREAT;
			break;
		}
		if (write_all(fd, w->data, w->len) != 0) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot write %s: %s", w->name,
			          strerror(errno));
			rc = EX_IOERR;
		}
		if (close(fd) != 0 && rc == EX_OK) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot write %s: %s", w->name,
			          strerror(errno));
			rc = EX_IOERR;
		}
	}
	for (size_t i = 0; i < o->n && rc == EX_OK; i++) {
		struct draft_out *w = &o->v[i];
		struct stat st;
		int existed = fstatat(dfd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0;

		if (renameat(dfd, w->tmp, dfd, w->name) != 0) {
			diags_add(d, DIAG_ERROR, dir, 0, NULL, "cannot write %s: %s", w->name,
			          strerror(errno));
			rc = EX_CANTCREAT;
			break;
		}
		free(w->tmp);
		w->tmp = NULL;
		w->placed = !existed;
	}
	if (rc != EX_OK)
		draft_rollback(dfd, o);
	close(dfd);
	free(path);
	return rc;
}

/* Renders one file residually into out (headers then body); its attachments read into o. */
static int draft_file(const struct letter *l, const struct letter_file *f, json_t *params,
                      struct draft_outs *o, struct buf *out, struct diags *d)
{
	struct mustache_render_opts hopts = {MUSTACHE_ESCAPE_NONE, 0, 1, l->partials, d};
	struct mustache_render_opts bopts = {MUSTACHE_ESCAPE_MARKDOWN, 0, 1, l->partials, d};
	int rc = EX_OK;

	for (size_t i = 0; i < f->nheaders; i++) {
		const struct header *h = &f->headers[i];
		char *v = NULL;

		if (!h->tpl) {
			/* Params are filled; Language is the file name now; Audience stays. */
			if (!strcmp(h->name, "Audience"))
				buf_addf(out, "Audience: %s\n", h->src);
			continue;
		}
		if (render_header(f, h, params, &hopts, &v, d) != EX_OK) {
			rc = EX_DATAERR;
			continue;
		}
		if (!strcmp(h->name, "Attachment")) {
			const char *base = strrchr(v, '/');
			char *name = xstrdup(base ? base + 1 : v);
			int r = draft_attachment(f, h, v, o, d);

			if (r != EX_OK)
				rc = r;
			free(v);
			v = name;
		}
		buf_addf(out, "%s: %s\n", h->name, v);
		free(v);
	}
	buf_addc(out, '\n');
	if (mustache_render(f->body, params, &bopts, out) != EX_OK)
		rc = EX_DATAERR;
	return rc;
}

int letter_draft(const struct letter *l, json_t *params, const char *dir, struct diags *d)
{
	struct draft_outs o = {0};
	struct buf b = BUF_INIT;
	size_t e0 = d->errors;
	int rc = EX_OK;

	if (!json_is_object(params)) {
		diags_add(d, DIAG_ERROR, NULL, 0, NULL, "the params must be a JSON object");
		return EX_DATAERR;
	}
	for (size_t i = 0; i < l->nparams; i++)
		if (!json_object_get(params, l->params[i]))
			diags_add(d, DIAG_ERROR, l->path, 0, NULL, "missing param '%s'",
			          l->params[i]);
	if (d->errors > e0)
		return EX_DATAERR;
	/* Everything rendered and read before anything is written. */
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct letter_file *f = &l->files[i];
		char *name = xasprintf("%s.md", f->language);
		int r;

		buf_reset(&b);
		r = draft_file(l, f, params, &o, &b, d);
		if (r == EX_OK) {
			size_t len = b.len;

			r = draft_add(&o, name, buf_detach(&b), len, 0666, NULL, f->path, 0, d);
		}
		if (r != EX_OK && rc == EX_OK)
			rc = r;
		free(name);
	}
	if (rc == EX_OK)
		rc = draft_write(dir, &o, d);
	buf_free(&b);
	draft_outs_free(&o);
	return rc;
}

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void add_dir(char ***v, size_t *n, char *dir)
{
	char *real = realpath(dir, NULL);

	if (!real || !is_dir(real)) {
		free(real);
		free(dir);
		return;
	}
	for (size_t i = 0; i < *n; i++) {
		char *other = realpath((*v)[i], NULL);
		int same = other && !strcmp(other, real);

		free(other);
		if (same) {
			free(real);
			free(dir);
			return;
		}
	}
	free(real);
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = dir;
}

size_t letter_template_dirs(char ***dirs)
{
	const char *env = getenv("DEMARCHE_TEMPLATES");
	char **v = NULL, **data;
	size_t n = 0, ndata;

	if (env && *env) {
		add_dir(&v, &n, xstrdup(env));
		*dirs = v;
		return n;
	}
	add_dir(&v, &n, xstrdup("templates"));
	/* the installed share folder, the source tree (base/datadir.h) */
	ndata = datadir_list(&data);
	for (size_t i = 0; i < ndata; i++)
		add_dir(&v, &n, xasprintf("%s/templates", data[i]));
	for (size_t i = 0; i < ndata; i++)
		free(data[i]);
	free(data);
	*dirs = v;
	return n;
}

int letter_find_template(const char *id, char **path, char **layout_dir, char **errstr)
{
	char **dirs = NULL;
	size_t n = letter_template_dirs(&dirs);
	int rc = EX_NOINPUT;

	*path = *layout_dir = NULL;
	if (strchr(id, '/')) {
		if (is_dir(id) || access(id, R_OK) == 0) {
			char *copy = xstrdup(id), *parent, *lay;

			while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
				copy[strlen(copy) - 1] = '\0';
			*path = xstrdup(copy);
			parent = dirname(copy);
			lay = xasprintf("%s/_layout", parent);
			if (is_dir(lay))
				*layout_dir = lay;
			else
				free(lay);
			free(copy);
			rc = EX_OK;
		} else {
			error_set(errstr, EX_NOINPUT, "%s: no such template", id);
		}
		goto out;
	}
	if (!*id || id[0] == '_' || id[0] == '.' || strstr(id, "..")) {
		error_set(errstr, EX_NOINPUT, "'%s' is not a template name", id);
		goto out;
	}
	for (size_t i = 0; i < n && rc != EX_OK; i++) {
		char *p = xasprintf("%s/%s", dirs[i], id);

		if (is_dir(p)) {
			char *lay = xasprintf("%s/_layout", dirs[i]);

			*path = p;
			if (is_dir(lay))
				*layout_dir = lay;
			else
				free(lay);
			rc = EX_OK;
		} else {
			free(p);
		}
	}
	if (rc != EX_OK) {
		struct buf b = BUF_INIT;

		for (size_t i = 0; i < n; i++)
			buf_addf(&b, "%s%s", i ? ", " : "", dirs[i]);
		error_set(errstr, EX_NOINPUT,
		          "no template '%s' in %s (see 'demarche templates'; DEMARCHE_TEMPLATES "
		          "names another folder)",
		          id, n ? buf_str(&b) : "any template folder");
		buf_free(&b);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	return rc;
}
