"""JSON API bodies for search."""

from __future__ import annotations

import msgspec


class SearchHitOut(msgspec.Struct):
    type: str
    id: int
    title: str
    url: str
    snippet: str  # HTML: escaped text with <mark> around matched words
    locale: str


class SearchOut(msgspec.Struct):
    hits: list[SearchHitOut]
    total: int
    degraded: bool
