"""Article view counts, buffered per process (server/viewcounts.py). A flush clears the page
cache, whose pages show the stored count plus what is pending."""

from __future__ import annotations

from server.kb import cache
from server.kb.tables import KbArticle
from server.viewcounts import ViewCounter

COUNTER = ViewCounter(KbArticle, KbArticle.view_count, on_commit=cache.clear)
record = COUNTER.record
pending = COUNTER.pending
flush_if_due = COUNTER.flush_if_due
flush = COUNTER.flush
reset = COUNTER.reset
