"""Fault: Meilisearch is killed (SIGKILL) while the worker is indexing, and restarted on the same
data directory. Afterwards every document is searchable through the app.

The app (web and worker processes) runs against a Meilisearch process of this test's own. A few
hundred help articles are published in one transaction, so the worker is still pushing them (and
Meilisearch still applying them) when the kill comes; more are published while it is down. The
worker marks a sync job done once Meilisearch has accepted its task, so this also proves that
accepted tasks survive the crash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.db import atomic
from server.devtools import meili
from tests.conftest import _free_port
from tests.e2e.conftest import LiveServer, running_app
from tests.factories import make_user
from tests.kb.factories import make_article, make_category, make_section

FIRST_WAVE = 300  # published together before the kill
WHILE_DOWN = 20  # published while Meilisearch is down
CONVERGE_SECONDS = 90.0


@dataclass
class MeiliProcess:
    binary: Path
    port: int
    data: Path
    key: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = meili.command(self.binary, f"127.0.0.1:{self.port}", self.data, self.key)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        pytest.fail("Meilisearch did not start within 30 s")

    def kill(self) -> None:
        """SIGKILL by PID: no chance to flush or shut down cleanly."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def get(self, path: str) -> dict:
        response = httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.key}"}, timeout=5)
        return response.json() if response.status_code == 200 else {}


@pytest.fixture
def own_meili(tmp_path: Path, meili_server: str) -> Iterator[MeiliProcess]:
    binary = meili.find_binary()
    assert binary is not None  # meili_server skipped or failed already otherwise
    server = MeiliProcess(binary, _free_port(), tmp_path / "meili", os.environ["MEILI_MASTER_KEY"])
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def app_on_own_meili(tmp_path: Path, own_meili: MeiliProcess) -> Iterator[LiveServer]:
    with running_app(tmp_path / "data", env={"MEILI_URL": own_meili.url}, commands=("web", "worker")) as server:
        yield server


def _title(n: int) -> str:
    return f"Restart check kzr{n:04d}"


def _found(base_url: str, n: int) -> bool:
    url = f"{base_url}/api/v1/search?" + urllib.parse.urlencode({"q": f"kzr{n:04d}", "types": "kb"})
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our http URL
        body = json.loads(response.read())
    # Typo tolerance brings the neighbours too: the exact one must come first.
    return not body["degraded"] and bool(body["hits"]) and body["hits"][0]["title"] == _title(n)


async def test_meilisearch_killed_while_indexing_then_restarted_loses_nothing(
    own_meili: MeiliProcess, app_on_own_meili: LiveServer
) -> None:
    editor = await make_user("agent", name="Ines Indexer", email="ines.restart@example.test")
    section = await make_section(editor, await make_category(editor, "restart-check"), "restart-check")

    async with atomic():  # one commit: the worker sees them all at once
        for n in range(FIRST_WAVE):
            await make_article(editor, section, _title(n), f"Article kzr{n:04d} of the restart check.", slug=f"r{n}")

    # Kill as soon as indexing is under way: documents arriving, not all of them applied yet.
    deadline = time.monotonic() + 30
    indexed = 0
    while time.monotonic() < deadline:
        indexed = own_meili.get("/indexes/kb/stats").get("numberOfDocuments", 0)
        if indexed:
            break
        await asyncio.sleep(0.02)
    own_meili.kill()
    assert 0 < indexed < FIRST_WAVE, f"indexing was not under way at the kill ({indexed} documents)"

    for n in range(FIRST_WAVE, FIRST_WAVE + WHILE_DOWN):
        await make_article(editor, section, _title(n), f"Article kzr{n:04d} of the restart check.", slug=f"r{n}")
    await asyncio.sleep(1)  # the worker meets the dead server and schedules retries
    own_meili.start()  # same port, same data directory

    total = FIRST_WAVE + WHILE_DOWN
    deadline = time.monotonic() + CONVERGE_SECONDS
    while own_meili.get("/indexes/kb/stats").get("numberOfDocuments", 0) < total:
        assert time.monotonic() < deadline, f"the index never converged\n{app_on_own_meili.log_tails()}"
        await asyncio.sleep(0.5)
    missing = [n for n in range(total) if not await asyncio.to_thread(_found, app_on_own_meili.base_url, n)]
    assert missing == [], f"not searchable after the restart: {missing}"
