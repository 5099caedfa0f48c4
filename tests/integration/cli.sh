#!/usr/bin/env bash
# The command line contract: --help lists every command, unknown commands exit 64 with a
# suggestion, COMMAND --help works for each, --version prints one.
set -u
. "$(dirname "$0")/lib.bash"

out=$("$DEMARCHE" --help) || fail "--help exited $?"
for c in init templates draft render check preview send audit verify bounces doctor; do
	grep -qE "^  $c +[a-z]" <<<"$out" || fail "--help does not list $c with a purpose"
	"$DEMARCHE" $c --help | grep -q "usage: demarche $c" || fail "$c --help"
done

"$DEMARCHE" sned 2>err.txt
expect_rc 64 $? "unknown command"
grep -q "^	send$" err.txt || fail "no suggestion of 'send' for 'sned'"

"$DEMARCHE" 2>/dev/null
expect_rc 64 $? "no command"

"$DEMARCHE" --version | grep -qE '^demarche [0-9]+\.[0-9]+' || fail "--version"
pass
