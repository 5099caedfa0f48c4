# A throwaway Postfix on loopback for tests: smtpd on 127.0.0.1:PORT (unchrooted) with
# STARTTLS (self-signed certificate, IP SAN 127.0.0.1), AUTH PLAIN/LOGIN through a throwaway
# Dovecot auth socket, and every relayed message discarded. Sourced (bash), needs root.
#
#   postfix_start DIR PORT USER PASSWORD [SMTPS_PORT]
#                                          config, queue, logs and cert under DIR (created);
#                                          SMTPS_PORT: also implicit TLS there
#   postfix_up DIR USER                    postfix_start on two free ports (SMTP, SMTPS)
#                                          with a random password; sets and exports
#                                          POSTFIX_PORT, POSTFIX_SMTPS_PORT, POSTFIX_USER,
#                                          POSTFIX_PASSWORD, POSTFIX_CA, POSTFIX_OTHER_CA
#   postfix_stop DIR                       stops Postfix and Dovecot; DIR is left to remove
#
# After postfix_start: $DIR/cert.pem is the CA to trust; $DIR/other-ca.pem a CA that did not
# sign it; $DIR/maillog Postfix's log. Recipients in example.org/example.net are accepted
# (after AUTH) and discarded.

. "$(dirname "${BASH_SOURCE[0]}")/net.bash"

postfix_start() {
	local dir=$1 port=$2 user=$3 password=$4 sport=${5:-} p
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/dovecot/run" "$dir/dovecot/state" ||
		return 1
	chmod 755 "$dir" "$dir/dovecot"
	chown postfix "$dir/data"

	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
		-addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$dir/other-key.pem" -out "$dir/other-ca.pem" >/dev/null 2>&1 || return 1
	chmod 600 "$dir/key.pem"

	# Dovecot serving only its auth socket (no protocols).
	printf '%s:{PLAIN}%s\n' "$user" "$password" >"$dir/dovecot/users"
	chmod 644 "$dir/dovecot/users"
	cat >"$dir/dovecot/dovecot.conf" <<-CONF
		base_dir = $dir/dovecot/run
		state_dir = $dir/dovecot/state
		log_path = $dir/dovecot/dovecot.log
		protocols =
		listen = 127.0.0.1
		ssl = no
		auth_mechanisms = plain login
		disable_plaintext_auth = no
		passdb {
		  driver = passwd-file
		  args = scheme=PLAIN $dir/dovecot/users
		}
		userdb {
		  driver = static
		  args = uid=nobody gid=nogroup home=/nonexistent
		}
		service auth {
		  unix_listener $dir/auth {
		    mode = 0666
		  }
		}
		service anvil {
		  chroot =
		}
	CONF
	dovecot -c "$dir/dovecot/dovecot.conf" || return 1

	cat >"$dir/etc/main.cf" <<-CONF
		compatibility_level = 3.6
		queue_directory = $dir/queue
		data_directory = $dir/data
		maillog_file = $dir/maillog
		maillog_file_prefixes = $dir
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		myhostname = postfix.demarche.test
		mydestination =
		mynetworks = 127.0.0.0/8
		alias_maps =
		alias_database =
		relay_domains = example.org, example.net
		relay_transport = discard:
		default_transport = discard:
		smtpd_tls_cert_file = $dir/cert.pem
		smtpd_tls_key_file = $dir/key.pem
		smtpd_tls_security_level = may
		smtpd_tls_auth_only = yes
		smtpd_tls_loglevel = 1
		smtpd_sasl_auth_enable = yes
		smtpd_sasl_type = dovecot
		smtpd_sasl_path = $dir/auth
		smtpd_relay_restrictions = permit_sasl_authenticated, reject
		smtpd_recipient_restrictions = permit_sasl_authenticated, reject
	CONF
	cat >"$dir/etc/master.cf" <<-CONF
		127.0.0.1:$port inet n - n - - smtpd
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	CONF
	if [ -n "$sport" ]; then
		printf '127.0.0.1:%s inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n' \
			"$sport" >>"$dir/etc/master.cf"
	fi
	if ! postfix -c "$dir/etc" start >"$dir/start.log" 2>&1; then
		cat "$dir/start.log" >&2
		return 1
	fi
	for p in $port $sport; do
		wait_port "$p" || {
			echo "postfix did not listen on 127.0.0.1:$p" >&2
			return 1
		}
	done
	return 0
}

postfix_up() {
	local dir=$1
	POSTFIX_USER=$2
	POSTFIX_PORT=$(free_port)
	POSTFIX_SMTPS_PORT=$(free_port)
	while [ "$POSTFIX_SMTPS_PORT" = "$POSTFIX_PORT" ]; do POSTFIX_SMTPS_PORT=$(free_port); done
	POSTFIX_PASSWORD="pw-$RANDOM$RANDOM"
	POSTFIX_CA=$dir/cert.pem
	POSTFIX_OTHER_CA=$dir/other-ca.pem
	export POSTFIX_PORT POSTFIX_SMTPS_PORT POSTFIX_USER POSTFIX_PASSWORD POSTFIX_CA \
		POSTFIX_OTHER_CA
	postfix_start "$dir" "$POSTFIX_PORT" "$POSTFIX_USER" "$POSTFIX_PASSWORD" \
		"$POSTFIX_SMTPS_PORT"
}

postfix_stop() {
	local dir=$1 pid i
	[ -f "$dir/etc/main.cf" ] && postfix -c "$dir/etc" stop >/dev/null 2>&1
	if [ -f "$dir/dovecot/run/master.pid" ]; then
		pid=$(cat "$dir/dovecot/run/master.pid")
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	fi
	# Postfix's master exits a moment after "stop"; wait so DIR can be removed.
	for i in $(seq 1 50); do
		[ -f "$dir/queue/pid/master.pid" ] || break
		pid=$(tr -d ' ' <"$dir/queue/pid/master.pid")
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	return 0
}
