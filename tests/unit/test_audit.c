/*
 * Unit tests for src/report/model (audit's missions-first rule): a ledger written through the
 * public API with sent, deferred, failed, unknown, bounced and replied missions across two
 * campaigns and an amend, folded per mission and per group. `test_audit --make-fixture DIR`
 * writes that ledger (DIR/ledger.db) and its roster (DIR/roster.csv, DIR/sp.csv) for
 * tests/integration/audit_report.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "ledger/ledger.h"
#include "mail/compose.h"
#include "report/model.h"
#include "roster/roster.h"

#define H1  "1111111111111111111111111111111111111111111111111111111111111111"
#define H2  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H3  "3333333333333333333333333333333333333333333333333333333333333333"
#define T0  ((time_t)1780315200) /* 2026-06-01T12:00:00Z */
#define DAY 86400

/* A hostile State name: a formula, a tag, ESC and U+202E. */
#define EVIL_NAME                                                                                  \
	"=HYPERLINK(\"http://evil.example\",\"x\")<script>alert(1)</script>\033[2J\xe2\x80\xae"

static const char roster_csv[] =
    "iso3,state,email,cc\n"
    "KEN,Kenya,ken@missions.example,ken.ny@missions.example\n"
    "SEN,Senegal,sen@missions.example,\n"
    "BRA,Brazil,bra@missions.example,bra.ny@missions.example\n"
    "FRA,France,fra@missions.example,\n"
    "DEU,Germany,deu@missions.example,\n"
    "JPN,Japan,jpn@missions.example,\n"
    "NLD,Netherlands,nld@missions.example,\n"
    "EVL,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")<script>alert(1)</script>\033[2J"
    "\xe2\x80\xae\",evl@missions.example,\n";
static const char sp_csv[] = "iso3,asp_regional_group\n"
                             "KEN,African States\n"
                             "SEN,African States\n"
                             "BRA,Latin American and Caribbean States\n"
                             "FRA,Western European and other States\n"
                             "DEU,Western European and other States\n"
                             "JPN,Asia-Pacific States\n"
                             "NLD,Western European and other States\n"
                             "EVL,\"<b>Other</b> =HYPERLINK(\"\"x\"\")\"\n";

static const char *version = H1; /* the appeal's version being sent */

/* One delivery through the given states, each change with its reply, at t. */
static int deliver(struct ledger *l, const char *camp, const char *key, const char *addr,
                   const enum ledger_state *path, int code, const char *reply, time_t t)
{
	struct ledger_delivery d;
	struct ledger_outcome o = {code, reply, "smtp://127.0.0.1:2525", NULL};
	char *mid = NULL, *err = NULL;
	int rc;

	ledger_set_clock(l, t);
	/* the Message-ID send makes: from the campaign, the key and the version sent */
	if ((rc = mail_message_id(camp, key, version, "coalition.example", &mid, &err)) ||
	    (rc = ledger_delivery_get(l, camp, key, addr, mid, &d, &err)))
		goto out;
	for (size_t i = 0; path[i] != LS_PENDING && !rc; i++) {
		struct ledger_outcome *oo = path[i] == LS_SENDING ? NULL : &o;

		rc = ledger_transition(l, d.id, path[i], 0, oo, NULL, &err);
	}
out:
	if (rc)
		fprintf(stderr, "deliver %s %s: %s\n", key, addr, err ? err : "?");
	free(mid);
	free(err);
	return rc;
}

static int write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (!fp)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

/*
 * june (amended after the first sends):
 *   KEN  To sent, Cc failed          received
 *   SEN  To sent then bounced        missing (bounced)
 *   BRA  To deferred, Cc sent        partial (deferred)
 *   FRA  To sent then replied        received
 *   DEU  To failed (550)             missing (failed)
 *   JPN  To unknown                  missing (in doubt)
 *   NLD, EVL  none                   missing (never tried)
 * july: KEN and FRA sent.
 */
static int make_fixture(const char *dir)
{
	static const enum ledger_state sent[] = {LS_SENDING, LS_SENT, LS_PENDING},
	                               failed[] = {LS_SENDING, LS_FAILED, LS_PENDING},
	                               deferred[] = {LS_SENDING, LS_DEFERRED, LS_PENDING},
	                               unknown[] = {LS_SENDING, LS_UNKNOWN, LS_PENDING},
	                               bounced[] = {LS_SENDING, LS_SENT, LS_BOUNCED, LS_PENDING},
	                               replied[] = {LS_SENDING, LS_SENT, LS_REPLIED, LS_PENDING};
	char *db = xasprintf("%s/ledger.db", dir), *rpath = xasprintf("%s/roster.csv", dir),
	     *spath = xasprintf("%s/sp.csv", dir), *err = NULL;
	struct ledger *l = NULL;
	int rc;

	unlink(db);
	if (write_file(rpath, roster_csv) || write_file(spath, sp_csv)) {
		rc = EX_CANTCREAT;
		goto out;
	}
	if ((rc = ledger_open(db, LEDGER_CREATE, &l, &err)))
		goto out;
	ledger_set_clock(l, T0);
	version = H1;
	if ((rc = ledger_campaign_begin(l, "june", "June appeal <b>", "June", H1, 0, &err)))
		goto out;
	if ((rc = deliver(l, "june", "KEN", "ken@missions.example", sent, 250,
	                  "250 2.0.0 Ok: queued", T0 + 60)) ||
	    (rc = deliver(l, "june", "KEN", "ken.ny@missions.example", failed, 550,
	                  "550 5.1.1 User unknown", T0 + 61)) ||
	    (rc = deliver(l, "june", "SEN", "sen@missions.example", bounced, 250,
	                  "250 2.0.0 Ok: queued", T0 + DAY)) ||
	    (rc = deliver(l, "june", "BRA", "bra@missions.example", deferred, 451,
	                  "451 4.7.1 Try again later", T0 + 120)) ||
	    (rc = deliver(l, "june", "BRA", "bra.ny@missions.example", sent, 250,
	                  "250 2.0.0 Ok: queued", T0 + 121)))
		goto out;
	/* the appeal is amended halfway: the rest carry the new version */
	ledger_set_clock(l, T0 + 3600);
	if ((rc = ledger_campaign_begin(l, "june", "June appeal <b>", "June", H2, 1, &err)))
		goto out;
	version = H2;
	if ((rc = deliver(l, "june", "FRA", "fra@missions.example", replied, 250,
	                  "250 2.0.0 Ok: queued", T0 + 2 * DAY)) ||
	    (rc = deliver(l, "june", "DEU", "deu@missions.example", failed, 550,
	                  "550 5.7.1 =HYPERLINK(\"http://evil.example\") \033[31mrejected",
	                  T0 + 3700)) ||
	    (rc = deliver(l, "june", "JPN", "jpn@missions.example", unknown, 0, NULL, T0 + 3800)))
		goto out;
	ledger_set_clock(l, T0 + 30 * DAY);
	if ((rc = ledger_campaign_begin(l, "july", "July appeal", "July", H3, 0, &err)))
		goto out;
	version = H3;
	if ((rc = deliver(l, "july", "KEN", "ken@missions.example", sent, 250, "250 2.0.0 Ok",
	                  T0 + 30 * DAY)) ||
	    (rc = deliver(l, "july", "FRA", "fra@missions.example", sent, 250, "250 2.0.0 Ok",
	                  T0 + 30 * DAY)))
		goto out;
out:
	if (rc && err)
		fprintf(stderr, "make-fixture: %s\n", err);
	free(err);
	ledger_close(l);
	free(db);
	free(rpath);
	free(spath);
	return rc;
}

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_audit-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(make_fixture(tmpdir), 0);
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

struct fixture {
	struct ledger *l;
	struct rp_roster r;
	char *rpath, *spath;
};

static void open_fixture(struct fixture *f, const char *by)
{
	char *db = xasprintf("%s/ledger.db", tmpdir), *err = NULL;
	static const char *joins[2];
	struct roster_opts ro = {0};

	memset(f, 0, sizeof(*f));
	f->rpath = xasprintf("%s/roster.csv", tmpdir);
	f->spath = xasprintf("%s/sp.csv", tmpdir);
	joins[0] = f->spath;
	ro.path = f->rpath;
	ro.joins = joins;
	assert_int_equal(ledger_open(db, 0, &f->l, &err), EX_OK);
	struct diags d = DIAGS_INIT;

	assert_int_equal(rp_roster_read(&ro, by, NULL, &f->r, &d), EX_OK);
	assert_int_equal(d.errors, 0);
	diags_free(&d);
	free(db);
}

static void close_fixture(struct fixture *f)
{
	rp_roster_free(&f->r);
	ledger_close(f->l);
	free(f->rpath);
	free(f->spath);
}

static const struct rp_status *status_of(const struct fixture *f, const struct rp_campaign *c,
                                         const char *key)
{
	long i = rp_roster_find(&f->r, key);

	assert_true(i >= 0);
	return &c->status[i];
}

/* Each mission's state and reason in june: the main address decides. */
static void test_missions(void **state)
{
	struct fixture f;
	struct rp_campaign c;
	char *err = NULL;

	(void)state;
	open_fixture(&f, NULL);
	assert_int_equal(f.r.n, 8);
	assert_int_equal(rp_campaign_fold(f.l, "june", NULL, &f.r, &c, &err), EX_OK);
	assert_int_equal(c.missions, 8);
	assert_int_equal(c.received, 2);
	assert_int_equal(c.partial, 1);
	assert_int_equal(c.missing, 5);
	assert_int_equal(c.addresses, 8);
	assert_int_equal(c.by_state[LS_SENT], 2);

	assert_int_equal(rp_status_mstate(status_of(&f, &c, "KEN")), RP_RECEIVED);
	assert_int_equal(status_of(&f, &c, "KEN")->naddr, 2);
	assert_int_equal(status_of(&f, &c, "KEN")->naccepted, 1);
	assert_int_equal(rp_status_mstate(status_of(&f, &c, "FRA")), RP_RECEIVED);
	/* BRA: its Cc was accepted, not its main address */
	assert_int_equal(rp_status_mstate(status_of(&f, &c, "BRA")), RP_PARTIAL);
	assert_string_equal(rp_reason(status_of(&f, &c, "BRA")->main_state), "deferred");
	assert_string_equal(status_of(&f, &c, "BRA")->reply, "451 4.7.1 Try again later");
	assert_string_equal(status_of(&f, &c, "BRA")->address, "bra@missions.example");
	assert_string_equal(rp_reason(status_of(&f, &c, "SEN")->main_state), "bounced");
	assert_string_equal(rp_reason(status_of(&f, &c, "DEU")->main_state), "failed");
	assert_int_equal(status_of(&f, &c, "DEU")->code, 550);
	assert_string_equal(rp_reason(status_of(&f, &c, "JPN")->main_state), "in doubt");
	assert_string_equal(rp_reason(status_of(&f, &c, "NLD")->main_state), "never tried");
	assert_int_equal(rp_status_mstate(status_of(&f, &c, "EVL")), RP_MISSING);
	/* one bounce on day 2, one reply on day 3 */
	assert_int_equal(c.ndays, 2);
	assert_string_equal(c.days[0].day, "2026-06-02");
	assert_int_equal(c.days[0].bounced, 1);
	assert_int_equal(c.days[1].replied, 1);
	rp_campaign_free(&c);
	close_fixture(&f);
}

/* Without a roster, missions are the ledger's keys; the first delivery is the main one. */
static void test_without_roster(void **state)
{
	struct fixture f;
	struct rp_campaign c;
	char *err = NULL;

	(void)state;
	open_fixture(&f, NULL);
	assert_int_equal(rp_campaign_fold(f.l, "june", NULL, NULL, &c, &err), EX_OK);
	assert_int_equal(c.missions, 6);
	assert_int_equal(c.received, 2);
	assert_int_equal(c.partial, 1);
	assert_int_equal(c.missing, 3);
	rp_campaign_free(&c);
	close_fixture(&f);
}

/* Groups from the joined column, counts per group and in total, both campaigns. */
static void test_groups(void **state)
{
	struct fixture f;
	struct rp_ledger lg;
	struct rp_counts g[8], total;
	char *err = NULL;

	(void)state;
	open_fixture(&f, "asp_regional_group");
	assert_int_equal(f.r.ngroups, 5);
	assert_string_equal(f.r.groups[0], "<b>Other</b> =HYPERLINK(\"x\")");
	assert_string_equal(f.r.groups[1], "African States");
	assert_int_equal(rp_ledger_fold(f.l, NULL, &f.r, &lg, &err), EX_OK);
	assert_int_equal(lg.n, 2);
	assert_string_equal(lg.v[0].id, "june");
	assert_string_equal(lg.v[0].hash, H2); /* the current version after the amend */
	rp_group_counts(&f.r, &lg.v[0], g, &total);
	assert_int_equal(g[1].missions, 2); /* African States: KEN received, SEN bounced */
	assert_int_equal(g[1].received, 1);
	assert_int_equal(g[1].missing, 1);
	assert_int_equal(g[3].partial, 1);  /* Latin American: BRA */
	assert_int_equal(g[4].missions, 3); /* Western European: FRA, DEU, NLD */
	assert_int_equal(g[4].received, 1);
	assert_int_equal(total.missions, 8);
	assert_int_equal(total.received, 2);
	rp_group_counts(&f.r, &lg.v[1], g, &total);
	assert_int_equal(total.received, 2); /* july: KEN, FRA */
	assert_int_equal(total.missing, 6);
	rp_ledger_free(&lg);
	close_fixture(&f);
}

/* The version a delivery was made for, from its Message-ID: KEN went before the amend. */
static void test_carried(void **state)
{
	char *id = NULL;

	(void)state;
	assert_int_equal(mail_message_id("june", "KEN", H1, "coalition.example", &id, NULL), 0);
	assert_int_equal(rp_carried("june", "KEN", id, H1), 1);
	assert_int_equal(rp_carried("june", "KEN", id, H2), 0);
	assert_int_equal(rp_carried("june", "SEN", id, H1), 0);
	assert_int_equal(rp_carried("june", "KEN", "<june.KEN.abc@coalition.example>", H1), -1);
	assert_int_equal(rp_carried("june", "KEN", NULL, H1), -1);
	assert_int_equal(rp_carried("june", "KEN", id, NULL), -1);
	free(id);
}

/* A --by column that neither the roster nor its joins have is refused. */
static void test_unknown_by(void **state)
{
	struct fixture f;
	struct rp_roster r = {0};
	struct roster_opts ro = {0};

	(void)state;
	open_fixture(&f, NULL);
	ro.path = f.rpath;
	struct diags d = DIAGS_INIT;

	assert_int_equal(rp_roster_read(&ro, "asp_regional_grup", NULL, &r, &d), EX_USAGE);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.v[0].column, "asp_regional_grup");
	diags_free(&d);
	rp_roster_free(&r);
	close_fixture(&f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missions), cmocka_unit_test(test_without_roster),
	    cmocka_unit_test(test_groups),   cmocka_unit_test(test_unknown_by),
	    cmocka_unit_test(test_carried),
	};

	if (argc == 3 && !strcmp(argv[1], "--make-fixture"))
		return make_fixture(argv[2]) ? 1 : 0;
	return cmocka_run_group_tests(tests, setup, teardown);
}
