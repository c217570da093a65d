"""Fixed-window rate limits for auth and posting; Redis-backed when REDIS_URL is set.

`hit()` counts an attempt and returns how many seconds to wait when over the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from litestar.exceptions import TooManyRequestsException

from server.i18n import _
from server.settings import get_settings


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window_seconds: int


LOGIN = Limit("login", attempts=10, window_seconds=300)
SIGNUP = Limit("signup", attempts=5, window_seconds=3600)
RESET = Limit("reset", attempts=5, window_seconds=3600)
TOKEN = Limit("token", attempts=10, window_seconds=300)
ORG_MEMBERS = Limit("org_members", attempts=30, window_seconds=3600)  # per org admin: no bulk probing


class _MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    async def incr(self, key: str, ttl: int) -> int:
        moment = time.monotonic()
        if len(self._counts) > 50_000:  # drop expired windows now and then
            self._counts = {k: v for k, v in self._counts.items() if v[1] > moment}
        count, expires = self._counts.get(key, (0, moment + ttl))
        if expires <= moment:
            count, expires = 0, moment + ttl
        self._counts[key] = (count + 1, expires)
        return count + 1

    def reset(self) -> None:
        self._counts.clear()


class _RedisCounter:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def incr(self, key: str, ttl: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, ttl, nx=True)
            count, _ok = await pipe.execute()
        return int(count)

    def reset(self) -> None:  # tests use distinct keys per run instead
        pass


_counter: _MemoryCounter | _RedisCounter | None = None


def counter() -> _MemoryCounter | _RedisCounter:
    global _counter
    if _counter is None:
        url = get_settings().redis_url
        _counter = _RedisCounter(url) if url else _MemoryCounter()
    return _counter


async def hit(limit: Limit, identity: str) -> None:
    """Count one attempt by `identity`; raise 429 with Retry-After when over the limit."""
    window = int(time.time()) // limit.window_seconds
    key = f"kizuna:rl:{limit.name}:{identity}:{window}"
    count = await counter().incr(key, limit.window_seconds)
    if count > limit.attempts:
        retry_after = limit.window_seconds - int(time.time()) % limit.window_seconds
        raise TooManyRequestsException(
            detail=_("Too many attempts. Please wait %(seconds)s seconds and try again.", seconds=retry_after),
            headers={"Retry-After": str(retry_after)},
        )
