#!/usr/bin/env bash
# docs/demarche.1: groff renders it without a warning; it has a section for every command,
# whose long options are exactly those 'demarche COMMAND --help' shows; it documents every
# configuration key of src/base/config.c in its section, the exit codes and the environment.
set -u
. "$(dirname "$0")/lib.bash"
MAN=$SRCDIR/docs/demarche.1
[ -f "$MAN" ] || fail "no $MAN"
command -v groff >/dev/null || fail "no groff (Debian package groff-base)"

groff -man -Tutf8 -ww -z "$MAN" >warn.txt 2>&1 || fail "groff failed"
[ ! -s warn.txt ] || { cat warn.txt >&2; fail "groff warns about the man page"; }
groff -man -Tutf8 "$MAN" 2>/dev/null | grep -q "demarche doctor" || fail "groff renders nothing"

# The long options of man page text (roff escapes undone), one per line, sorted.
opts() { sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z-]*' | grep -vx -- '--help' | sort -u; }
# The man page text of one subsection: from '.SS "demarche CMD' to the next .SS or .SH.
section() {
	awk -v c="$1" '
		/^\.S[SH]/ { on = ($0 ~ "^\\.SS \"demarche " c "( |\")") }
		on' "$MAN"
}

cmds=$("$DEMARCHE" --help | sed -n 's/^  \([a-z]\+\)  .*/\1/p')
[ "$(wc -w <<<"$cmds")" -ge 11 ] || fail "could not read the commands from --help"
for c in $cmds; do
	[ -n "$(section "$c")" ] || fail "the man page has no section for $c"
	"$DEMARCHE" "$c" --help >help.txt || fail "$c --help"
	diff <(opts <help.txt) <(section "$c" | opts) >diff.txt ||
		{ cat diff.txt >&2; fail "$c: --help (<) and the man page (>) list other options"; }
done
# The global options, in OPTIONS.
diff <("$DEMARCHE" --help | sed -n '/^Global options/,/^$/p' | opts) \
	<(awk '/^\.SH/ { on = /^\.SH OPTIONS/ } on' "$MAN" | opts) >diff.txt ||
	{ cat diff.txt >&2; fail "global options differ between --help and the man page"; }

# Every configuration key, under its section.
sed -n 's/^ *[SI](\([a-z_]*\), *\([a-z_]*\)),$/\1 \2/p' "$SRCDIR/src/base/config.c" >keys.txt
[ "$(wc -l <keys.txt)" -ge 20 ] || fail "could not read the keys of config.c"
while read -r sec key; do
	awk -v s="$sec" -v k="$key" '
		/^\.S[SH]/ { on = ($0 == ".SS [" s "]") }
		on && $0 == ".B " k { found = 1 }
		END { exit !found }' "$MAN" || fail "the man page lacks [$sec] $key"
done <keys.txt

for code in 0 64 65 66 69 73 75 78; do
	awk -v c=".B $code" '/^\.SH/ { on = /EXIT STATUS/ } on && $0 == c { f = 1 } END { exit !f }' \
		"$MAN" || fail "EXIT STATUS lacks $code"
done
for v in DEMARCHE_SMTP_PASSWORD DEMARCHE_IMAP_PASSWORD DEMARCHE_TEMPLATES NO_COLOR \
	SOURCE_DATE_EPOCH XDG_CONFIG_HOME; do
	awk -v v=".B $v" '/^\.SH/ { on = /ENVIRONMENT/ } on && $0 == v { f = 1 } END { exit !f }' \
		"$MAN" || fail "ENVIRONMENT lacks $v"
done
grep -q '^\.SH EXAMPLES' "$MAN" || fail "no EXAMPLES"
grep -q '^\.SH FILES' "$MAN" || fail "no FILES"
pass
