"""Database engine from DATABASE_URL and `atomic()`, our transaction with on-commit hooks.

Piccolo has no on-commit hook, so `atomic()` buffers callbacks and runs them after the
outermost transaction commits. Nested `atomic()` calls join the outer transaction.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 15.0


def make_engine(url: str) -> Engine:
    if url.startswith(("postgres://", "postgresql://")):
        parsed = urlparse(url)
        config = {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 5432,
            "user": unquote(parsed.username or "postgres"),
            "password": unquote(parsed.password or "") or None,
            "database": (parsed.path or "/postgres").lstrip("/"),
        }
        return PostgresEngine(config=config, log_queries=False)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _enable_wal(path)
        # Piccolo turns foreign keys on for every connection it opens; `timeout` is
        # SQLite's busy timeout, so concurrent writers wait instead of failing.
        return SQLiteEngine(path=path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
    raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgres://, got {url!r}")


def _enable_wal(path: str) -> None:
    """WAL is a property of the database file: set it once, it persists."""
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def engine() -> Engine:
    from server.piccolo_conf import DB

    return DB


def is_postgres() -> bool:
    return isinstance(engine(), PostgresEngine)


OnCommit = Callable[[], Awaitable[None] | None]


@dataclass
class Tx:
    callbacks: list[OnCommit] = field(default_factory=list)

    def on_commit(self, callback: OnCommit) -> None:
        self.callbacks.append(callback)


_current: contextvars.ContextVar[Tx | None] = contextvars.ContextVar("kizuna_tx", default=None)


@asynccontextmanager
async def atomic() -> AsyncIterator[Tx]:
    """One transaction per action; callbacks registered with `tx.on_commit` run after commit."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    tx = Tx()
    token = _current.set(tx)
    db = engine()
    kwargs = {"transaction_type": TransactionType.immediate} if isinstance(db, SQLiteEngine) else {}
    try:
        async with db.transaction(**kwargs):
            yield tx
    finally:
        _current.reset(token)
    for callback in tx.callbacks:
        try:
            result = callback()
            if result is not None:
                await result
        except Exception:  # an after-commit effect must never undo or fail the action
            log.exception("on-commit callback failed")
