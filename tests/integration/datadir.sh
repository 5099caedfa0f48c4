#!/usr/bin/env bash
# Issue 18, point 5: demarche finds its templates and example roster wherever it was built
# or installed. A binary whose build directory is outside the source tree (here: the built
# binary copied to a folder with no source tree above it and no share/ beside it) finds the
# tree it was built from (compiled in); an installed prefix moved elsewhere finds
# BIN/../share/demarche; DEMARCHE_TEMPLATES and DEMARCHE_RECIPIENTS still override both.
set -u
. "$(dirname "$0")/lib.bash"
: "${BUILDDIR:?BUILDDIR must name the build tree}"
unset DEMARCHE_TEMPLATES DEMARCHE_RECIPIENTS

mkdir -p out/bin && cp "$BUILDDIR/demarche" out/bin/demarche || fail "cannot copy the binary"
mkdir run && cd run || fail "cd"
../out/bin/demarche init ws >init.txt 2>err.txt || fail "init from a build outside the tree: $(cat err.txt)"
cmp -s ws/recipients/missions.example.csv "$SRCDIR/recipients/missions.example.csv" ||
	fail "init did not copy the example roster"
../out/bin/demarche templates >tpl.txt 2>err.txt || fail "templates: $(cat err.txt)"
grep -qx asp-session tpl.txt || fail "templates does not list asp-session: $(cat tpl.txt)"
(cd ws && ../../out/bin/demarche draft asp-session -o appeals/a \
	--params "$SRCDIR/templates/asp-session/original.json" >/dev/null 2>../err.txt) ||
	fail "draft: $(cat err.txt)"
[ -s ws/appeals/a/fr.md ] || fail "draft wrote no appeal"

# The environment overrides: DEMARCHE_RECIPIENTS's roster is the one copied.
mkdir mine && printf 'iso3,email\nAAA,a@missions.example\n' >mine/missions.example.csv
DEMARCHE_RECIPIENTS=$PWD/mine ../out/bin/demarche init ws2 >/dev/null 2>err.txt ||
	fail "init with DEMARCHE_RECIPIENTS: $(cat err.txt)"
cmp -s ws2/recipients/missions.example.csv mine/missions.example.csv ||
	fail "DEMARCHE_RECIPIENTS did not override"

# An installed prefix, moved: BIN/../share/demarche.
cd "$WORK" || fail "cd"
cmake --install "$BUILDDIR" --prefix "$WORK/p" >install.log 2>&1 || { cat install.log >&2; fail "install"; }
mv p moved
mkdir run2 && cd run2 || fail "cd"
../moved/bin/demarche init ws >/dev/null 2>err.txt || fail "init from a moved prefix: $(cat err.txt)"
cmp -s ws/recipients/missions.example.csv "$WORK/moved/share/demarche/recipients/missions.example.csv" ||
	fail "the moved prefix's roster was not used"
pass
