"""A short-lived, per-process cache for what many readers share (rendered pages, rows).

Keys must carry the reader's scope, so one audience's entry is never served to another. A
feature clears its cache when one of its writes commits, so the writer sees the change at once;
other processes see it within `ttl_seconds`. Readers that miss together share one load, so an
expiring entry under load costs one load, not one per waiting request; a load that began before
a `clear()` is not kept after it. Exceptions (e.g. NotFound) are never kept.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from server.db import engine

T = TypeVar("T")


class ShortCache:
    _every: weakref.WeakSet[ShortCache] = weakref.WeakSet()

    @classmethod
    def clear_all(cls) -> None:
        """Every cache of this process (tests, between data sets)."""
        for cache in list(cls._every):
            cache.clear()

    def __init__(self, ttl_seconds: float, max_entries: int, *, one_connection: bool = False) -> None:
        """`one_connection`: run each load in one read transaction (one connection for all of its
        queries, which on SQLite saves a connection per query)."""
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.one_connection = one_connection
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[Hashable, tuple[int, asyncio.Task[Any]]] = {}
        self._generation = 0
        ShortCache._every.add(self)

    async def cached(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        running = self._loading.get(key)
        if running is None or running[0] != self._generation:
            task = asyncio.ensure_future(self._load(key, load, self._generation))
            running = (self._generation, task)
            self._loading[key] = running
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(running[1])

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def _forget(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if key in self._loading and self._loading[key][1] is task:
            del self._loading[key]

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[T]], generation: int) -> T:
        started = time.monotonic()
        if self.one_connection:
            async with engine().transaction():
                value = await load()
        else:
            value = await load()
        if generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (started + self.ttl_seconds, value)
        return value
