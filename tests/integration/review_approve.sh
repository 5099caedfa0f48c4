#!/usr/bin/env bash
# demarche review's two pages that need the ledger: /changes lists the roster changes since
# the previous campaign (a changed address, a new mission, a changed name shown as text), and
# with --allow-approve the campaign page offers to approve the batch it shows: a POST with the
# session's cookie, its CSRF token and that batch hash records an approval exactly as
# demarche approve does (audit --approvals shows it, send passes the gate); without the CSRF
# token it is refused (403), with a stale hash 409; without --allow-approve there is no form
# and POST /approve is refused (403). The roster has no un_regional_group column: review
# with a ledger and no --by serves it without groups (it refused to start before).
set -u
. "$(dirname "$0")/lib.bash"
R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
unset DEMARCHE_KEY_PASSPHRASE
draft_original asp-session
test_ini
dm() { "$DEMARCHE" --store ledger.db "$@"; }

# old.csv: KEN, FRA, DEU. new.csv: KEN's email changed, FRA's name hostile, DEU gone, XYZ new.
/usr/bin/python3 - "$R/missions.example.csv" <<'PY' || fail "making the rosters"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
h = rows[0]
old = [h] + [r for r in rows[1:] if r[0] in ("KEN", "FRA", "DEU")]
new = [h]
for r in old[1:]:
    r = list(r)
    if r[0] == "DEU":
        continue
    if r[0] == "KEN":
        r[h.index("email")] = "ken.new@missions.example"
    if r[0] == "FRA":
        r[h.index("name")] = "Mr. <script>alert(1)</script>"
    new.append(r)
new.append(["XYZ", "Xyz", "Mission of Xyz", "xyz@missions.example", "", "H.E.",
            "the Representative", "Permanent Representative", "en", "", "New York",
            "America/New_York"])
csv.writer(open("old.csv", "w", newline="", encoding="utf-8")).writerows(old)
csv.writer(open("new.csv", "w", newline="", encoding="utf-8")).writerows(new)
PY
# The first letter (as roster_diff.sh: the names are kept at its send), then a second campaign.
dm send appeal --to old.csv --via maildir:outbox --yes >send.out 2>&1 ||
	fail "the first letter: $(cat send.out)"
sed -i 's/^Campaign: .*/Campaign: second-letter/' appeal/*.md

# --allow-approve without approvers configured: refused at start, nothing served.
dm review appeal --to new.csv --allow-approve >url.txt 2>err.txt
expect_rc 78 $? "review --allow-approve without [approval] approvers: $(cat err.txt)"
grep -q "no \[approval\] approvers" err.txt || fail "the refusal does not say why: $(cat err.txt)"
[ -s url.txt ] && fail "a URL printed: $(cat url.txt)"

# Two-person approval for the second: bob approves (his key is [approval] key), the sender
# (the login name) is not bob.
dm keygen --out bob.key --name bob >bob.out 2>&1 || fail "keygen: $(cat bob.out)"
printf '[approval]\nrequired = 1\napprovers = %s\nkey = %s\n' "$(sed -n 's/^  //p' bob.out)" \
	"$PWD/bob.key" >>demarche.ini
dm send appeal --to new.csv --via maildir:outbox --yes >send.out 2>&1
expect_rc 77 $? "send before the approval: $(cat send.out)"

PID=
start_review() { # [--allow-approve]
	if [ -n "$PID" ]; then
		kill -TERM $PID
		wait $PID
		expect_rc 0 $? "review after SIGTERM: $(cat review.err)"
	fi
	: >url.txt
	"$DEMARCHE" --store ledger.db review appeal --to new.csv --port "$PORT" "$@" >url.txt 2>review.err &
	PID=$!
	CLEANUP+=("kill $PID")
	for _ in $(seq 3000); do
		grep -q '^http' url.txt 2>/dev/null && break
		kill -0 $PID 2>/dev/null || fail "review exited: $(cat review.err)"
		sleep 0.1
	done
	URL=$(head -1 url.txt)
	rm -f jar
	[ "$(code -c jar "$URL")" = 303 ] || fail "the token did not open a session"
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$@"; }
PORT=$(free_port)
ORIGIN="http://127.0.0.1:$PORT"
start_review --allow-approve
grep -q "approving allowed" review.err || fail "review does not say approving is on: $(cat review.err)"

# 1. The changes page.
curl -s -b jar --max-time 60 "$ORIGIN/changes" >changes.html || fail "GET /changes"
grep -q 'id="changes-summary">since the last letter (campaign asp22-priorities in the ledger): 1 new, 1 removed, 1 with other addresses, 1 with another name' changes.html ||
	fail "changes summary: $(cat changes.html)"
grep -q '<li><code>new      XYZ</code></li>' changes.html || fail "XYZ not new: $(cat changes.html)"
grep -q '<li><code>removed  DEU</code></li>' changes.html || fail "DEU not removed"
grep -q '<li><code>address  KEN: [^<]*ken@missions.example[^<]* -&gt; ken.new@missions.example' \
	changes.html || fail "KEN's address: $(grep KEN changes.html)"
grep -q 'name     FRA: .* -&gt; Mr. &lt;script&gt;alert(1)&lt;/script&gt;, Permanent Representative' \
	changes.html || fail "FRA's name not escaped: $(grep FRA changes.html)"
grep -q '<script' changes.html && fail "a script tag reached the page"
curl -s -b jar --max-time 60 "$ORIGIN/" >page.html || fail "GET /"
grep -q '<a href="/changes"' page.html || fail "no link to /changes"

# 2. Approve through the page.
grep -q 'id="approve-form"' page.html || fail "no approve form with --allow-approve"
CSRF=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' page.html)
BATCH=$(sed -n 's/.*<code id="approve-hash">\([0-9a-f]*\)<.*/\1/p' page.html)
[ -n "$CSRF" ] && [ ${#BATCH} = 64 ] || fail "csrf '$CSRF' batch '$BATCH'"
grep -q "name=\"batch\" value=\"$BATCH\"" page.html || fail "the form does not carry the hash shown"
[ "$(code -b jar -X POST -d "batch=$BATCH" "$ORIGIN/approve")" = 403 ] ||
	fail "POST /approve without CSRF: not 403"
STALE=$(printf '%s' "$BATCH" | tr 0-9a-f 1-9a-f0)
[ "$(code -b jar -X POST -d "csrf=$CSRF&batch=$STALE" "$ORIGIN/approve")" = 409 ] ||
	fail "POST /approve with a stale hash: not 409"
dm audit --approvals >aud.txt 2>&1
grep -q bob aud.txt && fail "an approval recorded before a valid POST: $(cat aud.txt)"
[ "$(code -b jar -X POST -d "csrf=$CSRF&batch=$BATCH" "$ORIGIN/approve")" = 303 ] ||
	fail "POST /approve: not 303: $(cat review.err)"
dm audit --approvals >aud.txt 2>err.txt || fail "audit --approvals: $(cat err.txt)"
grep -q bob aud.txt || fail "no approval by bob: $(cat aud.txt)"
curl -s -b jar --max-time 60 "$ORIGIN/" >page.html || fail "GET / after approving"
grep -q '<b id="approvals-counted">1</b> of 1 required (bob)' page.html ||
	fail "the page does not show bob's approval: $(grep -A3 'id="approval"' page.html)"
dm verify >/dev/null 2>&1 || fail "the ledger does not verify after the approval"

# 3. Without --allow-approve: no form, POST refused, nothing more recorded.
start_review
curl -s -b jar --max-time 60 "$ORIGIN/" >page.html || fail "GET /"
grep -q 'id="batch-hash"' page.html || fail "no batch hash shown"
grep -q 'approve-form' page.html && fail "an approve form without --allow-approve"
grep -q "read-only" review.err || fail "review does not say read-only"
# (no form: the page gives no CSRF token to post with; the route itself refuses even a POST
# that passes the CSRF check: unit.review)
[ "$(code -b jar -X POST -d "csrf=0&batch=$BATCH" "$ORIGIN/approve")" = 403 ] ||
	fail "POST /approve without --allow-approve: not 403"
N=$(sqlite3 ledger.db "select count(*) from events where kind like '%approv%'")
[ "$N" = 1 ] || fail "approval events: $N"
kill -TERM $PID
wait $PID
expect_rc 0 $? "review after SIGTERM: $(cat review.err)"

# 4. send passes the gate now.
dm send appeal --to new.csv --via maildir:outbox --yes >send.out 2>&1 ||
	fail "send after the approval through review: $(cat send.out)"
pass
