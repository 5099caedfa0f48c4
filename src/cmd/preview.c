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
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "campaign/merge.h"
#include "campaign/message.h"
#include "cmd/preview_pdf.h"

const char usage_preview[] =
    "usage: demarche preview APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                        [--where COL=VAL]... [--only KEY,...] [--out DIR]\n"
    "\n"
    "Validates as check does, then writes each selected mission's message as DIR/KEY.eml,\n"
    "or prints the first selected mission's message on standard output. Nothing is written\n"
    "when validation fails (exit 65). SOURCE_DATE_EPOCH, when set, fixes the Date header;\n"
    "DEMARCHE_THREADS sets how many threads compose (default: one per CPU).\n"
    "\n"
    "File names never collide: a key that is not a safe file name ('/', '\\', a control\n"
    "character, a leading '.', over 200 bytes) has those replaced by '_' and gets '-' and 8\n"
    "hex digits of the key's SHA-256 appended, as does a key whose name is taken (ignoring\n"
    "case): a_b gives a_b.eml, a/b gives a_b-HHHHHHHH.eml.\n"
    "\n" MERGE_OPTIONS_USAGE "  --out DIR          write every message into DIR (made if missing)\n"
    "  --format pdf       write each mission's letter as DIR/CAMPAIGN-KEY.pdf instead (--out\n"
    "                     needed; see demarche letter)\n";

struct preview {
	struct message_run mr;
	time_t date;
	const char *out; /* NULL: the first message to stdout */
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
	if (m->d.errors) /* nothing will be written: the stage goes */
		unlink(tmp);
	else if (name_for_key(p, key, tmp) != 0)
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
		else
			p->written++;
		free(from);
		free(to);
	}
	closedir(d);
	rmdir(p->stage);
	return rc;
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
	rc = write_all(STDOUT_FILENO, msg.data.data, msg.data.len) ? EX_IOERR : EX_OK;
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
	    {"format", required_argument, NULL, 'F'},
	    {NULL, 0, NULL, 0},
	};
	const char *format = NULL;
	struct merge_opts mo = {0};
	struct merge *m = NULL;
	struct preview p = {0};
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (merge_option(&mo, c, optarg))
			continue;
		if (c == 'O') {
			p.out = optarg;
			continue;
		}
		if (c == 'F' && !strcmp(optarg, "pdf")) {
			format = optarg;
			continue;
		}
		fputs(usage_preview, stderr);
		rc = EX_USAGE;
		goto out;
	}
	if (optind + 1 != argc || !mo.ro.path) {
		fputs(usage_preview, stderr);
		rc = EX_USAGE;
		goto out;
	}
	mo.appeal = argv[optind];
	p.date = epoch && *epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
	rc = app_config(app);
	if (rc != EX_OK)
		goto out;
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
	if (p.out)
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
	merge_opts_free(&mo);
	return rc;
}
