"""A short-lived, per-process cache of what many forum readers share: rendered pages of posts,
thread rows and thread lists (keys carry the reader's scope, so one audience's entry is never
served to another).

A thread page's posts are the same HTML for every reader of one audience group and locale (no
per-user controls are baked in: forum.js reveals them), so one render serves every reader for
TTL_SECONDS. Every forum write clears this process's cache when it commits, so the writer sees
the change at once; other processes within TTL_SECONDS (and open pages at once, over realtime).
Readers that miss together share one load, so an expiring entry under load costs one render.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

TTL_SECONDS = 2.0
MAX_ENTRIES = 2048

_entries: dict[Hashable, tuple[float, Any]] = {}
_loading: dict[Hashable, tuple[int, asyncio.Task[Any]]] = {}
_generation = 0  # bumped by clear(): a load that began before a write must not be kept after it


async def cached(key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
    """The value for `key`, loaded when missing or old. Exceptions (e.g. NotFound) are not kept."""
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


async def _load(key: Hashable, load: Callable[[], Awaitable[Any]], generation: int) -> Any:
    started = time.monotonic()
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
