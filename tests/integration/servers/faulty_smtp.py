#!/usr/bin/python3
"""A controllable SMTP server on loopback for tests and the bench (Debian's python3-aiosmtpd).

It accepts every message and keeps none, and injects the faults smtp-sink cannot:

  --refuse-rcpt S   550 5.1.1 to each RCPT whose address contains S (repeatable)
  --defer-rcpt S    450 4.2.1 likewise
  --max-rcpt N      452 4.5.3 "Too many recipients" to RCPTs after the first N of a
                    transaction (RFC 5321 section 4.5.3.1.10)
  --dot-delay MS    waits MS milliseconds before answering the final dot (as content
                    filters do); connections are served concurrently
  --malformed STAGE answers "250ok" (no space after the code) to MAIL, RCPT or the dot
  --multiline-dot   answers the dot with a three-line reply
  --drop-reused     closes a connection, without a word, when a second MAIL comes on it (a
                    server that dropped the idle client just as it was reused)
  --log FILE        appends "tx PEERPORT rcpt1,rcpt2 BYTES" per accepted message
  --auth USER       offers AUTH PLAIN and LOGIN over cleartext (loopback) and takes USER with
                    the password in $FAULTY_AUTH_PASSWORD only (535 otherwise)

Run it with /usr/bin/python3 (the one with aiosmtpd):
  /usr/bin/python3 faulty_smtp.py --port 2525 --dot-delay 100
It listens on 127.0.0.1 only and runs until SIGTERM.
"""
import argparse
import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, opts):
        self.o = opts
        self.queued = 0

    def log(self, line):
        if self.o.log:
            with open(self.o.log, "a") as f:
                f.write(line + "\n")

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.o.drop_reused:
            seen = getattr(session, "mails", 0)
            session.mails = seen + 1
            if seen:
                server.transport.abort()
                return "421 4.4.2 gone"
        if self.o.malformed == "mail":
            return "250ok"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.o.malformed == "rcpt":
            return "250ok"
        if any(s in address for s in self.o.refuse_rcpt):
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        if any(s in address for s in self.o.defer_rcpt):
            return "450 4.2.1 <%s>: Recipient address rejected: mailbox busy" % address
        if self.o.max_rcpt and len(envelope.rcpt_tos) >= self.o.max_rcpt:
            return "452 4.5.3 Error: too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.o.dot_delay:
            await asyncio.sleep(self.o.dot_delay / 1000.0)
        if self.o.malformed == "dot":
            return "250ok"
        self.queued += 1
        self.log("tx %d %s %d" % (session.peer[1], ",".join(envelope.rcpt_tos),
                                   len(envelope.content)))
        qid = "Q%d" % self.queued
        if self.o.multiline_dot:
            return ("250-2.0.0 Ok: queued as %s\r\n250-2.0.0 by the faulty server\r\n"
                    "250 2.0.0 have a nice day" % qid)
        return "250 2.0.0 Ok: queued as %s" % qid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--refuse-rcpt", action="append", default=[])
    ap.add_argument("--defer-rcpt", action="append", default=[])
    ap.add_argument("--max-rcpt", type=int, default=0)
    ap.add_argument("--dot-delay", type=int, default=0)
    ap.add_argument("--malformed", choices=["mail", "rcpt", "dot"])
    ap.add_argument("--multiline-dot", action="store_true")
    ap.add_argument("--drop-reused", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--auth")
    opts = ap.parse_args()
    extra = {}
    if opts.auth:
        import os
        from aiosmtpd.smtp import AuthResult

        want = (opts.auth.encode(), os.environ.get("FAULTY_AUTH_PASSWORD", "").encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=(auth_data.login, auth_data.password) == want)

        extra = dict(authenticator=authenticator, auth_require_tls=False)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler(opts)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname="faulty.test", ident="faulty_smtp", loop=loop, **extra),
        host="127.0.0.1", port=opts.port, backlog=256))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
