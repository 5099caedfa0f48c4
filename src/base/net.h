/*
 * Where cleartext is allowed: the one loopback test SMTP and IMAP share, so both agree on
 * which hosts a password may reach without TLS.
 */
#ifndef DEMARCHE_NET_H
#define DEMARCHE_NET_H

/*
 * 1 when host names this machine's loopback interface, else 0. Can't fail.
 * Loopback: "localhost" and "localhost." (any case), an IPv4 address in 127.0.0.0/8 in
 * dotted-quad form, ::1, and ::ffff:127.x.y.z (IPv4-mapped, RFC 4291 section 2.5.5.2); IPv6
 * forms with or without brackets ("[::1]", as a URL gives them). Anything else is not, on
 * purpose: "127.example.com", "localhost.evil.com", "127.1" (a shorthand inet_pton refuses),
 * zone ids, other names that may resolve to loopback. A false "no" only makes TLS required.
 */
int net_host_is_loopback(const char *host);

#endif
