#!/usr/bin/env bash
# cmake --install into a temporary prefix: the binary, the man page, the templates, the
# example roster and the bash completion land where they should; the installed binary, run
# from a folder without templates/ and with DEMARCHE_TEMPLATES unset, lists and drafts from
# the installed templates and makes a workspace from the installed roster.
set -u
. "$(dirname "$0")/lib.bash"
: "${BUILDDIR:?BUILDDIR must name the build tree}"
P=$WORK/prefix
cmake --install "$BUILDDIR" --prefix "$P" >install.log 2>&1 ||
	{ cat install.log >&2; fail "cmake --install"; }

for f in bin/demarche share/man/man1/demarche.1 share/demarche/templates/asp-session/en.md \
	share/demarche/templates/_layout share/demarche/recipients/missions.example.csv \
	share/demarche/recipients/states-parties.csv share/bash-completion/completions/demarche; do
	[ -e "$P/$f" ] || fail "not installed: $f"
done
[ -x "$P/bin/demarche" ] || fail "bin/demarche is not executable"
bash -n "$P/share/bash-completion/completions/demarche" ||
	fail "bash -n on the installed completion"
MANWIDTH=80 man -l "$P/share/man/man1/demarche.1" 2>/dev/null | grep -q 'demarche doctor' ||
	fail "man cannot show the installed page"

# Away from the source tree: nothing but the prefix to find templates in.
unset DEMARCHE_TEMPLATES DEMARCHE_RECIPIENTS
mkdir elsewhere && cd elsewhere || fail "cd"
"$P/bin/demarche" templates >tpl.txt 2>err.txt || fail "installed templates: $(cat err.txt)"
grep -qx asp-session tpl.txt || fail "installed templates does not list asp-session"
cp "$SRCDIR/templates/asp-session/original.json" params.json
"$P/bin/demarche" draft asp-session -o appeal --params params.json >/dev/null 2>err.txt ||
	fail "draft from the installed templates: $(cat err.txt)"
[ -s appeal/en.md ] && [ -s appeal/fr.md ] || fail "draft wrote no appeal"
grep -q '^Campaign: asp' appeal/en.md || fail "the drafted appeal has no campaign"

"$P/bin/demarche" init ws >/dev/null 2>err.txt || fail "installed init: $(cat err.txt)"
cmp -s ws/recipients/missions.example.csv "$SRCDIR/recipients/missions.example.csv" ||
	fail "init did not copy the installed roster"

# The installed completion completes template ids with the installed binary.
PATH=$P/bin:$PATH
. "$P/share/bash-completion/completions/demarche"
COMP_WORDS=(demarche draft asp)
COMP_CWORD=2
_demarche
[ "${COMPREPLY[*]}" = asp-session ] || fail "installed completion: '${COMPREPLY[*]}'"
pass
