"""Database engine from DATABASE_URL and `atomic()`, our transaction with on-commit hooks.

Piccolo has no on-commit hook, so `atomic()` buffers callbacks and runs them after the
outermost transaction commits. Nested `atomic()` calls join the outer transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import functools
import logging
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import aiosqlite
from piccolo.engine.base import Engine, validate_savepoint_name
from piccolo.engine.exceptions import TransactionError
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import Savepoint, SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 15.0
IDLE_CONNECTIONS = 16  # SQLite connections kept open between transactions, per process


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
        # check_same_thread=False: a write transaction's statements run on the event loop's
        # thread (see _SQLiteEngine), the rest on each connection's aiosqlite thread; never both
        # at once, since a transaction's statements are awaited one after another.
        return _SQLiteEngine(path=path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgres://, got {url!r}")


class _SQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, with fewer thread hand-offs per statement.

    - Inside a write transaction (BEGIN IMMEDIATE: this process holds SQLite's write lock, so
      no statement waits for a lock) statements run directly on the event loop's thread: they
      are short, indexed reads and writes of a few rows, and two hand-offs to aiosqlite's
      thread and back cost more than the statement (measured: inbound mail processing 25-40%
      faster on a busy machine, more of it inside the writer's turn). BEGIN, COMMIT (its fsync)
      and ROLLBACK still go through aiosqlite's thread.
    - Elsewhere (reads), one hand-off per statement instead of four: Piccolo re-sends
      `PRAGMA foreign_keys = 1` before every statement (a no-op inside a transaction; the
      connection already has it on) and fetches through a cursor (execute, fetchall, close: one
      hand-off each). Reads keep aiosqlite's thread so a long one runs beside the event loop.
    """

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        if query_type == "insert" and self.get_version_sync() < 3.35:  # no RETURNING: Piccolo's way
            return await super()._run_in_existing_connection(connection, query, args, query_type, table)
        if connection in _WRITING:
            return _run_here(connection, query, args)
        connection.row_factory = dict_factory
        return await connection.execute_fetchall(query, args or [])

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        """A statement outside a transaction, on an idle connection (committed at once)."""
        if query_type == "insert" and self.get_version_sync() < 3.35:
            return await super()._run_in_new_connection(query, args, query_type, table)
        if not _only_reads(query):  # a write of its own: one writer of a group commit
            turn = self.writer_turn()
            member = await turn.enter()
            try:
                rows = _run_here(member.group.connection, query, args)
            except BaseException:
                await turn.leave(member, failed=True)
                raise
            await turn.leave(member, failed=False)
            return rows
        async with self.reader_slot():
            connection = await self.take_connection()
            try:
                rows = await connection.execute_fetchall(query, args or [])
            except BaseException:
                await connection.close()
                raise
            await self.give_back(connection)
        return rows

    def writer_turn(self) -> _WriterTurn:
        """SQLite has one writer at a time. Writers of this process queue here, in order, instead
        of polling SQLite's lock in its busy handler (which sleeps up to 100 ms between tries, so
        16 concurrent requests wait far longer than the writes take); writers of other processes
        queue at a lock file beside the database (see _WriterTurn)."""
        return self._per_loop("_writer_turns", lambda: _WriterTurn(self))

    def reader_slot(self) -> asyncio.Semaphore:
        """Reads outside a transaction run beside the writer, at most IDLE_CONNECTIONS at once, so
        they reuse idle connections. They must not queue in the writer's turn: a page load or a
        crowd of websockets connecting (5,000 reads of the newest event id) would then hold up
        every write behind them (measured: a write waited ~0.5 s behind 3,400 such reads)."""
        return self._per_loop("_reader_slots", lambda: asyncio.Semaphore(IDLE_CONNECTIONS))

    def _per_loop(self, name: str, make: Callable[[], Any]) -> Any:
        made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]
        made = self.__dict__.setdefault(name, weakref.WeakKeyDictionary())
        loop = asyncio.get_running_loop()
        if (value := made.get(loop)) is None:
            value = made[loop] = make()
        return value

    # Transactions and single statements reuse idle connections: opening one costs a thread
    # start, a connect and a PRAGMA, more than a short write transaction itself.

    def transaction(
        self, transaction_type: TransactionType = TransactionType.deferred, allow_nested: bool = True
    ) -> SQLiteTransaction:
        return _PooledTransaction(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def take_connection(self) -> aiosqlite.Connection:
        idle: list[aiosqlite.Connection] = self.__dict__.setdefault("_idle", [])
        file_id = _file_id(self.path)
        if file_id != self.__dict__.get("_file_id"):
            # The file at the path is gone or is another file (moved away, restored from a
            # backup): idle connections would go on reading and writing the old one, so they
            # are closed and the next connection opens whatever the path holds now (or fails).
            self.__dict__["_file_id"] = file_id
            stale, idle[:] = list(idle), []
            for connection in stale:
                with contextlib.suppress(Exception):
                    await connection.close()
        while idle:
            connection = idle.pop()
            if connection._running and connection._connection is not None:  # noqa: SLF001
                return connection
        connection = aiosqlite.connect(**self.connection_kwargs)
        connection._thread.daemon = True  # noqa: SLF001 - an idle pooled connection must not keep the process alive
        await connection
        connection.row_factory = dict_factory
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    async def give_back(self, connection: aiosqlite.Connection) -> None:
        idle: list[aiosqlite.Connection] = self.__dict__.setdefault("_idle", [])
        if connection.in_transaction or len(idle) >= IDLE_CONNECTIONS:
            await connection.close()
        else:
            idle.append(connection)


class _WriterTurn:
    """This process's writers, in order, and its one open write transaction (a group commit).

    SQLite has one writer at a time, and a commit costs an fsync (~1.6 ms here) while the
    statements of a typical action take a fraction of that. So writers share transactions: the
    first writer opens one (BEGIN IMMEDIATE) and runs in a savepoint; every writer queued behind
    it runs in turn inside the same transaction, each in its own savepoint; then one COMMIT makes
    them all durable at once, and each writer returns only after it. A writer that raises is
    rolled back to its savepoint alone. A failed COMMIT fails every writer of the group. The
    group is as large as the queue when its first writer finished (a committer takes the next
    place in the queue then), so a lone writer commits at once and nothing waits for a timer.

    Between processes: the group holds an exclusive `flock` on `<database>.writer-lock` until
    its COMMIT. Without it, processes met only at SQLite's own lock, whose busy handler sleeps
    1–100 ms between tries: a process with a queue of writers took the lock again the moment it
    committed, and the other process's writer kept sleeping through the gaps (measured: the
    worker claimed no job for 4–9 s while the web process created 200 tickets a second). A
    process blocked in `flock` is woken when the lock is released, so the processes alternate.
    """

    def __init__(self, engine: _SQLiteEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._group: _Group | None = None
        self._fd = os.open(f"{engine.path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.commits = 0  # groups committed (tests, benchmarks)
        weakref.finalize(self, os.close, self._fd)

    async def enter(self) -> _Member:
        """Wait for this writer's turn; it then runs inside the open group, in a savepoint."""
        await self._lock.acquire()
        try:
            group = self._group
            if group is not None and group.broken is not None:  # never write outside a transaction
                await self._close(group)
                group = None
            if group is None:
                group = self._group = await self._open()
            group.members += 1
            name = f"kizuna_writer_{group.members}"
            _run_here(group.connection, f"SAVEPOINT {name}")
        except BaseException as exc:
            if (group := self._group) is not None:  # opened, but this writer cannot run in it
                group.broken = group.broken or exc
                group.committer = group.committer or asyncio.ensure_future(self._commit_in_turn(group))
            self._lock.release()
            raise
        return _Member(group, name)

    async def leave(self, member: _Member, *, failed: bool) -> None:
        """End the writer's part: rolled back alone when `failed`; else wait for the group's
        COMMIT (its error, if it fails, is this writer's)."""
        group = member.group
        try:
            if failed:
                _run_here(group.connection, f"ROLLBACK TO SAVEPOINT {member.savepoint}")
            _run_here(group.connection, f"RELEASE SAVEPOINT {member.savepoint}")
            if not group.connection.in_transaction:  # SQLite ended it (I/O error, disk full)
                raise sqlite3.OperationalError("the write transaction was rolled back by SQLite")
        except Exception as exc:  # the transaction is lost: the whole group fails
            group.broken = exc
        if group.committer is None:  # after the writers queued now: close the group
            group.committer = asyncio.ensure_future(self._commit_in_turn(group))
        self._lock.release()
        if failed:
            return  # the writer's own error goes on; none of its writes remain
        await asyncio.shield(group.done)

    async def _open(self) -> _Group:
        await self._take_file_lock()
        try:
            connection = await self._engine.take_connection()
            try:
                await connection.execute("BEGIN IMMEDIATE")
            except BaseException:
                await connection.close()
                raise
        except BaseException:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            raise
        _WRITING.add(connection)  # after BEGIN IMMEDIATE: the write lock is ours
        return _Group(connection, asyncio.get_running_loop().create_future())

    async def _commit_in_turn(self, group: _Group) -> None:
        async with self._lock:
            if self._group is group:
                await self._close(group)

    async def _close(self, group: _Group) -> None:
        """COMMIT (or, for a broken group, ROLLBACK) and settle every writer's wait. Called with
        the lock held; the statement runs to its end even if the caller is cancelled."""
        self._group = None
        _WRITING.discard(group.connection)
        await asyncio.shield(asyncio.ensure_future(self._end(group)))

    async def _end(self, group: _Group) -> None:
        connection = group.connection
        error: BaseException | None = group.broken
        try:
            await connection.execute("ROLLBACK" if error is not None else "COMMIT")
        except BaseException as exc:  # the connection's state is unknown: never reused
            error = error or exc
            with contextlib.suppress(Exception):
                await connection.close()
        else:
            await self._engine.give_back(connection)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        if error is None:
            self.commits += 1
            group.done.set_result(None)
        else:
            group.done.set_exception(error)
            group.done.exception()  # retrieved: a group whose writers all failed awaits nobody

    async def _take_file_lock(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process writes: wait for it in a thread
            waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, self._fd, fcntl.LOCK_EX)
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:  # the lock may still come: give it back when it does
                waiting.add_done_callback(lambda done: done.exception() or fcntl.flock(self._fd, fcntl.LOCK_UN))
                raise


@dataclass(eq=False)
class _Group:
    """One write transaction shared by writers of this process in turn (see _WriterTurn)."""

    connection: aiosqlite.Connection
    done: asyncio.Future[None]  # settled by COMMIT (or by the error that failed the group)
    members: int = 0
    broken: BaseException | None = None  # set when the transaction is lost mid-group
    committer: asyncio.Future[None] | None = None


@dataclass(frozen=True)
class _Member:
    group: _Group
    savepoint: str


# Connections inside a write transaction: their statements run on the event loop's thread.
_WRITING: weakref.WeakSet[aiosqlite.Connection] = weakref.WeakSet()


def _run_here(connection: aiosqlite.Connection, query: str, args: list[Any] | None = None) -> list[Any]:
    """A statement of a write transaction, on the event loop's thread (see _SQLiteEngine)."""
    cursor = connection._connection.execute(query, args or [])  # noqa: SLF001 - aiosqlite's sqlite3 connection
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


class _HereSavepoint(Savepoint):
    """A savepoint of a write transaction: its statements run on the event loop's thread too (a
    savepoint per inbound message would otherwise cost two hand-offs each)."""

    async def rollback_to(self) -> None:
        _run_here(self.transaction.connection, f"ROLLBACK TO SAVEPOINT {self.name}")

    async def release(self) -> None:
        _run_here(self.transaction.connection, f"RELEASE SAVEPOINT {self.name}")


class _PooledTransaction(SQLiteTransaction):
    """Piccolo's SQLite transaction on a reused connection. A write transaction (IMMEDIATE or
    EXCLUSIVE) is one writer's part of a group commit (see _WriterTurn); a read transaction is
    SQLite's own, and a connection left in an unknown state (a failed COMMIT or ROLLBACK) is
    closed, never reused."""

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is None and self.transaction_type != TransactionType.deferred:
            member = await self.engine.writer_turn().enter()  # type: ignore[attr-defined]
            self.__dict__["_member"] = member
            self.connection = member.group.connection
            self.context = self.engine.current_transaction.set(self)
            return self
        return await super().__aenter__()

    async def get_connection(self) -> aiosqlite.Connection:
        return await self.engine.take_connection()  # type: ignore[attr-defined]

    async def savepoint(self, name: str | None = None) -> Savepoint:
        if self.connection not in _WRITING:
            return await super().savepoint(name)
        name = name or f"savepoint_{self.get_savepoint_id()}"
        validate_savepoint_name(name)
        _run_here(self.connection, f"SAVEPOINT {name}")
        return _HereSavepoint(name=name, transaction=self)

    async def commit(self) -> None:
        if "_member" in self.__dict__:
            raise TransactionError("a writer's part of a group commit ends with its block")
        await super().commit()

    async def rollback(self) -> None:
        if "_member" in self.__dict__:
            raise TransactionError("a writer's part of a group commit ends with its block")
        await super().rollback()

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        member: _Member | None = self.__dict__.get("_member")
        if member is not None:
            self.engine.current_transaction.reset(self.context)
            await self.engine.writer_turn().leave(member, failed=exception is not None)  # type: ignore[attr-defined]
            return exception is None
        try:
            return await self._end(exception)
        finally:
            self.engine.current_transaction.reset(self.context)

    async def _end(self, exception: Any) -> bool:
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        except BaseException:
            await self.connection.close()
            raise
        else:
            await self.engine.give_back(self.connection)  # type: ignore[attr-defined]
        return exception is None


def _only_reads(query: str) -> bool:
    """Piccolo marks only inserts with a query type (a select arrives as "generic"), so the
    statement itself tells: a SELECT only reads in SQLite; anything else (INSERT, UPDATE, DELETE,
    WITH, PRAGMA, DDL) is taken for a write."""
    return query.lstrip()[:6].upper() == "SELECT"


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _enable_wal(path: str) -> None:
    """WAL is a property of the database file: set it once, it persists."""
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


@functools.cache  # the tables are bound to this one engine when they are defined
def engine() -> Engine:
    from server.piccolo_conf import DB

    return DB


def is_postgres() -> bool:
    return isinstance(engine(), PostgresEngine)


async def _keep_session(connection: Any) -> None:
    """Released pool connections keep their session as it is. asyncpg has already rolled back a
    transaction left open; its default reset would also send `RESET ALL`, `UNLISTEN *`, `CLOSE
    ALL` and an advisory unlock, one more round trip per release (a page takes two or three),
    for state Kizuna never leaves on a pooled connection: its locks are transaction-scoped, its
    settings `SET LOCAL`, and it listens on a connection of its own (server/realtime/bus.py)."""


async def start_postgres_pool(max_size: int) -> None:
    """Open the PostgreSQL connection pool of this process (the caller checks is_postgres())."""
    await engine().start_connection_pool(min_size=1, max_size=max_size, reset=_keep_session)  # type: ignore[attr-defined]


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
