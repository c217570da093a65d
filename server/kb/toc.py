"""Tables of contents for article pages, computed once per translation version.

The headings' anchors come from the renderer (`markdown.table_of_contents` matches the ids it
gives headings); parsing the Markdown again on every page view would cost a millisecond each.
"""

from __future__ import annotations

from typing import Any

from server.markdown import Heading, MarkdownTooLarge, table_of_contents

MAX_CACHED = 2048
_cache: dict[tuple[int, int, int], list[Heading]] = {}


def toc_for(translation: dict[str, Any]) -> list[Heading]:
    # The text's hash too: SQLite may hand a deleted row's id to a new row.
    key = (translation["id"], translation["version"], hash(translation["body_md"]))
    found = _cache.get(key)
    if found is None:
        try:
            found = table_of_contents(translation["body_md"])
        except MarkdownTooLarge:
            found = []
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[key] = found
    return found
