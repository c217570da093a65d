"""An independent webhook receiver for tests: a real HTTP server (the standard library's, in a
thread) that checks every request the way docs/WEBHOOKS.md tells receivers to, with its own
code: HMAC-SHA256 over "<timestamp>.<body>" compared with hmac.compare_digest, and a refusal of
timestamps older than five minutes. It shares nothing with server/webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("kizuna-webhook-id", "")


@dataclass
class Receiver:
    url: str = ""
    secret: str = ""
    answers: list[int] = field(default_factory=list)  # status codes to answer in turn, then 200
    clock_skew_seconds: int = 0  # the receiver's clock runs this far ahead
    hold: threading.Event | None = None  # when set: the first request waits for this event
    arrived: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, headers: dict[str, str], body: bytes) -> tuple[bool, str]:
        timestamp = headers.get("kizuna-webhook-timestamp", "")
        signature = headers.get("kizuna-webhook-signature", "")
        if not timestamp.isdigit():
            return False, "no timestamp"
        if abs(time.time() + self.clock_skew_seconds - int(timestamp)) > TOLERANCE_SECONDS:
            return False, "stale timestamp"
        expected = "v1=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return False, "bad signature"
        return True, "ok"

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r.json for r in self.received if r.verified and (name is None or r.json["event"] == name)]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            ok, reason = receiver.verify(headers, body)
            with receiver.lock:
                first = not receiver.received
                status = 401 if not ok else (receiver.answers.pop(0) if receiver.answers else 200)
                receiver.received.append(Received(headers, body, ok, status))
            receiver.arrived.set()
            if first and receiver.hold is not None:
                receiver.hold.wait(timeout=30)
            payload = json.dumps({"ok": ok, "reason": reason}).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the sender went away while we held the answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def running_receiver(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/kizuna"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
