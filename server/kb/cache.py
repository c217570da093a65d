"""A short-lived, per-process cache of what Help Center pages read from the database.

An article page would otherwise cost several queries (and, on SQLite, a new connection each).
Every knowledge-base write clears this process's cache when it commits, so the writer sees its
change at once; other processes see it within TTL_SECONDS. Keys carry the reader's visibility
scope, so one audience's entry is never served to another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from server.db import engine

T = TypeVar("T")

TTL_SECONDS = 2.0
MAX_ENTRIES = 4096

_entries: dict[Hashable, tuple[float, Any]] = {}
_loading: dict[Hashable, tuple[int, asyncio.Task[Any]]] = {}
_generation = 0  # bumped by clear(): a load that began before a write must not be served after it


async def cached(key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """The value for `key`, loaded when missing or old. Exceptions (e.g. NotFound) are not cached.

    Readers that miss together share one load, so an expiring entry under load costs one
    set of queries, not one per waiting request.
    """
    hit = _entries.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    running = _loading.get(key)
    if running is None or running[0] != _generation:
        task = asyncio.ensure_future(_load(key, load, _generation))
        running = (_generation, task)
        _loading[key] = running
        task.add_done_callback(lambda done: _forget(key, done))
    return await asyncio.shield(running[1])


def _forget(key: Hashable, task: asyncio.Task[Any]) -> None:
    if key in _loading and _loading[key][1] is task:
        del _loading[key]


async def _load(key: Hashable, load: Callable[[], Awaitable[T]], generation: int) -> T:
    started = time.monotonic()
    async with engine().transaction():  # one connection for all of the load's queries
        value = await load()
    if generation == _generation:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[key] = (started + TTL_SECONDS, value)
    return value


def clear() -> None:
    global _generation
    _generation += 1
    _entries.clear()
