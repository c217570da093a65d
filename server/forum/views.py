"""Thread view counts, buffered per process (server/viewcounts.py)."""

from __future__ import annotations

from server.forum.tables import ForumThread
from server.viewcounts import ViewCounter

COUNTER = ViewCounter(ForumThread, ForumThread.view_count)
record = COUNTER.record
pending = COUNTER.pending
flush_if_due = COUNTER.flush_if_due
flush = COUNTER.flush
reset = COUNTER.reset
