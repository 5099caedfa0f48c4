#!/usr/bin/python3
"""Drive headless Chromium over the DevTools protocol (stdlib only) for review.sh.

usage: cdp.py CHROMIUM OUTDIR URL [PATH...]
Opens URL (the one with review's token) in one browser, then each PATH on the same origin,
and records for every page: console messages and exceptions, log entries (CSP violations,
failed loads), every request the page and its frames made, every response status, dialogs.
Writes OUTDIR/PAGE.json per page (PAGE: the path, '/' as '_') holding those and, from the
DOM: the text of #text, the HTML of the body, the title. With SHOT=1 in the environment, a
PNG screenshot per page too. Exits 0; the shell test asserts on the files.
"""
import base64, json, os, socket, struct, subprocess, sys, tempfile, time, urllib.request

TIMEOUT = float(os.environ.get("CDP_TIMEOUT", "120"))


class WS:
    """A minimal RFC 6455 client: text frames, client masking, no extensions."""

    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = self.s.recv(1)
            if not c:
                raise OSError("websocket handshake: connection closed")
            head += c
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError(f"websocket handshake: {head!r}")
        self.buf = b""

    def send(self, text):
        data = text.encode()
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            c = self.s.recv(1 << 16)
            if not c:
                raise OSError("websocket closed")
            self.buf += c
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0F
            if op == 8:
                raise OSError("websocket closed by peer")
            if op in (9, 10):
                continue
            msg += payload
            if b0 & 0x80:
                return msg.decode()


class Browser:
    def __init__(self, chromium, profile):
        self.p = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={profile}",
             # nothing may leave 127.0.0.1: every other name fails to resolve
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps",
             "--window-size=" + os.environ.get("CDP_WINDOW", "1280,900"),
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "chromium.log"), "w"))
        portfile = os.path.join(profile, "DevToolsActivePort")
        end = time.time() + TIMEOUT
        while not (os.path.exists(portfile) and open(portfile).read().count("\n") >= 1):
            if time.time() > end or self.p.poll() is not None:
                raise SystemExit("chromium did not start")
            time.sleep(0.1)
        port = open(portfile).read().split("\n")[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = [t for t in targets if t["type"] == "page"][0]
        self.ws = WS(page["webSocketDebuggerUrl"])
        self.id = 0
        self.events = []

    def call(self, method, params=None, session=None):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        want = self.id
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.on_event(m)

    def on_event(self, m):
        if "method" not in m:
            return
        self.events.append(m)
        if m["method"] == "Target.attachedToTarget":
            sid = m["params"]["sessionId"]  # a frame in its own process: watch it too
            for d in ("Runtime.enable", "Log.enable", "Network.enable"):
                self.send_nowait(d, session=sid)
            self.send_nowait("Runtime.runIfWaitingForDebugger", session=sid)

    def send_nowait(self, method, params=None, session=None):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))

    def wait_event(self, name, timeout=TIMEOUT):
        end = time.time() + timeout
        seen = len(self.events)
        while time.time() < end:
            for m in self.events[seen:]:
                if m["method"] == name:
                    return m
            seen = len(self.events)
            self.ws.s.settimeout(max(0.1, end - time.time()))
            self.on_event(json.loads(self.ws.recv()))
        raise SystemExit(f"timed out waiting for {name}")

    def settle(self, quiet=0.5):
        """Reads events until none came for `quiet` seconds."""
        while True:
            self.ws.s.settimeout(quiet)
            try:
                self.on_event(json.loads(self.ws.recv()))
            except socket.timeout:
                self.ws.s.settimeout(TIMEOUT)
                return

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        return r.get("result", {}).get("value")


def main():
    chromium, outdir, url = sys.argv[1:4]
    paths = sys.argv[4:]
    origin = url.split("/?")[0]
    profile = tempfile.mkdtemp(prefix="cdp-", dir=outdir)
    b = Browser(chromium, profile)
    try:
        for d in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            b.call(d)
        b.call("Target.setAutoAttach",
               {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True})
        for path in ["(token)"] + paths:
            b.events = []
            b.call("Page.navigate", {"url": url if path == "(token)" else origin + path})
            b.wait_event("Page.loadEventFired")
            b.settle()
            ev = b.events
            rec = {
                "path": path,
                "location": b.eval("location.href"),
                "title": b.eval("document.title"),
                "text": b.eval("(document.getElementById('text')||{}).textContent||null"),
                "body": b.eval("document.body ? document.body.outerHTML : ''"),
                "scripts": b.eval("document.querySelectorAll('script').length"),
                "imgs": b.eval("Array.from(document.images).map(i => i.getAttribute('src'))"),
                "requests": [e["params"]["request"]["url"] for e in ev
                             if e["method"] == "Network.requestWillBeSent"],
                "statuses": [[e["params"]["response"]["url"], e["params"]["response"]["status"]]
                             for e in ev if e["method"] == "Network.responseReceived"],
                "failed": [e["params"] for e in ev if e["method"] == "Network.loadingFailed"],
                "console": [e["params"] for e in ev
                            if e["method"] in ("Runtime.consoleAPICalled",
                                               "Runtime.exceptionThrown")],
                "log": [e["params"]["entry"] for e in ev if e["method"] == "Log.entryAdded"],
                "dialogs": [e["params"] for e in ev
                            if e["method"] == "Page.javascriptDialogOpening"],
                "frames": b.eval("Array.from(document.querySelectorAll('iframe'))"
                                 ".map(f => [f.getAttribute('src'), f.getAttribute('sandbox')])"),
            }
            name = "_token" if path == "(token)" else path.replace("/", "_")
            with open(os.path.join(outdir, name + ".json"), "w") as f:
                json.dump(rec, f, indent=1)
            if os.environ.get("SHOT"):
                time.sleep(1.5)  # frames in their own process paint a little later
                shot = b.call("Page.captureScreenshot", {"format": "png",
                                                          "captureBeyondViewport": False})
                with open(os.path.join(outdir, name + ".png"), "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
    finally:
        try:
            b.call("Browser.close")
        except Exception:
            pass
        try:
            b.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            b.p.kill()


main()
