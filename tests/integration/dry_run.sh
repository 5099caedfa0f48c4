#!/usr/bin/env bash
# Issue 18: send --dry-run validates and plans, prints what would go where (key, language,
# transport, addresses) and writes nothing: the ledger file's bytes and the outbox listing are
# the same before and after, and no ledger is created where there was none. Its list is what
# the real send then does (smtp-sink: the keys that arrive). Also send -v: the SMTP dialogue
# on stderr, the password and its base64 never in it.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
. "$(dirname "$0")/servers/faulty.bash"

R="$SRCDIR/recipients"
draft_original asp-session
test_ini
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
send() { "$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" "$@"; }
snapshot() { { sha256sum ledger.db 2>/dev/null; find outbox -type f 2>/dev/null | sort; } | sha256sum; }

# 1. No ledger yet: nothing is created; no --yes needed (nothing is sent).
send --via maildir:outbox --dry-run </dev/null >dry.txt 2>err.txt
expect_rc 0 $? "dry run without a ledger: $(cat err.txt)"
[ -e ledger.db ] && fail "the dry run created the ledger"
[ -e outbox ] && fail "the dry run created the outbox"
grep -q "^would stage  KEN  en  maildir:outbox  " dry.txt || fail "no KEN line: $(head -3 dry.txt)"
grep -q "^would stage  FRA  fr  " dry.txt || fail "FRA's language: $(grep FRA dry.txt)"
missions=$(grep -c "^would stage  " dry.txt)
[ "$missions" -gt 100 ] || fail "$missions missions listed"

# 2. A ledger with some missions staged, some failed: the dry run changes no byte of it.
send --via maildir:outbox --only KEN,FRA,DEU --yes >/dev/null 2>&1 || fail "staging three"
before=$(snapshot)
PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
sink_start "$WORK/sink" "$PORT" -r RCPT || fail "smtp-sink"
send --via "smtp://127.0.0.1:$PORT" --only ITA --yes >/dev/null 2>&1
expect_rc 75 $? "a deferred mission"
sink_stop "$WORK/sink"
before=$(snapshot)
send --via "smtp://127.0.0.1:$PORT" --dry-run >dry.txt 2>err.txt
expect_rc 0 $? "dry run on a ledger: $(cat err.txt)"
[ "$(snapshot)" = "$before" ] || fail "the dry run changed the ledger or the outbox"
grep -q "channel:    real send through smtp://127.0.0.1:$PORT" err.txt dry.txt || fail "no channel line"
grep -q "^would send   KEN  en  smtp://127.0.0.1:$PORT  " dry.txt || fail "staged KEN is not to be sent: $(grep KEN dry.txt)"
grep -q "^would send   ITA  " dry.txt || fail "deferred ITA is not to be sent"
[ "$(grep -c '^would send   ' dry.txt)" = "$missions" ] || fail "not every mission is to be sent"
send --via "smtp://127.0.0.1:$PORT" --limit 40 --dry-run >dry.txt 2>err.txt
expect_rc 0 $? "dry run --limit 40: $(cat err.txt)"
[ "$(snapshot)" = "$before" ] || fail "the dry run changed the ledger or the outbox"
[ "$(grep -c '^would send   ' dry.txt)" = 40 ] || fail "--limit 40 listed $(grep -c '^would send   ' dry.txt)"
grep -o '^would send   [^ ]*' dry.txt | awk '{print $3}' | sort >planned.txt

# 3. The real send does what the dry run said: the same 40 keys arrive.
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
send --via "smtp://127.0.0.1:$PORT" --limit 40 --yes >out.txt 2>err.txt
expect_rc 75 $? "the real send (--limit 40: the rest not started): $(cat err.txt)"
grep -h '^Message-ID:' "$WORK"/sink/dump/* | sed 's/.*<[^.]*\.\([^.]*\)\..*/\1/' | sort >sent.txt
cmp -s planned.txt sent.txt || fail "dry run and send differ: $(diff planned.txt sent.txt | head)"
# and a dry run now plans the rest, not these
send --via "smtp://127.0.0.1:$PORT" --dry-run >dry2.txt 2>&1 || fail "second dry run"
first=$(head -1 sent.txt)
grep -q "^would send   $first  " dry2.txt && fail "sent mission $first is planned again"
grep -q "^would send   KEN  " dry2.txt || fail "staged KEN is not planned"
grep -q "already sent" dry2.txt || fail "no count: $(tail -1 dry2.txt)"

# 4. send -v: the dialogue with AUTH masked (faulty_smtp.py takes AUTH PLAIN on loopback).
sink_stop "$WORK/sink"
FPORT=$(free_port)
CLEANUP+=("faulty_stop $WORK/f")
FAULTY_AUTH_PASSWORD='s3cret-Passw0rd' faulty_start "$WORK/f" "$FPORT" --auth appeals || fail "faulty_smtp.py"
test_ini "user = appeals" "tls = none"
DEMARCHE_SMTP_PASSWORD='s3cret-Passw0rd' send --via "smtp://127.0.0.1:$FPORT" --only NLD --yes -v \
	>out.txt 2>err.txt
expect_rc 0 $? "send -v: $(cat err.txt)"
grep -q '^> MAIL FROM:<secretariat@coalition.example>' err.txt || fail "no MAIL FROM in the dialogue: $(cat err.txt)"
grep -q '^< 250' err.txt || fail "no server reply in the dialogue"
grep -q '^> AUTH PLAIN' err.txt || fail "no AUTH line: $(cat err.txt)"
grep -q '^> \[AUTH data masked\]$' err.txt || fail "the AUTH response is not masked: $(cat err.txt)"
grep -q '^< 235' err.txt || fail "not logged in: $(cat err.txt)"
[ "$(faulty_count "$WORK/f")" = 1 ] || fail "the message did not arrive"
b64=$(printf '\0appeals\0s3cret-Passw0rd' | base64)
b64p=$(printf 's3cret-Passw0rd' | base64)
grep -qF -e 's3cret' -e "$b64" -e "$b64p" err.txt && fail "the password reached the terminal"
grep -q $'\033' err.txt && fail "a raw escape in the dialogue"
pass
