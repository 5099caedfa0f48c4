/*
 * Unit tests of the send calendar (src/campaign/schedule.c, src/base/tz.c): zones known and
 * refused, weekends parsed, and each mission's next time across weekends (Friday-Saturday
 * too) and a change to summer time, through the C library's tz database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/tz.h"
#include "campaign/schedule.h"

static int64_t utc(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
	return (int64_t)timegm(&tm);
}

static void test_zones(void **state)
{
	(void)state;
	assert_true(tz_known("America/New_York"));
	assert_true(tz_known("Asia/Amman"));
	assert_true(tz_known("UTC"));
	assert_false(tz_known("Mars/Olympus_Mons"));
	assert_false(tz_known("../../etc/passwd"));
	assert_false(tz_known("/etc/localtime"));
	assert_false(tz_known("America/../Europe/Paris"));
	assert_false(tz_known("EST5EDT,M3.2.0,M11.1.0")); /* a POSIX rule is not a name */
	assert_false(tz_known(""));
	assert_false(tz_known(NULL));
}

static void test_weekends(void **state)
{
	unsigned m;

	(void)state;
	assert_int_equal(tz_weekend_parse("", &m), 0);
	assert_int_equal(m, TZ_WEEKEND_DEFAULT);
	assert_int_equal(tz_weekend_parse("fri-sat", &m), 0);
	assert_int_equal(m, (1u << 5) | (1u << 6));
	assert_int_equal(tz_weekend_parse("Friday, Saturday", &m), 0);
	assert_int_equal(m, (1u << 5) | (1u << 6));
	assert_int_equal(tz_weekend_parse("sat-sun", &m), 0);
	assert_int_equal(m, (1u << 6) | (1u << 0));
	assert_int_equal(tz_weekend_parse("fri", &m), 0);
	assert_int_equal(m, 1u << 5);
	assert_int_equal(tz_weekend_parse("none", &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(tz_weekend_parse("funday", &m), -1);
	assert_int_equal(tz_weekend_parse("fri-", &m), -1);
	assert_int_equal(tz_weekend_parse("mon-sun", &m), -1); /* no working day */
}

static void test_next(void **state)
{
	struct schedule s = {0};
	char *err = NULL;
	unsigned satsun = TZ_WEEKEND_DEFAULT, frisat = (1u << 5) | (1u << 6);
	int64_t when;

	(void)state;
	assert_int_equal(schedule_parse_window(&s, "09:00-17:00", &err), 0);
	/* Friday 4 December 2026, 00:00 UTC */
	assert_int_equal(
	    schedule_next(&s, "America/New_York", satsun, utc("2026-12-04T00:00:00Z"), &when), 0);
	assert_int_equal(when, utc("2026-12-04T14:00:00Z"));
	assert_int_equal(
	    schedule_next(&s, "Asia/Amman", frisat, utc("2026-12-04T00:00:00Z"), &when), 0);
	assert_int_equal(when, utc("2026-12-06T06:00:00Z")); /* Sunday 09:00 in Amman */
	/* inside the window: now */
	assert_int_equal(
	    schedule_next(&s, "Europe/Brussels", satsun, utc("2026-12-04T10:30:00Z"), &when), 0);
	assert_int_equal(when, utc("2026-12-04T10:30:00Z"));
	/* after Friday's window in Brussels: Monday */
	assert_int_equal(
	    schedule_next(&s, "Europe/Brussels", satsun, utc("2026-12-04T16:00:00Z"), &when), 0);
	assert_int_equal(when, utc("2026-12-07T08:00:00Z"));
	/* New York's summer time starts on Sunday 8 March 2026: Monday 09:00 is 13:00 UTC */
	assert_int_equal(
	    schedule_next(&s, "America/New_York", satsun, utc("2026-03-06T23:00:00Z"), &when), 0);
	assert_int_equal(when, utc("2026-03-09T13:00:00Z"));
	/* --at in each mission's local time */
	assert_int_equal(schedule_parse_at(&s, "2026-12-01T09:00", &err), 0);
	s.local = 1;
	s.window = 0;
	assert_int_equal(
	    schedule_next(&s, "Asia/Tokyo", satsun, utc("2026-11-30T00:00:00Z"), &when), 0);
	assert_int_equal(when, utc("2026-12-01T00:00:00Z"));
	/* bad options */
	assert_int_not_equal(schedule_parse_window(&s, "17:00-09:00", &err), 0);
	free(err);
	err = NULL;
	assert_int_not_equal(schedule_parse_window(&s, "9-17", &err), 0);
	free(err);
	err = NULL;
	assert_int_not_equal(schedule_parse_at(&s, "tomorrow", &err), 0);
	free(err);
	schedule_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zones),
	    cmocka_unit_test(test_weekends),
	    cmocka_unit_test(test_next),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
