"""A short-lived, per-process cache of what many forum readers share: rendered pages of posts,
thread rows and thread lists (keys carry the reader's scope, so one audience's entry is never
served to another).

A thread page's posts are the same HTML for every reader of one audience group and locale (no
per-user controls are baked in: forum.js reveals them), so one render serves every reader for
two seconds (server/shortcache.py). Every forum write clears this process's cache when it commits, so the writer sees
the change at once; other processes within two seconds (and open pages at once, over realtime).
Readers that miss together share one load, so an expiring entry under load costs one render.
"""

from __future__ import annotations

from server.shortcache import ShortCache

PAGES = ShortCache(ttl_seconds=2.0, max_entries=2048)
cached = PAGES.cached
clear = PAGES.clear
