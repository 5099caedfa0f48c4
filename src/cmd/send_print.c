/* demarche send's output: its usage, the plan, the progress line, each problem, the summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/escape.h"
#include "base/term.h"
#include "base/url.h"
#include "base/xalloc.h"
#include "cmd/cmd.h"
#include "cmd/send.h"
#include "transport/ratelimit.h"

/* Here with the rest of what send prints: send.c keeps the options and the steps. */
const char usage_send[] =
    "usage: demarche send APPEAL --to ROSTER.csv [--key COL] [--join FILE[:COL]]...\n"
    "                     [--where COL=VAL | COL!=VAL]... [--only KEY,...]\n"
    "                     [--not-received CAMPAIGN] [--via URL] [--rate N/minute|N/hour]\n"
    "                     [--concurrency N] [--limit N] [--test-to ADDR] [--retry-unknown]\n"
    "                     [--retry-failed] [--amend] [--yes] [--dry-run]\n"
    "                     [--format text|json] [-v]\n"
    "                     [--window HH:MM-HH:MM] [--at YYYY-MM-DDTHH:MM [--local]]\n"
    "                     [--until-done [--until YYYY-MM-DD]]\n"
    "\n"
    "Validates everything first (nothing is sent if anything is wrong: exit 65), then sends\n"
    "one message per mission and records each step in the ledger. A rerun of the same\n"
    "campaign skips what was sent, retries what was deferred, and leaves failed and in-doubt\n"
    "(unknown) missions alone unless asked.\n"
    "\n"
    "A Maildir outbox (maildir:DIR, the default while [smtp] url is unset) is a staging\n"
    "channel: its messages are recorded 'staged', not sent; a later send through smtp:// or\n"
    "sendmail: sends them to the missions.\n"
    "\n" MERGE_OPTIONS_USAGE
    "  --via URL              smtp://HOST[:PORT], smtps://HOST[:PORT], maildir:DIR (stage\n"
    "                         only) or sendmail:PROGRAM (default: [smtp] url, else\n"
    "                         [smtp] sendmail, else maildir:./outbox)\n"
    "  --dry-run              validate and plan, print what would go where (key, language,\n"
    "                         transport, addresses), write nothing; no --yes needed\n"
    "  --format text|json     the summary as text (default) or one JSON object\n"
    "  -v, --verbose          print the SMTP dialogue to stderr (AUTH masked)\n"
    "  --not-received CAMP    only missions with no delivered message of campaign CAMP\n"
    "  --rate N/minute        pace the sending (also N/hour; default [smtp] rate)\n"
    "  --concurrency N        connections at once (default [smtp] concurrency, 1)\n"
    "  --limit N              send at most N messages in this run\n"
    "  --test-to ADDR         send every selected message to ADDR instead, Subject [TEST];\n"
    "                         recorded as test events, not as deliveries\n"
    "  --retry-unknown        send again to missions in doubt (unknown)\n"
    "  --retry-failed         send again to missions that failed permanently\n"
    "  --amend                the appeal changed since this campaign was first sent: go on\n"
    "  --yes                  do not ask (needed when not on a terminal)\n"
    "  --window 09:00-17:00   send each mission only inside these hours of its own time\n"
    "                         zone (roster column timezone, IANA names) on its working\n"
    "                         days (column weekend, default sat,sun; e.g. fri-sat)\n"
    "  --at TIME              send nothing before TIME (UTC; with --local, each mission's\n"
    "                         own local time)\n"
    "  --until-done           sleep until the next mission's time comes and go on, until\n"
    "                         every mission is sent; a rerun resumes (the ledger has it)\n"
    "  --until DATE           with --until-done: stop there (YYYY-MM-DD[THH:MM], UTC)\n"
    "\n"
    "Exit: 0 every selected mission sent (into a Maildir outbox: staged); 64 usage; 65 bad\n"
    "input or a damaged ledger, nothing sent; 66 the appeal or the roster cannot be read;\n"
    "69 some mission failed permanently (see demarche audit); 70 internal error; 73 the\n"
    "ledger or the spool cannot be created;\n"
    "74 the ledger or the spool cannot be written; 75 some mission deferred, in doubt or not\n"
    "yet started (rate or daily cap, --limit, stopped by Ctrl-C, SIGTERM or SIGHUP, another\n"
    "send holding the ledger): run again later; 77 not approved ([approval] required: see\n"
    "demarche approve; nothing recorded); 78 configuration (credentials, TLS, a\n"
    "password in a URL). The summary counts the campaign's selected missions, not only\n"
    "this run's messages.\n";

void send_view_init(struct send_view *v, const struct run *r, int json)
{
	memset(v, 0, sizeof(*v));
	v->staging = r->p.staging;
	v->json = json;
	v->m = r->m;
	v->mr = &r->mr;
	v->p = &r->p;
	v->via = r->acct->url;
	v->rate = r->rate;
	v->concurrency = r->concurrency;
	v->to_send = r->to_send;
}

/* docs/design.md, "Staging is not delivery": the words say where the letters go. */
char *send_channel(const struct send_view *v, int past)
{
	char *shown = url_redact(v->via), *s;

	if (v->staging)
		s = xasprintf("%s the local outbox %s; nothing %s sent to the missions",
		              past ? "written to" : "to be written to", shown + strlen("maildir:"),
		              past ? "was" : "is");
	else
		s = xasprintf("real send through %s", shown);
	free(shown);
	return s;
}

void send_print_plan(const struct send_view *v)
{
	const char *title = letter_header_source(v->m->letter, "en", "Title");

	fprintf(stderr, "campaign:   %s%s%s\n", v->m->campaign, title ? " - " : "",
	        title ? title : "");
	fprintf(stderr, "appeal:     %s (sha256 %.16s...)\n", letter_path(v->m->letter),
	        letter_hash(v->m->letter));
	{
		char *ch = send_channel(v, 0);

		fprintf(stderr, "transport:  %s (concurrency %d)\n", v->via, v->concurrency);
		fprintf(stderr, "channel:    %s\n", ch);
		free(ch);
	}
	fprintf(stderr, "sender:     %s <%s>%s\n", v->mr->from_name, v->mr->from_addr,
	        v->mr->example_sender ? " (example: set [sender] address)" : "");
	if (v->mr->test_to)
		fprintf(stderr, "test:       every message goes to %s, Subject [TEST]\n",
		        v->mr->test_to);
	fprintf(stderr,
	        "missions:   %zu to send, %zu already sent, %zu failed and %zu in doubt "
	        "left alone",
	        v->to_send, v->p->already_sent, v->p->skipped_failed, v->p->skipped_unknown);
	if (v->p->already_staged)
		fprintf(stderr, ", %zu already staged", v->p->already_staged);
	fputc('\n', stderr);
	if (v->rate && *v->rate) {
		long count = 0;
		int64_t per = 0;

		if (ratelimit_parse(v->rate, &count, &per, NULL) == EX_OK && count > 0)
			fprintf(stderr, "rate:       %s, about %.0f s for all\n", v->rate,
			        (double)v->to_send * (double)per / (double)count / 1000.0);
	} else {
		fprintf(stderr, "rate:       no limit\n");
	}
}

void send_print_outcome(void *u, const char *key, const struct transport_result *r, int will_retry)
{
	struct send_view *v = u;
	const struct engine_stats *st = &v->st;

	if (!v->progress) {
		if (r->state == TX_SENT && !r->error)
			return;
		fprintf(stderr, "demarche send: %s: %s%s%s%s%s%s\n", key,
		        transport_state_name(r->state), r->reply ? ": " : "",
		        r->reply ? r->reply : "", r->error ? ": " : "", r->error ? r->error : "",
		        will_retry ? " (will retry)" : "");
		return;
	}
	{
		double secs = (double)(ratelimit_now() - v->t0) / 1000.0;
		size_t done = st->sent + st->deferred + st->failed + st->unknown;
		double rate = secs > 0 ? (double)done / secs : 0;

		term_status(
		    stderr, "%zu/%zu  %.1f msg/s  ETA %.0fs  sent %zu deferred %zu failed %zu",
		    done, v->to_send, rate,
		    rate > 0 && v->to_send > done ? (double)(v->to_send - done) / rate : 0.0,
		    st->sent, st->deferred, st->failed);
	}
}

/* The summary as one JSON object (--format json): the same figures as the text. */
static void summary_json(const struct send_view *v, int test, const size_t c[MS__COUNT],
                         size_t selected, size_t not_started, int rc)
{
	const struct engine_stats *st = &v->st;
	struct buf b = BUF_INIT;
	char *shown = url_redact(v->via);

	buf_adds(&b, "{\"campaign\":");
	esc_json(&b, v->m->campaign);
	buf_adds(&b, ",\"transport\":");
	esc_json(&b, shown);
	buf_addf(&b, ",\"channel\":\"%s\",\"test\":%s", v->staging ? "staging" : "send",
	         test ? "true" : "false");
	if (test) {
		buf_adds(&b, ",\"test_to\":");
		esc_json(&b, v->mr->test_to);
	}
	buf_addf(&b,
	         ",\"run\":{\"%s\":%zu,\"deferred\":%zu,\"failed\":%zu,\"unknown\":%zu,"
	         "\"not_started\":%zu,\"already_sent\":%zu,\"already_staged\":%zu,"
	         "\"rcpt_failed\":%zu}",
	         v->staging ? "staged" : "sent", st->sent, st->deferred, st->failed, st->unknown,
	         not_started, v->p->already_sent, v->p->already_staged, st->rcpt_failed);
	if (!test)
		buf_addf(&b,
		         ",\"missions\":{\"selected\":%zu,\"sent\":%zu,\"staged\":%zu,"
		         "\"deferred\":%zu,\"failed\":%zu,\"unknown\":%zu,\"not_started\":%zu}",
		         selected, c[MS_SENT], c[MS_STAGED], c[MS_DEFERRED], c[MS_FAILED],
		         c[MS_UNKNOWN], c[MS_NOT_STARTED]);
	buf_addf(&b, ",\"exit\":%d}\n", rc);
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
	free(shown);
}

int send_print_summary(const struct send_view *v, int test, int interrupted)
{
	const struct engine_stats *st = &v->st;
	size_t c[MS__COUNT], selected = 0;
	size_t ended = st->sent + st->deferred + st->failed + st->unknown + st->elsewhere;
	size_t not_started = v->to_send > ended ? v->to_send - ended : 0;
	char *ch = send_channel(v, 1), *shown = url_redact(v->via);
	int rc;

	plan_count(v->p, c);
	for (int s = 0; s < MS__COUNT; s++)
		selected += c[s];
	if (test) {
		rc = st->failed ? EX_UNAVAILABLE
		     : st->deferred || st->unknown || interrupted || ended < v->to_send
		         ? EX_TEMPFAIL
		         : EX_OK;
		if (v->json)
			summary_json(v, test, c, selected, not_started, rc);
		else
			printf(
			    "test of campaign %s to %s via %s: %zu %s, %zu deferred, %zu failed, "
			    "%zu in doubt (recorded as tests, not deliveries)%s%s\n",
			    v->m->campaign, v->mr->test_to, shown, st->sent,
			    v->staging ? "staged" : "sent", st->deferred, st->failed, st->unknown,
			    v->staging ? "; " : "", v->staging ? ch : "");
		goto out;
	}
	/* The whole campaign's selected missions, not only this run's work: a rerun that sends
	 * the rest must not look finished while some are still in doubt. A staging run is over
	 * when everything is staged; a real send when everything is sent. */
	if (c[MS_FAILED])
		rc = EX_UNAVAILABLE;
	else if (c[MS_DEFERRED] || c[MS_UNKNOWN] || c[MS_NOT_STARTED] || interrupted ||
	         (c[MS_STAGED] && !v->staging))
		rc = EX_TEMPFAIL;
	else
		rc = EX_OK;
	if (v->json) {
		summary_json(v, test, c, selected, not_started, rc);
		goto out;
	}
	if (v->to_send == 0 && v->staging)
		printf("campaign %s: nothing to stage (%zu already staged, %zu already sent, %zu "
		       "failed and %zu in doubt left alone); nothing was sent to the missions\n",
		       v->m->campaign, v->p->already_staged, v->p->already_sent,
		       v->p->skipped_failed, v->p->skipped_unknown);
	else if (v->to_send == 0)
		printf("campaign %s: nothing to send (%zu already sent, %zu failed and %zu in "
		       "doubt left alone)\n",
		       v->m->campaign, v->p->already_sent, v->p->skipped_failed,
		       v->p->skipped_unknown);
	else if (v->staging)
		printf("campaign %s: %zu staged, %zu deferred, %zu failed, %zu in doubt, %zu not "
		       "started; %zu already staged before: %s\n",
		       v->m->campaign, st->sent, st->deferred, st->failed, st->unknown, not_started,
		       v->p->already_staged, ch);
	else
		printf("campaign %s, %s: %zu sent, %zu deferred, %zu failed, %zu in doubt, "
		       "%zu not started; %zu already sent before\n",
		       v->m->campaign, ch, st->sent, st->deferred, st->failed, st->unknown,
		       not_started, v->p->already_sent);
	if (st->elsewhere) /* a team ledger (issue 21) */
		printf("  %zu mission%s taken by another sender first\n", st->elsewhere,
		       st->elsewhere == 1 ? " was" : "s were");
	if (st->rcpt_failed)
		printf("  %zu address%s refused while the mission's other addresses took the "
		       "letter: see demarche audit %s\n",
		       st->rcpt_failed, st->rcpt_failed == 1 ? " was" : "es were", v->m->campaign);
	printf("missions of %s selected: %zu: %zu sent, %zu deferred, %zu failed, %zu in doubt, "
	       "%zu not started",
	       v->m->campaign, selected, c[MS_SENT], c[MS_DEFERRED], c[MS_FAILED], c[MS_UNKNOWN],
	       c[MS_NOT_STARTED]);
	if (c[MS_STAGED])
		printf(", %zu staged (in a local outbox, not sent: a send through smtp:// or "
		       "sendmail: sends them)",
		       c[MS_STAGED]);
	putchar('\n');
out:
	free(ch);
	free(shown);
	return rc;
}

/* --- send --dry-run ------------------------------------------------------------------------ */

struct langs {
	char **key, **lang;
	size_t n;
};

static int collect_lang(void *user, const struct roster_row *row)
{
	struct langs *l = user;

	l->key = xreallocarray(l->key, l->n + 1, sizeof(char *));
	l->lang = xreallocarray(l->lang, l->n + 1, sizeof(char *));
	l->key[l->n] = xstrdup(roster_key(row));
	l->lang[l->n] = xstrdup(roster_language(row));
	l->n++;
	return 0;
}

/* The letter's language a mission gets (its own when the appeal has it, else the first). */
static const char *mission_lang(const struct send_view *v, const struct langs *l, size_t *hint,
                                const char *key)
{
	size_t nl = 0;
	const char *lang = NULL;

	for (size_t k = 0; k < l->n && !lang; k++) {
		size_t i = (*hint + k) % l->n;

		if (!strcmp(l->key[i], key)) {
			lang = l->lang[i];
			*hint = i + 1;
		}
	}
	if (lang && letter_has_language(v->m->letter, lang))
		return lang;
	return letter_languages(v->m->letter, &nl)[0];
}

int send_print_dry(const struct send_view *v)
{
	struct langs l = {0};
	struct diags d = {0};
	struct buf b = BUF_INIT;
	char *ch = send_channel(v, 0), *shown = url_redact(v->via);
	size_t hint = 0;
	int rc = EX_OK;

	roster_each(v->m->roster, collect_lang, &l, &d);
	diags_free(&d);
	printf("dry run of campaign %s: %s; nothing is written (ledger and outbox untouched)\n",
	       v->m->campaign, ch);
	for (size_t i = 0; i < v->to_send && rc == EX_OK; i++) {
		struct plan_record r;
		const struct plan_mission *pm = &v->p->m[i];
		char *err = NULL;

		if ((rc = plan_read(v->p, pm->off, 0, &r, &err)) != EX_OK) {
			fprintf(stderr, "demarche send: %s\n", err);
			free(err);
			break;
		}
		buf_reset(&b);
		buf_adds(&b, "would ");
		buf_adds(&b, v->staging ? "stage  " : "send   ");
		esc_term(&b, r.key);
		buf_addf(&b, "  %s  %s  ", mission_lang(v, &l, &hint, r.key), shown);
		for (uint32_t k = 0; k < pm->n; k++) {
			if (k)
				buf_adds(&b, ", ");
			esc_term(&b, v->mr->test_to ? v->mr->test_to : r.rcpt[pm->idx[k]]);
		}
		buf_addc(&b, '\n');
		fwrite(b.data, 1, b.len, stdout);
		plan_record_free(&r);
	}
	printf("dry run: %zu mission%s would be %s, %zu already sent, %zu already staged, %zu "
	       "failed and %zu in doubt left alone\n",
	       v->to_send, v->to_send == 1 ? "" : "s", v->staging ? "staged" : "sent",
	       v->p->already_sent, v->p->already_staged, v->p->skipped_failed,
	       v->p->skipped_unknown);
	for (size_t i = 0; i < l.n; i++) {
		free(l.key[i]);
		free(l.lang[i]);
	}
	free(l.key);
	free(l.lang);
	buf_free(&b);
	free(ch);
	free(shown);
	return rc;
}

/* --- what changed since the last letter -------------------------------------------------- */

int print_changes(FILE *fp, struct ledger *l, const char *store, struct merge *m, int filtered)
{
	struct ledger *own = NULL;
	struct buf b = BUF_INIT;
	char *err = NULL;
	int rc = EX_OK;

	/* check has no ledger open: read it, never create or change it */
	if (!l && store && access(store, F_OK) == 0 &&
	    ledger_open(store, LEDGER_READONLY, &own, &err) == EX_OK)
		l = own;
	if (l && (rc = plan_changes(l, m, filtered, &b, &err)) != EX_OK)
		fprintf(stderr, "demarche: what changed since the last letter: %s\n", err);
	if (b.len)
		fwrite(b.data, 1, b.len, fp);
	ledger_close(own);
	buf_free(&b);
	free(err);
	return rc;
}

void send_print_capped(const struct send_view *v, int daily_cap, long sent_today)
{
	printf("campaign %s: nothing sent: the daily cap (%d recipients) is reached: %ld in the "
	       "last 24 hours through %s; run again later\n",
	       v->m->campaign, daily_cap, sent_today, v->via);
}

void send_print_stopped(const struct send_view *v, int interrupted, int daily_cap)
{
	if (interrupted)
		fprintf(stderr, "demarche send: interrupted; the ledger is consistent: run again "
		                "to go on\n");
	if (v->st.capped)
		fprintf(stderr,
		        "demarche send: the daily cap (%d recipients) is reached: run again "
		        "later for the rest\n",
		        daily_cap);
}

void send_print_waiting(const struct sendrun_wait *w)
{
	char when[96], *key;

	if (!w->n)
		return;
	key = esc_term_dup(w->key); /* a roster value, for a terminal */
	schedule_format_local(w->zone, w->next, when, sizeof(when));
	printf("%zu missions wait for their time; the next: %s at %s\n", w->n, key, when);
	free(key);
}
