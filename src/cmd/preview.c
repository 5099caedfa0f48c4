/* demarche preview: write the merged messages as .eml files, or the first one to stdout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "campaign/merge.h"
#include "campaign/message.h"

const char usage_preview[] =
    "usage: demarche preview APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                        [--where COL=VAL]... [--only KEY,...] [--out DIR]\n"
    "\n"
    "Validates as check does, then writes each selected mission's message as DIR/KEY.eml,\n"
    "or prints the first selected mission's message on standard output. Nothing is written\n"
    "when validation fails (exit 65). SOURCE_DATE_EPOCH, when set, fixes the Date header;\n"
    "DEMARCHE_THREADS sets how many threads compose (default: one per CPU).\n"
    "\n" MERGE_OPTIONS_USAGE
    "  --out DIR          write every message into DIR (made if missing)\n";

struct preview {
	struct message_run mr;
	time_t date;
	const char *out; /* NULL: the first message to stdout */
	/* OUT/.preview-XXXXXX: written while validating, its files renamed at the end; or, when
	 * OUT is new, PARENT/.OUT.preview-XXXXXX renamed over it at once (whole = 1) */
	char *stage;
	int whole;
	size_t staged, written;
	char *err;
};

/* A key as a file name: no '/', no leading '.', nothing below 0x20. */
static char *file_name(const char *key)
{
	char *s = xasprintf("%s.eml", key);

	for (char *q = s; *q; q++)
		if (*q == '/' || (unsigned char)*q < 0x20)
			*q = '_';
	if (s[0] == '.')
		s[0] = '_';
	return s;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
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
	const struct preview *p = user;
	char *name = file_name(key);
	char *path = xasprintf("%s/%s", p->stage, name);
	int fd, rc = EX_OK;

	free(name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, msg->data.data, msg->data.len) != 0 || close(fd) != 0) {
		rc = error_set(errstr, EX_IOERR, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	free(path);
	message_free(msg); /* here, on the thread that made it */
	return rc;
}

/* With --out: counts what stage_one() wrote, in order. */
static int stage_count(void *user, struct merge *m, const char *key, long line, struct message *msg)
{
	struct preview *p = user;

	(void)m, (void)key, (void)line, (void)msg;
	p->staged++;
	return 0;
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

		if (e->d_name[0] == '.')
			continue;
		from = xasprintf("%s/%s", p->stage, e->d_name);
		to = xasprintf("%s/%s", p->out, e->d_name);
		if (!commit)
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
	    {NULL, 0, NULL, 0},
	};
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
		rc = merge_compose_prep(m, &p.mr, p.date, "preview", stage_one, stage_count, &p);
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
	free(p.stage);
	message_run_free(&p.mr);
	free(p.err);
	merge_free(m);
	merge_opts_free(&mo);
	return rc;
}
