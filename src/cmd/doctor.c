/* demarche doctor: check config, sender, SMTP, IMAP and ledger, one line each; sends nothing. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/datadir.h"
#include "base/error.h"
#include "base/escape.h"
#include "base/strutil.h"
#include "base/term.h"
#include "base/xalloc.h"
#include "campaign/account.h"
#include "campaign/approval.h"
#include "cmd/cmd.h"
#include "imap/imap.h"
#include "ledger/ledger.h"
#include "base/address.h"
#include "transport/probe.h"

const char usage_doctor[] =
    "usage: demarche doctor [--format text|json] [-q | -v] [--color=WHEN]\n"
    "\n"
    "Checks the setup without sending anything, one line per check: the configuration\n"
    "(found, loads, permissions safe), [sender] address and domain, the SMTP server\n"
    "(greeting, EHLO extensions, TLS with the certificate verified, login), the IMAP\n"
    "server (login, the Sent folder) and the ledger (opens, hash chain intact).\n"
    "Each line is \"OK\", \"SKIP\" (not configured) or \"FAIL ... — fix: ...\".\n"
    "Passwords are looked up exactly as send and bounces do: DEMARCHE_SMTP_PASSWORD /\n"
    "DEMARCHE_IMAP_PASSWORD, else [smtp]/[imap] password_command, else password; the\n"
    "line \"password from ...\" names the source used. No password is ever printed.\n"
    "\n"
    "--format json prints one object: {\"ok\": true|false, \"checks\": [{\"status\":\n"
    "\"ok\"|\"skip\"|\"fail\", \"message\": ..., \"fix\": ...}]}. -q prints only the failed\n"
    "checks; -v adds where the templates and the example roster are found.\n"
    "\n"
    "Exit: 0 every check passed or was skipped; 78 a configuration problem; 69 a server\n"
    "check failed; 65 the ledger does not verify.\n"
    "\n"
    "  --format FMT       text (the default) or json\n" APP_OPTIONS_USAGE;

struct doctor {
	int rc; /* the code of the first failure */
	int fails;
};

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(struct doctor *d, int code, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* How the results are shown: one line each (coloured on a terminal), or JSON at the end. */
static json_t *json_checks; /* --format json: the checks so far; NULL for text */
static int quiet, verbose;

static void report(const char *status, const char *colour, const char *fix, const char *fmt,
                   va_list ap)
{
	struct buf b = BUF_INIT;

	buf_vaddf(&b, fmt, ap);
	if (json_checks) {
		/* a server's reply need not be UTF-8: then it is shown escaped, as on a terminal */
		json_t *o = json_object(), *msg = json_string(buf_str(&b));
		char *shown = msg ? NULL : esc_term_dup(buf_str(&b));

		json_object_set_new(o, "status", json_string(status));
		json_object_set_new(o, "message", msg ? msg : json_string(shown));
		if (fix)
			json_object_set_new(o, "fix", json_string(fix));
		json_array_append_new(json_checks, o);
		free(shown);
	} else if (!quiet || !strcmp(status, "fail")) {
		int c = term_colour(stdout);
		char word[8];

		snprintf(word, sizeof word, "%s", status);
		for (char *w = word; *w; w++)
			*w = (char)(*w - 'a' + 'A');
		printf("%s%-4s%s %s", c ? colour : "", word, c ? "\033[0m" : "", buf_str(&b));
		if (fix)
			printf(" — fix: %s", fix);
		putchar('\n');
	}
	buf_free(&b);
}

static void ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("ok", "\033[32m", NULL, fmt, ap);
	va_end(ap);
}

static void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("skip", "\033[33m", NULL, fmt, ap);
	va_end(ap);
}

static void fail(struct doctor *d, int code, const char *fix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("fail", "\033[1;31m", fix, fmt, ap);
	va_end(ap);
	if (!d->fails++)
		d->rc = code;
}

/* -v: the data folders (base/datadir.h) and what they hold. */
static void show_data(void)
{
	char **dirs = NULL;
	size_t n = datadir_list(&dirs);

	if (!n)
		skip("data: no templates/ or recipients/ found (set DEMARCHE_TEMPLATES and "
		     "DEMARCHE_RECIPIENTS)");
	for (size_t i = 0; i < n; i++) {
		ok("data: %s", dirs[i]);
		free(dirs[i]);
	}
	free(dirs);
}

/* Replies joined by '\n' on one line: "250-a\n250 b" -> "250-a / 250 b". */
static char *one_line(const char *s)
{
	struct buf b = BUF_INIT;

	for (; s && *s; s++) {
		if (*s == '\n')
			buf_adds(&b, " / ");
		else if ((unsigned char)*s >= 0x20)
			buf_addc(&b, *s);
	}
	return buf_detach(&b);
}

/* Returns 1 when the configuration loaded (app->cfg is then set up). */
static int check_config(struct doctor *d, struct app *app)
{
	char *err = NULL, *fix;
	struct stat sb;
	int rc;

	config_init(&app->cfg);
	app->cfg_loaded = 1; /* main() frees it */
	rc = config_load(&app->cfg, app->config_path, &err);
	if (rc != EX_OK) {
		/* The message may carry its own fix (an unknown key: the nearest known one). */
		char *own = err ? strstr(err, "; fix: ") : NULL;

		if (own) {
			*own = '\0';
			own += strlen("; fix: ");
		}
		fail(d, rc,
		     rc == EX_NOINPUT ? "give an existing file, or run 'demarche init'"
		     : own            ? own
		                      : "edit the line the message names (demarche init writes a "
		                        "commented demarche.ini with every key)",
		     "config: %s", err);
		free(err);
		return 0;
	}
	if (!app->cfg.path) {
		skip("config: none found (./demarche.ini, $XDG_CONFIG_HOME/demarche/config.ini): "
		     "defaults apply, send writes to maildir:./outbox; 'demarche init' makes one");
		return 1;
	}
	ok("config: %s loads", app->cfg.path);
	if (stat(app->cfg.path, &sb) != 0) {
		fail(d, EX_CONFIG, NULL, "config: cannot stat %s: %s", app->cfg.path,
		     strerror(errno));
		return 1;
	}
	/* Whoever can write the file can make password_command run anything. */
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		fix = xasprintf("chmod 600 %s", app->cfg.path);
		fail(d, EX_CONFIG, fix, "config: %s can be written by others (mode %03o)",
		     app->cfg.path, (unsigned)(sb.st_mode & 0777));
		free(fix);
	} else if (sb.st_uid != geteuid()) {
		fail(d, EX_CONFIG, "chown it to yourself, or use your own copy",
		     "config: %s belongs to another user (uid %u)", app->cfg.path,
		     (unsigned)sb.st_uid);
	} else if (sb.st_mode & (S_IRGRP | S_IROTH)) {
		ok("config: permissions %03o (readable by others, but it holds no password)",
		   (unsigned)(sb.st_mode & 0777));
	} else {
		ok("config: permissions %03o", (unsigned)(sb.st_mode & 0777));
	}
	return 1;
}

/* Sets *domain (borrowed) to the domain Message-IDs and EHLO will use, or NULL. */
static void check_sender(struct doctor *d, const struct config *cfg, const char **domain)
{
	const char *addr = cfg->sender.address, *why;
	char *probe;

	*domain = NULL;
	if (!addr || !*addr) {
		skip("[sender] address not set: preview and maildir use an example address; "
		     "SMTP needs yours");
		return;
	}
	if ((why = address_check(addr, strlen(addr), 0))) {
		fail(d, EX_CONFIG, "set [sender] address to a plain address, as name@example.org",
		     "[sender] address '%s' is not valid: %s", addr, why);
		return;
	}
	ok("[sender] address %s", addr);
	*domain =
	    cfg->sender.domain && *cfg->sender.domain ? cfg->sender.domain : strrchr(addr, '@') + 1;
	probe = xasprintf("x@%s", *domain);
	why = address_check(probe, strlen(probe), 0);
	free(probe);
	if (why || !strchr(*domain, '.') || (*domain)[0] == '[') {
		fail(d, EX_CONFIG, "set [sender] domain to your organisation's domain name",
		     "[sender] domain '%s' is not a domain name%s%s", *domain, why ? ": " : "",
		     why ? why : "");
		*domain = NULL;
		return;
	}
	ok("[sender] domain %s (Message-IDs and EHLO)", *domain);
	if (cfg->sender.reply_to && *cfg->sender.reply_to &&
	    (why = address_check(cfg->sender.reply_to, strlen(cfg->sender.reply_to), 0)))
		fail(d, EX_CONFIG, "set [sender] reply_to to a plain address",
		     "[sender] reply_to '%s' is not valid: %s", cfg->sender.reply_to, why);
}

static void print_ehlo(const struct transport_probe *p)
{
	struct buf b = BUF_INIT;

	if (p->has_size && p->size > 0)
		buf_addf(&b, "SIZE %ld (%.1f MB)", p->size, p->size / 1e6);
	else if (p->has_size)
		buf_adds(&b, "SIZE (no limit given)");
	else
		buf_adds(&b, "no SIZE");
	buf_adds(&b, p->starttls_offered ? ", STARTTLS" : ", no STARTTLS");
	if (p->auth)
		buf_addf(&b, ", AUTH %s", p->auth);
	else
		buf_adds(&b, ", no AUTH");
	buf_adds(&b, p->smtputf8 ? ", SMTPUTF8" : ", no SMTPUTF8");
	buf_adds(&b, p->pipelining ? ", PIPELINING" : ", no PIPELINING");
	ok("SMTP EHLO%s: %s", p->tls ? " (after TLS)" : "", buf_str(&b));
	buf_free(&b);
}

/* The fix for a secret that could not be had: a command to mend, or a source to set. */
static const char *secret_fix(const struct config *cfg, enum account_kind kind)
{
	const char *command =
	    kind == ACCOUNT_SMTP ? cfg->smtp.password_command : cfg->imap.password_command;

	if (kind == ACCOUNT_SMTP && cfg->smtp.oauth_token_command && *cfg->smtp.oauth_token_command)
		return "make oauth_token_command print the token within command_timeout";
	if (command && *command)
		return "make password_command print the password within command_timeout";
	return kind == ACCOUNT_SMTP
	           ? "set [smtp] password_command, or DEMARCHE_SMTP_PASSWORD in the environment"
	           : "set [imap] password_command, or DEMARCHE_IMAP_PASSWORD in the environment";
}

static void check_smtp(struct doctor *d, const struct config *cfg, const char *domain)
{
	struct transport_opts o = {0};
	struct transport_probe *p = NULL;
	struct account *a = NULL;
	char *err = NULL, *line = NULL, *fix = NULL;
	const char *url;
	int auth, rc;

	/* The account exactly as send resolves it: same URL check, same password order. */
	rc = account_resolve(ACCOUNT_SMTP, cfg, NULL, 0, &a, &err);
	if (rc != EX_OK) {
		fail(d, EX_CONFIG,
		     "give [smtp] user and password_command, not credentials in the URL",
		     "SMTP: %s", err);
		goto out;
	}
	url = a->url;
	if (a->maildir) {
		ok("SMTP: not used, send writes to %s (set [smtp] url to send mail)", url);
		goto out;
	}
	auth = a->user != NULL;
	if (auth) {
		rc = account_secret(a, &err);
		if (rc != EX_OK) {
			fail(d, EX_CONFIG, secret_fix(cfg, a->kind), "SMTP password: %s", err);
			goto out;
		}
		ok("SMTP %s from %s", a->oauth_token ? "token" : "password", a->secret_source);
	}
	o.url = url;
	o.user = a->user;
	o.password = a->password;
	o.oauth_token = a->oauth_token;
	o.tls = cfg->smtp.tls;
	o.ca_file = cfg->smtp.ca_file;
	o.timeout = cfg->smtp.timeout > 0 && cfg->smtp.timeout < 20 ? cfg->smtp.timeout : 20;
	o.helo = domain;
	rc = transport_probe(&o, &p, &err);
	if (rc != EX_OK) {
		fail(d, EX_CONFIG, "correct [smtp] url and tls", "SMTP %s: %s", url, err);
		goto out;
	}
	if (p->stage == PROBE_CONNECT) {
		/* A TLS mismatch names the scheme and port that go together (RFC 8314 3.3). */
		int no_tls = p->error && strstr(p->error, "did not speak TLS");
		char *fix = no_tls ? xasprintf("this port speaks plain SMTP: write url = smtp://%s "
		                               "(STARTTLS, usually port 587), or smtps:// with the "
		                               "implicit-TLS port (usually 465)",
		                               p->hostport)
		                   : xstrdup("check [smtp] url (host and port) and that the server "
		                             "runs");

		line = one_line(p->reply);
		fail(d, EX_UNAVAILABLE, fix, "SMTP connect %s: %s%s%s", p->hostport,
		     p->error ? p->error : "no greeting", line && *line ? ": " : "",
		     line ? line : "");
		free(fix);
		goto out;
	}
	line = one_line(p->greeting);
	ok("SMTP connect %s: %s", p->hostport, line);
	if (p->stage == PROBE_EHLO) {
		free(line);
		line = one_line(p->reply);
		fail(d, EX_UNAVAILABLE, "check that [smtp] url names an SMTP server",
		     "SMTP EHLO refused: %s", line && *line ? line : p->error);
		goto out;
	}
	print_ehlo(p);
	if (p->stage == PROBE_STARTTLS) {
		fix = xasprintf("the server offers no STARTTLS: use smtps://%s (port 465) if it "
		                "has one, or another server",
		                p->hostport);
		fail(d, EX_UNAVAILABLE, fix, "SMTP TLS: no STARTTLS offered on %s", p->hostport);
		goto out;
	}
	if (p->stage == PROBE_TLS) {
		fail(d, EX_UNAVAILABLE,
		     "set [smtp] ca_file to the CA that signed the server's certificate, or check "
		     "the host name in [smtp] url",
		     "SMTP TLS: the server's certificate was not verified: %s", p->error);
		goto out;
	}
	if (p->tls)
		ok("SMTP TLS: %s, certificate verified%s",
		   p->implicit_tls ? "implicit" : "STARTTLS",
		   cfg->smtp.ca_file && *cfg->smtp.ca_file ? " against [smtp] ca_file" : "");
	else if (cfg->smtp.tls && !strcmp(cfg->smtp.tls, "none"))
		skip("SMTP TLS: tls = none (cleartext)");
	else
		ok("SMTP TLS: none offered; cleartext is allowed only on loopback");
	if (!auth) {
		if (p->auth)
			skip("SMTP login: [smtp] user not set (the server offers AUTH %s)",
			     p->auth);
		else
			skip("SMTP login: [smtp] user not set");
	} else if (p->stage == PROBE_AUTH && !p->auth) {
		fail(d, EX_CONFIG,
		     p->tls ? "remove [smtp] user if this server needs no login, or use the "
		              "submission port (587) or smtps://"
		            : "use STARTTLS or smtps:// (servers offer AUTH only over TLS)",
		     "SMTP login: the server offers no AUTH%s", p->tls ? "" : " in cleartext");
	} else if (p->stage == PROBE_AUTH) {
		line = (free(line), one_line(p->reply));
		fail(d, EX_CONFIG,
		     "check [smtp] user and the password (password_command or "
		     "DEMARCHE_SMTP_PASSWORD)",
		     "SMTP login as %s refused: %s", a->user, line && *line ? line : p->error);
	} else {
		ok("SMTP login as %s accepted", a->user);
	}
out:
	transport_probe_free(p);
	account_free(a);
	free(err);
	free(line);
	free(fix);
}

static void check_imap(struct doctor *d, const struct config *cfg)
{
	const char *folder =
	    cfg->imap.sent_folder && *cfg->imap.sent_folder ? cfg->imap.sent_folder : "Sent";
	struct imap_session *s = NULL;
	struct account *a = NULL;
	char *err = NULL, *fix = NULL;
	int rc, exists = 0;

	/* The account exactly as bounces and the Sent copies resolve it. */
	rc = account_resolve(ACCOUNT_IMAP, cfg, NULL, 0, &a, &err);
	if (rc != EX_OK) {
		fail(d, EX_CONFIG,
		     cfg->imap.user && *cfg->imap.user
		         ? "give [imap] user and password_command, not credentials in the URL"
		         : "set [imap] user",
		     "IMAP: %s", err);
		goto out;
	}
	if (!a) {
		skip("IMAP: [imap] url not set (no Sent copies, no bounces)");
		return;
	}
	rc = account_secret(a, &err);
	if (rc != EX_OK) {
		fail(d, EX_CONFIG, secret_fix(cfg, a->kind), "IMAP password: %s", err);
		goto out;
	}
	ok("IMAP password from %s", a->secret_source);
	rc = imap_open(a->url, a->user, a->password, a->ca_file, &s, &err);
	if (rc != EX_OK) {
		fail(d, rc == EX_CONFIG ? EX_CONFIG : EX_UNAVAILABLE,
		     rc == EX_CONFIG ? "check [imap] url, user and password"
		     : rc == EX_UNAVAILABLE
		         ? "set [imap] ca_file to the CA that signed the server's certificate, or "
		           "use imaps://"
		         : "check [imap] url (host and port) and that the server runs",
		     "IMAP login as %s at %s: %s", a->user, a->url, err);
		goto out;
	}
	ok("IMAP login as %s at %s", a->user, a->url);
	rc = imap_folder_exists(s, folder, &exists, &err);
	if (rc != EX_OK) {
		fail(d, EX_UNAVAILABLE, NULL, "IMAP folder %s: %s", folder, err);
	} else if (!exists) {
		fix = xasprintf("set [imap] sent_folder to your Sent folder's name, or create "
		                "%s in your mail program",
		                folder);
		fail(d, EX_CONFIG, fix, "IMAP: no folder %s", folder);
	} else {
		ok("IMAP folder %s exists", folder);
	}
out:
	imap_close(s);
	account_free(a);
	free(err);
	free(fix);
}

/* A PostgreSQL ledger: the connection, TLS, the schema, what the role may do. 1 on failure. */
static int check_team_ledger(struct doctor *d, struct ledger *l)
{
	char *text = NULL;
	int r = ledger_describe(l, &text);

	if (r & 2)
		fail(d, EX_NOPERM,
		     "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public and UPDATE ON "
		     "deliveries, campaigns, leases to this role",
		     "ledger: %s", text);
	else if (r & 1)
		printf("WARN ledger: %s: add sslmode=verify-full to [store] url\n", text);
	else
		ok("ledger: %s", text);
	free(text);
	return (r & 2) != 0;
}

/* [approval]: the approvers read, and enough of them besides the sender. */
static void check_approval(struct doctor *d, const struct config *cfg)
{
	struct approvers ap = {0};
	char *err = NULL, *sender = NULL;
	size_t others = 0;

	if (cfg->approval.required <= 0 && !cfg->approval.approvers) {
		skip("[approval] required not set: send needs no approval");
		return;
	}
	if (approvers_parse(cfg, &ap, &err) != EX_OK) {
		fail(d, EX_CONFIG, "write NAME:PUBLICKEY items as demarche keygen prints them",
		     "%s", err);
		goto out;
	}
	sender = approval_sender(cfg);
	for (size_t i = 0; i < ap.n; i++)
		others += !str_ieq(ap.v[i].name, sender);
	if ((size_t)cfg->approval.required > others)
		fail(d, EX_CONFIG, "add approvers or lower [approval] required",
		     "[approval] required = %d, but only %zu approvers are not the sender (%s)",
		     cfg->approval.required, others, sender);
	else
		ok("[approval] %d approval%s of each batch, from %zu approvers other than the "
		   "sender (%s)",
		   cfg->approval.required, cfg->approval.required == 1 ? "" : "s", others, sender);
out:
	free(sender);
	free(err);
	approvers_free(&ap);
}

static void check_ledger(struct doctor *d, struct app *app)
{
	const char *path = app_store_path(app);
	struct ledger *l = NULL;
	char *err = NULL, head[65];
	long n = 0;
	int rc;

	if (!ledger_store_is_remote(path) && access(path, F_OK) != 0) {
		skip("ledger: %s does not exist yet (the first send makes it)", path);
		return;
	}
	if (ledger_file_mode_check(path, &err))
		printf("WARN %s\n", err); /* a warning: doctor's verdict stays */
	free(err);
	err = NULL;
	rc = ledger_open(path, 0, &l, &err);
	if (rc != EX_OK) {
		fail(d, rc, "point --store or [store] path at a demarche ledger", "ledger %s: %s",
		     path, err);
		goto out;
	}
	if (ledger_store_is_remote(path) && check_team_ledger(d, l)) /* issue 21 */
		goto out;
	rc = ledger_verify(l, &n, head, &err);
	if (rc != EX_OK) {
		fail(d, EX_DATAERR,
		     "the ledger was changed outside demarche: keep this file as evidence and "
		     "run 'demarche verify' for details",
		     "ledger %s: %s", path, err);
		goto out;
	}
	ok("ledger %s: %ld events, hash chain intact", path, n);
out:
	ledger_close(l);
	free(err);
}

int cmd_doctor(int argc, char **argv, struct app *app)
{
	struct doctor d = {EX_OK, 0};
	const char *domain = NULL;
	int json = 0;

	if (app_format_only(argc, argv, app, usage_doctor, &json) != EX_OK)
		return EX_USAGE;
	quiet = app->quiet;
	verbose = app->verbose;
	if (json)
		json_checks = json_array();
	if (verbose)
		show_data();
	if (check_config(&d, app)) {
		check_sender(&d, &app->cfg, &domain);
		check_smtp(&d, &app->cfg, domain);
		check_imap(&d, &app->cfg);
		check_approval(&d, &app->cfg);
	}
	check_ledger(&d, app);
	if (json_checks) {
		json_t *o = json_pack("{s:b, s:o}", "ok", d.fails == 0, "checks", json_checks);
		char *text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);

		puts(text);
		free(text);
		json_decref(o);
		json_checks = NULL;
	}
	fflush(stdout);
	if (d.fails)
		fprintf(stderr, "demarche doctor: %d check%s failed\n", d.fails,
		        d.fails == 1 ? "" : "s");
	return d.rc;
}
