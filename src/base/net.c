/* The loopback test: which hosts may be reached in cleartext (net.h). */
#include "base/net.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

int net_host_is_loopback(const char *host)
{
	static const unsigned char one[16] = {[15] = 1};
	static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
	unsigned char a[16];
	char tmp[64];
	size_t n;

	if (!host)
		return 0;
	/* "localhost." is the same name, absolute (RFC 6761 section 6.3 keeps it loopback). */
	if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost."))
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = '\0';
		host = tmp;
	}
	if (inet_pton(AF_INET6, host, a) != 1)
		return 0;
	return !memcmp(a, one, sizeof(one)) || (!memcmp(a, mapped, sizeof(mapped)) && a[12] == 127);
}
