"""Real server processes for the realtime tests: uvicorn serving tests/realtime/app.py (the real
app plus a test-only topic kind), on the test database, reached with the `websockets` client."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.settings import ROOT
from tests.conftest import _free_port
from tests.e2e.conftest import _stop, browser_page, chromium  # noqa: F401 - the browser fixtures, for test_browser.py

START_TIMEOUT_SECONDS = 30.0


@dataclass
class WebProcess:
    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/live"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - our own http URL
            self.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def publish(self, channel: str, event: str, payload: dict[str, Any], **flags: bool) -> int | None:
        return self.call(
            "POST", "/api/_test/publish", {"channel": channel, "event": event, "payload": payload, **flags}
        )["id"]

    def stats(self, channel: str = "") -> dict[str, Any]:
        return self.call("GET", f"/api/_test/stats?channel={channel}")

    def wait_subscribers(self, channel: str, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stats(channel)["subscribers"] != count:
            assert time.monotonic() < deadline, f"{channel}: not {count} subscribers\n{self.log_tail()}"
            time.sleep(0.05)


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
            return json.loads(response.read()).get("db") == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_web(tmp: Path, name: str, extra_env: dict[str, str] | None = None) -> WebProcess:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATA_DIR": str(tmp),
        "BASE_URL": base_url,
        "SECRET_KEY": "realtime-tests-" + secrets.token_hex(8),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log = tmp / f"{name}.log"
    command = [
        *[sys.executable, "-m", "uvicorn", "tests.realtime.app:app"],
        *["--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        *["--ws-per-message-deflate", "False", "--ws-max-size", "65536"],
    ]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603
    web = WebProcess(base_url, log, process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _ready(base_url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"{name} did not start\n{web.log_tail()}")
        time.sleep(0.1)
    return web


def stop(process: subprocess.Popen[bytes]) -> None:
    _stop([process])


@pytest.fixture(scope="module")
def web(database: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    """One web process on the default backend of the test database (memory on SQLite,
    LISTEN/NOTIFY on PostgreSQL)."""
    process = start_web(tmp_path_factory.mktemp("realtime-web"), "web")
    yield process
    stop(process.process)


async def hello(socket: Any, wait: float = 5.0) -> int:
    """Wait for the "hello" a connection starts with, sent once its channels are subscribed;
    returns the newest event id it names."""
    found = json.loads(await asyncio.wait_for(socket.recv(), wait))
    assert found["type"] == "hello", found
    return int(found["id"])


async def next_frame(socket: Any, wait: float = 5.0) -> dict[str, Any]:
    """The next frame other than the "hello" every connection starts with."""
    while True:
        found = json.loads(await asyncio.wait_for(socket.recv(), wait))
        if found["type"] != "hello":
            return found


async def frames_until_quiet(socket: Any, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every frame (but "hello") that arrives until none has come for `quiet` seconds."""
    found = []
    while True:
        try:
            received = json.loads(await asyncio.wait_for(socket.recv(), quiet))
            if received["type"] != "hello":
                found.append(received)
        except TimeoutError:
            return found
