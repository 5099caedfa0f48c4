/*
 * Unit tests for src/ledger: schema and migrations, the state machine's every legal and
 * illegal transition, the campaign-hash rule, queries, verify against tampering, and a
 * crash test (SIGKILL at random moments). `test_ledger --make-sample FILE` writes the
 * deterministic store that tests/integration/ledger.sh audits; `--make-hostile FILE` one
 * whose text COPY must escape (ledger_copy.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/ident.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "ledger/ledger.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define T0 ((time_t)1717243200) /* 2024-06-01T12:00:00Z */

static char tmpdir[64];

/*
 * DEMARCHE_TEST_STORE (a libpq "host=... port=... user=..." string, from test_ledger.cmake's
 * second registration): the same tests on PostgreSQL, one database per ledger name.
 */
static const char *pg_base;

static char *tpath(const char *name)
{
	if (pg_base) {
		char *p = xasprintf("%s dbname=t_%s", pg_base, name);

		for (char *c = strstr(p, "dbname=t_") + 9; *c; c++)
			if (*c == '.' || *c == '-')
				*c = '_';
		return p;
	}
	return xasprintf("%s/%s", tmpdir, name);
}

/* psql on database path (pg_base + dbname), with -c q: its exit status; out: its output */
static int psql(const char *path, const char *dbname_override, const char *q, char **out)
{
	char *cmd, *f = xasprintf("%s/psql.out", tmpdir), *conn = xstrdup(path);
	int rc;

	if (dbname_override)
		strcpy(strstr(conn, "dbname=") + 7, dbname_override);
	setenv("DEMARCHE_PSQL_CONN", conn, 1);
	setenv("DEMARCHE_PSQL_SQL", q, 1);
	cmd = xasprintf("/usr/lib/postgresql/15/bin/psql -X -q -A -t -v ON_ERROR_STOP=1"
	                " -d \"$DEMARCHE_PSQL_CONN\" -c \"$DEMARCHE_PSQL_SQL\" >%s 2>&1",
	                f);
	rc = system(cmd);
	if (out) {
		FILE *fp = fopen(f, "r");
		char line[4096] = "";

		if (fp) {
			if (!fgets(line, sizeof(line), fp))
				line[0] = '\0';
			fclose(fp);
		}
		line[strcspn(line, "\n")] = '\0';
		*out = xstrdup(line);
	}
	free(cmd);
	free(f);
	free(conn);
	return rc;
}

/* Removes the ledger at p: the file, or (PostgreSQL) its database, made anew and empty. */
static void fresh(const char *p)
{
	if (pg_base) {
		char *db = strstr(p, "dbname=") + 7;
		char *drop = xasprintf("DROP DATABASE IF EXISTS %s", db);
		char *make = xasprintf("CREATE DATABASE %s", db);

		if (psql(p, "postgres", drop, NULL) || psql(p, "postgres", make, NULL))
			fail_msg("cannot make database %s", db);
		free(drop);
		free(make);
		return;
	}
	unlink(p);
}

/* 1 when a ledger was made at p. */
static int exists(const char *p)
{
	char *out = NULL;
	int r;

	if (!pg_base)
		return access(p, F_OK) == 0;
	r = !psql(p, NULL, "SELECT count(*) FROM pg_tables WHERE tablename = 'demarche_schema'",
	          &out) &&
	    !strcmp(out, "1");
	free(out);
	return r;
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_ledger-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static struct ledger *open_new(const char *name)
{
	char *p = tpath(name), *err = NULL;
	struct ledger *l = NULL;

	fresh(p);
	if (ledger_open(p, LEDGER_CREATE, &l, &err) != EX_OK)
		fail_msg("ledger_open %s: %s", p, err);
	free(p);
	return l;
}

static void sql(const char *path, const char *q)
{
	sqlite3 *db;
	char *msg = NULL;

	if (pg_base) {
		/* as SQLite without foreign_keys: no trigger or reference stops the tampering */
		char *t = xasprintf("SET session_replication_role = replica; %s", q);

		if (psql(path, NULL, t, NULL))
			fail_msg("%s: failed", q);
		free(t);
		return;
	}

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", q, msg);
	sqlite3_close(db);
}

static long count_sql(const char *path, const char *q);

static int64_t deliver(struct ledger *l, const char *campaign, const char *key)
{
	struct ledger_delivery d;
	char *addr = xasprintf("mission@%s.example", key), *mid = xasprintf("<%s@x>", key);
	char *err = NULL;

	if (ledger_delivery_get(l, campaign, key, addr, mid, &d, &err) != EX_OK)
		fail_msg("delivery_get: %s", err);
	free(addr);
	free(mid);
	return d.id;
}

static void go(struct ledger *l, int64_t id, enum ledger_state to, unsigned flags)
{
	char *err = NULL;

	if (ledger_transition(l, id, to, flags, NULL, NULL, &err) != EX_OK)
		fail_msg("transition to %s: %s", ledger_state_name(to), err);
}

static void verify_ok(struct ledger *l, long *n)
{
	char head[65], *err = NULL;
	long count = 0;

	if (ledger_verify(l, &count, head, &err) != EX_OK)
		fail_msg("verify: %s", err);
	assert_int_equal(strlen(head), 64);
	if (n)
		*n = count;
}

/* The store ledger.sh audits: two campaigns, every kind of outcome, awkward text. */
static int make_sample(const char *path)
{
	static const struct {
		const char *key, *addr;
		enum ledger_state path[3];
		int code;
		const char *reply;
	} a[] = {
	    {"BRA",
	     "missao@brasil.example",
	     {LS_SENDING, LS_DEFERRED},
	     451,
	     "451 4.7.1 Try again later"},
	    {"CIV",
	     "mission@civ.example",
	     {LS_SENDING, LS_FAILED},
	     550,
	     "550 5.7.1 \"Rejected\", policy"},
	    {"FRA",
	     "mission@fra.example",
	     {LS_SENDING, LS_SENT},
	     250,
	     "250 2.0.0 Ok: queued as 4Xb3"},
	    {"JPN", "mission@jpn.example", {LS_SENDING, LS_UNKNOWN}, 0, NULL},
	    {"KEN",
	     "mission@ken.example",
	     {LS_SENDING, LS_SENT},
	     250,
	     "250 2.0.0 Ok: queued as 4Xb2"},
	    {"SEN",
	     "mission@sen.example",
	     {LS_SENDING, LS_SENT, LS_BOUNCED},
	     250,
	     "250 2.0.0 Ok: queued as 4Xb4"},
	};
	struct ledger *l = NULL;
	char *err = NULL;
	int rc;

	fresh(path);
	if ((rc = ledger_open(path, LEDGER_CREATE, &l, &err)))
		goto out;
	ledger_set_clock(l, T0);
	if ((rc = ledger_campaign_begin(l, "asp23-priorities",
	                                "Priorities for the 23rd session, Côte d'Ivoire",
	                                "23rd session: priorities", H1, 0, &err)))
		goto out;
	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		struct ledger_delivery d;
		char *mid = xasprintf("<asp23-priorities.%s.abc@coalition.example>", a[i].key);

		rc = ledger_delivery_get(l, "asp23-priorities", a[i].key, a[i].addr, mid, &d, &err);
		free(mid);
		if (rc)
			goto out;
		for (int s = 0; s < 3 && a[i].path[s]; s++) {
			struct ledger_outcome o = {0};

			ledger_set_clock(l, T0 + 60 * (time_t)(i + 1) + s);
			if (a[i].path[s] != LS_SENDING && a[i].path[s] != LS_BOUNCED) {
				o.code = a[i].code;
				o.reply = a[i].reply;
			}
			o.via = "smtp://127.0.0.1:2525";
			if ((rc = ledger_transition(l, d.id, a[i].path[s], 0, &o, NULL, &err)))
				goto out;
		}
	}
	ledger_set_clock(l, T0 + 86400);
	if ((rc = ledger_campaign_begin(l, "asp24-priorities", "Priorities for the 24th session",
	                                "24th session: priorities", H2, 0, &err)))
		goto out;
	for (int i = 0; i < 3; i++) {
		static const char *const keys[] = {"ARG", "KEN", "NLD"};
		struct ledger_outcome o = {250, "250 2.0.0 Ok: queued as 5Q", "maildir:outbox",
		                           NULL};
		int64_t id = deliver(l, "asp24-priorities", keys[i]);

		if ((rc = ledger_transition(l, id, LS_SENDING, 0, NULL, NULL, &err)) ||
		    (rc = ledger_transition(l, id, LS_SENT, 0, &o, NULL, &err)))
			goto out;
	}
out:
	if (rc)
		fprintf(stderr, "make-sample: %s\n", err);
	free(err);
	ledger_close(l);
	return rc;
}

/*
 * The store ledger_copy.sh sends through PostgreSQL's COPY and back: every text column that
 * comes from outside (roster, SMTP replies, IMAP) holds what COPY's text format escapes
 * (tab, newline, CR, backslash, "\N", "\."), quotes, and a kept message holds every byte.
 */
static int make_hostile(const char *path)
{
	static const char nasty[] = "tab\there\nnewline\r\\back\\N'quote\"\\.\\t";
	struct ledger *l = NULL;
	struct ledger_delivery d;
	struct ledger_outcome o = {250, "250 ok\t\\N\r\nqueued", "smtp://host\\t:25", nasty};
	char *err = NULL, data[256], *key = xasprintf("K\t%s", nasty), *addr;
	int64_t ids[1];
	int rc;

	addr = xasprintf("x\\y\t\"z'@example.org");
	for (int i = 0; i < 256; i++)
		data[i] = (char)i;
	fresh(path);
	ledger_set_operator("op\t\\N\nerator");
	if ((rc = ledger_open(path, LEDGER_CREATE, &l, &err)))
		goto out;
	ledger_set_clock(l, T0);
	if ((rc = ledger_campaign_begin(l, "c\\1\t'\"", nasty, "subject\\N", H1, 0, &err)) ||
	    (rc = ledger_delivery_get(l, "c\\1\t'\"", key, addr, "<m\\1\t@x>", &d, &err)) ||
	    (rc = ledger_transition(l, d.id, LS_SENDING, 0, &o, NULL, &err)) ||
	    (rc = ledger_transition(l, d.id, LS_SENT, 0, &o, NULL, &err)) ||
	    (rc = ledger_record(l, "note", "c\\1\t'\"", d.id, &o, &err)) ||
	    (rc = ledger_observe(l, "reply", d.id, -1, "<src\t\\N\n@x>", &o, NULL, &err)) ||
	    (rc = ledger_imap_state_set(l, "acc\t\\", "INBOX\n\\.", 7, 9, &err)))
		goto out;
	ids[0] = d.id;
	if ((rc = ledger_copy_appended(l, "c\\1\t'\"", ids, 1, "imap\\x", "Sent\t\\N", 5, 6, 0,
	                               &err)) ||
	    (rc = ledger_copy_failed(l, "c\\1\t'\"", ids, 1, "imap\\x", data, sizeof(data), nasty,
	                             0, &err)))
		goto out;
out:
	if (rc)
		fprintf(stderr, "make-hostile: %s\n", err);
	free(err);
	free(key);
	free(addr);
	ledger_close(l);
	return rc;
}

/* --- schema --------------------------------------------------------------------------- */

static void test_states(void **state)
{
	(void)state;
	for (int s = 0; s < LS__COUNT; s++)
		assert_int_equal(ledger_state_parse(ledger_state_name(s)), s);
	assert_string_equal(ledger_state_name(LS_UNKNOWN), "unknown");
	assert_int_equal(ledger_state_parse("delivered"), -1);
	assert_string_equal(ledger_state_name(LS__COUNT), "?");
	assert_true(ledger_state_received(LS_SENT) && ledger_state_received(LS_REPLIED));
	assert_false(ledger_state_received(LS_BOUNCED));
}

static void test_create_and_migrate(void **state)
{
	char *p = tpath("new.db"), *wal = tpath("new.db-wal"), *err = NULL;
	struct ledger *l = NULL;
	struct stat sb;
	sqlite3 *db;
	sqlite3_stmt *st;
	mode_t old = umask(0);

	(void)state;
	unlink(p);
	/* no file, no LEDGER_CREATE: "missing file" */
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_NOINPUT);
	assert_null(l);
	assert_non_null(strstr(err, p));
	/* an empty file created by someone else migrates too */
	assert_int_equal(ledger_open(p, LEDGER_CREATE, &l, &err), EX_OK);
	umask(old);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	ledger_close(l);

	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), LEDGER_SCHEMA_VERSION);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	/* the triggers keep events append-only */
	assert_int_not_equal(sqlite3_exec(db, "UPDATE events SET detail = 'x'", 0, 0, 0), 0);
	assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM events", 0, 0, 0), 0);
	sqlite3_close(db);

	/* reopening an up-to-date store changes nothing */
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	verify_ok(l, NULL);
	ledger_close(l);

	/* an empty zero-byte file (touched by the user) is created into a ledger */
	unlink(p);
	fclose(fopen(p, "w"));
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	ledger_close(l);
	free(p);
	free(wal);
	free(err);
}

static void test_newer_schema_refused(void **state)
{
	char *p = tpath("newer.db"), *err = NULL, *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	struct ledger *l = open_new("newer.db");

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	ledger_close(l);
	sql(p, "PRAGMA user_version = 99");
	assert_int_equal(read_file(p, &before, &nb), 0);
	l = NULL;
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_CONFIG);
	assert_null(l);
	assert_non_null(strstr(err, "newer demarche"));
	assert_non_null(strstr(err, "99"));
	assert_int_equal(read_file(p, &after, &na), 0);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	free(before);
	free(after);
	free(p);
	free(err);
}

static void test_not_a_ledger(void **state)
{
	char *p = tpath("junk.db"), *err = NULL;
	struct ledger *l = NULL;
	FILE *fp = fopen(p, "w");

	(void)state;
	fputs("iso3,state,email\nKEN,Kenya,mission@ken.example\n", fp);
	fclose(fp);
	assert_int_equal(ledger_open(p, LEDGER_CREATE, &l, &err), EX_DATAERR);
	assert_non_null(strstr(err, "not a demarche ledger"));
	unlink(p);
	sql(p, "CREATE TABLE t (x)");
	assert_int_equal(ledger_open(p, LEDGER_CREATE, &l, &err), EX_DATAERR);
	assert_non_null(strstr(err, "not a demarche ledger"));
	assert_null(l);
	free(p);
	free(err);
}

/* --- the one door --------------------------------------------------------------------- */

/* The rule, written independently of ledger.c's table. */
static int expect_legal(int from, int to, unsigned flags)
{
	switch (from) {
	case LS_PENDING:
	case LS_DEFERRED:
	case LS_STAGED: /* a local outbox's: a real send takes it */
		return to == LS_SENDING;
	case LS_SENDING:
		return to == LS_SENT || to == LS_DEFERRED || to == LS_FAILED || to == LS_UNKNOWN ||
		       to == LS_STAGED;
	case LS_UNKNOWN:
		return to == LS_SENDING && (flags & LEDGER_RETRY_UNKNOWN);
	case LS_FAILED:
		return to == LS_SENDING && (flags & LEDGER_RETRY_FAILED);
	case LS_SENT:
		return to == LS_BOUNCED || to == LS_REPLIED;
	default:
		return 0;
	}
}

static const enum ledger_state path_to[LS__COUNT][4] = {
    [LS_PENDING] = {LS__COUNT},
    [LS_SENDING] = {LS_SENDING, LS__COUNT},
    [LS_SENT] = {LS_SENDING, LS_SENT, LS__COUNT},
    [LS_DEFERRED] = {LS_SENDING, LS_DEFERRED, LS__COUNT},
    [LS_FAILED] = {LS_SENDING, LS_FAILED, LS__COUNT},
    [LS_UNKNOWN] = {LS_SENDING, LS_UNKNOWN, LS__COUNT},
    [LS_BOUNCED] = {LS_SENDING, LS_SENT, LS_BOUNCED, LS__COUNT},
    [LS_REPLIED] = {LS_SENDING, LS_SENT, LS_REPLIED, LS__COUNT},
    [LS_STAGED] = {LS_SENDING, LS_STAGED, LS__COUNT},
};

static void test_every_transition(void **state)
{
	struct ledger *l = open_new("transitions.db");
	char *err = NULL;
	int legal_seen = 0, illegal_seen = 0;
	long n;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	/* one batch for the setup paths; each tested transition then commits on its own */
	for (int from = 0; from < LS__COUNT; from++) {
		for (int to = 0; to < LS__COUNT; to++) {
			for (unsigned flags = 0; flags < 4; flags++) {
				struct ledger_delivery d, after;
				char key[32];
				int want = expect_legal(from, to, flags), rc, steps = 0;

				snprintf(key, sizeof(key), "%d-%d-%u", from, to, flags);
				int64_t id = deliver(l, "c", key);
				for (int s = 0; path_to[from][s] != LS__COUNT; s++, steps++)
					go(l, id, path_to[from][s], 0);
				rc = ledger_transition(l, id, to, flags,
				                       &(struct ledger_outcome){.code = 250}, &d,
				                       &err);
				char *addr = xasprintf("mission@%s.example", key);
				assert_int_equal(
				    ledger_delivery_get(l, "c", key, addr, NULL, &after, &err),
				    EX_OK);
				free(addr);
				if (want) {
					legal_seen++;
					if (rc != EX_OK)
						fail_msg("%s -> %s flags %u refused: %s",
						         ledger_state_name(from),
						         ledger_state_name(to), flags, err);
					assert_int_equal(d.state, to);
				} else {
					illegal_seen++;
					if (rc != EX_SOFTWARE)
						fail_msg("%s -> %s flags %u: rc %d",
						         ledger_state_name(from),
						         ledger_state_name(to), flags, rc);
					assert_non_null(strstr(err, "illegal transition"));
					assert_non_null(strstr(err, ledger_state_name(from)));
					assert_int_equal(after.state, from);
					assert_int_equal(after.attempts, from != LS_PENDING);
				}
			}
		}
	}
	assert_int_equal(legal_seen, 4 * 10 + 2 * 2);
	assert_int_equal(illegal_seen, LS__COUNT * LS__COUNT * 4 - legal_seen);
	/* the store stays consistent: illegal attempts wrote nothing */
	verify_ok(l, &n);
	ledger_close(l);
	free(err);
}

static void test_transition_records(void **state)
{
	struct ledger *l = open_new("records.db");
	struct ledger_delivery d, again;
	struct ledger_outcome o = {250, "250 2.0.0 Ok: queued as 4Xb2", "smtp://a", NULL};
	char *err = NULL;
	int64_t id;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	/* get-or-create returns the same delivery; unknown campaign is bad input */
	assert_int_equal(ledger_delivery_get(l, "c", "KEN", "a@ken.example", "<m>", &d, &err), 0);
	assert_int_equal(d.state, LS_PENDING);
	assert_int_equal(d.attempts, 0);
	assert_int_equal(ledger_delivery_get(l, "c", "KEN", "a@ken.example", "<m>", &again, &err),
	                 0);
	assert_int_equal(again.id, d.id);
	assert_int_equal(ledger_delivery_get(l, "nope", "KEN", "a@ken.example", "<m>", &d, &err),
	                 EX_DATAERR);
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(ledger_transition(l, 9999, LS_SENDING, 0, NULL, NULL, &err), EX_DATAERR);

	id = again.id;
	go(l, id, LS_SENDING, 0);
	go(l, id, LS_DEFERRED, 0);
	go(l, id, LS_SENDING, 0);
	assert_int_equal(ledger_transition(l, id, LS_SENT, 0, &o, &d, &err), EX_OK);
	assert_int_equal(d.attempts, 2);
	assert_int_equal(d.state, LS_SENT);
	assert_int_equal(ledger_transition(l, id, LS_SENDING,
	                                   LEDGER_RETRY_UNKNOWN | LEDGER_RETRY_FAILED, NULL, NULL,
	                                   &err),
	                 EX_SOFTWARE);
	assert_non_null(strstr(err, "sent -> sending"));

	/* non-state events join the chain; reserved kinds are refused */
	assert_int_equal(ledger_record(l, "test", "c", 0,
	                               &(struct ledger_outcome){.detail = "--test-to me@x"}, &err),
	                 EX_OK);
	assert_int_equal(ledger_record(l, "transition", "c", id, NULL, &err), EX_SOFTWARE);
	assert_int_equal(ledger_record(l, "amend", "c", 0, NULL, &err), EX_SOFTWARE);
	long n;
	verify_ok(l, &n);
	/* campaign, creation, 4 transitions, test */
	assert_int_equal(n, 7);
	ledger_close(l);
	free(err);
}

/* --- campaigns ------------------------------------------------------------------------ */

struct camp_seen {
	char hash[65], title[64];
	long sent, total;
	int n;
};

static int camp_cb(const struct ledger_campaign *c, void *ctx)
{
	struct camp_seen *s = ctx;

	s->n++;
	snprintf(s->hash, sizeof(s->hash), "%s", c->content_hash);
	snprintf(s->title, sizeof(s->title), "%s", c->title);
	s->sent = c->counts[LS_SENT];
	s->total = c->total;
	return 0;
}

static void test_campaign_hash_rule(void **state)
{
	struct ledger *l = open_new("campaign.db");
	struct camp_seen seen = {0};
	char *err = NULL;
	long n;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "asp24", "T", "S", H1, 0, &err), EX_OK);
	/* the same appeal again: a rerun, nothing recorded */
	assert_int_equal(ledger_campaign_begin(l, "asp24", "T", "S", H1, 0, &err), EX_OK);
	verify_ok(l, &n);
	assert_int_equal(n, 1);
	/* another appeal under the same id: refused, with the way out */
	assert_int_equal(ledger_campaign_begin(l, "asp24", "T2", "S", H2, 0, &err), EX_DATAERR);
	assert_non_null(strstr(err, "use a new campaign id or --amend"));
	assert_int_equal(ledger_campaigns(l, camp_cb, &seen, &err), EX_OK);
	assert_string_equal(seen.hash, H1);
	/* --amend: recorded as an event, and the new hash holds */
	assert_int_equal(ledger_campaign_begin(l, "asp24", "T2", "S", H2, 1, &err), EX_OK);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(ledger_campaigns(l, camp_cb, &seen, &err), EX_OK);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.hash, H2);
	assert_string_equal(seen.title, "T2");
	assert_int_equal(ledger_campaign_begin(l, "asp24", "T2", "S", H2, 0, &err), EX_OK);
	verify_ok(l, &n);
	assert_int_equal(n, 2);
	assert_int_equal(ledger_campaign_exists(l, "asp24"), 1);
	assert_int_equal(ledger_campaign_exists(l, "asp25"), 0);
	ledger_close(l);

	char *p = tpath("campaign.db");
	sqlite3 *db;
	sqlite3_stmt *st;
	if (pg_base) {
		assert_int_equal(count_sql(p, "SELECT count(*) FROM events WHERE kind = 'amend'"
		                              " AND seq = 2"),
		                 1);
		free(p);
		free(err);
		return;
	}
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT group_concat(kind) FROM events", -1, &st, NULL), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "campaign,amend");
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(p);
	free(err);
}

/* --- queries -------------------------------------------------------------------------- */

static void sent_at(struct ledger *l, const char *key, const char *via, time_t t)
{
	struct ledger_outcome o = {250, "250 ok", via, NULL};
	int64_t id = deliver(l, "c", key);
	char *err = NULL;

	ledger_set_clock(l, t);
	go(l, id, LS_SENDING, 0);
	if (ledger_transition(l, id, LS_SENT, 0, &o, NULL, &err))
		fail_msg("%s", err);
}

static void test_rate_window(void **state)
{
	struct ledger *l = open_new("rate.db");
	char *err = NULL;
	long n = -1;
	int64_t id;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	sent_at(l, "A1", "smtp://a", T0);
	sent_at(l, "A2", "smtp://a", T0 + 1800);
	sent_at(l, "A3", "smtp://a", T0 + 3599);
	sent_at(l, "A4", "smtp://a", T0 + 3600);
	sent_at(l, "B1", "smtp://b", T0 + 3600);
	/* deferred through a: does not count */
	id = deliver(l, "c", "A5");
	go(l, id, LS_SENDING, 0);
	assert_int_equal(ledger_transition(l, id, LS_DEFERRED, 0,
	                                   &(struct ledger_outcome){451, "451", "smtp://a", 0},
	                                   NULL, &err),
	                 EX_OK);
	assert_int_equal(ledger_count_sent(l, "smtp://a", T0, 0, &n, &err), EX_OK);
	assert_int_equal(n, 4);
	assert_int_equal(ledger_count_sent(l, "smtp://a", T0 + 1, 0, &n, &err), EX_OK);
	assert_int_equal(n, 3);
	assert_int_equal(ledger_count_sent(l, "smtp://a", T0 + 3600, 0, &n, &err), EX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ledger_count_sent(l, "smtp://b", T0, 0, &n, &err), EX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ledger_count_sent(l, "smtp://c", T0, 0, &n, &err), EX_OK);
	assert_int_equal(n, 0);
	/* messages: a message of two recipients counts once (the rate's window) */
	sent_at(l, "A6", "smtp://d", T0);
	{
		struct ledger_delivery d;

		assert_int_equal(
		    ledger_delivery_get(l, "c", "A6", "cc@A6.example", "<A6@x>", &d, &err), EX_OK);
		go(l, d.id, LS_SENDING, 0);
		assert_int_equal(
		    ledger_transition(l, d.id, LS_SENT, 0,
		                      &(struct ledger_outcome){250, "250", "smtp://d", 0}, NULL,
		                      &err),
		    EX_OK);
	}
	assert_int_equal(ledger_count_sent(l, "smtp://d", T0, 0, &n, &err), EX_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ledger_count_sent(l, "smtp://d", T0, 1, &n, &err), EX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ledger_count_sent(l, "smtp://a", T0, 1, &n, &err), EX_OK);
	assert_int_equal(n, 4);
	/* later: sent -> bounced does not make it count twice */
	ledger_set_clock(l, T0 + 7200);
	go(l, deliver(l, "c", "A4"), LS_BOUNCED, 0);
	assert_int_equal(ledger_count_sent(l, "smtp://a", T0, 0, &n, &err), EX_OK);
	assert_int_equal(n, 4);
	ledger_close(l);
	free(err);
}

struct keylist {
	char buf[256];
};

static int key_cb(const char *key, void *ctx)
{
	struct keylist *k = ctx;

	strcat(k->buf, key);
	strcat(k->buf, " ");
	return 0;
}

static int row_cb(const struct ledger_row *r, void *ctx)
{
	struct keylist *k = ctx;

	strcat(k->buf, r->key);
	strcat(k->buf, ":");
	strcat(k->buf, ledger_state_name(r->state));
	strcat(k->buf, " ");
	return 0;
}

static void test_queries(void **state)
{
	char *p = tpath("sample.db"), *err = NULL;
	struct ledger *l = NULL;
	struct keylist k = {{0}};
	struct ledger_widths w;
	const char *keys[] = {"KEN", "FRA", "BRA", "USA", "SEN", "ARG"};
	const char *camps[] = {"asp23-priorities", "asp24-priorities"};
	int states[12];

	(void)state;
	assert_int_equal(make_sample(p), 0);
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	assert_int_equal(ledger_deliveries(l, "asp23-priorities", row_cb, &k, &err), EX_OK);
	assert_string_equal(k.buf, "BRA:deferred CIV:failed FRA:sent JPN:unknown KEN:sent "
	                           "SEN:bounced ");
	memset(&k, 0, sizeof(k));
	assert_int_equal(ledger_missing(l, "asp23-priorities", keys, 6, key_cb, &k, &err), EX_OK);
	assert_string_equal(k.buf, "BRA USA SEN ARG ");
	assert_int_equal(ledger_matrix(l, keys, 6, camps, 2, states, &err), EX_OK);
	assert_int_equal(states[0], LS_SENT);     /* KEN asp23 */
	assert_int_equal(states[1], LS_SENT);     /* KEN asp24 */
	assert_int_equal(states[3], -1);          /* FRA asp24 */
	assert_int_equal(states[4], LS_DEFERRED); /* BRA asp23 */
	assert_int_equal(states[6], -1);          /* USA */
	assert_int_equal(states[8], LS_BOUNCED);  /* SEN */
	assert_int_equal(states[11], LS_SENT);    /* ARG asp24 */
	assert_int_equal(ledger_delivery_widths(l, "asp23-priorities", &w, &err), EX_OK);
	assert_int_equal(w.key, 3);
	assert_int_equal(w.address, (int)strlen("missao@brasil.example"));
	assert_int_equal(w.reply, (int)strlen("550 5.7.1 \"Rejected\", policy"));
	assert_int_equal(ledger_delivery_widths(l, "no-such-campaign", &w, &err), EX_OK);
	assert_int_equal(w.key + w.address + w.reply, 0);
	verify_ok(l, NULL);
	ledger_close(l);
	free(p);
	free(err);
}

/* --- verify against tampering ---------------------------------------------------------- */

static void expect_broken(const char *tamper, const char *want1, const char *want2)
{
	char *p = tpath("tamper.db"), *err = NULL, head[65];
	struct ledger *l = NULL;
	char *q;
	long n;

	assert_int_equal(make_sample(p), 0);
	/* PostgreSQL: sql() sets session_replication_role, which no trigger stands up to */
	q = pg_base ? xstrdup(tamper)
	            : xasprintf("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; %s",
	                        tamper);
	sql(p, q);
	free(q);
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	assert_int_equal(ledger_verify(l, &n, head, &err), EX_DATAERR);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("after %s: verify said '%s', wanted '%s' and '%s'", tamper, err, want1,
		         want2 ? want2 : "");
	ledger_close(l);
	free(p);
	free(err);
}

static void test_verify_tampering(void **state)
{
	(void)state;
	expect_broken("UPDATE events SET reply = '250 2.0.0 Ok' WHERE seq = 5", "event 5",
	              "edited");
	expect_broken("UPDATE events SET code = 450 WHERE seq = 5", "event 5", "edited");
	expect_broken("UPDATE events SET time = '2024-06-02T00:00:00.000Z' WHERE seq = 1",
	              "event 1", "edited");
	expect_broken("DELETE FROM events WHERE seq = 4", "event 5", "missing");
	/* a deletion hidden by renumbering breaks the prev_hash link */
	if (!pg_base) /* PostgreSQL checks the key row by row */
		expect_broken("DELETE FROM events WHERE seq = 4; UPDATE events SET seq = seq - 1 "
		              "WHERE seq > 4",
		              "event 4", "prev_hash");
	/* the tail: AUTOINCREMENT remembers, and the delivery no longer matches its events */
	expect_broken("DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)", "missing",
	              NULL);
	expect_broken(pg_base ? "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events);"
	                        "UPDATE events_highest SET seq = seq - 1"
	                      : "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events);"
	                        "UPDATE sqlite_sequence SET seq = seq - 1 WHERE name = 'events'",
	              "delivery", "events");
	/* two rows' content swapped (reordered) */
	expect_broken("CREATE TEMP TABLE a AS SELECT * FROM events WHERE seq IN (3, 4);"
	              "UPDATE events SET (time, campaign, delivery, kind, from_state, to_state,"
	              " code, reply, via, detail, prev_hash, hash) = (SELECT time, campaign,"
	              " delivery, kind, from_state, to_state, code, reply, via, detail,"
	              " prev_hash, hash FROM a WHERE a.seq = 7 - events.seq) WHERE seq IN (3, 4)",
	              "event 3", "prev_hash");
	/* a delivery's state edited outside the door */
	expect_broken("UPDATE deliveries SET state = 'sent' WHERE key = 'BRA'", "delivery 1",
	              "deferred");
	expect_broken("UPDATE deliveries SET attempts = 5 WHERE key = 'KEN'", "delivery",
	              "attempts");
}

/* --- crash test -------------------------------------------------------------------------- */

/* The child: records transitions as fast as it can, reporting each commit on the pipe. */
static void crash_child(const char *path, int fd, int run)
{
	static const enum ledger_state ends[] = {LS_SENT, LS_DEFERRED, LS_UNKNOWN, LS_FAILED};
	struct ledger *l = NULL;
	char *err = NULL;
	int32_t done = 0;

	if (ledger_open(path, LEDGER_CREATE, &l, &err) ||
	    ledger_campaign_begin(l, "crash", "t", "s", H1, 0, &err))
		_exit(3);
	for (int i = 0; i < 4000; i++) {
		char key[32];
		struct ledger_delivery d;

		snprintf(key, sizeof(key), "r%d-%d", run, i);
		if (ledger_delivery_get(l, "crash", key, "a@b.example", NULL, &d, &err) ||
		    ledger_transition(l, d.id, LS_SENDING, 0, NULL, NULL, &err))
			_exit(4);
		done++;
		if (write(fd, &done, sizeof(done)) != sizeof(done))
			_exit(5);
		if (ledger_transition(l, d.id, ends[i % 4], 0,
		                      &(struct ledger_outcome){250, "250 ok", "smtp://x", NULL},
		                      NULL, &err))
			_exit(4);
		done++;
		if (write(fd, &done, sizeof(done)) != sizeof(done))
			_exit(5);
	}
	_exit(0);
}

struct in_doubt {
	struct ledger *l;
	int fixed;
};

/* What send does after a crash: what was `sending` is now in doubt. */
static int settle(const struct ledger_row *r, void *ctx)
{
	struct in_doubt *d = ctx;
	char *err = NULL;

	if (r->state != LS_SENDING)
		return 0;
	if (ledger_transition(d->l, r->id, LS_UNKNOWN, 0, NULL, NULL, &err))
		fail_msg("%s", err);
	d->fixed++;
	return 0;
}

static long count_transitions(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long n;

	if (!exists(path))
		return 0;
	if (pg_base)
		return count_sql(path, "SELECT count(*) FROM events WHERE kind = 'transition'");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT count(*) FROM events WHERE kind = 'transition'",
	                                    -1, &st, NULL),
	                 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_crash(void **state)
{
	char *p = tpath("crash.db"), *err = NULL;
	long total_committed = 0, settled = 0;
	int runs = getenv("LEDGER_CRASH_RUNS") ? atoi(getenv("LEDGER_CRASH_RUNS")) : 50;

	(void)state;
	fresh(p);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int run = 0; run < runs; run++) {
		struct ledger *l = NULL;
		struct in_doubt d = {0};
		struct stat sb;
		int fds[2], status;
		int32_t v, last = 0;
		pid_t pid;
		long n, before = count_transitions(p);

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(p, fds[1], run);
		}
		close(fds[1]);
		/* Four runs in five kill after the first commit (so a slow child, under valgrind
		 * say, is still killed mid-work); the fifth at any moment, creation included. */
		if (run % 5 != 0 && read(fds[0], &v, sizeof(v)) == sizeof(v))
			last = v;
		usleep(5000 + (useconds_t)(rand() % 195001));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) && WEXITSTATUS(status) != 0)
			fail_msg("run %d: child failed with %d", run, WEXITSTATUS(status));
		while (read(fds[0], &v, sizeof(v)) == sizeof(v))
			last = v;
		close(fds[0]);
		if (!exists(p))
			continue; /* killed before it made the store: nothing to check */

		/* opens, verifies, and lost no committed transition */
		if (ledger_open(p, 0, &l, &err))
			fail_msg("run %d: reopen: %s", run, err);
		verify_ok(l, NULL);
		n = count_transitions(p) - before;
		if (n < last || n > last + 1)
			fail_msg("run %d: %ld transitions in the store, %d committed", run, n,
			         last);
		total_committed += last;
		d.l = l;
		assert_int_equal(ledger_deliveries(l, "crash", settle, &d, &err), EX_OK);
		assert_true(d.fixed <= 1); /* at most one message in doubt */
		settled += d.fixed;
		verify_ok(l, NULL);
		ledger_close(l);
		if (pg_base)
			continue;
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	print_message("crash: %d runs, %ld transitions committed, %ld in doubt settled\n", runs,
	              total_committed, settled);
	assert_true(total_committed > 0);
	free(p);
	free(err);
}

/* --- schema 2: what comes back over IMAP ------------------------------------------------ */

static int count_rows(const struct ledger_row *r, void *ctx)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

static int64_t first_id;
static int first_row(const struct ledger_row *r, void *ctx)
{
	(void)ctx;
	first_id = r->id;
	return 1;
}

static long count_events(const char *path, const char *where)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *q = xasprintf("SELECT count(*) FROM events WHERE %s", where);
	long n;

	if (pg_base) {
		n = count_sql(path, q);
		free(q);
		return n;
	}
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(q);
	return n;
}

/* The committed schema-1 store opens, migrates to 2, keeps its chain and gains the lookups. */
static void test_migrate_v1(void **state)
{
	char *p = tpath("v1.db"),
	     *sqlfile = xasprintf("%s/ledger/v1-sample.sql", getenv("TESTDATA")), *text = NULL,
	     *err = NULL, head[65];
	size_t len;
	struct ledger *l = NULL;
	long n = 0;
	int rows = 0;

	(void)state;
	assert_int_equal(read_file(sqlfile, &text, &len), 0);
	unlink(p);
	sql(p, text);
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	assert_int_equal(ledger_verify(l, &n, head, &err), EX_OK);
	/* its 21 events, then schema 4's adoption of 2 campaigns and 9 deliveries */
	assert_int_equal(n, 32);
	assert_int_equal(ledger_schema(l), LEDGER_SCHEMA_VERSION);
	/* bare, angled, other case: the same delivery */
	assert_int_equal(ledger_find_message(l, "asp23-priorities.KEN.abc@coalition.example",
	                                     count_rows, &rows, &err),
	                 EX_OK);
	assert_int_equal(rows, 1);
	assert_int_equal(ledger_find_message(l, "<asp23-priorities.KEN.abc@COALITION.example>",
	                                     first_row, NULL, &err),
	                 1);
	assert_int_equal(first_id, 5);
	rows = 0;
	assert_int_equal(ledger_find_message(l, "nobody@x", count_rows, &rows, &err), EX_OK);
	assert_int_equal(rows, 0);
	assert_int_equal(ledger_find_address(l, NULL, "Mission@KEN.example", first_row, NULL, &err),
	                 1);
	assert_int_equal(first_id, 8); /* newest first */
	assert_int_equal(ledger_find_address(l, "asp23-priorities", "mission@ken.example",
	                                     first_row, NULL, &err),
	                 1);
	assert_int_equal(first_id, 5);
	ledger_close(l);
	/* it is schema 4 now, and stays so */
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	ledger_close(l);
	free(text);
	free(sqlfile);
	free(p);
	free(err);
}

static void test_observe(void **state)
{
	struct ledger *l = open_new("observe.db");
	char *p = tpath("observe.db"), *err = NULL;
	struct ledger_outcome o = {.code = 550, .reply = "550 5.1.1 unknown", .detail = "DSN"};
	enum ledger_observed what;
	int64_t ken, fra, jpn;
	long n;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	ken = deliver(l, "c", "KEN");
	fra = deliver(l, "c", "FRA");
	jpn = deliver(l, "c", "JPN");
	go(l, ken, LS_SENDING, 0);
	go(l, ken, LS_SENT, 0);
	go(l, fra, LS_SENDING, 0);
	go(l, fra, LS_SENT, 0);
	go(l, jpn, LS_SENDING, 0);
	go(l, jpn, LS_UNKNOWN, 0);

	/* sent -> bounced, once per source */
	assert_int_equal(ledger_observe(l, "bounce", ken, LS_BOUNCED, "<d1@mta>", &o, &what, &err),
	                 EX_OK);
	assert_int_equal(what, LEDGER_CHANGED);
	assert_int_equal(ledger_observe(l, "bounce", ken, LS_BOUNCED, "<d1@mta>", &o, &what, &err),
	                 EX_OK);
	assert_int_equal(what, LEDGER_SEEN_BEFORE);
	/* another report about a bounced delivery: an event only, saying the state */
	assert_int_equal(ledger_observe(l, "bounce", ken, LS_BOUNCED, "<d2@mta>", &o, &what, &err),
	                 EX_OK);
	assert_int_equal(what, LEDGER_EVENT);
	/* a bounce of a message in doubt proves nothing about the state machine: an event */
	assert_int_equal(ledger_observe(l, "bounce", jpn, LS_BOUNCED, "<d3@mta>", &o, &what, &err),
	                 EX_OK);
	assert_int_equal(what, LEDGER_EVENT);
	assert_int_equal(ledger_observe(l, "reply", fra, LS_REPLIED, "<r1@fra>", NULL, &what, &err),
	                 EX_OK);
	assert_int_equal(what, LEDGER_CHANGED);
	assert_int_equal(ledger_observe(l, "auto-reply", fra, -1, "<a1@fra>", NULL, &what, &err),
	                 EX_OK);
	assert_int_equal(what, LEDGER_EVENT);
	assert_int_equal(ledger_observe(l, "delayed", 999, -1, "<x@y>", NULL, &what, &err),
	                 EX_DATAERR);
	assert_int_equal(ledger_observe(l, "transition", ken, -1, "<x@y>", NULL, &what, &err),
	                 EX_SOFTWARE);
	assert_int_equal(ledger_observe(l, "bounce", ken, -1, "", NULL, &what, &err), EX_SOFTWARE);
	verify_ok(l, &n);
	ledger_close(l);
	assert_int_equal(count_events(p, "kind = 'transition' AND to_state = 'bounced'"), 1);
	assert_int_equal(count_events(p, "kind = 'bounce' AND detail LIKE '%delivery was bounced'"),
	                 1);
	assert_int_equal(count_events(p, "kind = 'bounce' AND detail LIKE '%delivery was unknown'"),
	                 1);
	assert_int_equal(count_events(p, "kind = 'transition' AND to_state = 'replied'"), 1);
	assert_int_equal(count_events(p, "kind = 'auto-reply'"), 1);
	free(p);
	free(err);
}

static void test_imap_state_and_copies(void **state)
{
	struct ledger *l = open_new("copies.db");
	char *p = tpath("copies.db"), *err = NULL;
	struct ledger_copy c = {0};
	uint32_t v, u;
	int64_t d[2], *ids = NULL;
	size_t n;

	(void)state;
	assert_int_equal(ledger_imap_state(l, "imap://h;user=u", "INBOX", &v, &u, &err), EX_OK);
	assert_true(v == 0 && u == 0);
	assert_int_equal(ledger_imap_state_set(l, "imap://h;user=u", "INBOX", 77, 5, &err), EX_OK);
	assert_int_equal(ledger_imap_state_set(l, "imap://h;user=u", "INBOX", 78, 6, &err), EX_OK);
	assert_int_equal(ledger_imap_state(l, "imap://h;user=u", "INBOX", &v, &u, &err), EX_OK);
	assert_true(v == 78 && u == 6);
	assert_int_equal(ledger_imap_state(l, "imap://other", "INBOX", &v, &u, &err), EX_OK);
	assert_true(v == 0 && u == 0);

	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	d[0] = deliver(l, "c", "KEN");
	d[1] = deliver(l, "c", "KEN2");
	assert_int_equal(ledger_copy_failed(l, "c", d, 2, "imap", "A\r\nB\0C", 6, "down", 0, &err),
	                 EX_OK);
	assert_int_equal(ledger_copies_pending(l, &ids, &n, &err), EX_OK);
	assert_int_equal(n, 1);
	assert_int_equal(
	    ledger_copy_failed(l, "c", d, 2, "imap", NULL, 0, "still down", ids[0], &err), EX_OK);
	assert_int_equal(ledger_copy_get(l, ids[0], &c, &err), EX_OK);
	assert_int_equal(c.n, 2);
	assert_true(c.deliveries[0] == d[0] && c.deliveries[1] == d[1]);
	assert_int_equal(c.len, 6);
	assert_memory_equal(c.data, "A\r\nB\0C", 6);
	assert_int_equal(c.attempts, 2);
	assert_string_equal(c.campaign, "c");
	assert_int_equal(ledger_sent_copy(l, d[0], &v, &u), 0);
	assert_int_equal(ledger_copy_appended(l, c.campaign, c.deliveries, c.n, "imap", "Sent", 9,
	                                      42, c.id, &err),
	                 EX_OK);
	ledger_copy_clear(&c);
	free(ids);
	assert_int_equal(ledger_copies_pending(l, &ids, &n, &err), EX_OK);
	assert_int_equal(n, 0);
	assert_null(ids);
	assert_int_equal(ledger_copy_get(l, 1, &c, &err), EX_DATAERR);
	assert_int_equal(ledger_sent_copy(l, d[1], &v, &u), 1);
	assert_true(v == 9 && u == 42);
	verify_ok(l, NULL);
	ledger_close(l);
	assert_int_equal(count_events(p, "kind = 'append-failed'"), 4);
	assert_int_equal(count_events(p, "kind = 'append' AND detail LIKE '%UID 42%'"), 2);
	/* nothing here is a state change */
	assert_int_equal(count_events(p, "kind = 'transition'"), 0);
	free(p);
	free(err);
}

/* --- schema 4: identity, the chain holds every row, locks, read-only ------------------- */

static long count_sql(const char *path, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = -1;

	if (pg_base) {
		char *out = NULL;

		if (psql(path, NULL, q, &out))
			fail_msg("%s: %s", q, out);
		n = atol(out);
		free(out);
		return n;
	}

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_identity(void **state)
{
	struct ledger *l = open_new("ident.db");
	struct ledger_delivery a, b;
	char *err = NULL, *p = tpath("ident.db");

	(void)state;
	assert_int_equal(ident_equal("ken@Missions.Example", "KEN@missions.example"), 1);
	assert_int_equal(ident_equal("ALB", "alb "), 0);
	/* only ASCII folds, as the roster compares: "É" and "é" stay two keys */
	assert_int_equal(ident_equal("\xc3\x89", "\xc3\xa9"), 0);
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	assert_int_equal(
	    ledger_delivery_get(l, "c", "ALB", "alb@missions.example", "<m1>", &a, &err), EX_OK);
	assert_int_equal(
	    ledger_delivery_get(l, "c", "alb", "ALB@Missions.Example", "<m2>", &b, &err), EX_OK);
	assert_int_equal(a.id, b.id);
	assert_int_equal(
	    ledger_delivery_get(l, "c", "KEN", "ken@missions.example", "<m3>", &a, &err), EX_OK);
	assert_int_equal(
	    ledger_delivery_get(l, "c", "KEN", "KEN@Missions.Example", "<m4>", &b, &err), EX_OK);
	assert_int_equal(a.id, b.id);
	assert_int_equal(count_sql(p, "SELECT count(*) FROM deliveries"), 2);
	assert_int_equal(count_sql(p, "SELECT count(*) FROM events WHERE kind = 'create'"), 2);
	verify_ok(l, NULL);
	assert_int_equal(ledger_quick_check(l, &err), EX_OK);

	/* a deleted row: the quick check counts it, and it is never created again */
	ledger_close(l);
	sql(p, "DELETE FROM deliveries WHERE key = 'KEN'");
	assert_int_equal(ledger_open(p, LEDGER_CHECK, &l, &err), EX_DATAERR);
	assert_non_null(strstr(err, "1 deliveries but 2 creation events"));
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	assert_int_equal(ledger_delivery_get(l, "c", "ken", "ken@missions.example", NULL, &a, &err),
	                 EX_DATAERR);
	assert_non_null(strstr(err, "ledger damaged"));
	assert_int_equal(count_sql(p, "SELECT count(*) FROM deliveries"), 1);
	ledger_close(l);
	free(p);
	free(err);
}

static void test_savepoints(void **state)
{
	struct ledger *l = open_new("sp.db");
	char *err = NULL;
	int64_t a, b;
	long n;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	a = deliver(l, "c", "A");
	b = deliver(l, "c", "B");
	assert_int_equal(ledger_batch_begin(l, &err), EX_OK);
	go(l, a, LS_SENDING, 0);
	/* an illegal transition inside the batch fails alone */
	assert_int_equal(ledger_transition(l, b, LS_SENT, 0, NULL, NULL, &err), EX_SOFTWARE);
	go(l, b, LS_SENDING, 0);
	/* a nested batch rolled back takes only its own writes */
	assert_int_equal(ledger_batch_begin(l, &err), EX_OK);
	go(l, a, LS_SENT, 0);
	assert_int_equal(ledger_batch_end(l, 0, &err), EX_OK);
	assert_int_equal(ledger_batch_end(l, 1, &err), EX_OK);
	verify_ok(l, &n);
	assert_int_equal(n, 5); /* campaign, 2 creations, 2 transitions */
	struct ledger_delivery d;
	assert_int_equal(ledger_delivery_get(l, "c", "A", "mission@A.example", NULL, &d, &err),
	                 EX_OK);
	assert_int_equal(d.state, LS_SENDING);
	/* the outer batch rolled back: nothing */
	assert_int_equal(ledger_batch_begin(l, &err), EX_OK);
	go(l, a, LS_SENT, 0);
	assert_int_equal(ledger_batch_end(l, 0, &err), EX_OK);
	verify_ok(l, &n);
	assert_int_equal(n, 5);
	/* replies are stored on one line, in the row and the chain alike */
	assert_int_equal(
	    ledger_transition(l, a, LS_SENT, 0,
	                      &(struct ledger_outcome){250, "250 ok\r\nforged: yes", NULL, NULL},
	                      NULL, &err),
	    EX_OK);
	char *p = tpath("sp.db");
	assert_int_equal(count_sql(p, "SELECT count(*) FROM deliveries WHERE last_reply ="
	                              " '250 ok  forged: yes'"),
	                 1);
	assert_int_equal(count_sql(p, "SELECT count(*) FROM events WHERE reply LIKE '%' ||"
	                              " char(10) || '%'"),
	                 0);
	verify_ok(l, NULL);
	ledger_close(l);
	free(p);
	free(err);
}

/* The v1 sample with extra rows that collide without case, migrated. */
static int migrate_with(const char *name, const char *extra, char **err)
{
	char *p = tpath(name), *sqlfile = xasprintf("%s/ledger/v1-sample.sql", getenv("TESTDATA"));
	char *text = NULL;
	struct ledger *l = NULL;
	size_t len;
	int rc;

	assert_int_equal(read_file(sqlfile, &text, &len), 0);
	unlink(p);
	sql(p, text);
	sql(p, extra);
	rc = ledger_open(p, 0, &l, err);
	ledger_close(l);
	free(text);
	free(sqlfile);
	free(p);
	return rc;
}

#define ROW(id, key, addr, state)                                                                  \
	"INSERT INTO deliveries VALUES(" #id ",'asp23-priorities','" key "','" addr                \
	"',NULL,'" state                                                                           \
	"',0,NULL,NULL,NULL,'2024-06-03T00:00:00.000Z','2024-06-03T00:00:00.000Z');"
#define TRANSITION(seq, d, from, to)                                                               \
	"INSERT INTO events (seq, time, campaign, delivery, kind, from_state, to_state, "          \
	"prev_hash,"                                                                               \
	" hash) VALUES (" #seq ", '2024-06-03T00:00:00.000Z', 'asp23-priorities', " #d             \
	", 'transition', '" from "', '" to "', 'x', 'y');"

static void test_migrate_collisions(void **state)
{
	char *err = NULL, *p = tpath("merge.db");
	struct ledger *l = NULL;
	struct ledger_delivery d;

	(void)state;
	/* 'ken' never went anywhere; 'fra' went through the same states as FRA (3): both merge */
	assert_int_equal(migrate_with("merge.db",
	                              ROW(20, "ken", "MISSION@ken.example", "pending")
	                                  ROW(21, "fra", "mission@FRA.example", "sent")
	                                      TRANSITION(100, 21, "pending", "sending")
	                                          TRANSITION(101, 21, "sending", "sent"),
	                              &err),
	                 EX_OK);
	assert_int_equal(count_sql(p, "SELECT merged_into FROM deliveries WHERE id = 20"), 5);
	assert_int_equal(count_sql(p, "SELECT merged_into FROM deliveries WHERE id = 21"), 3);
	assert_int_equal(count_sql(p, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
	assert_int_equal(ledger_open(p, 0, &l, &err), EX_OK);
	assert_int_equal(ledger_delivery_get(l, "asp23-priorities", "Ken", "mission@KEN.example",
	                                     NULL, &d, &err),
	                 EX_OK);
	assert_int_equal(d.id, 5);
	assert_int_equal(d.state, LS_SENT);
	ledger_close(l);

	/* 'bra' was sent while BRA (1) was deferred: which one tells the truth? Refused. */
	assert_int_equal(migrate_with("merge.db",
	                              ROW(20, "bra", "missao@brasil.example", "sent")
	                                  TRANSITION(100, 20, "pending", "sending")
	                                      TRANSITION(101, 20, "sending", "sent"),
	                              &err),
	                 EX_DATAERR);
	assert_non_null(strstr(err, "1 (BRA, missao@brasil.example: sending>deferred)"));
	assert_non_null(strstr(err, "20 (bra, missao@brasil.example: sending>sent)"));
	assert_non_null(strstr(err, "not changed"));
	/* left exactly as it was: schema 1, no new column, no new event */
	assert_int_equal(count_sql(p, "PRAGMA user_version"), 1);
	assert_int_equal(count_sql(p, "SELECT count(*) FROM pragma_table_info('deliveries')"
	                              " WHERE name = 'key_norm'"),
	                 0);
	assert_int_equal(count_sql(p, "SELECT count(*) FROM events"), 23);
	free(p);
	free(err);
}

static void test_readonly_and_lock(void **state)
{
	char *err = NULL, *p = tpath("ro.db"), *link = tpath("ro-link.db"), *s1 = tpath("v1ro.db");
	char *sqlfile = xasprintf("%s/ledger/v1-sample.sql", getenv("TESTDATA")), *text = NULL;
	struct ledger *l = open_new("ro.db"), *l2 = NULL;
	size_t len;
	long n;

	(void)state;
	assert_int_equal(ledger_campaign_begin(l, "c", "t", "s", H1, 0, &err), EX_OK);
	deliver(l, "c", "A");
	ledger_close(l);
	chmod(p, 0400);
	assert_int_equal(ledger_open(p, LEDGER_READONLY | LEDGER_CHECK, &l, &err), EX_OK);
	assert_int_equal(ledger_schema(l), LEDGER_SCHEMA_VERSION);
	verify_ok(l, &n);
	assert_int_equal(n, 2);
	ledger_close(l);
	chmod(p, 0600);

	/* an old schema is not migrated by a read-only open, and says so */
	assert_int_equal(read_file(sqlfile, &text, &len), 0);
	unlink(s1);
	sql(s1, text);
	assert_int_equal(ledger_open(s1, LEDGER_READONLY, &l, &err), EX_CONFIG);
	assert_non_null(strstr(err, "schema 1"));
	assert_int_equal(count_sql(s1, "PRAGMA user_version"), 1);

	/* one lock per file, whatever the path to it */
	unlink(link);
	assert_int_equal(symlink(p, link), 0);
	assert_int_equal(ledger_open(p, LEDGER_EXCLUSIVE, &l, &err), EX_OK);
	assert_int_equal(ledger_open(link, LEDGER_EXCLUSIVE, &l2, &err), EX_TEMPFAIL);
	assert_non_null(strstr(err, "another demarche send is using this ledger"));
	assert_null(l2);
	/* readers are not held up */
	assert_int_equal(ledger_open(link, LEDGER_READONLY, &l2, &err), EX_OK);
	ledger_close(l2);
	ledger_close(l);
	assert_int_equal(ledger_open(link, LEDGER_EXCLUSIVE, &l2, &err), EX_OK);
	ledger_close(l2);

	/* a ledger others can read is flagged */
	free(err);
	err = NULL;
	chmod(p, 0644);
	assert_int_equal(ledger_file_mode_check(p, &err), 1);
	assert_non_null(strstr(err, "mode 0644"));
	free(err);
	err = NULL;
	chmod(p, 0600);
	assert_int_equal(ledger_file_mode_check(p, &err), 0);
	assert_null(err);
	free(text);
	free(sqlfile);
	free(s1);
	free(link);
	free(p);
}

/* --- several writers at once (schema 6: who wrote each event) ------------------------------ */

static void writer_child(const char *path, int w)
{
	struct ledger *l = NULL;
	char *err = NULL, op[16];

	snprintf(op, sizeof(op), "op%d", w);
	ledger_set_operator(op);
	if (ledger_open(path, 0, &l, &err))
		_exit(3);
	for (int i = 0; i < 40; i++) {
		char key[32];
		struct ledger_delivery d;

		snprintf(key, sizeof(key), "w%d-%d", w, i);
		if (ledger_delivery_get(l, "team", key, "a@b.example", NULL, &d, &err) ||
		    ledger_transition(l, d.id, LS_SENDING, 0, NULL, NULL, &err) ||
		    ledger_transition(l, d.id, LS_SENT, 0,
		                      &(struct ledger_outcome){250, "250 ok", "smtp://x", NULL},
		                      NULL, &err)) {
			fprintf(stderr, "writer %d: %s\n", w, err);
			_exit(4);
		}
	}
	ledger_close(l);
	_exit(0);
}

/* Four processes append to one chain at once: it stays one line, and names each of them. */
static void test_concurrent_writers(void **state)
{
	struct ledger *l = open_new("team.db");
	char *p = tpath("team.db"), *err = NULL;
	pid_t pids[4];
	long n = 0;

	(void)state;
	ledger_set_operator("lead");
	assert_int_equal(ledger_campaign_begin(l, "team", "t", "s", H1, 0, &err), EX_OK);
	ledger_close(l);
	for (int w = 0; w < 4; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0)
			writer_child(p, w);
	}
	for (int w = 0; w < 4; w++) {
		int status;

		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(ledger_open(p, LEDGER_CHECK, &l, &err), EX_OK);
	verify_ok(l, &n);
	assert_int_equal(n, 1 + 4 * 40 * 3);
	ledger_close(l);
	assert_int_equal(count_sql(p, "SELECT count(DISTINCT operator) FROM events"), 5);
	assert_int_equal(count_sql(p, "SELECT count(*) FROM events WHERE operator = 'op2'"
	                              " AND host IS NOT NULL"),
	                 40 * 3);
	/* the operator is in the hash: edit it, and verify names the event */
	sql(p, pg_base ? "UPDATE events SET operator = 'mallory' WHERE seq = 5"
	               : "DROP TRIGGER events_no_update;"
	                 "UPDATE events SET operator = 'mallory' WHERE seq = 5");
	assert_int_equal(ledger_open(p, LEDGER_READONLY, &l, &err), EX_OK);
	{
		char head[65];

		assert_int_equal(ledger_verify(l, &n, head, &err), EX_DATAERR);
		assert_non_null(strstr(err, "event 5"));
	}
	ledger_close(l);
	ledger_set_operator(NULL);
	free(p);
	free(err);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_create_and_migrate),
	    cmocka_unit_test(test_newer_schema_refused),
	    cmocka_unit_test(test_not_a_ledger),
	    cmocka_unit_test(test_every_transition),
	    cmocka_unit_test(test_transition_records),
	    cmocka_unit_test(test_campaign_hash_rule),
	    cmocka_unit_test(test_rate_window),
	    cmocka_unit_test(test_queries),
	    cmocka_unit_test(test_verify_tampering),
	    cmocka_unit_test(test_crash),
	    cmocka_unit_test(test_migrate_v1),
	    cmocka_unit_test(test_observe),
	    cmocka_unit_test(test_imap_state_and_copies),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_savepoints),
	    cmocka_unit_test(test_migrate_collisions),
	    cmocka_unit_test(test_readonly_and_lock),
	    cmocka_unit_test(test_concurrent_writers),
	};
	/* the tests that are not about SQLite files (migrations from old files, modes, locks) */
	const struct CMUnitTest pg_tests[] = {
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_every_transition),
	    cmocka_unit_test(test_transition_records),
	    cmocka_unit_test(test_campaign_hash_rule),
	    cmocka_unit_test(test_rate_window),
	    cmocka_unit_test(test_queries),
	    cmocka_unit_test(test_verify_tampering),
	    cmocka_unit_test(test_crash),
	    cmocka_unit_test(test_observe),
	    cmocka_unit_test(test_imap_state_and_copies),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_concurrent_writers),
	};

	if (argc == 3 && !strcmp(argv[1], "--make-sample"))
		return make_sample(argv[2]) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--make-hostile"))
		return make_hostile(argv[2]) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "--migrate")) {
		/* audit and verify open read-only: the integration test's old stores go
		 * through the migration here */
		struct ledger *l = NULL;
		char *err = NULL;
		int rc = ledger_open(argv[2], 0, &l, &err);

		if (rc)
			fprintf(stderr, "%s\n", err);
		ledger_close(l);
		free(err);
		return rc;
	}
	if ((pg_base = getenv("DEMARCHE_TEST_STORE")) && *pg_base)
		return cmocka_run_group_tests_name("ledger on PostgreSQL", pg_tests, setup_dir,
		                                   teardown_dir);
	pg_base = NULL;
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
