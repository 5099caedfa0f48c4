/* Time zones by name through the C library's tz database, and weekends (tz.h). */
#include "base/tz.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/xalloc.h"

int tz_known(const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[4096], magic[4];
	int fd, ok;

	if (!name || !*name || *name == '/' || strlen(name) > 255)
		return 0;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_+-/", *p))
			return 0;
	if (!strcmp(name, "..") || !strncmp(name, "../", 3) || strstr(name, "/../") ||
	    (strlen(name) >= 3 && !strcmp(name + strlen(name) - 3, "/..")) || strstr(name, "//"))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		return 0;
	ok = read(fd, magic, 4) == 4 && !memcmp(magic, "TZif", 4);
	close(fd);
	return ok;
}

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/* Sets TZ to zone (":zone": a file of the database, never a POSIX rule); returns the
 * value to put back (NULL: TZ was unset). Called with tz_lock held. */
static char *tz_enter(const char *zone)
{
	const char *old = getenv("TZ");
	char *saved = old ? xstrdup(old) : NULL, *val = xasprintf(":%s", zone);

	setenv("TZ", val, 1);
	free(val);
	tzset();
	return saved;
}

static void tz_leave(char *saved)
{
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	free(saved);
	tzset();
}

int tz_local(const char *zone, int64_t utc, struct tm *out)
{
	time_t t = (time_t)utc;
	char *saved;
	int rc;

	if (!tz_known(zone))
		return -1;
	pthread_mutex_lock(&tz_lock);
	saved = tz_enter(zone);
	rc = localtime_r(&t, out) ? 0 : -1;
	tz_leave(saved);
	pthread_mutex_unlock(&tz_lock);
	return rc;
}

int tz_utc(const char *zone, const struct tm *local, int64_t *utc)
{
	struct tm tm = *local;
	char *saved;
	time_t t;

	if (!tz_known(zone))
		return -1;
	tm.tm_isdst = -1;
	pthread_mutex_lock(&tz_lock);
	saved = tz_enter(zone);
	t = mktime(&tm);
	tz_leave(saved);
	pthread_mutex_unlock(&tz_lock);
	if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
		return -1;
	*utc = (int64_t)t;
	return 0;
}

static int day_of(const char *s, size_t n)
{
	static const char *const days[] = {"sunday",   "monday", "tuesday", "wednesday",
	                                   "thursday", "friday", "saturday"};

	for (int i = 0; i < 7; i++)
		if ((n == 3 || n == strlen(days[i])) && !strncasecmp(s, days[i], n))
			return i;
	return -1;
}

int tz_weekend_parse(const char *s, unsigned *mask)
{
	unsigned m = 0;
	int prev = -1, range = 0;

	if (!s)
		s = "";
	while (*s == ' ')
		s++;
	if (!*s) {
		*mask = TZ_WEEKEND_DEFAULT;
		return 0;
	}
	if (!strcasecmp(s, "none")) {
		*mask = 0;
		return 0;
	}
	while (*s) {
		size_t n = 0;
		int d;

		while (isalpha((unsigned char)s[n]))
			n++;
		if (!n || (d = day_of(s, n)) < 0)
			return -1;
		if (range) { /* "fri-sat": every day from prev to d, over the week's end */
			for (int i = prev; i != d; i = (i + 1) % 7)
				m |= 1u << i;
			range = 0;
		}
		m |= 1u << d;
		prev = d;
		s += n;
		while (*s == ' ')
			s++;
		if (*s == '-') {
			range = 1;
			s++;
		} else if (*s && strchr(",;+", *s)) {
			s++;
		} else if (*s && !isalpha((unsigned char)*s)) {
			return -1;
		}
		while (*s == ' ')
			s++;
	}
	if (range || m == 0x7f)
		return -1;
	*mask = m;
	return 0;
}
