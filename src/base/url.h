/*
 * URLs of mail servers (smtp://, smtps://, imap://, imaps://), read with libcurl's URL API,
 * and kept free of passwords: a password in a URL would be printed, logged and stored (the
 * ledger's hash chain would keep it forever), so it is refused and every URL shown is
 * redacted. This is the only file of base/ that sees libcurl (its URL parser, no network).
 */
#ifndef DEMARCHE_URL_H
#define DEMARCHE_URL_H

/* A parsed URL. Every string is allocated and owned by the struct (url_free()). */
struct url {
	char *scheme; /* lower case: "smtp", "imaps", ... */
	char *host;   /* a name, an IPv4 address, or an IPv6 address in brackets ("[::1]") */
	long port;    /* as given (0 to 65535), -1 when none is (the scheme's default applies) */
	int userinfo; /* a user, password or login options ("user;AUTH=...") is in the URL */
	int password; /* a password is */
	int path;     /* a path other than "" and "/" */
	int query;    /* a query or a fragment */
	int zone;     /* an IPv6 zone id ("[fe80::1%25eth0]") */
};

/*
 * Parses url with curl_url() (any scheme; the host normalised as curl does, "127.1" becoming
 * "127.0.0.1"). Returns 0 with *u filled in, or -1 (not a URL with a host; *u then holds
 * nothing to free). url_free() is safe on a zeroed or freed struct. Can't fail otherwise.
 */
int url_parse(const char *url, struct url *u);
void url_free(struct url *u);

/*
 * url with any password replaced by "***" ("smtp://alice:***@host:587"); the user and the
 * rest are kept as written. Works on text curl cannot parse too: what lies between "://"
 * (or the start) and the last '@' is the user information, and everything in it after the
 * first ':' is hidden. A URL without '@' comes back unchanged. NULL gives NULL; otherwise
 * an allocated string the caller frees.
 */
char *url_redact(const char *url);

/*
 * EX_OK when url holds no password; else EX_CONFIG with *errstr (allocated, the URL redacted
 * in it): "WHAT 'smtp://alice:***@host' holds a password: ..." pointing at user and
 * password_command. what names where the URL came from ("[smtp] url", "--via").
 */
int url_check_no_password(const char *url, const char *what, char **errstr);

#endif
