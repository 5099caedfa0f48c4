/*
 * IMAP client (RFC 3501, UIDPLUS RFC 4315) over libetpan: copies to Sent and reading a folder.
 *
 * Every function returns EX_OK (0) or a sysexits code and then sets *errstr (when errstr is
 * not NULL) to an allocated message the caller frees; the server's own words are quoted in it:
 *   EX_CONFIG      bad URL; login refused (wrong user or password); cleartext to a host that
 *                  is not loopback; unreadable CA file
 *   EX_UNAVAILABLE TLS peer verification failed; server lacks STARTTLS; the server refused a
 *                  command (NO/BAD: folder missing, over quota, ...)
 *   EX_TEMPFAIL    cannot connect, connection lost, timeout
 *   EX_PROTOCOL    the server's response could not be parsed
 *   EX_DATAERR     bad argument (empty message, bad Date)
 * After EX_TEMPFAIL or EX_PROTOCOL the session is unusable: close it and open another.
 * No function here prints anything or logs the password.
 */
#ifndef DEMARCHE_IMAP_H
#define DEMARCHE_IMAP_H

#include <stddef.h>
#include <stdint.h>

struct imap_session;

/*
 * Connects, secures and logs in. url is "imaps://HOST[:PORT]" (TLS from the first byte,
 * default port 993) or "imap://HOST[:PORT]" (default 143), read with libcurl's URL API
 * (base/url.h) like the SMTP one: STARTTLS is required, except to a loopback host as
 * net_host_is_loopback() (base/net.h) says, the rule SMTP follows too, where the session
 * stays in cleartext (local servers, SSH tunnels). HOST may be a name, an IPv4 address or
 * [IPv6]. A trailing "/" is accepted; user info, paths, queries, fragments and zone ids are
 * not, and a URL in a message is shown with any password redacted.
 * TLS peers are always verified, after the handshake and before any credential is sent:
 * the chain against ca_file (a PEM file; NULL: the system's trusted CAs) and the name or IP
 * address of HOST against the certificate (libetpan's GnuTLS build verifies nothing itself).
 * On success *out is a session the caller closes with imap_close(); on failure *out is NULL.
 */
int imap_open(const char *url, const char *user, const char *password, const char *ca_file,
              struct imap_session **out, char **errstr);

/* Logs out (best effort) and frees the session. NULL is safe. Can't fail. */
void imap_close(struct imap_session *s);

/* 1 when the server announced UIDPLUS (RFC 4315), else 0. Can't fail. */
int imap_has_uidplus(const struct imap_session *s);

/* Sets *exists to 1 when folder exists and can hold messages (LIST, RFC 3501 6.3.8), else 0. */
int imap_folder_exists(struct imap_session *s, const char *folder, int *exists, char **errstr);

#define IMAP_SEEN 1 /* imap_append flag: store the copy with \Seen */

/*
 * Appends one message (RFC 5322 bytes, CRLF line ends) to folder (RFC 3501 6.3.11) with the
 * flags (IMAP_SEEN or 0) and, as internal date, date: an RFC 5322 date-time ("Mon, 24 Nov
 * 2025 10:00:00 +0100"), or NULL to take the message's own Date header (the server's clock
 * when it has none). With UIDPLUS the server's APPENDUID is stored in *uid and *uidvalidity
 * (either may be NULL); without it both are set to 0.
 */
int imap_append(struct imap_session *s, const char *folder, const char *data, size_t len, int flags,
                const char *date, uint32_t *uid, uint32_t *uidvalidity, char **errstr);

/*
 * Called once per message, in ascending UID order, with its exact bytes (owned by the
 * library, valid during the call only). Returns 0 to go on; anything else stops the fetch
 * and imap_fetch_since() returns that value.
 */
typedef int imap_message_fn(void *arg, uint32_t uid, const char *data, size_t len);

/*
 * Reads folder read-only (EXAMINE; messages keep their \Seen state) and calls fn for every
 * message whose UID is above last_uid, fetched one at a time (BODY.PEEK[]). uidvalidity is
 * the folder's UIDVALIDITY when last_uid was recorded (0: never read): when the folder's
 * current UIDVALIDITY differs, the old UIDs mean nothing (RFC 3501 2.3.1.1), last_uid is
 * ignored and every message is passed. The folder's current UIDVALIDITY is stored in
 * *uidvalidity_now (may be NULL) before the first call of fn, so the caller can tell.
 * Returns EX_OK, an error code above, or the value fn stopped with.
 */
int imap_fetch_since(struct imap_session *s, const char *folder, uint32_t uidvalidity,
                     uint32_t last_uid, uint32_t *uidvalidity_now, imap_message_fn *fn, void *arg,
                     char **errstr);

#endif
