"""The page cache: shared loads, expiry, and no stale value after a write in this process."""

from __future__ import annotations

import asyncio

from server.kb import cache


async def test_readers_that_miss_together_share_one_load() -> None:
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    results = await asyncio.gather(*(cache.cached("shared", load) for _ in range(5)))
    assert results == [1] * 5 and calls == 1
    assert await cache.cached("shared", load) == 1  # fresh: no new load


async def test_entries_expire_and_clear_forgets_loads_begun_before_it(monkeypatch) -> None:  # noqa: ANN001
    values = iter(range(10))

    async def load() -> int:
        return next(values)

    assert await cache.cached("k", load) == 0
    monkeypatch.setattr(cache.PAGES, "ttl_seconds", 0.0)
    cache.clear()
    assert await cache.cached("k", load) == 1
    assert await cache.cached("k", load) == 2  # expired at once

    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "before the write"

    async def fresh() -> str:
        return "after the write"

    monkeypatch.setattr(cache.PAGES, "ttl_seconds", 60.0)
    early = asyncio.ensure_future(cache.cached("page", slow))
    await asyncio.sleep(0)
    cache.clear()  # a write commits while the early load is running
    assert await cache.cached("page", fresh) == "after the write"
    release.set()
    assert await early == "before the write"
    assert await cache.cached("page", slow) == "after the write"  # the early load was not stored
