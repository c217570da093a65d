"""Keeping Meilisearch in step with the database.

Services call `enqueue_sync(type, pk)` inside their transaction (the outbox). The worker's
`search.sync` job rebuilds that object's documents and replaces them in the index. While
Meilisearch is down the job keeps retrying (short backoff, never dead), so the index converges
by itself when it returns. `reindex()` rebuilds an index from the database into a fresh index
and swaps it in atomically, so search keeps answering during a rebuild.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from meilisearch_python_sdk.errors import MeilisearchApiError

from server import jobs
from server.i18n import LOCALES
from server.search import registry
from server.search.engine import client, ensure_index

SYNC_KIND = "search.sync"
SETTINGS_KIND = "search.settings"
TASK_TIMEOUT_MS = 120_000
BATCH = 1000


async def enqueue_sync(doc_type: str, pk: int) -> None:
    """Call inside the writing transaction: the change reaches search after commit."""
    registry.get(doc_type)  # fail fast on a typo, before commit
    await jobs.enqueue(SYNC_KIND, {"type": doc_type, "pk": pk}, max_attempts=jobs.FOREVER)


async def enqueue_settings_update() -> None:
    await jobs.enqueue(SETTINGS_KIND, {}, max_attempts=jobs.FOREVER)


async def sync_objects(doc_type_name: str, pks: list[int], *, wait: bool = False) -> None:
    """Replace the documents of these objects in their index. Meilisearch keeps accepted tasks
    on disk and applies them in order, so once both tasks are accepted the job is done."""
    doc_type = registry.get(doc_type_name)
    docs = await doc_type.build(pks)
    index = client().index(doc_type.name)
    payload = [doc.to_meili() for per_pk in docs.values() for doc in per_pk]
    # Document ids are type-pk-locale, so replacing is "add what exists, delete the other locales":
    # no delete-by-filter, and consecutive additions batch together inside Meilisearch.
    present = {doc["id"] for doc in payload}
    absent = [f"{doc_type.name}-{pk}-{locale}" for pk in pks for locale in LOCALES]
    absent = [doc_id for doc_id in absent if doc_id not in present]
    tasks = []
    if payload:
        tasks.append(await index.add_documents(payload, primary_key="id"))
    if absent:
        tasks.append(await index.delete_documents(absent))
    if wait:
        for task in tasks:
            await client().wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS, raise_for_status=True)


# Each indexing batch has a fixed cost in Meilisearch besides its documents, so under a stream of
# changes the worker gathers them for a moment between small batches (a full claim goes on at once);
# a change is still searchable within about two seconds.
GATHER_SECONDS = 1.0


@jobs.batch_handler(SYNC_KIND, retry_cap_seconds=15, gather_seconds=GATHER_SECONDS)
async def _sync_jobs(batch: list[jobs.ClaimedJob]) -> None:
    """Every sync claimed together goes out as one replacement per type."""
    by_type: dict[str, set[int]] = {}
    for job in batch:
        by_type.setdefault(job.payload["type"], set()).add(int(job.payload["pk"]))
    for doc_type, pks in by_type.items():
        try:
            await sync_objects(doc_type, sorted(pks))
        except MeilisearchApiError as exc:
            if exc.code == "index_not_found":
                await ensure_index(registry.get(doc_type))
            raise


async def wait_until_idle(timeout_seconds: float = 60) -> None:
    """Wait until Meilisearch has applied every task accepted so far (tests, benchmarks).
    Tasks run in the order they were accepted, so waiting for the newest is enough."""
    latest = await client().get_tasks(limit=1)  # type: ignore[call-arg]
    if latest.results:
        await client().wait_for_task(latest.results[0].uid, timeout_in_ms=int(timeout_seconds * 1000))


@jobs.handler(SETTINGS_KIND, retry_cap_seconds=15)
async def _settings_job(job: jobs.ClaimedJob) -> None:
    for doc_type in registry.all_types():
        await ensure_index(doc_type)


async def ensure_indexes() -> None:
    for doc_type in registry.all_types():
        await ensure_index(doc_type)


async def reindex(doc_type_name: str, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild one index from the database into a fresh index, then swap it in."""
    doc_type = registry.get(doc_type_name)
    meili = client()
    fresh = f"{doc_type.name}_rebuild_{int(time.time())}"
    await ensure_index(doc_type, fresh)
    index = meili.index(fresh)
    count, tasks = 0, []
    async for pks in doc_type.all_pks():
        docs = await doc_type.build(pks)
        payload = [doc.to_meili() for per_pk in docs.values() for doc in per_pk]
        if payload:
            tasks.append(await index.add_documents(payload, primary_key="id"))
        count += len(payload)
        if progress:
            progress(count)
    for task in tasks:
        await meili.wait_for_task(task.task_uid, timeout_in_ms=None, raise_for_status=True)
    await ensure_index(doc_type)  # the live index must exist to be swapped
    swap = await meili.swap_indexes([(doc_type.name, fresh)])
    await meili.wait_for_task(swap.task_uid, timeout_in_ms=TASK_TIMEOUT_MS, raise_for_status=True)
    await meili.wait_for_task((await meili.index(fresh).delete()).task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
    return count


async def reindex_all(stream=sys.stderr) -> dict[str, int]:  # noqa: ANN001
    counts = {}
    for name in registry.names():
        started = time.monotonic()

        def show(done: int, name: str = name, started: float = started) -> None:
            rate = done / max(time.monotonic() - started, 0.001)
            stream.write(f"\r  {name}: {done} documents ({rate:.0f}/s)")
            stream.flush()

        counts[name] = await reindex(name, show)
        stream.write(f"\r  {name}: {counts[name]} documents, swapped in after {time.monotonic() - started:.1f} s\n")
    return counts
