/* demarche preview: write the merged messages as .eml files, or the first one to stdout. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/file.h"
#include "base/strutil.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "campaign/followup.h"
#include "campaign/merge.h"
#include "campaign/message.h"
#include "cmd/preview_pdf.h"
#include "mail/decode.h"
#include "mail/rfc2047.h"

const char usage_preview[] =
    "usage: demarche preview APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                        [--where COL=VAL]... [--only KEY,...] [--format eml|text|html|pdf]\n"
    "                        [--out DIR [--force]]\n"
    "\n"
    "Validates as check does, then writes each selected mission's message as DIR/KEY.eml\n"
    "with its HTML part beside it as DIR/KEY.html (open it in a browser), or prints the\n"
    "first selected mission's message on standard output: on a terminal its headers and\n"
    "text part decoded (--format text), else the raw message (--format eml). DIR must be\n"
    "new or empty (--force writes into it anyway). Nothing is written when validation\n"
    "fails (exit 65). SOURCE_DATE_EPOCH, when set, fixes the Date header;\n"
    "DEMARCHE_THREADS sets how many threads compose (default: one per CPU).\n"
    "\n"
    "File names never collide: a key that is not a safe file name ('/', '\\', a control\n"
    "character, a leading '.', over 200 bytes) has those replaced by '_' and gets '-' and 8\n"
    "hex digits of the key's SHA-256 appended, as does a key whose name is taken (ignoring\n"
    "case): a_b gives a_b.eml, a/b gives a_b-HHHHHHHH.eml.\n"
    "\n" MERGE_OPTIONS_USAGE
    "  --format FMT       eml (the message as sent; the default when not on a terminal),\n"
    "                     text (headers and text part decoded; on a terminal), html;\n"
    "                     pdf: each mission's letter as DIR/CAMPAIGN-KEY.pdf instead (--out\n"
    "                     needed; see demarche letter)\n"
    "  --out DIR          write every message into DIR (made if missing; must be empty)\n"
    "  --force            with --out: write into a DIR that holds files\n" APP_OPTIONS_USAGE;

enum preview_format { PF_AUTO, PF_EML, PF_TEXT, PF_HTML };

static int html_view(const struct message *msg, struct buf *b);

struct preview {
	struct message_run mr;
	time_t date;
	const char *out; /* NULL: the first message to stdout */
	enum preview_format format;
	/* OUT/.preview-XXXXXX: written while validating, its files renamed at the end; or, when
	 * OUT is new, PARENT/.OUT.preview-XXXXXX renamed over it at once (whole = 1) */
	char *stage;
	int whole;
	size_t staged, written;
	/* The file names used so far (see name_for_key()): a set ignoring ASCII case,
	 * open addressing, for 10,000 missions without a quadratic search. */
	char **names;
	size_t nnames, cap;
	atomic_ulong tmps; /* the workers' temporary names */
	char *err;
};

/*
 * A key as a file name, and the names never collide: the key itself when it is a safe
 * name; otherwise '/', '\', control characters and a leading '.' become '_' (and a name
 * over MAX_NAME bytes is cut), and '-' plus 8 hex digits of the key's SHA-256 are appended,
 * so "a/b" and "a_b" stay two files. A name already used (ignoring case, for file systems
 * that do) gets the hash too, then a counter.
 */
#define MAX_NAME 200 /* bytes of key kept; NAME_MAX is 255 */

static char *sanitise(const char *key, int *changed)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(key);

	*changed = 0;
	if (n > MAX_NAME) {
		n = MAX_NAME;
		while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
			n--; /* not inside a UTF-8 sequence */
		*changed = 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		int bad = c == '/' || c == '\\' || c < 0x20 || c == 0x7F || (i == 0 && c == '.');

		buf_addc(&b, bad ? '_' : (char)c);
		*changed |= bad;
	}
	if (!n) {
		buf_addc(&b, '_');
		*changed = 1;
	}
	return buf_detach(&b);
}

static void key_hash(const char *key, char hex[9])
{
	char full[DIGEST_HEX_SIZE];

	digest_sha256_hex(key, strlen(key), full);
	memcpy(hex, full, 8);
	hex[8] = '\0';
}

/* FNV-1a over the lower-cased name: equal ignoring case, equal hash. */
static size_t name_hash(const char *name)
{
	size_t h = 2166136261u;

	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		h = (h ^ (size_t)tolower(*s)) * 16777619u;
	return h;
}

/* The slot holding name (ignoring case), or the empty slot where it would go. */
static char **name_slot(const struct preview *p, const char *name)
{
	size_t i = name_hash(name) & (p->cap - 1);

	while (p->names[i] && strcasecmp(p->names[i], name))
		i = (i + 1) & (p->cap - 1);
	return &p->names[i];
}

static int name_used(struct preview *p, const char *name)
{
	return p->cap && *name_slot(p, name) != NULL;
}

/* Adds name to the set (takes it). */
static void name_add(struct preview *p, char *name)
{
	if (2 * (p->nnames + 1) > p->cap) { /* at most half full */
		char **old = p->names;
		size_t oldcap = p->cap;

		p->cap = p->cap ? 2 * p->cap : 64;
		p->names = xcalloc(p->cap, sizeof(*p->names));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i])
				*name_slot(p, old[i]) = old[i];
		free(old);
	}
	*name_slot(p, name) = name;
	p->nnames++;
}

/* Candidate k for key (k = 0, 1, ...): base, base-HASH, base-HASH-2, ... */
static char *candidate(const char *base, int changed, const char *hex, unsigned k)
{
	if (k == 0 && !changed)
		return xasprintf("%s.eml", base);
	if (k <= 1)
		return xasprintf("%s-%s.eml", base, hex);
	return xasprintf("%s-%s-%u.eml", base, hex, k);
}

/* Renames from to to unless to exists (EEXIST): one renameat2() where the file system has
 * RENAME_NOREPLACE, else link() and unlink(). */
static int move_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) != 0)
		return -1;
	unlink(from);
	return 0;
}

/*
 * Gives the staged file tmp (a worker's temporary name) its key's final name, the first
 * free one (move_noreplace() refuses a name the file system already holds, e.g. in another case,
 * which moves on to the next). On the caller's thread, in roster order, so the names do not
 * depend on which worker finished first. Returns 0, or -1 with errno.
 */
static int name_for_key(struct preview *p, const char *key, const char *tmp)
{
	int changed, rc = -1;
	char *base = sanitise(key, &changed), hex[9];

	key_hash(key, hex);
	errno = EEXIST;
	for (unsigned k = changed ? 1 : 0; k < 1000; k++) {
		char *name = candidate(base, changed, hex, k), *path;

		if (name_used(p, name)) {
			free(name);
			continue;
		}
		path = xasprintf("%s/%s", p->stage, name);
		rc = move_noreplace(tmp, path);
		if (rc == 0) {
			/* KEY.eml's HTML part as KEY.html: the names are unique as the .eml's are */
			char *from = xasprintf("%s.html", tmp);
			char *to = xasprintf("%.*s.html", (int)(strlen(path) - 4), path);

			/* none when the message has no HTML part */
			if (rename(from, to) != 0 && errno != ENOENT)
				rc = -1;
			free(from);
			free(to);
		}
		free(path);
		if (rc == 0 || errno != EEXIST) {
			name_add(p, name);
			break;
		}
		free(name);
	}
	free(base);
	return rc;
}

/*
 * The validating pass with --out: each message is composed once, and written into the
 * stage folder while no problem has been found; the stage is moved into place only when
 * the whole pass succeeds, so nothing is written when validation fails.
 */
/*
 * Runs on merge_compose's worker threads, so only reads p. Writing before the rows above
 * are known to be valid does no harm: the stage is removed when any row is not.
 */
static int stage_one(void *user, const char *key, struct message *msg, char **errstr)
{
	struct preview *p = user;
	char *path = xasprintf("%s/.tmp-%lu", p->stage, atomic_fetch_add(&p->tmps, 1));
	int fd, rc = EX_OK;

	(void)key;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, msg->data.data, msg->data.len) != 0 || close(fd) != 0) {
		rc = error_set(errstr, EX_IOERR, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	} else {
		/* its HTML part beside it (PATH.html), named with it by name_for_key() */
		struct buf b = BUF_INIT;
		char *hpath = xasprintf("%s.html", path);

		if (msg->html_view) /* known already: no need to parse the message */
			buf_add(&b, msg->html_view, msg->html_view_len);
		if (msg->html_view || html_view(msg, &b) == EX_OK) {
			fd =
			    open(hpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd < 0 || write_all(fd, b.data, b.len) != 0 || close(fd) != 0) {
				rc = error_set(errstr, EX_IOERR, "cannot write %s: %s", hpath,
				               strerror(errno));
				if (fd >= 0)
					close(fd);
			}
		}
		buf_free(&b);
		free(hpath);
	}
	message_free(msg); /* here, on the thread that made it */
	/* The temporary name travels to stage_name() in the message's place. */
	msg->message_id = path;
	return rc;
}

/* With --out: gives what stage_one() wrote its key's name, in roster order. */
static int stage_name(void *user, struct merge *m, const char *key, long line, struct message *msg)
{
	struct preview *p = user;
	char *tmp = msg->message_id;
	int rc = EX_OK;

	(void)line;
	msg->message_id = NULL;
	if (!tmp)
		return EX_OK;
	if (m->d.errors) { /* nothing will be written: the stage goes */
		char *html = xasprintf("%s.html", tmp);

		unlink(tmp);
		unlink(html);
		free(html);
	} else if (name_for_key(p, key, tmp) != 0)
		rc = error_set(&p->err, EX_IOERR, "cannot name %s for %s: %s", tmp, key,
		               strerror(errno));
	else
		p->staged++;
	free(tmp);
	return rc;
}

/* Without --out: the validating pass only composes (merge_compose reports what fails). */
static int compose_only(void *user, struct merge *m, const char *key, long line,
                        struct message *msg)
{
	(void)user, (void)m, (void)key, (void)line, (void)msg;
	return 0;
}

static int str_endswith_eml(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && !strcmp(name + n - 4, ".eml");
}

/* 1 when dir holds anything (a dot file too): preview --out does not mix old and new. */
static int dir_has_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d)))
		found = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return found;
}

/* Moves the staged files into OUT one by one (commit = 1) or removes them; then the stage
 * itself. */
static int unstage(struct preview *p, int commit)
{
	DIR *d = opendir(p->stage);
	struct dirent *e;
	int rc = EX_OK;

	if (!d)
		return error_set(&p->err, EX_IOERR, "cannot read %s: %s", p->stage,
		                 strerror(errno));
	while ((e = readdir(d))) {
		char *from, *to;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		from = xasprintf("%s/%s", p->stage, e->d_name);
		to = xasprintf("%s/%s", p->out, e->d_name);
		if (!commit || e->d_name[0] == '.') /* a worker's file never named: not ours */
			unlink(from);
		else if (rename(from, to) != 0 && rc == EX_OK)
			rc = error_set(&p->err, EX_IOERR, "cannot move %s to %s: %s", from, to,
			               strerror(errno));
		else if (str_endswith_eml(e->d_name))
			p->written++; /* messages, not their .html */
		free(from);
		free(to);
	}
	closedir(d);
	rmdir(p->stage);
	return rc;
}

/* Headers a reader checks, decoded (RFC 2047) and shown in this order. */
static const char *const shown[] = {"From", "To", "Cc", "Reply-To", "Subject", "Date", NULL};

/* Each line of s (CRLF or LF) escaped for the terminal (controls, bidi: base/escape.h). */
static void add_lines(struct buf *b, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, "\n");
		char *line = xstrndup(s, n && s[n - 1] == '\r' ? n - 1 : n);

		esc_term(b, line);
		buf_addc(b, '\n');
		free(line);
		s += n + (s[n] == '\n');
	}
}

/* What a proofreader reads: the shown headers decoded, a blank line, the text part. */
static int text_view(const struct message *msg, struct buf *b)
{
	const char *h = msg->data.data, *end = strstr(h, "\r\n\r\n");
	size_t n;
	char *text;

	if (!end)
		return EX_DATAERR;
	for (size_t k = 0; shown[k]; k++) {
		for (const char *l = h; l < end; l = strstr(l, "\r\n") + 2) {
			size_t klen = strlen(shown[k]), vlen;
			char *raw, *dec;

			if (strncasecmp(l, shown[k], klen) || l[klen] != ':')
				continue;
			/* the value with its continuation lines (RFC 5322 2.2.3) */
			for (vlen = klen + 1; l + vlen < end; vlen++)
				if (!strncmp(l + vlen, "\r\n", 2) && l[vlen + 2] != ' ' &&
				    l[vlen + 2] != '\t')
					break;
			raw = xstrndup(l + klen + 1, vlen - klen - 1);
			dec = rfc2047_decode(raw, strcmp(shown[k], "Subject") &&
			                              strcmp(shown[k], "Date"));
			buf_addf(b, "%s: ", shown[k]);
			esc_term(b, dec ? dec + strspn(dec, " \t") : raw);
			buf_addc(b, '\n');
			free(raw);
			free(dec);
			break;
		}
	}
	buf_addc(b, '\n');
	text = mail_text_part(msg->data.data, msg->data.len, "plain", &n);
	if (!text)
		return EX_DATAERR;
	add_lines(b, text);
	free(text);
	return EX_OK;
}

/* The HTML part as sent (cmark's document, every value escaped when it was made). */
static int html_view(const struct message *msg, struct buf *b)
{
	size_t n;
	char *html = mail_text_part(msg->data.data, msg->data.len, "html", &n);

	if (!html)
		return EX_DATAERR;
	buf_add(b, html, n);
	free(html);
	return EX_OK;
}

static int write_one(void *user, struct merge *m, const struct roster_row *row,
                     const struct letter_out *lo)
{
	struct preview *p = user;
	struct message msg;
	int rc;

	(void)m;
	json_t *ctx = roster_context(row);

	rc = message_build(&p->mr, roster_key(row), ctx, lo, p->date, &msg, &p->err);
	json_decref(ctx);
	if (rc != EX_OK)
		return rc;
	if (p->format == PF_EML) {
		rc = write_all(STDOUT_FILENO, msg.data.data, msg.data.len) ? EX_IOERR : EX_OK;
	} else {
		struct buf b = BUF_INIT;

		rc = p->format == PF_HTML ? html_view(&msg, &b) : text_view(&msg, &b);
		if (rc == EX_OK && write_all(STDOUT_FILENO, b.data, b.len))
			rc = EX_IOERR;
		if (rc == EX_DATAERR)
			error_set(&p->err, rc, "cannot read back the message for %s",
			          roster_key(row));
		buf_free(&b);
	}
	message_free(&msg);
	p->written++;
	return rc == EX_OK ? -1 : rc; /* -1: the first one only */
}

/* The end of the stage: a new OUT is replaced by the whole stage in one rename (10,000
 * renames cost as much as a tenth of the run); else, or if that fails, unstage(). */
static int stage_end(struct preview *p, int commit)
{
	if (commit && p->whole && rename(p->stage, p->out) == 0) {
		p->written = p->staged;
		return EX_OK;
	}
	return unstage(p, commit);
}

/* PARENT/.NAME.preview-XXXXXX for OUT = PARENT/NAME: on the same file system as OUT. */
static char *sibling_stage(const char *out)
{
	char *a = xstrdup(out), *b = xstrdup(out);
	char *s = xasprintf("%s/.%s.preview-XXXXXX", dirname(a), basename(b));

	free(a);
	free(b);
	return s;
}

int cmd_preview(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    MERGE_LONG_OPTIONS,
	    {"out", required_argument, NULL, 'O'},
	    {"format", required_argument, NULL, 'f'},
	    {"force", no_argument, NULL, 'F'},
	    APP_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	int force = 0;
	const char *format = NULL; /* --format pdf (cmd/preview_pdf.c) */
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct preview p = {0};
	struct followup *fu = NULL;
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	int c, rc;

	while ((c = getopt_long(argc, argv, APP_SHORT_OPTIONS, opts, NULL)) != -1) {
		int took = app_option(app, c, optarg);

		if (took < 0) {
			rc = EX_USAGE;
			goto out;
		}
		if (took || merge_option(&mo, c, optarg))
			continue;
		if (c == 'O') {
			p.out = optarg;
			continue;
		}
		if (c == 'f' && !strcmp(optarg, "pdf")) {
			format = optarg;
			continue;
		}
		if (c == 'F') {
			force = 1;
			continue;
		}
		if (c == 'f' && (p.format = !strcmp(optarg, "eml")    ? PF_EML
		                            : !strcmp(optarg, "text") ? PF_TEXT
		                            : !strcmp(optarg, "html") ? PF_HTML
		                                                      : PF_AUTO) != PF_AUTO)
			continue;
		if (c == 'f')
			fprintf(
			    stderr,
			    "demarche preview: --format '%s': expected eml, text, html or pdf\n",
			    optarg);
		fputs(usage_preview, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (optind + 1 != argc || !mo.ro.path) {
		fputs(usage_preview, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (p.out && p.format != PF_AUTO && p.format != PF_EML) {
		fputs("demarche preview: --out writes .eml and .html files; --format goes without "
		      "it\n",
		      stderr);
		rc = EX_USAGE;
		goto out;
	}
	/* A terminal gets what a person reads; a pipe or file the message itself, as before. */
	if (p.format == PF_AUTO)
		p.format = term_isatty(stdout) ? PF_TEXT : PF_EML;
	mo.appeal = argv[optind];
	mo.quiet = app->quiet;
	p.date = epoch && *epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
	rc = app_config(app);
	if (rc != EX_OK)
		goto out;
	fu = followup_new_readonly(app_store_path(app), &mo.ro); /* a reminder's first letters */
	rc = merge_open(&mo, "preview", &m);
	if (rc != EX_OK)
		goto out;
	if (format) { /* --format pdf: the letters as PDFs (cmd/preview_pdf.c) */
		rc = p.out ? preview_pdf(app, m, p.out, p.date) : EX_USAGE;
		if (!p.out)
			fputs(usage_preview, stderr);
		goto out;
	}
	rc = message_run_init(&p.mr, &app->cfg, m, &p.err);
	if (rc == EX_OK)
		rc = followup_bind(fu, m, &p.mr, clock_real_ms() / 1000, &p.err);
	if (rc != EX_OK) {
		fprintf(stderr, "demarche preview: %s\n", p.err);
		goto out;
	}
	if (p.out) {
		int made = mkdir(p.out, 0755) == 0;

		if (!made && errno != EEXIST) {
			fprintf(stderr, "demarche preview: cannot make %s: %s\n", p.out,
			        strerror(errno));
			rc = EX_CANTCREAT;
			goto out;
		}
		if (!made && !force && dir_has_files(p.out)) {
			fprintf(stderr,
			        "demarche preview: %s is not empty: its old files would mix with "
			        "the new "
			        "ones; choose a new folder, empty it, or add --force\n",
			        p.out);
			rc = EX_CANTCREAT;
			goto out;
		}
		if (made) {
			struct stat st;

			p.stage = sibling_stage(p.out);
			/* The stage takes OUT's place: with OUT's mode (mkdtemp makes 0700). */
			p.whole = mkdtemp(p.stage) && stat(p.out, &st) == 0 &&
			          chmod(p.stage, st.st_mode & 07777) == 0;
			if (!p.whole) {
				rmdir(p.stage);
				free(p.stage);
			}
		}
		if (!p.whole)
			p.stage = xasprintf("%s/.preview-XXXXXX", p.out);
		if (!p.whole && !mkdtemp(p.stage)) {
			fprintf(stderr, "demarche preview: cannot make %s: %s\n", p.stage,
			        strerror(errno));
			rc = EX_CANTCREAT;
			goto out;
		}
		p.mr.html_views = 1;
		rc = merge_compose_prep(m, &p.mr, p.date, "preview", stage_one, stage_name, &p);
		if (stage_end(&p, rc == EX_OK) != EX_OK && rc == EX_OK)
			rc = EX_IOERR;
		if (rc != EX_OK && made)
			rmdir(p.out); /* ours, and empty: nothing is left behind */
	} else {
		rc = merge_compose(m, &p.mr, p.date, "preview", compose_only, NULL);
		if (rc == EX_OK)
			rc = merge_each(m, write_one, &p);
		if (rc == -1)
			rc = EX_OK;
	}
	if (rc != EX_OK) {
		if (p.err)
			fprintf(stderr, "demarche preview: %s\n", p.err);
		goto out;
	}
	if (p.out && !app->quiet)
		fprintf(stderr, "demarche preview: wrote %zu message%s to %s\n", p.written,
		        p.written == 1 ? "" : "s", p.out);
	else if (p.written == 0)
		fprintf(stderr, "demarche preview: no mission selected\n");
out:
	for (size_t i = 0; i < p.cap; i++)
		free(p.names[i]);
	free(p.names);
	free(p.stage);
	message_run_free(&p.mr);
	free(p.err);
	merge_free(m);
	followup_free(fu);
	merge_opts_free(&mo);
	return rc;
}
