"""Sync jobs claimed together reach Meilisearch as one batch, and fail and retry together."""

from __future__ import annotations

from server import jobs
from server.db import atomic
from server.policy import ANONYMOUS
from server.search.engine import client
from server.search.query import search
from server.search.sync import enqueue_sync, wait_until_idle
from tests.search.conftest import NoteType


async def _latest_task_uid() -> int:
    tasks = await client().get_tasks(limit=1)  # type: ignore[call-arg]
    return tasks.results[0].uid if tasks.results else -1


async def test_claimed_syncs_go_out_as_one_batch(note_index: NoteType) -> None:
    for pk in range(1, 31):
        note_index.put(pk, f"Batch note {pk}", "Everything about batching.")
    note_index.docs[30] = []  # one of them is no longer searchable
    async with atomic():
        for pk in range(1, 31):
            await enqueue_sync("note", pk)
    before = await _latest_task_uid()
    assert await jobs.run_pending("test") == 30
    await wait_until_idle()
    assert await _latest_task_uid() - before == 2  # one addition, one deletion for all 30 notes
    assert await jobs.Job.count().where(jobs.Job.status == jobs.DONE) == 30
    result = await search(ANONYMOUS, "batching", types=["note"], limit=50)
    assert result.total == 29
