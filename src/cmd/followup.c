/* demarche followup: a reminder appeal for the missions that have not answered a campaign. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/xalloc.h"
#include "campaign/followup.h"
#include "cmd/cmd.h"
#include "letter/letter.h"

const char usage_followup[] =
    "usage: demarche followup CAMPAIGN --after 10d -o DIR [--force]\n"
    "\n"
    "Drafts a reminder appeal into DIR (one file per language, from templates/_reminder)\n"
    "for the missions that received CAMPAIGN and neither replied nor bounced (as far as\n"
    "demarche bounces has read), and lists them with the day each reminder falls due: their\n"
    "first letter's sending day plus --after (10d, 36h, 90m; a number alone is days). The\n"
    "reminder says \"Follows: CAMPAIGN\": 'demarche send DIR' with the roster sends it only to\n"
    "those missions once due, as a reply to their first letter (In-Reply-To and References\n"
    "name its Message-ID), citing its date and reference. The delay is recorded in the\n"
    "ledger (audit's ics format shows the dates).\n"
    "\n"
    "  --after N[d|h|m]  how long after the first letter a mission is reminded\n"
    "  -o, --output DIR  where to write the reminder (a new or empty folder)\n"
    "  --force           write into a folder that is not empty\n"
    "\n"
    "Exit: 0 drafted; 64 usage; 65 no such campaign in the ledger; 66 no ledger; 73 DIR\n"
    "cannot be made or is not empty.\n";

/* 1 when dir does not exist or holds nothing but . and .. */
static int dir_empty(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!dp)
		return 1;
	while (empty && (e = readdir(dp)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(dp);
	return empty;
}

/* templates/_reminder in the template folders (a '_' folder is not a listed template). */
static int find_reminder(char **path, char **layout, char **errstr)
{
	char **dirs = NULL, *p = NULL;
	size_t n = letter_template_dirs(&dirs);
	struct stat st;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (!p) {
			p = xasprintf("%s/_reminder", dirs[i]);
			if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
				free(p);
				p = NULL;
			}
		}
		free(dirs[i]);
	}
	free(dirs);
	if (!p)
		return error_set(errstr, EX_NOINPUT,
		                 "no _reminder folder among the templates (DEMARCHE_TEMPLATES)");
	rc = letter_find_template(p, path, layout, errstr);
	free(p);
	return rc;
}

static void print_day(int64_t t, char out[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

int cmd_followup(int argc, char **argv, struct app *app)
{
	static const struct option opts[] = {
	    {"after", required_argument, NULL, 'a'},
	    {"output", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	const char *outdir = NULL, *campaign, *after_arg = NULL;
	struct ledger *l = NULL;
	struct letter *tl = NULL;
	struct followup_mission *m = NULL;
	struct diags d = DIAGS_INIT;
	size_t n = 0, answered = 0, due = 0;
	char *err = NULL, *tpath = NULL, *layout = NULL, *detail;
	int64_t after, now = clock_real_ms() / 1000;
	json_t *params = NULL;
	struct ledger_outcome o = {0};
	struct buf b = BUF_INIT;
	int c, force = 0, rc;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'a')
			after_arg = optarg;
		else if (c == 'o')
			outdir = optarg;
		else if (c == 'f')
			force = 1;
		else {
			fputs(usage_followup, stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc || !outdir || !*outdir || !after_arg) {
		fputs(usage_followup, stderr);
		return EX_USAGE;
	}
	campaign = argv[optind];
	if ((after = followup_parse_after(after_arg)) < 0) {
		fprintf(stderr, "demarche followup: --after wants 10d, 36h or 90m, not '%s'\n",
		        after_arg);
		return EX_USAGE;
	}
	if ((rc = app_config(app)))
		return rc;
	if ((rc = ledger_open(app_store_path(app), LEDGER_CHECK, &l, &err)))
		goto out;
	if ((rc = ledger_campaign_exists(l, campaign)) <= 0) {
		rc = rc < 0 ? error_set(&err, EX_IOERR, "the ledger could not answer")
		            : error_set(&err, EX_DATAERR, "no campaign '%s' in the ledger %s",
		                        campaign, app_store_path(app));
		goto out;
	}
	if ((rc = followup_missions(l, campaign, &m, &n, &answered, &err)))
		goto out;

	/* The reminder, drafted like any appeal (letter_draft(): all or nothing). */
	if ((rc = find_reminder(&tpath, &layout, &err)))
		goto out;
	if ((rc = letter_load(tpath, layout, &tl, &d)))
		goto out;
	params = json_object();
	json_object_set_new(params, "follows", json_string(campaign));
	json_object_set_new(params, "sender",
	                    json_string(app->cfg.sender.name && *app->cfg.sender.name
	                                    ? app->cfg.sender.name
	                                    : "Coalition for the International Criminal Court"));
	if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
		rc = error_set(&err, EX_CANTCREAT, "%s: %s", outdir, strerror(errno));
		goto out;
	}
	if (!force && !dir_empty(outdir)) {
		rc = error_set(&err, EX_CANTCREAT,
		               "%s holds an appeal; use --force to write over it", outdir);
		goto out;
	}
	if ((rc = letter_draft(tl, params, outdir, &d)))
		goto out;
	detail = xasprintf("after %lld appeal %s", (long long)after, outdir);
	o.detail = detail;
	rc = ledger_record(l, "followup", campaign, 0, &o, &err);
	free(detail);
	if (rc)
		goto out;

	for (size_t i = 0; i < n; i++) {
		char sent[16], when[16];

		print_day(m[i].sent, sent);
		print_day(m[i].sent + after, when);
		due += m[i].sent + after <= now;
		buf_truncate(&b, 0);
		esc_term(&b, m[i].key);
		printf("%-8s first letter %s, reminder %s %s\n", b.data, sent,
		       m[i].sent + after <= now ? "due since" : "due on", when);
	}
	printf("%s: %zu missions await an answer (%zu due now), %zu replied or bounced; "
	       "reminder drafted in %s\n",
	       campaign, n, due, answered, outdir);
	fprintf(stderr,
	        "demarche followup: next: demarche send %s --to ROSTER.csv (it goes to the due "
	        "missions only, as a reply to their first letter)\n",
	        outdir);
out:
	if (d.n)
		diags_print(&d, stderr);
	if (err)
		fprintf(stderr, "demarche followup: %s\n", err);
	diags_free(&d);
	buf_free(&b);
	json_decref(params);
	letter_free(tl);
	free(tpath);
	free(layout);
	free(err);
	followup_missions_free(m, n);
	ledger_close(l);
	return rc;
}
