"""Rate limits count in process memory by default and in Redis when REDIS_URL is set, so
several web processes share one budget."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar.exceptions import TooManyRequestsException

from server import ratelimit

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
async def redis_counter() -> AsyncIterator[ratelimit._RedisCounter]:
    import redis.asyncio as redis

    probe = redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail("Redis must run at 127.0.0.1:6379 in CI")
        pytest.skip("no Redis at 127.0.0.1:6379")
    finally:
        await probe.aclose()
    counter = ratelimit._RedisCounter(REDIS_URL)
    saved = ratelimit._counter
    ratelimit._counter = counter
    yield counter
    ratelimit._counter = saved
    await counter._redis.aclose()


async def test_redis_counts_are_shared_and_expire(redis_counter: ratelimit._RedisCounter) -> None:
    key = f"kizuna:test:{uuid.uuid4().hex}"
    other_process = ratelimit._RedisCounter(REDIS_URL)  # a second web process, same Redis
    assert await redis_counter.incr(key, 60) == 1
    assert await other_process.incr(key, 60) == 2
    ttl = await redis_counter._redis.ttl(key)
    assert 0 < ttl <= 60
    await other_process._redis.aclose()


async def test_limit_raises_429_with_retry_after(redis_counter: ratelimit._RedisCounter) -> None:
    limit = ratelimit.Limit(f"test-{uuid.uuid4().hex}", attempts=3, window_seconds=60)
    for _ in range(3):
        await ratelimit.hit(limit, "ip:203.0.113.9")
    with pytest.raises(TooManyRequestsException) as raised:
        await ratelimit.hit(limit, "ip:203.0.113.9")
    assert 0 < int(raised.value.headers["Retry-After"]) <= 60
    await ratelimit.hit(limit, "ip:198.51.100.7")  # another visitor has their own budget


async def test_memory_counter_window_resets() -> None:
    counter = ratelimit._MemoryCounter()
    assert [await counter.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    counter.reset()
    assert await counter.incr("k", 60) == 1
