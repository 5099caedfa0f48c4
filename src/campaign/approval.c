/* Two-person approval: the approvers, the sender, the approvals that count, the send's gate. */
#include "campaign/approval.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/escape.h"
#include "base/secret.h"
#include "base/sign.h"
#include "base/strutil.h"
#include "base/xalloc.h"
#include "campaign/plan.h"

int approvers_parse(const struct config *cfg, struct approvers *a, char **errstr)
{
	char *list = xstrdup(cfg->approval.approvers ? cfg->approval.approvers : ""), *save = NULL;
	int rc = EX_OK;

	memset(a, 0, sizeof(*a));
	for (char *t = strtok_r(list, " \t,", &save); t && rc == EX_OK;
	     t = strtok_r(NULL, " \t,", &save)) {
		char *colon = strchr(t, ':');

		if (!colon || colon == t || !sign_public_valid(colon + 1)) {
			rc = error_set(
			    errstr, EX_CONFIG,
			    "[approval] approvers: '%s' is not NAME:PUBLICKEY (the key as "
			    "demarche keygen prints it)",
			    t);
			break;
		}
		*colon = '\0';
		for (size_t i = 0; i < a->n; i++)
			if (str_ieq(a->v[i].name, t) || !strcmp(a->v[i].key, colon + 1))
				rc = error_set(
				    errstr, EX_CONFIG,
				    "[approval] approvers: %s is listed twice (a name or a "
				    "key)",
				    t);
		a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
		a->v[a->n].name = xstrdup(t);
		a->v[a->n++].key = xstrdup(colon + 1);
	}
	free(list);
	if (rc != EX_OK)
		approvers_free(a);
	return rc;
}

const struct approver *approvers_find(const struct approvers *a, const char *key)
{
	for (size_t i = 0; key && i < a->n; i++)
		if (!strcmp(a->v[i].key, key))
			return &a->v[i];
	return NULL;
}

void approvers_free(struct approvers *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].name);
		free(a->v[i].key);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}

char *approval_sender(const struct config *cfg)
{
	struct passwd *pw;

	if (cfg->sender.operator&& * cfg->sender.operator)
		return xstrdup(cfg->sender.operator);
	pw = getpwuid(geteuid());
	return xstrdup(pw && pw->pw_name ? pw->pw_name : "unknown");
}

char *approval_key_path(const struct config *cfg)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (cfg->approval.key && *cfg->approval.key)
		return xstrdup(cfg->approval.key);
	if (xdg && *xdg)
		return xasprintf("%s/demarche/approval.key", xdg);
	return xasprintf("%s/.config/demarche/approval.key", home && *home ? home : ".");
}

struct walk {
	const struct approvers *ap;
	const char *sender;
	const struct batch *b;
	struct approval_tally *t;
};

static void keep(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? xstrdup(s) : NULL;
}

static void note(struct approval_tally *t, const struct ledger_approval *a, const char *name,
                 const char *why)
{
	buf_addf(&t->notes, "  the approval of event %lld", (long long)a->seq);
	if (name) {
		buf_adds(&t->notes, " by ");
		esc_term(&t->notes, name);
	}
	buf_addf(&t->notes, " does not count: %s", why);
	if (!strcmp(why, "the sender may not approve"))
		buf_adds(&t->notes, " (a second person must)");
	buf_addc(&t->notes, '\n');
}

static int walk_one(const struct ledger_approval *a, void *ctx)
{
	struct walk *w = ctx;
	struct approval_tally *t = w->t;
	const struct approver *who = a->valid ? approvers_find(w->ap, a->public_key) : NULL;
	int this_batch = a->batch && !strcmp(a->batch, w->b->hash);

	if (!a->valid) {
		note(t, a, NULL, "its signature does not verify (run demarche verify)");
		return 0;
	}
	if (!who) {
		note(t, a, a->approver, "its key is not in [approval] approvers");
		return 0;
	}
	t->last_seq = a->seq;
	keep(&t->last_by, who->name);
	keep(&t->last_time, a->time);
	keep(&t->last_batch, a->batch);
	keep(&t->last_date, a->date);
	keep(&t->last_components, a->components);
	if (!this_batch) {
		t->other_seq = a->seq;
		keep(&t->other_by, who->name);
		keep(&t->other_time, a->time);
		keep(&t->other_date, a->date);
		keep(&t->other_components, a->components);
		return 0;
	}
	if (w->sender && str_ieq(who->name, w->sender)) {
		note(t, a, who->name, "the sender may not approve");
		return 0;
	}
	/* distinct approvers: the same one twice counts once */
	{
		const char *p = t->names.data ? t->names.data : "";
		size_t n = strlen(who->name);

		for (const char *q = p; *q;) {
			const char *e = strstr(q, ", ");
			size_t len = e ? (size_t)(e - q) : strlen(q);

			if (len == n && !memcmp(q, who->name, n))
				return 0;
			q += len + (e ? 2 : 0);
		}
	}
	buf_adds(&t->names, t->names.len ? ", " : "");
	buf_adds(&t->names, who->name);
	t->counted++;
	return 0;
}

int approval_tally(struct ledger *l, const struct approvers *ap, const char *sender,
                   const char *campaign, const struct batch *b, struct approval_tally *t,
                   char **errstr)
{
	struct walk w = {ap, sender, b, t};

	memset(t, 0, sizeof(*t));
	return ledger_approvals(l, campaign, walk_one, &w, errstr);
}

void approval_tally_free(struct approval_tally *t)
{
	buf_free(&t->names);
	buf_free(&t->notes);
	free(t->last_by);
	free(t->last_time);
	free(t->last_batch);
	free(t->last_date);
	free(t->last_components);
	free(t->other_by);
	free(t->other_time);
	free(t->other_date);
	free(t->other_components);
	memset(t, 0, sizeof(*t));
}

int approval_gate(struct ledger *l, const struct config *cfg, const struct merge_opts *mo,
                  struct merge *m, const struct message_run *mr, const struct plan *p,
                  char **errstr)
{
	int required = cfg->approval.required;
	struct approvers ap = {0};
	struct approval_tally t = {0};
	struct batch b = {0};
	struct buf why = BUF_INIT;
	char *sender = NULL;
	int rc;

	if (required <= 0)
		return EX_OK;
	if ((rc = approvers_parse(cfg, &ap, errstr)) != EX_OK)
		return rc;
	if ((size_t)required > ap.n) {
		rc = error_set(errstr, EX_CONFIG,
		               "[approval] required = %d but approvers lists %zu: no send can be "
		               "approved",
		               required, ap.n);
		goto out;
	}
	sender = approval_sender(cfg);
	if ((rc = batch_compute(&b, cfg, mo, m, mr, p, errstr)) != EX_OK ||
	    (rc = approval_tally(l, &ap, sender, m->campaign, &b, &t, errstr)) != EX_OK)
		goto out;
	if (t.counted >= (size_t)required)
		goto out;
	buf_adds(&why, "not approved: campaign ");
	esc_term(&why, m->campaign);
	buf_addf(&why,
	         " needs %d approval%s of this batch (%.16s, %zu mission%s, letters dated %s) by "
	         "approvers other than the sender (",
	         required, required == 1 ? "" : "s", b.hash, b.missions, b.missions == 1 ? "" : "s",
	         b.date);
	esc_term(&why, sender);
	buf_addf(&why, "); it has %zu%s", t.counted, t.counted ? " (" : "");
	if (t.counted) {
		esc_term(&why, t.names.data);
		buf_addc(&why, ')');
	}
	buf_addc(&why, '\n');
	if (t.other_seq && !t.counted) {
		buf_adds(&why, "  what changed since the approval by ");
		esc_term(&why, t.other_by);
		buf_addf(&why, " (event %lld, ", (long long)t.other_seq);
		esc_term(&why, t.other_time ? t.other_time : "?");
		buf_adds(&why, "):\n");
		batch_diff(t.other_components, t.other_date, &b, 20, &why);
	} else if (!t.last_seq && !t.notes.len) {
		buf_adds(&why, "  no approval is recorded for this campaign\n");
	}
	if (t.notes.len)
		buf_add(&why, t.notes.data, t.notes.len);
	buf_adds(&why, "  to approve: demarche approve APPEAL with the same --to, --join, --where, "
	               "--only and --not-received, by an approver");
	rc = error_set(errstr, EX_NOPERM, "%s", why.data);
out:
	buf_free(&why);
	free(sender);
	batch_free(&b);
	approval_tally_free(&t);
	approvers_free(&ap);
	return rc;
}

int approval_key_load(const struct config *cfg, const char *file, struct sign_key **k,
                      char **errstr)
{
	char *path = file ? xstrdup(file) : approval_key_path(cfg), *pass = NULL;
	int rc = EX_OK;

	if (sign_key_sealed(path))
		rc = secret_get("DEMARCHE_KEY_PASSPHRASE", cfg->approval.passphrase_command, &pass,
		                errstr);
	if (rc == EX_OK)
		rc = sign_key_load(path, pass, k, errstr);
	secret_free(pass);
	free(path);
	return rc;
}

int approval_record(struct ledger *l, struct merge *m, const struct batch *b,
                    const struct sign_key *key, const char *approver, char **errstr)
{
	struct ledger_approval la = {0};
	char pub[SIGN_PUBLIC_B64], sig[SIGN_SIG_B64], *components, *st;
	size_t len;
	int rc;

	/* an amended appeal stays for send --amend to record */
	if (ledger_campaign_exists(l, m->campaign) == 0 &&
	    (rc = plan_campaign_begin(l, m, 0, errstr)) != EX_OK)
		return rc;
	sign_key_public(key, pub);
	components = batch_components(b);
	la.campaign = m->campaign;
	la.approver = approver;
	la.public_key = pub;
	la.batch = b->hash;
	la.date = b->date;
	la.components = components;
	st = ledger_approval_statement(&la, &len);
	sign_detached(key, st, len, sig);
	free(st);
	la.signature = sig;
	rc = ledger_approval_add(l, &la, errstr);
	free(components);
	return rc;
}
