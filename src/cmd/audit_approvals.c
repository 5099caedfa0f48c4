/* demarche audit --approvals: who approved which batch, when, and whether it verifies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/escape.h"
#include "cmd/audit.h"
#include "cmd/audit_out.h"
#include "ledger/ledger.h"

struct seen {
	size_t n;
};

/* How many missions an approval covers: its "message KEY" parts. */
static size_t missions(const char *components)
{
	size_t n = 0;

	for (const char *p = components; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (strlen(p) > 17 && !strncmp(p + 17, "message ", 8))
			n++;
		p = nl ? nl + 1 : p + strlen(p);
	}
	return n;
}

/* s escaped and cut to width columns, then padded to them and a space. */
static void cell(struct buf *b, const char *s, size_t width)
{
	for (size_t w = esc_term_fit(b, s ? s : "?", width); w <= width; w++)
		buf_addc(b, ' ');
}

static int one(const struct ledger_approval *ap, void *ctx)
{
	struct seen *s = ctx;
	struct buf b = BUF_INIT;
	char t[32], batch[17];

	if (!s->n++)
		fprintf(rp_stdout(), "%-22s%-20s%-12s%-17s %8s  %-12s%s\n", "time", "campaign",
		        "approver", "batch", "missions", "letters", "signature");
	cell(&b, audit_short_time(ap->time ? ap->time : "?", t), 21);
	cell(&b, ap->campaign, 19);
	cell(&b, ap->approver, 11);
	snprintf(batch, sizeof(batch), "%s", ap->batch ? ap->batch : "?");
	cell(&b, batch, 16);
	buf_addf(&b, " %8zu  ", missions(ap->components));
	cell(&b, ap->date, 11);
	buf_addf(&b, "%s\n", ap->valid ? "ok" : "BAD SIGNATURE");
	fputs(b.data, rp_stdout());
	buf_free(&b);
	return 0;
}

int audit_approvals(struct ledger *l, const struct audit_opts *a, char **err)
{
	struct seen s = {0};
	int rc = ledger_approvals(l, a->campaign, one, &s, err);

	if (rc == EX_OK && !s.n)
		fputs("no approvals\n", rp_stdout());
	return rc;
}
