#!/usr/bin/env bash
# demarche review: the campaign served on 127.0.0.1 and read by headless Chromium over the
# DevTools protocol (cdp.py). Every page loads with no console message, no CSP violation, no
# failed load and no request leaving 127.0.0.1 (Chromium resolves no other name); KEN's
# page shows the same text part as preview; a request without the session cookie gets 403,
# a POST without the CSRF token 403, a foreign Host 421, the spent token 403; a hostile
# roster value (a script tag, an attribute break-out) is shown as text and runs nothing.
set -u
. "$(dirname "$0")/lib.bash"
R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
CHROMIUM=$(command -v chromium || command -v chromium-browser) || fail "no chromium"
draft_original asp-session
test_ini

# NLD's representative and mission names are hostile: markup in a cell must stay text everywhere.
EVIL_NAME='the Representative <script>alert(1)</script>'
EVIL_MISSION='Mission"><img src=x onerror=alert(2)>'
/usr/bin/python3 - "$R/missions.example.csv" roster.csv "$EVIL_NAME" "$EVIL_MISSION" <<'PY'
import csv, sys
src, dst, name, mission = sys.argv[1:5]
rows = list(csv.DictReader(open(src, encoding="utf-8")))
for r in rows:
    if r["iso3"] == "NLD":
        r["name"], r["mission"] = name, mission
w = csv.DictWriter(open(dst, "w", encoding="utf-8", newline=""), fieldnames=rows[0].keys())
w.writeheader()
w.writerows(rows)
PY
ROSTER=(--to roster.csv --join "$R/states-parties.csv")

# A ledger where KEN and FRA were staged (maildir): the plan and the audit have something.
"$DEMARCHE" send appeal "${ROSTER[@]}" --only KEN,FRA --via maildir:./outbox --yes \
	>send.out 2>&1 || fail "send: $(cat send.out)"
"$DEMARCHE" preview appeal "${ROSTER[@]}" --only KEN >ken.eml 2>preview.err ||
	fail "preview: $(cat preview.err)"
# Two-person approval: bob approves the batch; the campaign page shows it counted.
"$DEMARCHE" keygen --out bob.key --name bob >bob.out 2>&1 || fail "keygen: $(cat bob.out)"
printf '[approval]\nrequired = 1\napprovers = %s\n' "$(sed -n 's/^  //p' bob.out)" >>demarche.ini
"$DEMARCHE" approve appeal "${ROSTER[@]}" --key-file bob.key --yes >approve.out 2>&1 ||
	fail "approve: $(cat approve.out)"
BATCH=$(sed -n 's/^approved: batch \([0-9a-f]*\) .*/\1/p' approve.out)
[ -n "$BATCH" ] || fail "approve said: $(cat approve.out)"

# Starts review on PORT (stopping the one before); sets PID and URL once it printed the URL.
PID=
start_review() {
	if [ -n "$PID" ]; then
		kill $PID
		wait $PID 2>/dev/null
	fi
	"$DEMARCHE" review appeal "${ROSTER[@]}" --port "$PORT" >url.txt 2>review.err &
	PID=$!
	CLEANUP+=("kill $PID")
	for _ in $(seq 3000); do # a slow build (valgrind) takes a while to compose 124 messages
		grep -q '^http' url.txt 2>/dev/null && break
		kill -0 $PID 2>/dev/null || fail "review exited: $(cat review.err)"
		sleep 0.1
	done
	URL=$(head -1 url.txt)
}
PORT=$(free_port)
start_review
ORIGIN="http://127.0.0.1:$PORT"
[[ $URL =~ ^$ORIGIN/\?token=[0-9a-f]{64}$ ]] || fail "printed URL: $URL"
ss -ltnH "sport = :$PORT" | grep -q "127.0.0.1:$PORT" || fail "not listening on 127.0.0.1"
ss -ltnH "sport = :$PORT" | grep -vq "127.0.0.1:$PORT" && fail "listening beyond 127.0.0.1"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$@"; }
# No cookie: 403, for every page and for a POST; a wrong token too.
for p in / /languages /m/1 /m/1/html /audit /style.css /nothing; do
	[ "$(code "$ORIGIN$p")" = 403 ] || fail "GET $p without the cookie: not 403"
done
[ "$(code -X POST -d csrf=x "$ORIGIN/")" = 403 ] || fail "POST without the cookie: not 403"
[ "$(code "$ORIGIN/?token=${URL##*=}0")" = 403 ] || fail "a wrong token: not 403"
# DNS rebinding: a name other than 127.0.0.1 / localhost is refused, token or not.
[ "$(code -H 'Host: evil.example' "$URL")" = 421 ] || fail "a foreign Host: not 421"

# Chromium takes the token (the only use it has), then reads every page.
KEN=$(awk -F, '$1=="KEN"{print NR-1}' roster.csv) # its line = its page (HUN left out: -1)
mkdir cdp
PAGES=(/ /languages /audit /m/1 /m/124)
CDP_TIMEOUT=300 /usr/bin/python3 "$SRCDIR/tests/integration/cdp.py" "$CHROMIUM" cdp "$URL" \
	"${PAGES[@]}" >cdp.out 2>&1 || fail "cdp.py: $(cat cdp.out)"
# the token is spent: a second browser (or anyone who read it) is refused
[ "$(code "$URL")" = 403 ] || fail "the token worked twice"

# Pages found through the campaign page's links, as a reader would: KEN's and NLD's.
/usr/bin/python3 - cdp/_.json >links.txt <<'PY' || fail "links: $(cat links.txt)"
import json, re, sys
body = json.load(open(sys.argv[1]))["body"]
for key in ("KEN", "NLD"):
    m = re.search(r'<tr data-key="%s"><td><a href="(/m/\d+)"' % key, body)
    if not m:
        sys.exit(f"no link to {key}")
    print(m.group(1))
PY
mapfile -t LINKS <links.txt
# A new browser needs a new session: restart review for the second visit.
start_review
CDP_TIMEOUT=300 /usr/bin/python3 "$SRCDIR/tests/integration/cdp.py" "$CHROMIUM" cdp "$URL" \
	"${LINKS[@]}" >cdp.out 2>&1 || fail "cdp.py: $(cat cdp.out)"

/usr/bin/python3 - cdp "$ORIGIN" ken.eml "${LINKS[0]}" "${LINKS[1]}" "$EVIL_NAME" \
	"$EVIL_MISSION" "$BATCH" <<'PY' || fail "see above"
import email, json, os, re, sys
from email import policy
d, origin, eml, ken, nld, evil_name, evil_mission, batch = sys.argv[1:9]
bad = []
pages = {}
for f in sorted(os.listdir(d)):
    if f.endswith(".json"):
        pages[f] = r = json.load(open(os.path.join(d, f)))
        p = r["path"]
        for u in r["requests"]:
            if not (u.startswith(origin + "/") or u.startswith("data:")):
                bad.append(f"{p}: a request leaving {origin}: {u}")
        for u, st in r["statuses"]:
            if st != 200:
                bad.append(f"{p}: {u} answered {st}")
        for x in r["failed"]:
            bad.append(f"{p}: a load failed: {x}")
        for x in r["console"]:
            bad.append(f"{p}: console: {x}")
        for x in r["log"]:
            bad.append(f"{p}: log ({x.get('level')}): {x.get('text')}")
        if r["dialogs"]:
            bad.append(f"{p}: a dialog opened: {r['dialogs']}")
        if r["scripts"]:
            bad.append(f"{p}: {r['scripts']} script elements")
        if "x" in r["imgs"]:
            bad.append(f"{p}: the hostile <img src=x> became an element")
        if r["path"] not in ("(token)", "/style.css") and not r["location"].startswith(origin):
            bad.append(f"{p}: ended at {r['location']}")
        if r["path"].startswith("/m/") and r["frames"] != [[r["path"] + "/html", ""]]:
            bad.append(f"{p}: the HTML part is not in a sandboxed frame: {r['frames']}")
        if not r["requests"]:
            bad.append(f"{p}: no request recorded (is the recorder working?)")
if "_token.json" not in pages or pages["_token.json"]["location"] != origin + "/":
    bad.append("the token did not lead to the campaign page")
camp = pages["_.json"]["body"]
for want in ('<b id="kpi-missions">124</b>', "send (staged in a local outbox)", "asp22-priorities"):
    if want not in camp:
        bad.append(f"the campaign page lacks {want!r}")
if not re.search(r'<code id="batch-hash">%s[0-9a-f]{48}</code>' % batch, camp) or \
   '<b id="approvals-counted">1</b> of 1 required (bob)' not in camp:
    bad.append("the campaign page does not show bob's approval of this batch")
if "Appeal delivery report" not in pages["_audit.json"]["body"]:
    bad.append("the audit page is not the audit report")
# KEN: the text part preview writes, exactly
msg = email.message_from_bytes(open(eml, "rb").read(), policy=policy.default)
want = msg.get_body(preferencelist=("plain",)).get_content()
got = pages[ken.replace("/", "_") + ".json"]["text"]
if got is None or got.rstrip("\n") != want.replace("\r\n", "\n").rstrip("\n"):
    bad.append(f"KEN's text differs from preview's:\n{got!r}\n{want!r}")
# NLD: the hostile values shown as text
nl = pages[nld.replace("/", "_") + ".json"]["body"]
if "&lt;script&gt;alert(1)&lt;/script&gt;" not in nl:
    bad.append("NLD's representative is not shown as text")
if evil_name not in (pages[nld.replace("/", "_") + ".json"]["text"] or ""):
    bad.append("NLD's text part does not read the name as written")
if 'Mission"&gt;&lt;img src=x onerror=alert(2)&gt;' not in nl and \
   "Mission&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" not in nl:
    bad.append("NLD's mission name is not shown as text")
if "&lt;img src=x onerror=alert(2)&gt;" not in camp:
    bad.append("the campaign page does not show NLD's mission as text")
if bad:
    sys.exit("\n".join(bad))
PY

# With the session's cookie (curl's own session now): a POST without the CSRF token, or with
# a wrong one, is refused; GET pages answer with the headers that keep them inert.
curl -s -c jar -o /dev/null --max-time 60 "$URL" 2>/dev/null # spent by Chromium: no cookie
[ "$(code -b jar "$ORIGIN/")" = 403 ] || fail "a spent token still gave a session"
start_review
[ "$(code -c jar "$URL")" = 303 ] || fail "the token did not open a session"
grep -q 'HttpOnly' jar || fail "the session cookie is not HttpOnly: $(cat jar)"
curl -s -b jar -D head.txt -o page.html --max-time 60 "$ORIGIN/" || fail "GET / with the cookie"
grep -qi "^Content-Security-Policy: default-src 'none'; style-src 'self'" head.txt ||
	fail "no strict CSP: $(cat head.txt)"
grep -qi '^X-Content-Type-Options: nosniff' head.txt || fail "no nosniff"
grep -qi '^Referrer-Policy: no-referrer' head.txt || fail "no Referrer-Policy"
grep -q 'kpi-missions' page.html || fail "the campaign page with the cookie: $(head -c 300 page.html)"
[ "$(code -b jar -X POST "$ORIGIN/")" = 403 ] || fail "a POST without a CSRF token: not 403"
[ "$(code -b jar -X POST -d csrf=0123 "$ORIGIN/")" = 403 ] || fail "a wrong CSRF token: not 403"
[ "$(code -b jar -X PUT "$ORIGIN/")" = 405 ] || fail "PUT: not 405"
# (curl matches cookies to a Host given by hand: the cookie goes explicitly)
COOKIE="demarche_review=$(awk '$6 == "demarche_review" {print $7}' jar)"
[ "$(code -b "$COOKIE" -H "Host: localhost:$PORT" "$ORIGIN/")" = 200 ] || fail "localhost:PORT refused"
[ "$(code -b "$COOKIE" -H "Host: 127.0.0.1.evil.example:$PORT" "$ORIGIN/")" = 421 ] ||
	fail "a rebinding Host: not 421"
kill -TERM $PID
wait $PID
expect_rc 0 $? "review after SIGTERM: $(cat review.err)"
grep -q 'requests\? refused' review.err || fail "no refusal count: $(cat review.err)"
[ -z "$(ls outbox/new 2>/dev/null | sed -n 3p)" ] || fail "review sent something"
pass
