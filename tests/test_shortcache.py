"""server/shortcache.py: a load reads outside the caller's transaction, so an entry holds only
committed rows, and a caller that goes away mid-load fails none of the readers sharing it."""

from __future__ import annotations

import asyncio

import pytest

from server import jobs
from server.db import atomic
from server.jobs import Job
from server.shortcache import ShortCache


async def test_a_load_inside_a_write_transaction_sees_only_committed_rows() -> None:
    cache = ShortCache(ttl_seconds=60, max_entries=10)
    await jobs.enqueue("test.cache", {"n": 1})

    async def count() -> int:
        return await Job.count()

    with pytest.raises(RuntimeError):
        async with atomic():
            await jobs.enqueue("test.cache", {"n": 2})
            assert await Job.count() == 2  # the transaction sees its own row
            assert await cache.cached("jobs", count) == 1  # the cache does not keep it
            raise RuntimeError("rolled back")
    assert await cache.cached("jobs", count) == 1


async def test_a_reader_cancelled_mid_load_fails_no_one_sharing_it() -> None:
    cache = ShortCache(ttl_seconds=60, max_entries=10)
    started, may_finish = asyncio.Event(), asyncio.Event()

    async def slow_count() -> int:
        started.set()
        await may_finish.wait()
        return await Job.count()

    async def reader_in_a_transaction() -> int:
        async with atomic():
            await jobs.enqueue("test.cache", {"n": 1})
            return await cache.cached("slow", slow_count)

    first = asyncio.create_task(reader_in_a_transaction())
    await asyncio.wait_for(started.wait(), timeout=10)
    second = asyncio.create_task(cache.cached("slow", slow_count))
    await asyncio.sleep(0)
    first.cancel()  # its transaction rolls back while the shared load still runs
    with pytest.raises(asyncio.CancelledError):
        await first
    may_finish.set()
    assert await asyncio.wait_for(second, timeout=10) == 0
    assert await Job.count() == 0
