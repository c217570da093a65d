"""Pieces every search document type shares: walking its ids in batches (full reindex) and
the database substring search used while Meilisearch is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from piccolo.columns.combination import Or, WhereRaw

from server.kb.queries import like_escape

BATCH = 500
MAX_TERMS = 10


async def id_batches(table: Any, clauses: list[Any] | None = None) -> AsyncIterator[list[int]]:
    """The table's ids matching `clauses`, ascending, BATCH at a time (keyset, no OFFSET)."""
    last = 0
    while True:
        rows = await table.select(table.id).where(table.id > last, *(clauses or [])).order_by(table.id).limit(BATCH)
        if not rows:
            return
        yield [row["id"] for row in rows]
        last = rows[-1]["id"]


def query_terms(query: str) -> list[str]:
    return query.lower().split()[:MAX_TERMS]


def contains_term(term: str, columns: list[str]) -> Any:
    """`term` is a substring of any of the (SQL) `columns`, case-insensitively."""
    pattern = f"%{like_escape(term)}%"
    rules = [WhereRaw(f"lower({column}) LIKE {{}} ESCAPE '\\'", pattern) for column in columns]
    combined = rules[0]
    for rule in rules[1:]:
        combined = Or(combined, rule)
    return combined


def every_term(query: str, columns: list[str]) -> list[Any]:
    """One clause per query word: each word must appear in one of the columns."""
    return [contains_term(term, columns) for term in query_terms(query)]
