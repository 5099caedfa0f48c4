/*
 * demarche audit --format ics: the campaigns' planned sends (the send calendar's 'schedule'
 * events, for missions not yet reached) and reminder dates (the 'followup' events' delay
 * after each first letter still unanswered) as an iCalendar file, RFC 5545: CRLF lines
 * folded at 75 octets (3.1), TEXT escaped (3.3.11), a UID and DTSTAMP per event (3.8.4.7,
 * 3.8.7.2), times in UTC (3.3.5 form 2) so that no VTIMEZONE is needed, reminders as dates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/utf8.h"
#include "base/xalloc.h"
#include "campaign/followup.h"
#include "cmd/audit.h"

/* One content line: name, then value already escaped, folded at 75 octets (RFC 5545 3.1),
 * never inside a UTF-8 sequence. */
static void ics_line(struct buf *out, const char *name, const char *value)
{
	struct buf l = BUF_INIT;
	size_t col = 0;

	buf_addf(&l, "%s:%s", name, value);
	for (size_t i = 0; i < l.len;) {
		size_t n = 1;
		unsigned char c = (unsigned char)l.data[i];

		if (c >= 0xf0)
			n = 4;
		else if (c >= 0xe0)
			n = 3;
		else if (c >= 0xc0)
			n = 2;
		if (i + n > l.len)
			n = l.len - i;
		if (col + n > 75) {
			buf_add(out, "\r\n ", 3);
			col = 1;
		}
		buf_add(out, l.data + i, n);
		col += n;
		i += n;
	}
	buf_add(out, "\r\n", 2);
	buf_free(&l);
}

/* TEXT (RFC 5545 3.3.11): \\ \; \, and \n escaped; other control characters dropped; a byte
 * that is not UTF-8 (the file is UTF-8, 3.1.4) becomes U+FFFD. */
static char *ics_text(const char *s)
{
	struct buf b = BUF_INIT;
	size_t n = s ? strlen(s) : 0, k;

	for (size_t i = 0; i < n; i += k) {
		unsigned char c = (unsigned char)s[i];

		k = 1;
		if (c >= 0x80) {
			if (!(k = utf8_seq(s + i, n - i))) {
				buf_adds(&b, "\xef\xbf\xbd");
				k = 1;
			} else {
				buf_add(&b, s + i, k);
			}
		} else if (c == '\\' || c == ';' || c == ',') {
			buf_addc(&b, '\\');
			buf_addc(&b, (char)c);
		} else if (c == '\n') {
			buf_adds(&b, "\\n");
		} else if (c >= 0x20 && c != 0x7f) {
			buf_addc(&b, (char)c);
		}
	}
	return buf_detach(&b);
}

static void ics_utc(int64_t t, char out[20])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 20, "%Y%m%dT%H%M%SZ", &tm);
}

static void ics_date(int64_t t, char out[12])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 12, "%Y%m%d", &tm);
}

/* A stable UID from what the event is about (campaign, key, kind): its SHA-256. */
static void ics_uid(const char *kind, const char *campaign, const char *key, char out[80])
{
	struct buf b = BUF_INIT;
	char hex[DIGEST_HEX_SIZE];

	buf_addf(&b, "%s", kind);
	buf_add(&b, "", 1);
	buf_addf(&b, "%s", campaign);
	buf_add(&b, "", 1);
	buf_addf(&b, "%s", key);
	digest_sha256_hex(b.data, b.len, hex);
	snprintf(out, 80, "%.32s@demarche", hex);
	buf_free(&b);
}

static void ics_event(struct buf *out, const char *uid, const char *stamp, const char *start_name,
                      const char *start, const char *summary, const char *description)
{
	char *s = ics_text(summary), *d = ics_text(description);

	ics_line(out, "BEGIN", "VEVENT");
	ics_line(out, "UID", uid);
	ics_line(out, "DTSTAMP", stamp);
	ics_line(out, start_name, start);
	ics_line(out, "SUMMARY", s);
	ics_line(out, "DESCRIPTION", d);
	ics_line(out, "END", "VEVENT");
	free(s);
	free(d);
}

/* The latest 'schedule' plan of each key (details "KEY at TIME zone ZONE window W"). */
struct plan {
	char **key, **detail;
	int64_t *at;
	size_t n;
};

static int plan_event(const struct ledger_event *e, void *ctx)
{
	struct plan *p = ctx;
	const char *at, *zone;
	struct tm tm;
	char *key;
	size_t i;

	if (!e->detail || !(zone = strstr(e->detail, " zone ")))
		return 0;
	/* the key may hold spaces: " at " is the last one before " zone " */
	at = NULL;
	for (const char *q = e->detail; (q = strstr(q, " at ")) && q < zone; q++)
		at = q;
	if (!at)
		return 0;
	memset(&tm, 0, sizeof(tm));
	if (!strptime(at + 4, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 0;
	key = xstrndup(e->detail, (size_t)(at - e->detail));
	for (i = 0; i < p->n && strcmp(p->key[i], key); i++)
		;
	if (i == p->n) {
		p->key = xreallocarray(p->key, p->n + 1, sizeof(char *));
		p->detail = xreallocarray(p->detail, p->n + 1, sizeof(char *));
		p->at = xreallocarray(p->at, p->n + 1, sizeof(int64_t));
		p->key[i] = key;
		p->detail[i] = NULL;
		p->n++;
	} else {
		free(key);
	}
	free(p->detail[i]);
	p->detail[i] = xstrdup(zone + 6);
	p->at[i] = (int64_t)timegm(&tm);
	return 0;
}

struct received {
	const char *key;
	int yes;
};

static int mark_missing(const char *key, void *ctx)
{
	(void)key;
	((struct received *)ctx)->yes = 0;
	return 0;
}

static int campaign_events(struct ledger *l, const char *campaign, const char *stamp,
                           struct buf *out, char **err)
{
	struct plan p = {0};
	struct followup_mission *m = NULL;
	size_t n = 0;
	int64_t after = 0;
	int rc;

	rc = ledger_events(l, campaign, "schedule", plan_event, &p, err);
	for (size_t i = 0; rc == EX_OK && i < p.n; i++) {
		struct received r = {p.key[i], 1};
		const char *k = p.key[i];
		char uid[80], start[20], *summary, *desc;

		rc = ledger_missing(l, campaign, &k, 1, mark_missing, &r, err);
		if (rc != EX_OK || r.yes)
			continue; /* reached already: no longer a plan */
		ics_uid("send", campaign, p.key[i], uid);
		ics_utc(p.at[i], start);
		summary = xasprintf("Send %s to %s", campaign, p.key[i]);
		desc = xasprintf("demarche send of campaign %s to mission %s (zone %s)", campaign,
		                 p.key[i], p.detail[i]);
		ics_event(out, uid, stamp, "DTSTART", start, summary, desc);
		free(summary);
		free(desc);
	}
	if (rc == EX_OK)
		rc = followup_recorded_after(l, campaign, &after, err);
	if (rc == EX_OK && after > 0)
		rc = followup_missions(l, campaign, &m, &n, NULL, err);
	for (size_t i = 0; rc == EX_OK && i < n; i++) {
		char uid[80], day[12], first[12], *summary, *desc;

		ics_uid("followup", campaign, m[i].key, uid);
		ics_date(m[i].sent + after, day);
		{
			time_t t = (time_t)m[i].sent;
			struct tm tm;

			gmtime_r(&t, &tm);
			strftime(first, sizeof(first), "%Y-%m-%d", &tm);
		}
		summary = xasprintf("Reminder due: %s to %s", campaign, m[i].key);
		desc = xasprintf("No reply or bounce yet from %s to the letter of %s (%s), "
		                 "Message-ID %s; demarche followup drafts the reminder",
		                 m[i].key, first, campaign, m[i].message_id);
		ics_event(out, uid, stamp, "DTSTART;VALUE=DATE", day, summary, desc);
		free(summary);
		free(desc);
	}
	followup_missions_free(m, n);
	for (size_t i = 0; i < p.n; i++) {
		free(p.key[i]);
		free(p.detail[i]);
	}
	free(p.key);
	free(p.detail);
	free(p.at);
	return rc;
}

struct ids {
	char **v;
	size_t n;
};

static int keep_campaign(const struct ledger_campaign *c, void *ctx)
{
	struct ids *ids = ctx;

	ids->v = xreallocarray(ids->v, ids->n + 1, sizeof(char *));
	ids->v[ids->n++] = xstrdup(c->id);
	return 0;
}

int audit_ics(struct ledger *l, const struct audit_opts *a, char **err)
{
	struct buf out = BUF_INIT;
	struct ids ids = {0};
	char stamp[20];
	int rc = EX_OK;

	ics_utc(clock_real_ms() / 1000, stamp);
	if (a->campaign)
		keep_campaign(&(struct ledger_campaign){.id = a->campaign}, &ids);
	else
		rc = ledger_campaigns(l, keep_campaign, &ids, err);
	ics_line(&out, "BEGIN", "VCALENDAR");
	ics_line(&out, "VERSION", "2.0");
	ics_line(&out, "PRODID", "-//demarche//send calendar//EN");
	ics_line(&out, "CALSCALE", "GREGORIAN");
	for (size_t i = 0; rc == EX_OK && i < ids.n; i++)
		rc = campaign_events(l, ids.v[i], stamp, &out, err);
	ics_line(&out, "END", "VCALENDAR");
	if (rc != EX_OK)
		goto out;
	if (a->output) /* replaced whole, never through a symlink (base/file.h) */
		rc = file_write_atomic(a->output, buf_str(&out), out.len, 0644, 0, err);
	else if (fwrite(buf_str(&out), 1, out.len, stdout) != out.len)
		rc = error_set(err, EX_IOERR, "writing the calendar failed");
out:
	for (size_t i = 0; i < ids.n; i++)
		free(ids.v[i]);
	free(ids.v);
	buf_free(&out);
	return rc;
}
