"""Article view counts without a database write per page view.

Each process counts views in memory and adds them to the articles with one UPDATE per article
(one transaction for the batch) at most every FLUSH_SECONDS, after a response has been sent (the
Help Center router's `after_response` hook), so no reader waits for it. A queued job per view
would still be a write per view, and a write per GET would make readers queue behind SQLite's
single writer. The price: a process that dies loses its last few seconds of counts, which a
view counter can afford.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from server.db import atomic
from server.kb import cache
from server.kb.tables import KbArticle

log = logging.getLogger("kizuna.kb.views")

FLUSH_SECONDS = 10.0

_pending: Counter[int] = Counter()
_last_flush = time.monotonic()


def record(article_id: int) -> None:
    _pending[article_id] += 1


async def flush_if_due() -> int:
    """Write the buffered counts when the last write is FLUSH_SECONDS old."""
    if not _pending or time.monotonic() - _last_flush < FLUSH_SECONDS:
        return 0
    return await flush()


def pending(article_id: int) -> int:
    """Views counted here and not yet written (added to the stored count for display)."""
    return _pending.get(article_id, 0)


async def flush() -> int:
    """Write the buffered counts; returns how many articles were updated."""
    global _last_flush
    _last_flush = time.monotonic()
    batch = dict(_pending)
    _pending.clear()
    if not batch:
        return 0
    try:
        async with atomic() as tx:
            tx.on_commit(cache.clear)  # cached pages show stored count + pending: keep them in step
            for article_id, views in sorted(batch.items()):
                await KbArticle.update({KbArticle.view_count: KbArticle.view_count + views}).where(
                    KbArticle.id == article_id
                )
    except Exception:
        log.exception("could not write view counts; keeping them for the next flush")
        _pending.update(batch)
        return 0
    return len(batch)


def reset() -> None:
    """Forget buffered counts (tests start clean)."""
    global _last_flush
    _pending.clear()
    _last_flush = time.monotonic()
