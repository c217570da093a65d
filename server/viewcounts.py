"""View counts without a database write per page view.

Each process counts views in memory and adds them to the rows with one UPDATE per row (one
transaction for the batch) at most every FLUSH_SECONDS, after a response has been sent (the
routers' `after_response` hooks), so no reader waits for it. A queued job per view would still be
a write per view, and a write per GET would make readers queue behind SQLite's single writer. The
price: a process that dies loses its last few seconds of counts, which a view counter can afford.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from piccolo.columns import Integer
from piccolo.table import Table

from server.db import atomic

log = logging.getLogger("kizuna.viewcounts")

FLUSH_SECONDS = 10.0


class ViewCounter:
    def __init__(self, table: type[Table], column: Integer, on_commit: Callable[[], None] | None = None) -> None:
        """`on_commit`: run after a batch is written (e.g. clear a page cache that shows
        stored count + pending, so the two stay in step)."""
        self.table = table
        self.column = column
        self.on_commit = on_commit
        self.flush_seconds = FLUSH_SECONDS
        self._pending: Counter[int] = Counter()
        self._last_flush = time.monotonic()

    def record(self, row_id: int) -> None:
        self._pending[row_id] += 1

    def pending(self, row_id: int) -> int:
        """Views counted here and not yet written (added to the stored count for display)."""
        return self._pending.get(row_id, 0)

    async def flush_if_due(self) -> int:
        """Write the buffered counts when the last write is FLUSH_SECONDS old."""
        if not self._pending or time.monotonic() - self._last_flush < self.flush_seconds:
            return 0
        return await self.flush()

    async def flush(self) -> int:
        """Write the buffered counts; returns how many rows were updated."""
        self._last_flush = time.monotonic()
        batch = dict(self._pending)
        self._pending.clear()
        if not batch:
            return 0
        try:
            async with atomic() as tx:
                if self.on_commit:
                    tx.on_commit(self.on_commit)
                for row_id, views in sorted(batch.items()):
                    await self.table.update({self.column: self.column + views}).where(self.table.id == row_id)
        except Exception:
            log.exception("could not write view counts of %s; keeping them for the next flush", self.table.__name__)
            self._pending.update(batch)
            return 0
        return len(batch)

    def reset(self) -> None:
        """Forget buffered counts (tests start clean)."""
        self._pending.clear()
        self._last_flush = time.monotonic()
