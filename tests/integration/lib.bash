# Helpers for the integration tests: a temp dir per test, free loopback ports, servers.
# Sourced; each test runs in its own temp directory, removed on exit.
: "${DEMARCHE:?DEMARCHE must name the binary (ctest sets it)}"
: "${SRCDIR:?SRCDIR must name the source tree}"
TESTNAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/demarche-$TESTNAME-XXXXXX")
chmod 755 "$WORK"
cd "$WORK" || exit 1
CLEANUP=()
cleanup() {
	local c
	for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
	cd / && rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL [$TESTNAME]: $*" >&2
	exit 1
}
pass() {
	echo "PASS [$TESTNAME]"
	exit 0
}
expect_rc() { # expected actual what
	[ "$1" = "$2" ] || fail "$3: exit $2, expected $1"
}

# free_port and wait_port, shared with the server helpers.
. "$(dirname "${BASH_SOURCE[0]}")/servers/net.bash"

# Drafts template with the params of its original letter into dir (default: appeal).
draft_original() { # template [dir]
	local t=$1 dir=${2:-appeal}
	DEMARCHE_TEMPLATES="$SRCDIR/templates" "$DEMARCHE" draft "$t" -o "$dir" \
		--params "$SRCDIR/templates/$t/original.json" >/dev/null 2>draft.err ||
		fail "draft of $t: $(cat draft.err)"
}

# Writes demarche.ini with the tests' sender and one quick SMTP attempt, then any lines given
# (more sections, e.g. an [imap] block).
test_ini() { # [extra-line...]
	{
		printf '[sender]\nname = Coalition for the International Criminal Court\n'
		printf 'address = secretariat@coalition.example\n[smtp]\ntimeout = 5\nmax_attempts = 1\n'
		[ $# -gt 0 ] && printf '%s\n' "$@"
	} >demarche.ini
}
