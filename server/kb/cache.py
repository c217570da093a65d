"""The Help Center's page cache (server/shortcache.py): what article pages read from the
database, shared for two seconds. An article page would otherwise cost several queries (and, on
SQLite, a new connection each), so each load runs on one connection. Every knowledge-base write
clears it when it commits.
"""

from __future__ import annotations

from server.shortcache import ShortCache

PAGES = ShortCache(ttl_seconds=2.0, max_entries=4096, one_connection=True)
cached = PAGES.cached
clear = PAGES.clear
