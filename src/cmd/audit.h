/* Inside demarche audit: the options as parsed, and the views that cmd_audit() dispatches to. */
#ifndef DEMARCHE_CMD_AUDIT_H
#define DEMARCHE_CMD_AUDIT_H

#include "ledger/ledger.h"
#include "report/model.h"
#include "cmd/audit_out.h"

struct audit_opts {
	struct rp_out_opts out;         /* format, colour, --wide, --columns */
	const char *campaign;           /* CAMPAIGN or NULL */
	const char *by;                 /* --by COL or NULL */
	const char *output;             /* -o FILE or NULL (stdout) */
	int tty;                        /* stdout was a terminal (before any pager) */
	int summary;                    /* --summary */
	int no_verify;                  /* --no-verify: the HTML report does not check the chain */
	const struct rp_roster *roster; /* --to: the roster read; NULL without */
};

/*
 * The views. Each writes to stdout and returns EX_OK, 1 when something asked about is not
 * there (a delivery not received, a mission missing), EX_USAGE (--columns names an unknown
 * column; *err says which) or EX_IOERR (the ledger; *err set).
 */
int audit_summary(struct ledger *l, const struct audit_opts *a, char **err);
int audit_deliveries(struct ledger *l, const struct audit_opts *a, char **err);
int audit_missing(struct ledger *l, const struct audit_opts *a, char **err);
int audit_matrix(struct ledger *l, const struct audit_opts *a, char **err);

/* The report files (src/report/html.c, xlsx.c): EX_OK, EX_CANTCREAT (cannot write the
 * file), EX_IOERR or EX_SOFTWARE (the template); *err set. */
int audit_html(struct ledger *l, const struct audit_opts *a, char **err);
int audit_xlsx(struct ledger *l, const struct audit_opts *a, char **err);
/* --approvals: who approved which batch of a->campaign (NULL: every campaign), and when. */
int audit_approvals(struct ledger *l, const struct audit_opts *a, char **err);
/* The send calendar (src/cmd/audit_ics.c): planned sends and reminder dates, RFC 5545. */
int audit_ics(struct ledger *l, const struct audit_opts *a, char **err);

/* A table shows times to the second ("2024-06-01T12:03:01Z"); out holds 32 bytes. */
const char *audit_short_time(const char *iso, char out[32]);

#endif
