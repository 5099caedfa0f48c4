/*
 * Classifies one received message: a delivery status notification (RFC 3464), a reply, an
 * automatic reply (RFC 3834 and common out-of-office markers) or anything else.
 *
 * All strings are RFC 2047 words decoded (into UTF-8), unfolded (no CR or LF), NUL-terminated
 * and owned by the struct report; message-ids are given without their angle brackets.
 * Otherwise they are the sender's bytes, kept as evidence: they may hold control and bidi
 * characters and bytes that are not UTF-8. Escape them before printing (base/escape.h).
 */
#ifndef DEMARCHE_REPORT_H
#define DEMARCHE_REPORT_H

#include <stddef.h>
#include <time.h>

#define REPORT_MAX_SIZE (10u * 1024 * 1024) /* larger messages are refused */

enum report_kind {
	REPORT_OTHER,
	REPORT_DSN,       /* multipart/report; report-type=delivery-status */
	REPORT_REPLY,     /* In-Reply-To or References, not automatic */
	REPORT_AUTOREPLY, /* Auto-Submitted other than "no", X-Autoreply, "Out of Office", ... */
};

/* One per-recipient block of a DSN (RFC 3464 2.3). */
struct report_recipient {
	char *final_recipient;    /* address of Final-Recipient, type ("rfc822;") removed */
	char *original_recipient; /* likewise, or NULL */
	char *action;             /* lower case: failed, delayed, delivered, relayed, expanded */
	char *status;             /* RFC 3463 code, "5.1.1" */
	char *diagnostic; /* Diagnostic-Code text after its type ("550 5.1.1 ..."), or NULL */
	char *remote_mta; /* Remote-MTA name after its type, or NULL */
};

struct report {
	enum report_kind kind;
	/* The message itself; each may be NULL when absent. */
	char *message_id;
	char *from;      /* address (addr-spec) of the first From mailbox */
	char *from_name; /* its display name */
	char *subject;
	time_t date; /* Date as UTC seconds; 0 when absent or unreadable */
	char **refs; /* In-Reply-To then References ids, without duplicates, in order */
	size_t nrefs;
	char *
	    auto_reason; /* REPORT_AUTOREPLY: the marker found, e.g. "Auto-Submitted: auto-replied" */
	/* REPORT_DSN only. */
	char *reporting_mta;
	struct report_recipient *rcpt; /* at least one when report_parse() succeeds */
	size_t nrcpt;
	char *orig_message_id; /* Message-ID in the returned message or headers, or NULL */
	char *orig_campaign;   /* X-Demarche-Campaign there, or NULL */
};

/*
 * Parses data (len bytes, RFC 5322; CRLF or LF line ends) into *out, which it clears first.
 * Returns 0, or EX_DATAERR with *errstr set (allocated, caller frees) for input over
 * REPORT_MAX_SIZE, input that is not a message, or a DSN without a readable delivery-status
 * part or per-recipient block (missing Final-Recipient, Action or a valid Status). Even then
 * the fields read so far (kind, from, subject, message_id, ...) stay in *out for reporting:
 * call report_free() in every case.
 */
int report_parse(const char *data, size_t len, struct report *out, char **errstr);

/* Frees what *r holds and clears it; safe on a cleared struct and on NULL. Can't fail. */
void report_free(struct report *r);

/* "dsn", "reply", "auto-reply", "other"; static. Can't fail. */
const char *report_kind_name(enum report_kind kind);

#endif
