/* Letter files: headers + Markdown body per language, compiled once, rendered per mission. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/confine.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strutil.h"
#include "base/utf8.h"
#include "base/xalloc.h"
#include "letter/letter.h"
#include "letter/letter_int.h"
#include "letter/mustache.h"

/* Follows: a reminder names the campaign it follows (campaign/followup.h). */
static const char *const known_headers[] = {
    "Title", "Campaign", "Subject",  "Params",   "Attachment", "Cc",
    "Bcc",   "Reply-To", "Language", "Audience", "Follows",    "Form",
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

const struct header *letter_find_header(const struct letter_file *f, const char *name)
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
				          "Audience, Follows, Form)",
				          (int)nlen, nm);
			} else if (!strcmp(canon, "Bcc")) {
				/* Known only to be refused with its reason, not as unknown. */
				diags_add(
				    d, DIAG_ERROR, f->path, hline, NULL,
				    "Bcc is refused: a hidden recipient is not allowed in a "
				    "letter to a mission (every address it goes to shows; use "
				    "Cc)");
			} else if (!repeatable(canon) && letter_find_header(f, canon)) {
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
		/* Form: how the letter goes (email, pdf, both); a fixed word. */
		if (!strcmp(h->name, "Form")) {
			if (letter_form_parse(h->src) < 0)
				diags_add(
				    d, DIAG_ERROR, f->path, h->line, NULL,
				    "Form: '%s': write email (the letter is the message, the "
				    "default), pdf (a cover note with the letter attached as a "
				    "PDF) or both",
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
	if (!letter_find_header(f, "Subject"))
		diags_add(d, DIAG_ERROR, f->path, 1, NULL, "no Subject header");
	if (!letter_find_header(f, "Campaign"))
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
	lang = letter_find_header(f, "Language");
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

int letter_form_parse(const char *s)
{
	if (!strcasecmp(s, "email"))
		return LETTER_FORM_EMAIL;
	if (!strcasecmp(s, "pdf"))
		return LETTER_FORM_PDF;
	if (!strcasecmp(s, "both"))
		return LETTER_FORM_BOTH;
	return -1;
}

int letter_form_any_pdf(const struct letter *l)
{
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct header *h = letter_find_header(&l->files[i], "Form");
		if (h && letter_form_parse(h->src) > 0)
			return 1;
	}
	return 0;
}

int letter_audience_any(const struct letter *l)
{
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct header *h = letter_find_header(&l->files[i], "Audience");
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
const struct letter_file *letter_pick_file(const struct letter *l, const char *language,
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
	const struct header *h = letter_find_header(letter_pick_file(l, language, &fb), name);

	return h ? h->src : NULL;
}
