/* Configuration: demarche.ini read with inih, with a permission check for secrets. */
#include "base/config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stddef.h>
#include <unistd.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/secret.h"
#include "base/url.h"
#include "base/buf.h"
#include "base/strutil.h"
#include "base/xalloc.h"

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->smtp.concurrency = 1;
	cfg->smtp.timeout = 60;
	cfg->smtp.retry_after = 2;
	cfg->smtp.max_attempts = 3;
	cfg->smtp.command_timeout = SECRET_TIMEOUT;
	cfg->imap.command_timeout = SECRET_TIMEOUT;
}

struct parse_state {
	struct config *cfg;
	const char *path;
	char *err; /* first problem, with its line */
	int has_password;
	FILE *fp;
	int lineno; /* of the line inih is handling */
};

enum kind { STR, INT };

struct key {
	const char *section, *name;
	enum kind kind;
	size_t offset;
};

#define S(sec, field)                                                                              \
	{                                                                                          \
#sec, #field, STR, offsetof(struct config, sec.field)                              \
	}
#define I(sec, field)                                                                              \
	{                                                                                          \
#sec, #field, INT, offsetof(struct config, sec.field)                              \
	}

static const struct key keys[] = {
    S(sender, name),
    S(sender, address),
    S(sender, reply_to),
    S(sender, domain),
    S(smtp, url),
    S(smtp, user),
    S(smtp, password),
    S(smtp, password_command),
    S(smtp, oauth_token_command),
    S(smtp, tls),
    S(smtp, ca_file),
    S(smtp, rate),
    I(smtp, concurrency),
    I(smtp, daily_cap),
    I(smtp, timeout),
    I(smtp, retry_after),
    I(smtp, max_attempts),
    I(smtp, command_timeout),
    S(smtp, sendmail),
    S(imap, url),
    S(imap, user),
    S(imap, password),
    S(imap, password_command),
    S(imap, sent_folder),
    S(imap, ca_file),
    I(imap, command_timeout),
    S(store, path),
    S(sender, operator),
    I(approval, required),
    S(approval, approvers),
    S(approval, key),
    S(approval, passphrase_command),
    S(letterhead, name),
    S(letterhead, address),
    S(letterhead, logo),
    S(letterhead, footer),
    S(letterhead, paper),
    S(letterhead, margins),
    S(letterhead, font),
    S(letterhead, signature),
    /* a team ledger on PostgreSQL (issue 21) */
    S(store, url),
    S(store, password_command),
    I(store, lease),
};

/* [letterhead] signature.NAME = FILE: the image set above NAME's line of the signature. */
static int letterhead_signature(struct config *cfg, const char *name, const char *value)
{
	if (strncmp(name, "signature.", 10) || !name[10])
		return 0;
	cfg->letterhead.sig_names =
	    xreallocarray(cfg->letterhead.sig_names, cfg->letterhead.nsigs + 1, sizeof(char *));
	cfg->letterhead.sig_files =
	    xreallocarray(cfg->letterhead.sig_files, cfg->letterhead.nsigs + 1, sizeof(char *));
	cfg->letterhead.sig_names[cfg->letterhead.nsigs] = xstrdup(name + 10);
	cfg->letterhead.sig_files[cfg->letterhead.nsigs++] = xstrdup(value);
	return 1;
}

/*
 * "FILE:LINE: unknown key 'x' in section [s]; fix: write 'y' instead of 'x' (or remove
 * the line); the keys of [s] are: ..." (doctor prints what follows "; fix: " as the fix).
 */
static char *unknown_key(const char *path, int lineno, const char *section, const char *name)
{
	const char *names[sizeof(keys) / sizeof(keys[0])];
	const char *near;
	size_t n = 0;
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].section, section))
			names[n++] = keys[i].name;
	near = str_nearest(name, names, n);
	buf_addf(&b, "%s:%d: unknown key '%s' in section [%s]", path, lineno, name, section);
	if (!n) { /* an unknown section: name those there are */
		buf_adds(&b, "; fix: the sections are");
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			int seen = 0;

			for (size_t j = 0; j < i && !seen; j++)
				seen = !strcmp(keys[j].section, keys[i].section);
			if (!seen)
				buf_addf(&b, "%s [%s]", i ? "," : "", keys[i].section);
		}
		return buf_detach(&b);
	}
	if (near)
		buf_addf(&b, "; fix: write '%s' instead of '%s' (or remove the line)", near, name);
	else
		buf_addf(&b, "; fix: remove line %d or name a key of [%s]", lineno, section);
	buf_addf(&b, "; the keys of [%s] are:", section);
	for (size_t i = 0; i < n; i++)
		buf_addf(&b, "%s %s", i ? "," : "", names[i]);
	if (!strcmp(section, "letterhead"))
		buf_adds(&b, ", signature.NAME");
	return buf_detach(&b);
}

/*
 * Sections whose pairs are kept as they stand, for config_section_hash() (an approval covers
 * them). [letterhead] takes its keys above (the letter as a PDF) and signature.NAME; any
 * other key there is an error like anywhere else: a misspelt 'fotter' must not vanish from
 * a letter unnoticed.
 */
static const char *const kept_sections[] = {"letterhead"};

static int kept(const char *section)
{
	for (size_t i = 0; i < sizeof(kept_sections) / sizeof(kept_sections[0]); i++)
		if (!strcmp(section, kept_sections[i]))
			return 1;
	return 0;
}

/* Debian's inih passes no line number to the handler: the reader counts lines instead. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	char *s = fgets(str, num, st->fp);

	if (s && strchr(s, '\n'))
		st->lineno++;
	return s;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	const struct key *k = NULL;
	int lineno = st->lineno;

	if (kept(section)) {
		struct config *c = st->cfg;
		struct config_pair *p;

		c->pairs = xreallocarray(c->pairs, c->npairs + 1, sizeof(*c->pairs));
		p = &c->pairs[c->npairs++];
		p->section = xstrdup(section);
		p->name = xstrdup(name);
		p->value = xstrdup(value);
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name)) {
			k = &keys[i];
			break;
		}
	}
	if (!k && !strcmp(section, "letterhead") && letterhead_signature(st->cfg, name, value))
		return 1;
	if (!k) {
		if (!st->err)
			st->err = unknown_key(st->path, lineno, section, name);
		return 1; /* go on: inih then reports the first syntax error too */
	}
	if (!strcmp(name, "password") && *value)
		st->has_password = 1;
	if (!strcmp(name, "url")) {
		/* Refused here, so no command ever prints, logs or stores it. */
		char *what = xasprintf("[%s] url", section), *why = NULL;

		if (url_check_no_password(value, what, &why) != EX_OK && !st->err)
			st->err = xasprintf("%s:%d: %s", st->path, lineno, why);
		free(what);
		free(why);
		if (st->err)
			return 1;
	}
	if (k->kind == STR) {
		char **field = (char **)((char *)st->cfg + k->offset);
		free(*field);
		*field = xstrdup(value);
	} else {
		int *field = (int *)((char *)st->cfg + k->offset);
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < 0 || v > INT_MAX) {
			if (!st->err)
				st->err =
				    xasprintf("%s:%d: [%s] %s must be a whole number, not '%s'",
				              st->path, lineno, section, name, value);
			return 1;
		}
		/* 0 would mean "no time at all", not "no limit": a hung command must end. */
		if (!strcmp(name, "command_timeout") && (v < 1 || v > 3600)) {
			if (!st->err)
				st->err = xasprintf("%s:%d: [%s] command_timeout must be 1 to 3600 "
				                    "seconds, not '%s'",
				                    st->path, lineno, section, value);
			return 1;
		}
		*field = (int)v;
	}
	if (!strcmp(section, "smtp") && !strcmp(name, "tls") && *value &&
	    strcmp(value, "starttls") && strcmp(value, "implicit") && strcmp(value, "none") &&
	    !st->err)
		st->err =
		    xasprintf("%s:%d: [smtp] tls must be starttls, implicit or none, not '%s'",
		              st->path, lineno, value);
	return 1;
}

int config_read_file(struct config *cfg, const char *path, char **errstr)
{
	struct parse_state st = {cfg, path, NULL, 0, NULL, 0};
	struct stat sb;
	FILE *fp;
	int rc;

	fp = fopen(path, "r");
	if (!fp)
		return error_set(errstr, errno == ENOENT ? EX_NOINPUT : EX_CONFIG,
		                 "cannot read configuration %s: %s", path, strerror(errno));
	if (fstat(fileno(fp), &sb) != 0) {
		fclose(fp);
		return error_set(errstr, EX_CONFIG, "cannot stat %s: %s", path, strerror(errno));
	}
	st.fp = fp;
	rc = ini_parse_stream(read_line, &st, on_pair, &st);
	fclose(fp);
	if (rc > 0 && !st.err)
		st.err = xasprintf("%s:%d: syntax error", path, rc);
	if (st.err) {
		rc = error_set(errstr, EX_CONFIG, "%s", st.err);
		free(st.err);
		return rc;
	}
	if (rc < 0)
		return error_set(errstr, EX_CONFIG, "cannot read configuration %s", path);
	if (st.has_password && (sb.st_mode & (S_IRWXG | S_IRWXO)))
		return error_set(errstr, EX_CONFIG,
		                 "%s holds a password and can be read by others (mode %03o); "
		                 "fix it with: chmod 600 %s",
		                 path, (unsigned)(sb.st_mode & 0777), path);
	free(cfg->path);
	cfg->path = xstrdup(path);
	return EX_OK;
}

int config_load(struct config *cfg, const char *explicit, char **errstr)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *path = NULL;
	int rc;

	if (explicit)
		return config_read_file(cfg, explicit, errstr);
	if (access("demarche.ini", F_OK) == 0)
		return config_read_file(cfg, "demarche.ini", errstr);
	if (xdg && *xdg)
		path = xasprintf("%s/demarche/config.ini", xdg);
	else if (home && *home)
		path = xasprintf("%s/.config/demarche/config.ini", home);
	if (path && access(path, F_OK) == 0) {
		rc = config_read_file(cfg, path, errstr);
		free(path);
		return rc;
	}
	free(path);
	return EX_OK;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].kind == STR) {
			char **field = (char **)((char *)cfg + keys[i].offset);
			free(*field);
		}
	}
	for (size_t i = 0; i < cfg->letterhead.nsigs; i++) {
		free(cfg->letterhead.sig_names[i]);
		free(cfg->letterhead.sig_files[i]);
	}
	free(cfg->letterhead.sig_names);
	free(cfg->letterhead.sig_files);
	for (size_t i = 0; i < cfg->npairs; i++) {
		free(cfg->pairs[i].section);
		free(cfg->pairs[i].name);
		free(cfg->pairs[i].value);
	}
	free(cfg->pairs);
	free(cfg->path);
	config_init(cfg);
}

int config_section_hash(const struct config *cfg, const char *section, char hex[65])
{
	struct digest *d = digest_new();
	int found = 0;

	for (size_t i = 0; i < cfg->npairs; i++) {
		const struct config_pair *p = &cfg->pairs[i];

		if (strcmp(p->section, section))
			continue;
		found = 1;
		digest_update(d, p->name, strlen(p->name) + 1);
		digest_update(d, p->value, strlen(p->value) + 1);
	}
	hex[0] = '\0';
	if (found)
		digest_final_hex(d, hex);
	digest_free(d);
	return found;
}
