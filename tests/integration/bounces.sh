#!/usr/bin/env bash
# demarche bounces against a real Dovecot: send the example appeal to smtp-sink, drop
# DSNs, replies and auto-replies naming those Message-IDs into INBOX, and check that exactly
# the right deliveries change, that a rerun (even after a UIDVALIDITY change) records
# nothing twice, that a malformed DSN is reported without stopping the run, and the audit.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
. "$(dirname "$0")/servers/dovecot.bash"
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"

R="$SRCDIR/recipients"
F="$TESTDATA/bounces"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
CAMPAIGN=$(sed -n 's/^Campaign: //p' appeal/en.md)
[ -n "$CAMPAIGN" ] || fail "no campaign in the drafted appeal"

PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink" "dovecot_stop $WORK/dovecot")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
dovecot_start "$WORK/dovecot" appeals 'imap secret' || fail "dovecot"
export DEMARCHE_IMAP_PASSWORD='imap secret'
test_ini '[imap]' "url = imap://127.0.0.1:$DOVECOT_IMAP_PORT" 'user = appeals'
D() { "$DEMARCHE" --store ledger.db "$@"; }
Q() { sqlite3 ledger.db "$1"; }
D send appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--only KEN,FRA,ARG,DEU,JPN,CIV,NLD --via "smtp://127.0.0.1:$PORT" --yes >out.txt 2>err.txt ||
	fail "send: $(cat err.txt)"
[ "$(Q "select count(*) from deliveries where state='sent'")" = 11 ] ||
	fail "send: $(Q "select key, address, state from deliveries")"
sink_stop "$WORK/sink"

addr() { Q "select address from deliveries where key='$1' order by id limit 1"; }
# the ids and addresses of this run, as sed expressions, for the fixtures' placeholders
SUBST=(-e "s/@CAMPAIGN@/$CAMPAIGN/g" -e "s/@KEN_CC@/ken.legal@missions.example/g")
while IFS='|' read -r key address msgid; do
	msgid=${msgid#<} msgid=${msgid%>}
	SUBST+=(-e "s/@${key}_MID@/$msgid/g" -e "s/@${key}@/$address/g")
done < <(Q "select key, address, message_id from deliveries where id in
	(select min(id) from deliveries group by key)")
fill() { # fixture -> a message with this run's ids, into INBOX
	sed "${SUBST[@]}" "$F/$1" >"in-$1"
	grep -q '@[A-Z_]*@' "in-$1" && fail "$1: a placeholder left"
	dovecot_deliver "$WORK/dovecot" "in-$1" || fail "deliver $1"
}
state() { Q "select state from deliveries where address='$1'"; }
events() { Q "select count(*) from events"; }

# No IMAP configured: 78. Nothing read yet.
D --config /dev/null bounces 2>err.txt
expect_rc 78 $? "bounces without [imap]"
D bounces >out.txt 2>err.txt
expect_rc 0 $? "bounces on an empty INBOX: $(cat err.txt)"
grep -q "^0 processed" out.txt || fail "empty INBOX: $(cat out.txt)"

for f in malformed-dsn.eml dsn-postfix-ken-cc.eml dsn-exchange-fra.eml dsn-delayed-arg.eml \
	dsn-nomid-civ.eml reply-deu.eml autoreply-jpn.eml reply-unknown.eml other.eml; do
	fill $f
done
before=$(events)
D bounces >out.txt 2>err.txt
expect_rc 0 $? "bounces: $(cat err.txt)"
grep -q "^9 processed, 3 bounced, 1 delayed, 1 replied, 1 auto-replies, 2 unmatched, 1 malformed$" \
	out.txt || fail "summary: $(cat out.txt err.txt)"
grep -q "broken.example\|failure notice" err.txt || fail "the malformed DSN was not reported"
grep -q "newsletter@asp.example.int" out.txt || fail "unmatched not listed: $(cat out.txt)"
grep -q 'Subject "Re: 24th session' out.txt || fail "unmatched reply not listed"

# exactly the right deliveries changed
[ "$(state ken.legal@missions.example)" = bounced ] || fail "KEN's Cc did not bounce"
[ "$(state ken@missions.example)" = sent ] && [ "$(state ken.ny@missions.example)" = sent ] ||
	fail "KEN's other addresses changed"
[ "$(state "$(addr FRA)")" = bounced ] || fail "FRA (Exchange NDR) did not bounce"
[ "$(state "$(addr CIV)")" = bounced ] || fail "CIV (by Final-Recipient) did not bounce"
[ "$(state civ.ny@missions.example)" = sent ] || fail "CIV's Cc changed"
[ "$(state "$(addr DEU)")" = replied ] || fail "DEU did not become replied"
[ "$(state "$(addr ARG)")" = sent ] && [ "$(state "$(addr JPN)")" = sent ] &&
	[ "$(state "$(addr NLD)")" = sent ] || fail "a delayed/auto-replied/untouched mission changed"
[ "$(Q "select count(*) from deliveries where state='sent'")" = 7 ] ||
	fail "states: $(Q "select key, address, state from deliveries")"
Q "select last_code, last_reply from deliveries where address='ken.legal@missions.example'" |
	grep -q '^550|550 5.1.1' || fail "the bounce's diagnostic is not the last reply"
Q "select detail from events where kind='transition' and to_state='bounced'" |
	grep -q "Status: 5.1.10" || fail "no Status in the bounce event"
kinds() { # address -> the kinds of its events that are not transitions nor Sent copies nor creations
	Q "select kind from events where kind not in ('transition', 'append', 'create') and delivery =
		(select id from deliveries where address = '$1')"
}
[ "$(kinds "$(addr ARG)")" = delayed ] || fail "ARG's events: $(kinds "$(addr ARG)")"
[ "$(kinds "$(addr JPN)")" = auto-reply ] || fail "JPN's events: $(kinds "$(addr JPN)")"
[ $(($(events) - before)) = 6 ] || fail "$(($(events) - before)) events, expected 6"

# a rerun reads nothing new; after a UIDVALIDITY change it reads all again, records nothing
D bounces >out.txt 2>err.txt
expect_rc 0 $? "rerun"
grep -q "^0 processed" out.txt || fail "rerun: $(cat out.txt)"
n=$(events)
Q "update imap_state set uidvalidity = 1, last_uid = 0"
D bounces >out.txt 2>err.txt
expect_rc 0 $? "rerun after a UIDVALIDITY change"
grep -q "^9 processed, 0 bounced, 0 delayed, 0 replied, 0 auto-replies, 2 unmatched, 1 malformed" \
	out.txt || fail "UIDVALIDITY rerun: $(cat out.txt)"
grep -q "UIDVALIDITY" err.txt || fail "the UIDVALIDITY change was not said"
[ "$(events)" = "$n" ] || fail "the rerun recorded $(($(events) - n)) events"

# a reply to a bounced delivery is noted, not a state change
sed -e 's/@DEU@/@FRA@/g' -e 's/@DEU_MID@/@FRA_MID@/g' -e 's/CAF=abc123/CAF=fra1/' \
	"$F/reply-deu.eml" >"$WORK/tpl-reply-fra.eml"
F=$WORK fill tpl-reply-fra.eml
D bounces >out.txt 2>err.txt
expect_rc 0 $? "reply to a bounced delivery"
[ "$(state "$(addr FRA)")" = bounced ] || fail "a reply moved a bounced delivery"
Q "select detail from events where kind='reply'" | grep -q "delivery was bounced" ||
	fail "no reply event for the bounced delivery"

# the audit shows them; the chain holds
D audit "$CAMPAIGN" --wide >audit.txt
grep -q "^DEU  *replied .*acknowledged by" audit.txt || fail "audit: $(cat audit.txt)"
grep -q "^KEN  *bounced  *ken.legal@missions.example" audit.txt || fail "audit: $(cat audit.txt)"
D audit --format csv | grep -q "^$CAMPAIGN,.*,11,0,0,7,0,0,0,3,1," ||
	fail "audit counts: $(D audit --format csv)"
D verify >/dev/null || fail "verify after bounces"

# IMAP down: 75, and the ledger untouched
dovecot_stop "$WORK/dovecot"
n=$(events)
D bounces >out.txt 2>err.txt
expect_rc 75 $? "bounces with the server down"
[ "$(events)" = "$n" ] || fail "events recorded with the server down"
pass
