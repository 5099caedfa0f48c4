/* demarche preview --format pdf: each selected mission's letter as DIR/CAMPAIGN-KEY.pdf. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/xalloc.h"
#include "campaign/document.h"
#include "cmd/preview_pdf.h"

struct pdf_pass {
	struct document_run dr;
	const char *out;
	time_t date;
	size_t written;
	char *err;
};

/* Renders one mission's PDF and writes it under its own name, never over another file. */
static int write_pdf(void *user, struct merge *m, const struct roster_row *row,
                     const struct letter_out *lo)
{
	struct pdf_pass *pp = user;
	struct buf pdf = BUF_INIT;
	json_t *ctx = roster_context(row);
	char *name = document_file_name(m->campaign, roster_key(row));
	char *path = xasprintf("%s/%s", pp->out, name);
	int fd, rc;

	rc = document_render(&pp->dr, m->campaign, roster_key(row), ctx, lo, pp->date, &pdf,
	                     &pp->err);
	if (rc != EX_OK)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, pdf.data, pdf.len) != 0 || close(fd) != 0) {
		rc = error_set(&pp->err, errno == EEXIST ? EX_CANTCREAT : EX_IOERR,
		               "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	pp->written++;
out:
	json_decref(ctx);
	buf_free(&pdf);
	free(name);
	free(path);
	return rc;
}

int preview_pdf(struct app *app, struct merge *m, const char *out, time_t date)
{
	struct pdf_pass pp = {0};
	struct diags d = {0};
	int rc;

	pp.out = out;
	pp.date = date;
	rc = document_run_init(&pp.dr, &app->cfg, NULL, app->cfg.sender.name, &d, &pp.err);
	if (rc != EX_OK)
		goto out;
	rc = merge_validate(m, "preview", NULL, NULL);
	if (rc != EX_OK)
		goto out;
	if (mkdir(out, 0755) != 0 && errno != EEXIST) {
		rc = error_set(&pp.err, EX_CANTCREAT, "cannot make %s: %s", out, strerror(errno));
		goto out;
	}
	rc = merge_each(m, write_pdf, &pp);
	if (rc == EX_OK)
		fprintf(stderr, "demarche preview: wrote %zu PDF%s to %s\n", pp.written,
		        pp.written == 1 ? "" : "s", out);
out:
	if (rc != EX_OK && pp.err)
		fprintf(stderr, "demarche preview: %s\n", pp.err);
	diags_print(&d, stderr);
	diags_free(&d);
	free(pp.err);
	document_run_free(&pp.dr);
	return rc;
}
