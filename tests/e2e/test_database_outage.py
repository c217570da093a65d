"""The database becomes unreachable under a running web process: pages answer 503 with a clear
message and no trace, the health check says so, and service resumes when the database is back.

PostgreSQL: the web process gets a database of its own, which is closed to new connections and
has its sessions terminated (as an operator taking it down would), then reopened. SQLite: the
database file's folder is moved away and back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from server.settings import ROOT
from tests.conftest import _free_port
from tests.e2e.conftest import _health, _stop

# ruff: noqa: S310 - our own http URLs


def _psql(url: str, sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def web_process(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A `serve` process whose database can be taken away: yields (base URL, outage control)."""
    url = os.environ["DATABASE_URL"]
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    cleanup = None
    if url.startswith("postgres"):
        # A database of its own, closed to connections (and its sessions ended) during the outage.
        parsed = urlparse(url)
        name = f"{parsed.path.lstrip('/')}_outage"
        admin = url.replace(parsed.path, "/postgres")
        _psql(admin, f'DROP DATABASE IF EXISTS "{name}"; ')
        _psql(admin, f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = url.replace(parsed.path, f"/{name}")
        subprocess.run([sys.executable, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603

        def take_away() -> None:
            close = f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'
            end_sessions = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608
            _psql(admin, close)  # committed first, so the sessions ended next cannot reconnect in between
            _psql(admin, end_sessions)

        outage = (take_away, lambda: _psql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        cleanup = lambda: _psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: E731
    else:
        database = Path(url.removeprefix("sqlite:///"))
        copy = tmp_path / "db" / "kizuna.sqlite3"
        copy.parent.mkdir()
        # The migrated test database, so the outage touches no other test. Copied through SQLite's
        # backup API: opening and closing the file ourselves (shutil) would drop the POSIX locks
        # this process's open connections hold on it, and SQLite's WAL would then lose writes.
        with (
            contextlib.closing(sqlite3.connect(database)) as source,
            contextlib.closing(sqlite3.connect(copy)) as target,
        ):
            source.backup(target)
        env["DATABASE_URL"] = f"sqlite:///{copy}"
        aside = tmp_path / "aside"
        outage = (lambda: copy.parent.rename(aside), lambda: aside.rename(copy.parent))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while (health := _health(base)) is None or health.get("db") != "ok":
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "web.log").read_text()
            time.sleep(0.2)
        yield base, outage
    finally:
        _stop([process])
        log.close()
        if cleanup:
            cleanup()


def test_database_outage_is_a_clear_503_and_service_resumes(web_process: tuple[str, object]) -> None:
    base, (take_away, bring_back) = web_process  # type: ignore[misc]
    assert _get(f"{base}/help")[0] == 200

    take_away()
    deadline = time.monotonic() + 10
    while (status_body := _get(f"{base}/help"))[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.2)  # the help center's page cache may answer for another two seconds
    status, body = status_body
    assert status == 503, body[:500]
    assert "unreachable" in body
    assert "Traceback" not in body and "asyncpg" not in body and "sqlite3" not in body
    status, body = _get(f"{base}/api/v1/kb/articles")
    assert status == 503 and body.startswith("{"), body[:300]
    status, body = _get(f"{base}/healthz")
    assert status == 503 and '"db":"down"' in body.replace(" ", ""), body

    bring_back()
    deadline = time.monotonic() + 15
    while _get(f"{base}/help")[0] != 200:  # a pooled connection may fail once more, then recovers
        assert time.monotonic() < deadline, "the app did not recover after the database came back"
        time.sleep(0.2)
