#!/usr/bin/env bash
# demarche init: a workspace with a commented demarche.ini (0600) naming every key of
# src/base/config.c, appeals/, outbox/, the example roster; it loads as written and with
# every key uncommented; a second init refuses (73) and changes nothing; the printed next
# commands work.
set -u
. "$(dirname "$0")/lib.bash"

"$DEMARCHE" init ws >out.txt 2>err.txt
expect_rc 0 $? "init ws"
for d in appeals outbox recipients; do
	[ -d "ws/$d" ] || fail "no ws/$d"
done
[ "$(stat -c %a ws/demarche.ini)" = 600 ] || fail "demarche.ini mode $(stat -c %a ws/demarche.ini)"
cmp -s ws/recipients/missions.example.csv "$SRCDIR/recipients/missions.example.csv" ||
	fail "the example roster was not copied"
cmp -s ws/recipients/states-parties.csv "$SRCDIR/recipients/states-parties.csv" ||
	fail "states-parties.csv was not copied"
for c in "demarche draft" "demarche check" "demarche send"; do
	grep -q "$c" out.txt || fail "the next commands do not include '$c'"
done

# Every key of config.c's table is in the file, in its section, commented out.
keys=$(sed -n 's/^ *\([SI]\)(\([a-z_]*\), *\([a-z_]*\)),$/\2 \3/p' "$SRCDIR/src/base/config.c")
[ "$(wc -l <<<"$keys")" -ge 20 ] || fail "could not read the keys of config.c"
while read -r sec key; do
	awk -v s="[$sec]" -v k="$key" '
		/^\[/ { cur = $0 }
		cur == s && $0 ~ "^;" k " =" { found = 1 }
		END { exit !found }' ws/demarche.ini || fail "[$sec] $key missing from demarche.ini"
done <<<"$keys"
# Each key has a line of explanation above it.
awk '/^;[a-z_]+ =/ && prev !~ /^; ./ { print; bad = 1 } { prev = $0 } END { exit bad }' \
	ws/demarche.ini || fail "a key without its explanation line"

# The file loads as written (audit reads the config first: 78 would be a config error;
# 66 is the missing ledger) ...
"$DEMARCHE" --config ws/demarche.ini audit >/dev/null 2>err.txt
expect_rc 66 $? "audit with the generated config ($(cat err.txt))"
# ... and with every example value uncommented.
sed 's/^;\([a-z_]* =\)/\1/' ws/demarche.ini >all.ini
chmod 600 all.ini
[ "$(grep -c '^[a-z_]* =' all.ini)" = "$(wc -l <<<"$keys")" ] || fail "uncommenting"
# (but for [store] url: audit would connect to that PostgreSQL server, which is not there)
sed -i '/^url = postgresql:/d' all.ini
"$DEMARCHE" --config all.ini audit >/dev/null 2>err.txt
expect_rc 66 $? "audit with every key uncommented ($(cat err.txt))"
# The check really reads the file: a wrong key is refused.
printf '[smtp]\nnope = 1\n' >>all.ini
"$DEMARCHE" --config all.ini audit >/dev/null 2>&1
expect_rc 78 $? "a config with an unknown key"

# A second init refuses and leaves the workspace alone.
echo "; mine" >>ws/demarche.ini
sum=$(md5sum <ws/demarche.ini)
"$DEMARCHE" init ws >/dev/null 2>err.txt
expect_rc 73 $? "init over a workspace"
grep -q "already" err.txt || fail "the refusal does not say why: $(cat err.txt)"
[ "$(md5sum <ws/demarche.ini)" = "$sum" ] || fail "the second init changed demarche.ini"

# Without DIR: the current folder. A missing example roster: 66, nothing made.
mkdir here && (cd here && "$DEMARCHE" init >/dev/null) || fail "init in the current folder"
[ -f here/demarche.ini ] && [ -d here/outbox ] || fail "init . made no workspace"
DEMARCHE_RECIPIENTS=$WORK/none "$DEMARCHE" init nowhere >/dev/null 2>&1
expect_rc 66 $? "init without the example roster"
[ ! -e nowhere/demarche.ini ] || fail "init wrote a workspace without a roster"
"$DEMARCHE" init a b >/dev/null 2>&1
expect_rc 64 $? "init with two folders"

# The workspace works as printed: doctor passes, draft then check against the copied roster.
cd ws || fail "cd ws"
"$DEMARCHE" doctor >doctor.txt 2>&1
expect_rc 0 $? "doctor in a new workspace ($(cat doctor.txt))"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
"$DEMARCHE" draft asp-session -o appeals/asp24 \
	--params "$SRCDIR/templates/asp-session/original.json" >/dev/null 2>&1 ||
	fail "draft into appeals/"
"$DEMARCHE" check appeals/asp24 --to recipients/missions.example.csv \
	--join recipients/states-parties.csv >/dev/null 2>err.txt
expect_rc 0 $? "check with the workspace's roster ($(head -3 err.txt))"
pass
