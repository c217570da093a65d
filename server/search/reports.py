"""Search analytics reads: what people look for, and what they do not find."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.search.tables import SearchQueryLog

LIMIT = 50


async def _rows(sql: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return await SearchQueryLog.raw(sql, start, end)


async def top_queries(start: datetime, end: datetime) -> list[dict[str, Any]]:
    return await _rows(
        f"""SELECT query, COUNT(*) AS searches, MAX(result_count) AS results
            FROM search_query_log WHERE created_at >= {{}} AND created_at < {{}}
            GROUP BY query ORDER BY searches DESC, query LIMIT {LIMIT}""",  # noqa: S608
        start,
        end,
    )


async def zero_result_queries(start: datetime, end: datetime) -> list[dict[str, Any]]:
    return await _rows(
        f"""SELECT query, COUNT(*) AS searches
            FROM search_query_log WHERE created_at >= {{}} AND created_at < {{}} AND result_count = 0
            GROUP BY query ORDER BY searches DESC, query LIMIT {LIMIT}""",  # noqa: S608
        start,
        end,
    )


async def queries_without_click(start: datetime, end: datetime) -> list[dict[str, Any]]:
    return await _rows(
        f"""SELECT l.query, COUNT(*) AS searches
            FROM search_query_log l
            WHERE l.created_at >= {{}} AND l.created_at < {{}} AND l.result_count > 0
              AND NOT EXISTS (SELECT 1 FROM search_click c WHERE c.query_log = l.id)
            GROUP BY l.query ORDER BY searches DESC, l.query LIMIT {LIMIT}""",  # noqa: S608
        start,
        end,
    )
