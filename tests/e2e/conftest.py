"""Browser fixtures: the app as real processes (web, worker, SMTP sink) on free ports, and a
headless Debian Chromium driven by Playwright's sync API that records console problems.

The processes share the test database (DATABASE_URL from tests/conftest.py) and get their own
DATA_DIR, so the sink's mail lands where the test can read it. `running_app` starts them with
other settings (fault tests: their own Meilisearch, a tiny disk).

When a browser test fails, its journey steps (`step(page, name)`), every open page and the app's
logs are saved under test-results/ (see the hook at the end).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
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
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page

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


@contextlib.contextmanager
def running_app(
    data_dir: Path,
    env: dict[str, str] | None = None,
    commands: tuple[str, ...] = ("web", "worker", "mailsink"),
) -> Iterator[LiveServer]:
    """`serve`, `worker` and `mailsink` (or the chosen few) as subprocesses with DATA_DIR at
    `data_dir` and `env` on top of ours; ready once /healthz sees the database (and the worker,
    when one runs). Fault tests use it to run the app against their own Meilisearch or disk."""
    data_dir.mkdir(parents=True, exist_ok=True)
    web_port, smtp_port = _free_port(), _free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    full_env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "BASE_URL": base_url,
        # One explicit key for every process, rather than whichever first writes DATA_DIR/secret_key.
        "SECRET_KEY": secrets.token_urlsafe(32),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    arguments = {
        "web": ["serve", "--host", "127.0.0.1", "--port", str(web_port)],
        "worker": ["worker"],
        "mailsink": ["mailsink", "--listen", f"127.0.0.1:{smtp_port}"],
    }
    server = LiveServer(base_url, data_dir / "mail", {name: data_dir / f"{name}.log" for name in commands})
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in commands:
            with server.logs[name].open("wb") as log:
                processes.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
                        [sys.executable, "-m", "server", *arguments[name]],
                        cwd=ROOT,
                        env=full_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            health = _health(base_url)
            if health and health.get("db") == "ok" and ("worker" not in commands or health.get("worker") == "ok"):
                break
            exited = [name for name, p in zip(commands, processes, strict=True) if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                pytest.fail(f"live server not ready (exited: {exited}, health: {health})\n{server.log_tails()}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(processes)


@pytest.fixture(scope="module")
def live_server(database: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole app (web, worker, SMTP sink) for the module's tests."""
    with running_app(tmp_path_factory.mktemp("live-data")) as server:
        yield server


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


@contextlib.contextmanager
def launched(chromium: Path) -> Iterator[Browser]:
    """A headless Debian Chromium, known to the failure hook (its pages are saved on failure)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        _OPEN_BROWSERS.append(browser)
        try:
            yield browser
        finally:
            _OPEN_BROWSERS.remove(browser)
            browser.close()


@pytest.fixture
def browser_page(chromium: Path) -> Iterator[BrowserPage]:
    """A fresh headless Chromium page. Sync API: the test must be a plain `def`."""
    with launched(chromium) as browser:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems = ConsoleProblems()
        page.on("console", problems.on_console)
        page.on("pageerror", problems.on_page_error)
        yield BrowserPage(page, problems)


# Artifacts of a failed browser test ----------------------------------------------------------
#
# `step(page, "name")` keeps a full-page screenshot of each step of a journey in memory. When a
# browser test fails, the hook below writes them, a screenshot of every page still open and the
# app's log tails into test-results/<module>-<test>/ (gitignored; CI keeps it as an artifact).
# Passing tests leave nothing behind.

RESULTS_DIR = Path(os.environ.get("TEST_RESULTS_DIR") or ROOT / "test-results")
_OPEN_BROWSERS: list[Browser] = []
_STEPS: list[tuple[str, bytes]] = []


def step(page: Page, name: str) -> None:
    """Remember what `page` shows now as the next step of the journey. (`caret="initial"`:
    Playwright hides the caret with inline styles otherwise, which htmx then copies while
    swapping and the CSP rightly reports.)"""
    _STEPS.append((f"{len(_STEPS) + 1:02d}-{_slug(name)}", page.screenshot(full_page=True, caret="initial")))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120] or "x"


def results_folder(item: pytest.Item) -> Path:
    module, _, name = item.nodeid.rpartition("::")
    return RESULTS_DIR / _slug(f"{Path(module).stem}-{name}")


def _save_artifacts(item: pytest.Item) -> Path:
    folder = results_folder(item)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, png in _STEPS:
        (folder / f"step-{name}.png").write_bytes(png)
    urls = []
    for b, browser in enumerate(_OPEN_BROWSERS):
        for c, context in enumerate(browser.contexts):
            for n, page in enumerate(context.pages):
                label = f"open-page-b{b}c{c}p{n}"
                urls.append(f"{label}: {page.url}")
                with contextlib.suppress(Exception):  # a crashed page must not hide the test's own error
                    page.screenshot(path=str(folder / f"{label}.png"), full_page=True, timeout=5_000)
    (folder / "pages.txt").write_text("\n".join(urls) + "\n")
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, LiveServer):
            (folder / "server-logs.txt").write_text(value.log_tails(200))
    return folder


def pytest_runtest_setup(item: pytest.Item) -> None:
    _STEPS.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    # "call" runs before fixture teardown, so the test's pages are still open here.
    if report.failed and report.when in ("setup", "call") and item.get_closest_marker("browser"):
        try:
            folder = _save_artifacts(item)
        except Exception as exc:  # noqa: BLE001 - saving artifacts must never mask the failure
            report.sections.append(("browser artifacts", f"could not be saved: {exc!r}"))
        else:
            report.sections.append(("browser artifacts", f"screenshots and logs in {folder}"))
    if report.when == "teardown":
        _STEPS.clear()
    return report
