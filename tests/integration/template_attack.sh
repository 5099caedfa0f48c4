#!/usr/bin/env bash
# A hostile template or appeal (issue 14, point 8): an Attachment naming /etc/shadow,
# ../../etc/passwd, or a symlink (at any level) leading out of the letter's folder is
# refused with exit 65 naming file, line and why, by draft, check, preview and send, and
# nothing is written or sent; a Bcc header is refused; draft --force replaces a symlink
# planted at DIR/en.md instead of writing through it; copies are never more open than
# their source; a failed draft leaves no folder behind.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
test_ini

# The attacker's target: a file outside every letter folder, with known bytes.
mkdir outside
printf 'SECRET-OUTSIDE\n' >outside/secret.txt
chmod 600 outside/secret.txt
SECRET="$WORK/outside/secret.txt"

# tpl/en.md with the given extra header lines (at line 4 on).
template() { # header-line...
	rm -rf tpl && mkdir tpl
	{
		printf 'Title: Attack\nCampaign: attack-{{year}}\nSubject: Appeal to {{state}}\n'
		printf '%s\n' "$@"
		printf 'Params: year\n\n{{salutation}}\n\nPlease act.\n'
	} >tpl/en.md
}

# draft must refuse with 65, name tpl/en.md:LINE and the reason, and write nothing.
draft_refused() { # line why-regex what
	"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o out/appeal >draft.out 2>draft.err
	expect_rc 65 $? "draft with $3"
	grep -qE "tpl/en\.md:$1: .*$2" draft.err || fail "draft with $3: not named: $(cat draft.err)"
	[ -e out ] && fail "draft with $3 left $(find out)"
	grep -rqs SECRET-OUTSIDE . --exclude-dir=outside && fail "draft with $3 copied the secret"
	return 0
}

template 'Attachment: /etc/shadow'
draft_refused 4 "absolute path" "Attachment: /etc/shadow"
template 'Attachment: ../../etc/passwd'
draft_refused 4 "'\.\.' component" "Attachment: ../../etc/passwd"
template 'Attachment: sub/../../outside/secret.txt'
draft_refused 4 "'\.\.' component" "a '..' in the middle"
template 'Attachment: annex.txt'
ln -s "$SECRET" tpl/annex.txt
draft_refused 4 "resolves through a symlink to .*outside.*secret\.txt, outside the letter's folder" \
	"a symlink to a file outside"
template 'Attachment: docs/secret.txt'
ln -s "$WORK/outside" tpl/docs
draft_refused 4 "outside the letter's folder" "a symlinked folder leading outside"
template 'Attachment: annex.txt'
ln -s ../outside/secret.txt tpl/annex.txt
draft_refused 4 "outside the letter's folder" "a relative symlink leading outside"
template 'Attachment: fifo.txt'
mkfifo tpl/fifo.txt
draft_refused 4 "not a regular file" "a FIFO"
template 'Cc: ok@coalition.example' 'Bcc: spy@evil.example'
draft_refused 5 "Bcc is refused: a hidden recipient is not allowed in a letter to a mission" \
	"a Bcc header"
template 'bcc: spy@evil.example'
draft_refused 4 "Bcc is refused" "a lower-case bcc header"

# A symlink that stays inside the folder is fine; the copy is not more open than its
# source, and a rendered {{file}} stays open for the roster.
template 'Attachment: annex.txt'
mkdir tpl/real
printf 'ANNEX\n' >tpl/real/annex.txt
chmod 600 tpl/real/annex.txt
ln -s real/annex.txt tpl/annex.txt
umask 022
"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o appeal >/dev/null 2>draft.err
expect_rc 0 $? "draft with a symlink staying inside: $(cat draft.err)"
[ "$(cat appeal/annex.txt)" = ANNEX ] || fail "annex not copied"
[ -L appeal/annex.txt ] && fail "the copy is a symlink"
[ "$(stat -c %a appeal/annex.txt)" = 600 ] ||
	fail "copy of a 0600 file is $(stat -c %a appeal/annex.txt)"
chmod 640 tpl/real/annex.txt
"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o appeal640 >/dev/null 2>draft.err ||
	fail "draft 0640: $(cat draft.err)"
[ "$(stat -c %a appeal640/annex.txt)" = 640 ] ||
	fail "copy of a 0640 file is $(stat -c %a appeal640/annex.txt)"

# draft --force with a symlink planted at DIR/en.md (and at the attachment's name): the
# symlinks are replaced by files, their targets outside untouched.
before=$(sha256sum "$SECRET")
rm appeal/en.md appeal/annex.txt
ln -s "$SECRET" appeal/en.md
ln -s "$SECRET" appeal/annex.txt
"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o appeal --force >/dev/null 2>draft.err
expect_rc 0 $? "draft --force over planted symlinks: $(cat draft.err)"
[ "$(sha256sum "$SECRET")" = "$before" ] || fail "draft --force wrote through a symlink"
[ "$(stat -c %a "$SECRET")" = 600 ] || fail "the target's mode changed"
[ -L appeal/en.md ] && fail "en.md is still a symlink"
[ -L appeal/annex.txt ] && fail "annex.txt is still a symlink"
grep -q '^Campaign: attack-2025$' appeal/en.md || fail "en.md not written: $(cat appeal/en.md)"
ls -A appeal | grep -q '\.tmp$' && fail "temporary files left: $(ls -A appeal)"
# DIR itself a symlink: refused, the folder it points to stays empty.
mkdir elsewhere
ln -s elsewhere linkdir
"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o linkdir --force >/dev/null 2>draft.err
expect_rc 73 $? "draft into a symlinked DIR"
grep -q "symlink" draft.err || fail "symlinked DIR: $(cat draft.err)"
[ -z "$(ls -A elsewhere)" ] || fail "draft wrote through a symlinked DIR: $(ls -A elsewhere)"
"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o linkdir/ --force >/dev/null 2>draft.err
expect_rc 73 $? "draft into a symlinked DIR/"
[ -z "$(ls -A elsewhere)" ] || fail "draft wrote through a symlinked DIR/: $(ls -A elsewhere)"
# Two different files under one name: refused, nothing written.
template 'Attachment: a/x.txt' 'Attachment: b/x.txt'
mkdir tpl/a tpl/b && echo A >tpl/a/x.txt && echo B >tpl/b/x.txt
"$DEMARCHE" draft "$WORK/tpl" --set year=2025 -o out/x >/dev/null 2>draft.err
expect_rc 65 $? "two attachments named x.txt"
grep -q "two different files would be written as 'x.txt'" draft.err || fail "$(cat draft.err)"
[ -e out ] && fail "a refused draft left $(find out)"

# check, preview and send load attachments too: an appeal (no draft involved) whose
# Attachment leaves its folder, directly or through a roster value, is refused before
# anything is written or sent.
printf 'iso3,state,mission,email,language,salutation,file\n' >roster.csv
printf 'KEN,Kenya,Mission of Kenya,ken@missions.example,en,Excellency,../outside/secret.txt\n' \
	>>roster.csv
PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
appeal() { # header-line...
	rm -rf hostile && mkdir hostile
	{
		printf 'Campaign: hostile\nSubject: Appeal to {{state}}\n'
		printf '%s\n' "$@"
		printf '\n{{salutation}}\n'
	} >hostile/en.md
}
all_refuse() { # line why-regex what
	local cmd
	for cmd in check preview send; do
		case $cmd in
		check) "$DEMARCHE" check hostile --to roster.csv >cmd.out 2>cmd.err ;;
		preview) "$DEMARCHE" preview hostile --to roster.csv --out eml >cmd.out 2>cmd.err ;;
		send) "$DEMARCHE" --store ledger.db send hostile --to roster.csv \
			--via "smtp://127.0.0.1:$PORT" --yes >cmd.out 2>cmd.err ;;
		esac
		expect_rc 65 $? "$cmd with $3"
		grep -qE "hostile/en\.md:$1: .*$2" cmd.err ||
			fail "$cmd with $3: not named: $(cat cmd.err)"
		grep -q SECRET-OUTSIDE cmd.out cmd.err && fail "$cmd with $3 printed the secret"
	done
	[ -e eml ] && fail "preview with $3 wrote $(find eml)"
	[ "$(sink_count "$WORK/sink")" = 0 ] || fail "send with $3 sent a message"
	if [ -e ledger.db ]; then
		[ "$(sqlite3 ledger.db 'select count(*) from deliveries')" = 0 ] ||
			fail "send with $3 recorded a delivery"
	fi
	return 0
}
appeal 'Attachment: /etc/shadow'
all_refuse 3 "absolute path" "Attachment: /etc/shadow"
appeal 'Attachment: ../../etc/passwd'
all_refuse 3 "'\.\.' component" "Attachment: ../../etc/passwd"
appeal 'Attachment: annex.txt'
ln -s "$SECRET" hostile/annex.txt
all_refuse 3 "outside the letter's folder" "a symlink leading outside"
appeal 'Attachment: docs/secret.txt'
ln -s ../outside hostile/docs
all_refuse 3 "outside the letter's folder" "a symlinked folder leading outside"
appeal 'Attachment: {{file}}'
all_refuse 3 "'\.\.' component" "a roster value naming ../outside/secret.txt"
appeal 'Cc: ok@coalition.example' 'Bcc: spy@evil.example'
all_refuse 4 "Bcc is refused" "a Bcc header"

# The same appeal with its attachment inside the folder sends it (the guard is not a wall).
appeal 'Attachment: annex.txt'
printf 'ANNEX-INSIDE\n' >hostile/annex.txt
"$DEMARCHE" --store ledger.db send hostile --to roster.csv --via "smtp://127.0.0.1:$PORT" \
	--yes >cmd.out 2>cmd.err
expect_rc 0 $? "send with an attachment inside: $(cat cmd.err)"
[ "$(sink_count "$WORK/sink")" = 1 ] || fail "sent $(sink_count "$WORK/sink") messages"
grep -rq "$(printf 'ANNEX-INSIDE\n' | base64)" "$WORK/sink/dump" || fail "annex not attached"
pass
