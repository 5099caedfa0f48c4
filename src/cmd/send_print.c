/* demarche send's output: the plan, the progress line, each problem, the summary. */
#include <stdio.h>
#include <sysexits.h>

#include "base/term.h"
#include "cmd/send.h"
#include "transport/ratelimit.h"

void send_print_plan(const struct send_view *v)
{
	const char *title = letter_header_source(v->m->letter, "en", "Title");

	fprintf(stderr, "campaign:   %s%s%s\n", v->m->campaign, title ? " - " : "",
	        title ? title : "");
	fprintf(stderr, "appeal:     %s (sha256 %.16s...)\n", letter_path(v->m->letter),
	        letter_hash(v->m->letter));
	fprintf(stderr, "transport:  %s (concurrency %d)\n", v->via, v->concurrency);
	fprintf(stderr, "sender:     %s <%s>%s\n", v->mr->from_name, v->mr->from_addr,
	        v->mr->example_sender ? " (example: set [sender] address)" : "");
	if (v->mr->test_to)
		fprintf(stderr, "test:       every message goes to %s, Subject [TEST]\n",
		        v->mr->test_to);
	fprintf(stderr,
	        "missions:   %zu to send, %zu already sent, %zu failed and %zu in doubt "
	        "left alone\n",
	        v->to_send, v->p->already_sent, v->p->skipped_failed, v->p->skipped_unknown);
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

int send_print_summary(const struct send_view *v, int test, int interrupted)
{
	const struct engine_stats *st = &v->st;
	size_t c[MS__COUNT], selected = 0;
	size_t ended = st->sent + st->deferred + st->failed + st->unknown + st->elsewhere;

	if (test) {
		printf("test of campaign %s to %s via %s: %zu sent, %zu deferred, %zu failed, "
		       "%zu in doubt (recorded as tests, not deliveries)\n",
		       v->m->campaign, v->mr->test_to, v->via, st->sent, st->deferred, st->failed,
		       st->unknown);
		if (st->failed)
			return EX_UNAVAILABLE;
		return st->deferred || st->unknown || interrupted || ended < v->to_send
		           ? EX_TEMPFAIL
		           : EX_OK;
	}
	if (v->to_send == 0)
		printf("campaign %s: nothing to send (%zu already sent, %zu failed and %zu in "
		       "doubt left alone)\n",
		       v->m->campaign, v->p->already_sent, v->p->skipped_failed,
		       v->p->skipped_unknown);
	else
		printf("campaign %s via %s: %zu sent, %zu deferred, %zu failed, %zu in doubt, "
		       "%zu not started; %zu already sent before\n",
		       v->m->campaign, v->via, st->sent, st->deferred, st->failed, st->unknown,
		       v->to_send > ended ? v->to_send - ended : 0, v->p->already_sent);
	if (st->elsewhere) /* a team ledger (issue 21) */
		printf("  %zu mission%s taken by another sender first\n", st->elsewhere,
		       st->elsewhere == 1 ? " was" : "s were");
	if (st->rcpt_failed)
		printf("  %zu address%s refused while the mission's other addresses took the "
		       "letter: see demarche audit %s\n",
		       st->rcpt_failed, st->rcpt_failed == 1 ? " was" : "es were", v->m->campaign);
	plan_count(v->p, c);
	for (int s = 0; s < MS__COUNT; s++)
		selected += c[s];
	/* The whole campaign's selected missions, not only this run's work: a rerun that sends
	 * the rest must not look finished while some are still in doubt. */
	printf("missions of %s selected: %zu: %zu sent, %zu deferred, %zu failed, %zu in doubt, "
	       "%zu not started\n",
	       v->m->campaign, selected, c[MS_SENT], c[MS_DEFERRED], c[MS_FAILED], c[MS_UNKNOWN],
	       c[MS_NOT_STARTED]);
	if (c[MS_FAILED])
		return EX_UNAVAILABLE;
	if (c[MS_DEFERRED] || c[MS_UNKNOWN] || c[MS_NOT_STARTED] || interrupted)
		return EX_TEMPFAIL;
	return EX_OK;
}
