#!/usr/bin/env python3
# Independent checker for composed messages: Python's email package (policy.default, strict).
"""Usage: mime_check.py DIR EXPECT.json

EXPECT.json is {"messages": [M, ...]} where each M has "file" (a name in DIR), "from",
"to", "cc", "reply_to" (addresses as {"name": str or null, "addr": str}), "subject",
"campaign", "message_id", "date" (Unix time), "text", "html" (or null), and
"attachments" ([{"filename", "content_type", "path"}], path holding the expected bytes).
Exits 0 when every message passes every check, 1 otherwise (each failure is printed).
"""
import email
import email.header
import email.policy
import email.utils
import json
import os
import re
import sys

EW = re.compile(rb"=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=")
failures = []


def fail(name, msg):
    failures.append(f"{name}: {msg}")


def check_raw(name, raw, exp):
    # RFC 5322 2.1.1 and 2.3: CRLF only, no line over 998 octets; 7-bit everywhere.
    if re.search(rb"\r(?!\n)", raw) or re.search(rb"(?<!\r)\n", raw):
        fail(name, "bare CR or LF")
    lines = raw.split(b"\r\n")
    for i, line in enumerate(lines):
        if len(line) > 998:
            fail(name, f"line {i + 1} is {len(line)} octets")
    if any(b >= 0x80 or b == 0 for b in raw):
        fail(name, "8-bit or NUL octet in the message")
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = []
    for i, line in enumerate(head.split(b"\r\n")):
        if len(line) > 78:
            fail(name, f"header line {i + 1} is {len(line)} columns (fold at 78)")
        if line[:1] in (b" ", b"\t"):
            if not line.strip():
                fail(name, f"header line {i + 1} is blank")
            continue
        if b":" not in line:
            fail(name, f"header line {i + 1} is not a field: {line[:40]!r}")
            continue
        names.append(line.split(b":", 1)[0].decode("ascii"))
    for word in EW.findall(head):
        if len(word) > 75:
            fail(name, f"encoded word of {len(word)} characters: {word[:30]!r}...")
    want = ["Date", "From", "To", "Message-ID", "Subject", "MIME-Version", "Content-Type"]
    if exp.get("reply_to"):
        want.append("Reply-To")
    if exp.get("cc"):
        want.append("Cc")
    if exp.get("campaign"):
        want.append("X-Demarche-Campaign")
    if not exp.get("html") and not exp.get("attachments"):
        want.append("Content-Transfer-Encoding")
    if sorted(names) != sorted(want):
        fail(name, f"header fields {sorted(names)}, expected {sorted(want)}")


def check_defects(name, msg):
    for part in msg.walk():
        if part.defects:
            fail(name, f"{part.get_content_type()} defects: {part.defects}")
        for key in part.keys():
            value = part[key]
            if getattr(value, "defects", None):
                fail(name, f"{key} defects: {value.defects}")


def check_addresses(name, header, value, raw_value, exp_list):
    """Addresses through policy.default (structure, defects), names also through the
    legacy email.header decoder: Python 3.11's address parser keeps the whitespace between
    adjacent encoded words in a display name, which RFC 2047 section 6.2 says to drop, so
    its names are compared ignoring whitespace; the legacy decoder follows the RFC."""
    if value is None or raw_value is None:
        fail(name, f"{header} missing")
        return
    got = [(a.display_name or None, a.addr_spec) for a in value.addresses]
    want = [(e.get("name") or None, e["addr"]) for e in exp_list]
    squash = [("".join((n or "").split()), a) for n, a in want]
    if [("".join((n or "").split()), a) for n, a in got] != squash:
        fail(name, f"{header} is {got!r}, expected {want!r}")
    legacy = []
    for n, a in email.utils.getaddresses([raw_value]):
        n = str(email.header.make_header(email.header.decode_header(n))) if n else None
        legacy.append((n or None, a))
    if legacy != want:
        fail(name, f"{header} (RFC 2047 decoding) is {legacy!r}, expected {want!r}")


def text_of(part):
    return part.get_content().replace("\r\n", "\n")


def check_text(name, part, subtype, want):
    if part.get_content_type() != f"text/{subtype}":
        fail(name, f"expected text/{subtype}, got {part.get_content_type()}")
        return
    if part.get_content_charset() != "utf-8":
        fail(name, f"text/{subtype} charset {part.get_content_charset()}")
    if part.get("Content-Transfer-Encoding", "").lower() != "quoted-printable":
        fail(name, f"text/{subtype} is not quoted-printable")
    got = text_of(part)
    if got != want:
        fail(name, f"text/{subtype} differs: {got[:60]!r}... vs {want[:60]!r}...")


def check_message(directory, exp):
    name = exp["file"]
    with open(os.path.join(directory, name), "rb") as f:
        raw = f.read()
    check_raw(name, raw, exp)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    legacy = email.message_from_bytes(raw)  # compat32: raw header values
    check_defects(name, msg)
    if msg["Subject"] != exp["subject"]:
        fail(name, f"Subject is {msg['Subject']!r}, expected {exp['subject']!r}")
    check_addresses(name, "From", msg["From"], legacy["From"], [exp["from"]])
    check_addresses(name, "To", msg["To"], legacy["To"], exp["to"])
    if exp.get("cc"):
        check_addresses(name, "Cc", msg["Cc"], legacy["Cc"], exp["cc"])
    if exp.get("reply_to"):
        check_addresses(name, "Reply-To", msg["Reply-To"], legacy["Reply-To"], [exp["reply_to"]])
    if "Bcc" in msg:
        fail(name, "a Bcc field")
    if msg["Message-ID"] != exp["message_id"]:
        fail(name, f"Message-ID is {msg['Message-ID']!r}")
    if exp.get("campaign") and msg["X-Demarche-Campaign"] != exp["campaign"]:
        fail(name, f"X-Demarche-Campaign is {msg['X-Demarche-Campaign']!r}")
    if msg["MIME-Version"] != "1.0":
        fail(name, "MIME-Version is not 1.0")
    date = msg["Date"].datetime if msg["Date"] else None
    if date is None or date.tzinfo is None or int(date.timestamp()) != exp["date"]:
        fail(name, f"Date {msg['Date']!r} is not {exp['date']} with an offset")

    atts = exp.get("attachments") or []
    body = msg
    if atts:
        if msg.get_content_type() != "multipart/mixed":
            fail(name, f"top is {msg.get_content_type()}, expected multipart/mixed")
            return
        parts = msg.get_payload()
        if len(parts) != 1 + len(atts):
            fail(name, f"multipart/mixed has {len(parts)} parts, expected {1 + len(atts)}")
            return
        body = parts[0]
        for part, att in zip(parts[1:], atts):
            with open(att["path"], "rb") as f:
                data = f.read()
            if part.get_content_type() != att["content_type"]:
                fail(name, f"attachment type {part.get_content_type()} != {att['content_type']}")
            if part.get_content_disposition() != "attachment":
                fail(name, "attachment disposition is not attachment")
            if part.get_filename() != att["filename"]:
                fail(name, f"attachment name {part.get_filename()!r} != {att['filename']!r}")
            if part.get("Content-Transfer-Encoding", "").lower() != "base64":
                fail(name, "attachment is not base64")
            if part.get_payload(decode=True) != data:
                fail(name, f"attachment {att['filename']!r} differs from {att['path']}")
    if exp.get("html") is not None:
        if body.get_content_type() != "multipart/alternative":
            fail(name, f"body is {body.get_content_type()}, expected multipart/alternative")
            return
        alts = body.get_payload()
        if len(alts) != 2:
            fail(name, f"multipart/alternative has {len(alts)} parts")
            return
        check_text(name, alts[0], "plain", exp["text"])
        check_text(name, alts[1], "html", exp["html"])
    else:
        check_text(name, body, "plain", exp["text"])


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    with open(sys.argv[2], encoding="utf-8") as f:
        expect = json.load(f)
    for exp in expect["messages"]:
        check_message(sys.argv[1], exp)
    for line in failures:
        print(line, file=sys.stderr)
    print(f"mime_check: {len(expect['messages'])} messages, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
