#!/usr/bin/env bash
# Two-person approval: with [approval] required = N, send sends only the exact batch N
# approvers other than the sender signed (demarche approve); a changed roster cell, one word
# of fr.md or the letterhead after the approval is refused (77) naming what changed; the
# sender's own approval does not count; required = 2 needs two distinct approvers; a forged
# approval row fails verify (and does not count); --test-to needs no approval.
set -u
. "$(dirname "$0")/lib.bash"

export DEMARCHE_TEMPLATES="$SRCDIR/templates"
unset DEMARCHE_KEY_PASSPHRASE
draft_original asp-session
cp "$SRCDIR/recipients/missions.example.csv" roster.csv
ROSTER=(--to roster.csv --join "$SRCDIR/recipients/states-parties.csv" --only KEN,BEL,BEN,ARG)
dm() { "$DEMARCHE" --store ledger.db "$@"; }
send() { dm send appeal "${ROSTER[@]}" --yes "$@"; }
approve() { # key-file [more...]
	local k=$1
	shift
	dm approve appeal "${ROSTER[@]}" --key-file "$k" --yes "$@"
}

# Keys: bob and alice in the clear, carol sealed with a passphrase. alice sends.
dm keygen --out bob.key --name bob >bob.out 2>&1 || fail "keygen bob: $(cat bob.out)"
dm keygen --out alice.key --name alice >alice.out 2>&1 || fail "keygen alice"
DEMARCHE_KEY_PASSPHRASE='correct horse' dm keygen --out carol.key --name carol --passphrase \
	>carol.out 2>&1 || fail "keygen carol: $(cat carol.out)"
[ "$(stat -c %a bob.key)" = 600 ] || fail "the secret key is not 0600"
grep -q '^argon2id ' carol.key || fail "carol's key is not sealed"
grep -q '^seed ' carol.key && fail "carol's seed is in the clear"
grep -qF "$(sed -n 's/^seed //p' bob.key)" bob.out && fail "keygen printed the secret"
dm keygen --out bob.key >/dev/null 2>&1
expect_rc 73 $? "keygen over an existing key"
line() { sed -n 's/^  //p' "$1.out"; }
ini() { # required [letterhead name]
	test_ini "[approval]" "required = $1" \
		"approvers = $(line bob) $(line carol), $(line alice)" \
		"[letterhead]" "name = ${2:-Coalition for the ICC}"
	sed -i 's/^\[sender\]$/[sender]\noperator = alice/' demarche.ini
}
ini 1
dm doctor >doctor.txt 2>&1
grep -q "OK   \[approval\] 1 approval of each batch, from 2 approvers other than the sender (alice)" \
	doctor.txt || fail "doctor: $(cat doctor.txt)"

# Not approved: refused before anything is recorded.
send >out.txt 2>err.txt
expect_rc 77 $? "send without an approval"
grep -q "not approved" err.txt || fail "no 'not approved': $(cat err.txt)"
[ "$(sqlite3 ledger.db 'select count(*) from deliveries')" = 0 ] || fail "deliveries recorded"

# --test-to needs no approval.
send --test-to test@coalition.example >out.txt 2>err.txt
expect_rc 0 $? "send --test-to without approval: $(cat err.txt)"

# approve: no terminal and no --yes is refused.
dm approve appeal "${ROSTER[@]}" --key-file bob.key </dev/null >out.txt 2>err.txt
expect_rc 64 $? "approve without a terminal"
grep -q "add --yes" err.txt || fail "approve without a terminal: $(cat err.txt)"

approve bob.key >approve.txt 2>err.txt
expect_rc 0 $? "approve by bob: $(cat err.txt)"
grep -q "4 missions selected" approve.txt ||
	fail "approve summary: $(cat approve.txt)"
grep -q "no approved batch of this campaign yet" approve.txt || fail "approve: first time"
grep -q "^approved: batch .* by bob" approve.txt || fail "approve: $(cat approve.txt)"

# One roster cell changed after the approval: refused, naming the row.
cp roster.csv roster.orig
sed -i '/^KEN,/ s/,New York,/,Nairobi,/' roster.csv
cmp -s roster.csv roster.orig && fail "the roster was not changed by the test"
send >out.txt 2>err.txt
expect_rc 77 $? "send after a roster cell changed"
grep -q "roster row KEN changed" err.txt || fail "roster change not named: $(cat err.txt)"
grep -q "roster row BEL" err.txt && fail "an unchanged row named: $(cat err.txt)"
cp roster.orig roster.csv

# One word of fr.md changed: refused, naming fr.md.
cp appeal/fr.md fr.orig
sed -i '0,/ la / s/ la / LA /' appeal/fr.md
cmp -s appeal/fr.md fr.orig && fail "fr.md was not changed by the test"
send >out.txt 2>err.txt
expect_rc 77 $? "send after fr.md changed"
grep -q "fr.md changed" err.txt || fail "fr.md change not named: $(cat err.txt)"
grep -q "en.md" err.txt && fail "en.md named: $(cat err.txt)"
cp fr.orig appeal/fr.md

# The letterhead changed: refused, naming it.
ini 1 "Coalition for the International Criminal Court"
send >out.txt 2>err.txt
expect_rc 77 $? "send after the letterhead changed"
grep -q "the letterhead (\[letterhead\] in the configuration) changed" err.txt ||
	fail "letterhead change not named: $(cat err.txt)"
ini 1

# Back as approved: sent.
send >out.txt 2>err.txt
expect_rc 0 $? "send of the approved batch: $(cat err.txt)"
grep -q "4 staged" out.txt || fail "approved send (into the outbox: staged): $(cat out.txt)"

# The rest on two other missions (the appeal changes: send --amend).
ROSTER=(--to roster.csv --join "$SRCDIR/recipients/states-parties.csv" --only ALB,BFA)

# The sender approving their own batch does not count.
sed -i '0,/ la / s/ la / LA /' appeal/fr.md
approve alice.key >approve.txt 2>err.txt
expect_rc 0 $? "approve by alice: $(cat err.txt)"
grep -q "fr.md changed" approve.txt || fail "approve shows no change: $(cat approve.txt)"
send --amend >out.txt 2>err.txt
expect_rc 77 $? "send approved only by the sender"
grep -q "by alice does not count: the sender may not approve" err.txt ||
	fail "self-approval: $(cat err.txt)"

# required = 2: two distinct approvers; bob twice is one.
ini 2
approve bob.key >/dev/null 2>err.txt || fail "approve bob: $(cat err.txt)"
approve bob.key >approve.txt 2>err.txt || fail "approve bob again: $(cat err.txt)"
grep -q "already approved by .*bob" approve.txt || fail "second approval: $(cat approve.txt)"
send --amend >out.txt 2>err.txt
expect_rc 77 $? "required = 2 with bob alone"
grep -q "needs 2 approvals.*it has 1 (bob)" err.txt || fail "required 2: $(cat err.txt)"

# A forged approval: carol's name and key on bob's signature, rechained as an attacker with
# the file would (the chain is no secret); then a plain edit of an approval row.
/usr/bin/python3 - ledger.db "$(line carol | cut -d: -f2-)" <<'PY' || fail "forging"
import hashlib, re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
carol = sys.argv[2]
seq, prev, camp, detail = db.execute("select e.seq, (select hash from events order by seq desc"
    " limit 1), e.campaign, e.detail from events e where kind='approval' order by seq desc"
    " limit 1").fetchone()
detail = re.sub(r"approver 3:bob;", "approver 5:carol;", detail)
detail = re.sub(r"public_key 44:[^;]{44};", "public_key 44:" + carol + ";", detail)
seq = db.execute("select max(seq) from events").fetchone()[0] + 1
time = "2026-01-01T00:00:00.000Z"
fields = [seq, time, camp, None, "approval", None, None, None, None, None, detail]
enc = b""
for f in fields:
    if f is None: enc += b"N;"
    elif isinstance(f, int): enc += b"i%d;" % f
    else:
        b = f.encode(); enc += b"s%d:" % len(b) + b + b";"
h = hashlib.sha256(b"demarche-ledger-v1\n" + prev.encode() + enc).hexdigest()
db.execute("insert into events (seq, time, campaign, delivery, kind, detail, prev_hash, hash)"
           " values (?, ?, ?, NULL, 'approval', ?, ?, ?)", (seq, time, camp, detail, prev, h))
db.commit()
PY
send --amend >out.txt 2>err.txt
expect_rc 77 $? "send with a forged second approval"
grep -q "its signature does not verify" err.txt || fail "forgery counted: $(cat err.txt)"
dm verify >out.txt 2>err.txt
expect_rc 65 $? "verify after a forged approval"
grep -q "signature of the approval by carol .* does not verify" err.txt ||
	fail "verify does not name the signature: $(cat err.txt)"
cp ledger.db forged.db

# carol (sealed key) approves: two distinct approvers, sent.
DEMARCHE_KEY_PASSPHRASE='wrong' approve carol.key >/dev/null 2>err.txt
expect_rc 65 $? "approve with a wrong passphrase"
approve carol.key >/dev/null 2>err.txt
expect_rc 78 $? "approve with a sealed key and no passphrase"
DEMARCHE_KEY_PASSPHRASE='correct horse' approve carol.key >/dev/null 2>err.txt ||
	fail "approve carol: $(cat err.txt)"
send --amend >out.txt 2>err.txt
expect_rc 0 $? "send approved by bob and carol: $(cat err.txt)"
grep -q "2 staged" out.txt || fail "send after two approvals (into the outbox: staged): $(cat out.txt)"

# audit shows who approved which batch.
dm audit --approvals >out.txt 2>err.txt
expect_rc 0 $? "audit --approvals: $(cat err.txt)"
grep -q "bob" out.txt && grep -q "carol" out.txt && grep -q "BAD SIGNATURE" out.txt ||
	fail "audit --approvals: $(cat out.txt)"

# A plain edit of an approval row (the append-only trigger dropped first): verify fails.
cp forged.db edited.db
sqlite3 edited.db "drop trigger events_no_update;
	update events set detail = replace(detail, 'approver 3:bob;', 'approver 3:eve;')
	where seq = (select min(seq) from events where kind = 'approval')"
"$DEMARCHE" --store edited.db verify >out.txt 2>err.txt
expect_rc 65 $? "verify after an edited approval"
grep -q "was edited" err.txt || fail "edited approval: $(cat err.txt)"

pass
