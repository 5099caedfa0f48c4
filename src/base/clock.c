/* Clocks in milliseconds (clock.h), and the fake wall clock tests set with DEMARCHE_NOW. */
#include "base/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
	return ms(CLOCK_MONOTONIC);
}

/* The fake clock: fake = base + (mono - mono0) + shift; shift only grows (sleeps). */
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static int fake_on;
static int64_t fake_base, fake_mono0, fake_shift;
static double fake_speed; /* 0: sleeps jump */

static void fake_init(void)
{
	const char *s = getenv("DEMARCHE_NOW"), *sp = getenv("DEMARCHE_SPEED");
	struct tm tm;
	char *end;

	if (!s || !*s)
		return;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end && (*end == 'Z' || !*end)) {
		fake_base = (int64_t)timegm(&tm) * 1000;
	} else {
		long long v = strtoll(s, &end, 10);
		if (*end || v <= 0)
			return; /* not a time: the real clock */
		fake_base = (int64_t)v * 1000;
	}
	fake_mono0 = clock_mono_ms();
	fake_speed = sp && *sp ? strtod(sp, NULL) : 0;
	if (fake_speed < 0)
		fake_speed = 0;
	fake_on = 1;
}

int clock_is_fake(void)
{
	pthread_once(&fake_once, fake_init);
	return fake_on;
}

int64_t clock_real_ms(void)
{
	int64_t t;

	if (!clock_is_fake())
		return ms(CLOCK_REALTIME);
	pthread_mutex_lock(&fake_lock);
	t = fake_base + (clock_mono_ms() - fake_mono0) + fake_shift;
	pthread_mutex_unlock(&fake_lock);
	return t;
}

static void nap(int64_t msec)
{
	struct timespec ts = {(time_t)(msec / 1000), (long)(msec % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int clock_sleep_until(int64_t until_ms, const volatile sig_atomic_t *stop)
{
	int64_t now, real_end;

	if (clock_is_fake()) {
		now = clock_real_ms();
		if (until_ms <= now)
			return 1;
		if (fake_speed > 0) { /* a scaled real wait, so a test can act meanwhile */
			real_end =
			    clock_mono_ms() + (int64_t)((double)(until_ms - now) / fake_speed);
			while (clock_mono_ms() < real_end) {
				if (stop && *stop)
					return 0;
				nap(real_end - clock_mono_ms() > 100 ? 100
				                                     : real_end - clock_mono_ms());
			}
		}
		if (stop && *stop)
			return 0;
		pthread_mutex_lock(&fake_lock);
		now = fake_base + (clock_mono_ms() - fake_mono0) + fake_shift;
		if (until_ms > now)
			fake_shift += until_ms - now;
		pthread_mutex_unlock(&fake_lock);
		return 1;
	}
	while ((now = clock_real_ms()) < until_ms) {
		if (stop && *stop)
			return 0;
		nap(until_ms - now > 1000 ? 1000 : until_ms - now);
	}
	return !(stop && *stop);
}
