"""Browser fixtures: the app as real processes (web, worker, SMTP sink) on free ports, and a
headless Debian Chromium driven by Playwright's sync API that records console problems.

The processes share the test database (DATABASE_URL from tests/conftest.py) and get their own
DATA_DIR, so the sink's mail lands where the test can read it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from server.settings import ROOT
from tests.conftest import _free_port

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_SECONDS = 30.0


def _unavailable(reason: str) -> None:
    """Without a browser: skip on a developer machine, fail in CI where one must exist."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@dataclass
class LiveServer:
    base_url: str
    mail_dir: Path
    logs: dict[str, Path]

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(parts)


def _health(base_url: str) -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310 - our http URL
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def live_server(database: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`serve`, `worker` and `mailsink` as subprocesses; ready once /healthz sees db and worker."""
    data_dir = tmp_path_factory.mktemp("live-data")
    web_port, smtp_port = _free_port(), _free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "BASE_URL": base_url,
        # One explicit key for every process, rather than whichever first writes DATA_DIR/secret_key.
        "SECRET_KEY": secrets.token_urlsafe(32),
        "PYTHONUNBUFFERED": "1",
    }
    commands = {
        "web": ["serve", "--host", "127.0.0.1", "--port", str(web_port)],
        "worker": ["worker"],
        "mailsink": ["mailsink", "--listen", f"127.0.0.1:{smtp_port}"],
    }
    server = LiveServer(base_url, data_dir / "mail", {name: data_dir / f"{name}.log" for name in commands})
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in commands.items():
            with server.logs[name].open("wb") as log:
                processes.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
                        [sys.executable, "-m", "server", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            health = _health(base_url)
            if health and health.get("db") == "ok" and health.get("worker") == "ok":
                break
            exited = [name for name, p in zip(commands, processes, strict=True) if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                pytest.fail(f"live server not ready (exited: {exited}, health: {health})\n{server.log_tails()}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(processes)


@dataclass
class ConsoleProblems:
    """Console errors (CSP violations are reported there) and uncaught page errors."""

    messages: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.messages.append(f"console.{message.type}: {message.text} @ {message.location.get('url')}")

    def on_page_error(self, error: Error) -> None:
        self.messages.append(f"pageerror: {error.message}")


@dataclass
class BrowserPage:
    page: Page
    problems: ConsoleProblems


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Session-scoped so a missing browser skips before any server process starts."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed")
    return CHROMIUM


@pytest.fixture
def browser_page(chromium: Path) -> Iterator[BrowserPage]:
    """A fresh headless Chromium page. Sync API: the test must be a plain `def`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            problems = ConsoleProblems()
            page.on("console", problems.on_console)
            page.on("pageerror", problems.on_page_error)
            yield BrowserPage(page, problems)
        finally:
            browser.close()
