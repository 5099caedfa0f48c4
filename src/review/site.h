/*
 * The review pages (docs/design.md, "Review in a browser"): what the campaign holds, kept in
 * memory once at start, and each page rendered on request from the templates compiled in
 * (src/review/assets/) with the project's Mustache engine. Every value from the roster, the
 * appeal or the ledger goes through Mustache's HTML escaping ({{x}}; attributes are always
 * double-quoted); a letter's HTML part is never inlined but served on its own, sandboxed,
 * with its own Content-Security-Policy.
 */
#ifndef DEMARCHE_REVIEW_SITE_H
#define DEMARCHE_REVIEW_SITE_H

#include <stddef.h>

#include "base/buf.h"
#include "review/http.h"

/* What send would do with a mission, by the ledger (review_site_add()). */
enum review_plan {
	REVIEW_SEND, /* never tried, pending or deferred: send sends it */
	REVIEW_SENT, /* already accepted (sent, replied) or bounced: never sent again */
	REVIEW_HELD, /* failed or in doubt: only with --retry-failed / --retry-unknown */
};

struct review_mission {
	char *key, *name, *lang, *group, *subject, *text, *html;
	char **hdr; /* decoded headers: name, value, name, value, ... */
	size_t nhdr;
	enum review_plan plan;
	char *plan_text;
};

/* Gives the audit report's HTML; EX_OK or a code with *err. */
typedef int (*review_audit_fn)(void *user, struct buf *out, char **err);

/*
 * Approves the batch whose hash the form carried (review --allow-approve): returns the HTTP
 * status, 303 when recorded, 409 when hash is no longer the batch send would send, another
 * code with a message in msg.
 */
typedef int (*review_approve_fn)(void *user, const char *hash, struct buf *msg);

struct review_site {
	/* set by the caller (borrowed) before review_site_init() */
	const char *campaign, *appeal, *roster, *by, *content_hash;
	review_audit_fn audit; /* NULL: no ledger, no audit page */
	void *audit_user;
	review_approve_fn approve; /* NULL: read-only, no approve form, POST /approve refused */
	void *approve_user;
	const char *approver;   /* the name approve signs as */
	int approver_is_sender; /* then the approval will not count for this sender's send */
	/* filled through the functions below */
	struct review_mission *m;
	size_t n, cap;
	char **langs, **lang_subject; /* the appeal's languages, the subject of each */
	size_t nlangs;
	char **warnings, **parity;
	size_t nwarnings, nparity;
	char *plan_note;
	/* the roster changes since the previous campaign (campaign/plan.h's plan_changes()):
	 * its summary line and one line per change; has_ledger 0: no ledger to compare with */
	int has_ledger;
	char *changes_summary;
	char **changes;
	size_t nchanges;
	/* the approval (campaign/approval.h), shown when batch is set (review_site_approval()) */
	char *batch, *batch_date, *approved_by, *approval_notes;
	size_t batch_missions, approvals_counted;
	int approvals_required;
	struct review_templates *t;
	char *audit_csp; /* the audit page's policy, for its reply */
};

/* Compiles the templates. EX_OK, or EX_SOFTWARE with *errstr (a template is broken). */
int review_site_init(struct review_site *s, char **errstr);

/*
 * Adds one mission (in roster order): its message as composed (eml: the RFC 5322 message,
 * whose headers are shown decoded), its letter's text and HTML parts, and what send would
 * do. Every string is copied. Can't fail.
 */
void review_site_add(struct review_site *s, const char *key, const char *name, const char *lang,
                     const char *group, const char *subject, const char *text, const char *html,
                     const char *eml, size_t eml_len, enum review_plan plan, const char *plan_text);
/* A language of the appeal and its subject (as rendered for its first mission). */
void review_site_language(struct review_site *s, const char *lang, const char *subject);
/* A warning from check, or a finding of the parity check (copied). */
void review_site_warning(struct review_site *s, const char *msg);
void review_site_parity(struct review_site *s, const char *msg);

/* plan_changes()'s text: the first line is the summary, each further line a change. */
void review_site_changes(struct review_site *s, const char *text);

/* The batch send would send (its hash, letters' date, missions) and what the ledger's
 * approvals say of it: how many count of how many required, by whom, and why others do not
 * (notes: lines). Strings copied; NULL is fine for by and notes; a second call replaces
 * the first. Can't fail. */
void review_site_approval(struct review_site *s, const char *batch, const char *date,
                          size_t missions, int required, size_t counted, const char *by,
                          const char *notes);

/* The route for review_server_start(): user is the site. */
void review_site_route(void *user, const struct review_request *rq, struct review_reply *rp);

void review_site_free(struct review_site *s); /* safe on a zeroed one */

#endif
