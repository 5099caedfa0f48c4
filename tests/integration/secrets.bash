# What secrets.sh and secrets_send.sh share (sourced after lib.bash and servers/sink.bash):
# an appeal, the tests' settings, an smtp-sink on a free port, and helpers to send and to
# check that no file holds the test password S3cret.
R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
unset DEMARCHE_SMTP_PASSWORD DEMARCHE_IMAP_PASSWORD
draft_original asp-session
test_ini

PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink did not start"
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
send() { "$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --yes "$@"; }
dump() { sqlite3 ledger.db .dump; }
no_secret() { # what files...: none of them holds S3cret
	local what=$1
	shift
	! grep -l S3cret "$@" >/dev/null 2>&1 || { cat "$@" >&2; fail "$what printed the password"; }
}
