"""Search when Meilisearch fails: database fallback, convergence after a restart, and a
reindex that keeps answering while it rebuilds."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server import jobs
from server.devtools import meili
from server.policy import ANONYMOUS
from server.search import engine
from server.search.query import search
from server.search.sync import ensure_index, reindex, wait_until_idle
from tests.conftest import _free_port
from tests.search.conftest import NoteType, index_notes

KEY = "kizuna-resilience-test-key"


@dataclass
class OwnMeili:
    """A Meilisearch process this test may stop and start again on the same port and data."""

    binary: Path
    port: int
    data: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = meili.command(self.binary, f"127.0.0.1:{self.port}", self.data, KEY)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            import time

            time.sleep(0.05)
        raise RuntimeError("Meilisearch did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_meili(tmp_path: Path, meili_server: str) -> Iterator[OwnMeili]:
    binary = meili.find_binary()
    assert binary is not None
    server = OwnMeili(binary, _free_port(), tmp_path / "meili")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def pointed(own_meili: OwnMeili, notes: NoteType) -> AsyncIterator[NoteType]:
    """Point this process's Meilisearch clients at `own_meili` for the test."""
    from meilisearch_python_sdk import AsyncClient

    loop = asyncio.get_running_loop()
    saved = engine._client, engine._search_client
    engine._client = (loop, AsyncClient(own_meili.url, KEY, custom_headers={"Accept-Encoding": "identity"}))
    engine._search_client = None
    await ensure_index(notes)
    yield notes
    engine._client, engine._search_client = saved


def _notes(notes: NoteType) -> None:
    notes.put(1, "Exporting invoices", "Download every invoice as a PDF.")
    notes.put(2, "Invoice roadmap", "Signed-in customers read the invoice roadmap.", audience=["signed_in"])
    notes.put(3, "Timeline basics", "Drag bars on the timeline.")


async def test_database_fallback_keeps_the_audience_rule(pointed: NoteType, own_meili: OwnMeili) -> None:
    _notes(pointed)
    await index_notes(pointed)
    own_meili.stop()
    result = await search(ANONYMOUS, "invoice", types=["note"])
    assert result.degraded
    assert [h.pk for h in result.hits] == [1] and result.total == 1
    assert "<mark>" in str(result.hits[0].snippet)


async def test_index_converges_after_meilisearch_returns(pointed: NoteType, own_meili: OwnMeili) -> None:
    _notes(pointed)
    await index_notes(pointed)
    own_meili.stop()
    pointed.put(4, "Invoice reminders", "Automatic invoice reminders for overdue payments.")
    pointed.docs[1] = []  # unpublished while search was down
    from server.db import atomic
    from server.search.sync import enqueue_sync

    async with atomic():
        await enqueue_sync("note", 4)
        await enqueue_sync("note", 1)
    await jobs.run_pending("test")  # fails: Meilisearch is down, the jobs wait for a retry
    queued = await jobs.Job.select(jobs.Job.attempts, jobs.Job.status).where(
        (jobs.Job.kind == "search.sync") & (jobs.Job.status != jobs.DONE)
    )
    assert queued and all(r["status"] == jobs.QUEUED and r["attempts"] == 1 for r in queued)

    own_meili.start()
    await jobs.Job.update({jobs.Job.run_at: jobs.now()}).where(jobs.Job.status == jobs.QUEUED)  # time passes
    await jobs.run_pending("test")
    await wait_until_idle()
    assert await jobs.Job.count().where(jobs.Job.status != jobs.DONE) == 0
    result = await search(ANONYMOUS, "invoice", types=["note"])
    assert not result.degraded
    assert sorted(h.pk for h in result.hits) == [4]


async def test_reindex_swaps_in_without_an_empty_moment(pointed: NoteType) -> None:
    for pk in range(1, 401):
        pointed.put(pk, f"Invoice topic {pk}", f"Everything about invoices, part {pk}.")
    await index_notes(pointed)
    totals: list[int] = []
    rebuild = asyncio.create_task(reindex("note"))
    while not rebuild.done():
        totals.append((await search(ANONYMOUS, "invoice", types=["note"])).total)
        await asyncio.sleep(0.01)
    assert await rebuild == 400
    totals.append((await search(ANONYMOUS, "invoice", types=["note"])).total)
    assert len(totals) > 3 and min(totals) == 400
    indexes = await engine.client().get_indexes()
    assert [i.uid for i in indexes or []] == ["note"]


def test_own_meili_is_not_the_session_server(own_meili: OwnMeili) -> None:
    assert own_meili.url != os.environ["MEILI_URL"]
