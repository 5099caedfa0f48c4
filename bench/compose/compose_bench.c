/* Micro-benchmark: mail_compose() throughput for the ~6 KB test letter, one core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "mail/compose.h"

static double now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *data = argc > 1 ? argv[1] : "tests/data/mail";
	long n = argc > 2 ? atol(argv[2]) : 100000;
	int with_att = argc > 3 && strcmp(argv[3], "png") == 0;
	char path[4096], *text, *html, *err = NULL, *id = NULL, key[16], name[96];
	struct mail_attachment *att = NULL;
	struct mail_address to = {name, "mission@missions.example"};
	struct mail_message m = {0};
	struct buf out = BUF_INIT;
	size_t len, bytes = 0;
	double t0, c0, t, c;
	long i;

	snprintf(path, sizeof(path), "%s/letter.md", data);
	if (read_file(path, &text, &len) < 0)
		return perror(path), 66;
	snprintf(path, sizeof(path), "%s/letter.html", data);
	if (read_file(path, &html, &len) < 0)
		return perror(path), 66;
	snprintf(path, sizeof(path), "%s/seal.png", data);
	if (with_att && mail_attachment_load(path, &att, &err) != 0)
		return fprintf(stderr, "%s\n", err), 66;
	m.from = (struct mail_address){"Coalition for the ICC", "asp@coalition.example"};
	m.to = &to;
	m.nto = 1;
	m.subject = "24e session de l'Assemblée des États Parties : priorités";
	m.date = time(NULL);
	m.campaign = "asp24-priorities";
	m.text = text;
	m.html = html;
	m.attachments = &att;
	m.nattachments = with_att;
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (i = 0; i < n; i++) {
		/* Per mission: its own name, key and Message-ID, as send and preview do. */
		snprintf(key, sizeof(key), "K%05ld", i % 100000);
		snprintf(name, sizeof(name), "Mission permanente de la Côte d'Ivoire n°%ld", i);
		if (mail_message_id(m.campaign, key, "appeal-hash", "coalition.example", &id, &err))
			return fprintf(stderr, "%s\n", err), 1;
		m.message_id = id;
		buf_reset(&out);
		if (mail_compose(&m, &out, &err) != 0)
			return fprintf(stderr, "%s\n", err), 1;
		bytes += out.len;
		free(id);
	}
	t = now(CLOCK_MONOTONIC) - t0;
	c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("%ld messages of %zu bytes%s: %.3f s wall, %.3f s CPU: %.0f messages/s per CPU "
	       "second (%.0f wall), %.1f MB/s\n",
	       n, out.len, with_att ? " (with a 1.8 KB PNG)" : "", t, c, (double)n / c,
	       (double)n / t, (double)bytes / c / 1e6);
	buf_free(&out);
	mail_attachment_free(att);
	free(text);
	free(html);
	return 0;
}
