#!/usr/bin/env bash
# contrib/demarche.bash-completion: bash -n accepts it; sourced, it completes commands,
# exactly the long options 'demarche CMD --help' shows for each command, template ids from
# 'demarche templates', and campaign ids from the ledger (audit --format csv).
set -u
. "$(dirname "$0")/lib.bash"
COMP=$SRCDIR/contrib/demarche.bash-completion
bash -n "$COMP" || fail "bash -n rejects $COMP"
# The completion calls 'demarche' as typed: put the binary under test first on PATH.
mkdir bin && ln -s "$DEMARCHE" bin/demarche
PATH=$WORK/bin:$PATH
export DEMARCHE_TEMPLATES=$SRCDIR/templates
. "$COMP"
complete -p demarche | grep -q -- '-F _demarche' || fail "no 'complete -F _demarche demarche'"

complete_words() { # words... (the last is being completed) -> COMPREPLY sorted on stdout
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_demarche
	printf '%s\n' "${COMPREPLY[@]}" | sort
}

[ "$(complete_words demarche se)" = send ] || fail "'demarche se' does not complete to send"
[ "$(complete_words demarche --store x.db ver)" = verify ] || fail "after --store FILE"
[ "$(complete_words demarche d | tr '\n' ' ')" = "doctor draft " ] || fail "'demarche d'"
[ "$(complete_words demarche render x --escape m)" = markdown ] || fail "--escape values"

# Each command's options are those of its --help.
for c in $(demarche --help | sed -n 's/^  \([a-z]\+\)  .*/\1/p'); do
	diff <(demarche "$c" --help | grep -oE -- '--[a-z][a-z-]*' | grep -vx -- --help | sort -u) \
		<(complete_words demarche "$c" -- | grep -- '^--' | grep -vx -- --help | sort -u) >diff.txt ||
		{ cat diff.txt >&2; fail "$c: --help (<) and the completion (>) differ"; }
done

# Template ids.
got=$(complete_words demarche draft "")
[ "$got" = "$(demarche templates | awk '/^[^[:space:]]/ { print $1 }' | sort)" ] ||
	fail "draft TEMPLATE completes to: $got"
grep -qx asp-session <<<"$got" || fail "no asp-session among the template ids"
[ "$(complete_words demarche draft asp)" = asp-session ] || fail "'draft asp'"

# Campaign ids, from the ledger given with --store.
demarche draft asp-session -o appeal --params "$SRCDIR/templates/asp-session/original.json" \
	>/dev/null 2>&1 || fail "draft"
demarche --store l.db send appeal --to "$SRCDIR/recipients/missions.example.csv" \
	--join "$SRCDIR/recipients/states-parties.csv" --only KEN --via maildir:outbox --yes \
	>/dev/null 2>&1 || fail "send into a Maildir"
camp=$(demarche --store l.db audit --format csv | sed -n '2s/,.*//p')
[ -n "$camp" ] || fail "no campaign in the ledger"
[ "$(complete_words demarche --store l.db audit "")" = "$camp" ] ||
	fail "audit CAMPAIGN does not complete to $camp"
[ "$(complete_words demarche --store l.db send appeal --not-received "${camp:0:3}")" = "$camp" ] ||
	fail "--not-received does not complete to $camp"
[ -z "$(complete_words demarche --store none.db audit "")" ] || fail "campaigns without a ledger"
pass
