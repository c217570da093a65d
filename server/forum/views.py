"""Thread view counts without a database write per page view (the Help Center's approach):
counted in memory, written in one transaction at most every FLUSH_SECONDS after a response."""

from __future__ import annotations

import logging
import time
from collections import Counter

from server.db import atomic
from server.forum.tables import ForumThread

log = logging.getLogger("kizuna.forum.views")

FLUSH_SECONDS = 10.0

_pending: Counter[int] = Counter()
_last_flush = time.monotonic()


def record(thread_id: int) -> None:
    _pending[thread_id] += 1


def pending(thread_id: int) -> int:
    return _pending.get(thread_id, 0)


async def flush_if_due() -> int:
    if not _pending or time.monotonic() - _last_flush < FLUSH_SECONDS:
        return 0
    return await flush()


async def flush() -> int:
    global _last_flush
    _last_flush = time.monotonic()
    batch = dict(_pending)
    _pending.clear()
    if not batch:
        return 0
    try:
        async with atomic():
            for thread_id, views in sorted(batch.items()):
                await ForumThread.update({ForumThread.view_count: ForumThread.view_count + views}).where(
                    ForumThread.id == thread_id
                )
    except Exception:
        log.exception("could not write thread view counts; keeping them for the next flush")
        _pending.update(batch)
        return 0
    return len(batch)


def reset() -> None:
    global _last_flush
    _pending.clear()
    _last_flush = time.monotonic()
