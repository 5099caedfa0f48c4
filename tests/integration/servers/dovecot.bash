# A throwaway Dovecot on loopback for tests: plain IMAP, IMAPS and a SASL auth socket.
# Sourced (bash). It needs only net.bash (next to it), not lib.bash, so C tests use it too:
#   bash -c '. tests/integration/servers/dovecot.bash && dovecot_start DIR USER PASS && env'
#
# dovecot_start DIR USER PASSWORD
#   Creates DIR (made 0755: the unprivileged mail user and Postfix must traverse it and all
#   its parents, which is checked) with dovecot.conf, a passwd-file user USER with PASSWORD
#   (no ':' or newline in either), a maildir under DIR/mail and a self-signed certificate
#   for IP 127.0.0.1, starts Dovecot with `dovecot -c DIR/dovecot.conf` and waits until
#   both ports answer. Works as root (mail is served as nobody) and as a plain user.
#   Sets and exports:
#     DOVECOT_IMAP_PORT    plain IMAP on 127.0.0.1 (STARTTLS offered; LOGIN allowed)
#     DOVECOT_IMAPS_PORT   IMAP over TLS on 127.0.0.1
#     DOVECOT_AUTH_SOCKET  absolute path of the auth client socket (mode 0666), for
#                          Postfix `smtpd_sasl_type = dovecot`, `smtpd_sasl_path = <it>`
#     DOVECOT_CERT         PEM certificate the server presents (use it as the CA file)
#     DOVECOT_MAILDIR      USER's maildir (INBOX is its root; folders are .Name subdirs)
#   Folders Sent, Drafts and Trash exist from the first login. The log is DIR/dovecot.log.
#   Returns 0, or 1 with a message on stderr (and the log's tail).
# dovecot_stop DIR
#   Kills the master whose pid is in DIR/run/master.pid and waits for it (SIGKILL after 10 s).
#   Safe to call twice or when the start failed.
# dovecot_deliver DIR FILE [FOLDER]
#   Drops FILE into USER's maildir FOLDER (default INBOX) as a new message, without IMAP.

. "$(dirname "${BASH_SOURCE[0]}")/net.bash"

dovecot_start() {
	local dir=$1 user=$2 pass=$3
	local uid gid login_user internal_user try
	if [ -z "$dir" ] || [ -z "$user" ] || [ -z "$pass" ]; then
		echo "usage: dovecot_start DIR USER PASSWORD" >&2
		return 1
	fi
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	chmod 755 "$dir"
	local up=$dir
	while up=$(dirname "$up") && [ "$up" != / ]; do
		if [ "$(( 0$(stat -c %a "$up") & 01 ))" = 0 ]; then
			echo "dovecot_start: $up is not searchable by others (chmod o+x): Dovecot's" \
				"unprivileged processes could not reach $dir" >&2
			return 1
		fi
	done
	mkdir -p "$dir/run" "$dir/state" "$dir/mail"

	# Dovecot refuses to serve mail as root: as root use nobody; otherwise run as ourselves.
	if [ "$(id -u)" = 0 ]; then
		uid=$(id -u nobody) gid=$(id -g nobody)
		login_user=dovenull internal_user=dovecot
	else
		uid=$(id -u) gid=$(id -g)
		login_user=$(id -un) internal_user=$(id -un)
	fi
	chown "$uid:$gid" "$dir/mail"

	printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$user" "$pass" "$uid" "$gid" "$dir/mail/$user" \
		>"$dir/users"
	chmod 644 "$dir/users"

	if [ ! -s "$dir/cert.pem" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj "/CN=127.0.0.1" \
			-addext "subjectAltName=IP:127.0.0.1" >"$dir/openssl.log" 2>&1 || {
			echo "dovecot_start: openssl req failed:" >&2
			cat "$dir/openssl.log" >&2
			return 1
		}
	fi

	for try in 1 2 3; do
		DOVECOT_IMAP_PORT=$(free_port)
		DOVECOT_IMAPS_PORT=$(free_port)
		[ "$DOVECOT_IMAP_PORT" != "$DOVECOT_IMAPS_PORT" ] || continue
		cat >"$dir/dovecot.conf" <<EOF
# Throwaway test Dovecot, written by tests/integration/servers/dovecot.bash.
instance_name = demarche-test-$$-$try
protocols = imap
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
default_login_user = $login_user
default_internal_user = $internal_user
first_valid_uid = $uid
last_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:$dir/mail/%u
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/users
}
userdb {
  driver = passwd-file
  args = $dir/users
}
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DOVECOT_IMAPS_PORT
    ssl = yes
  }
}
service anvil {
  chroot =
}
service auth {
  unix_listener $dir/auth-client {
    mode = 0666
  }
}
EOF
		: >"$dir/dovecot.log"
		# A failed start is most often a port lost to a race: try again with new ports.
		dovecot -c "$dir/dovecot.conf" 2>>"$dir/dovecot.log" || continue
		if wait_port "$DOVECOT_IMAP_PORT" && wait_port "$DOVECOT_IMAPS_PORT"; then
			DOVECOT_AUTH_SOCKET=$dir/auth-client
			DOVECOT_CERT=$dir/cert.pem
			DOVECOT_MAILDIR=$dir/mail/$user
			export DOVECOT_IMAP_PORT DOVECOT_IMAPS_PORT DOVECOT_AUTH_SOCKET DOVECOT_CERT \
				DOVECOT_MAILDIR
			return 0
		fi
		dovecot_stop "$dir"
	done
	echo "dovecot_start: Dovecot did not start; log:" >&2
	tail -n 20 "$dir/dovecot.log" >&2
	return 1
}

dovecot_stop() {
	local dir=$1 pid i
	[ -n "$dir" ] && [ -s "$dir/run/master.pid" ] || return 0
	pid=$(cat "$dir/run/master.pid")
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	rm -f "$dir/run/master.pid"
	return 0
}

dovecot_deliver() {
	local dir=$1 file=$2 folder=${3:-INBOX} md name owner
	md=$dir/mail/$(cut -d: -f1 "$dir/users")
	[ "$folder" = INBOX ] || md=$md/.$folder
	mkdir -p "$md/tmp" "$md/new" "$md/cur" || return 1
	name=$(date +%s).$$_$RANDOM.demarche-test
	cp "$file" "$md/tmp/$name" && mv "$md/tmp/$name" "$md/new/$name" || return 1
	owner=$(stat -c %u:%g "$dir/mail")
	chown -R "$owner" "$dir/mail"
}
