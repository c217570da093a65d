"""SQLite's group commit (server/db.py, _WriterTurn): writers queued behind an open write
transaction run inside it, each in its own savepoint, and one COMMIT makes them all durable.
A writer that fails is rolled back alone; a COMMIT that fails fails every writer of the group."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from server import jobs
from server.db import atomic, engine, is_postgres
from server.desk.tables import TicketMessage
from server.jobs import Job
from server.prepared import insert

pytestmark = pytest.mark.skipif(is_postgres(), reason="SQLite's group commit")


async def _enqueue(n: int) -> None:
    await jobs.enqueue("test.group.job", {"n": n})


async def _stored() -> list[int]:
    rows = await Job.select(Job.payload).order_by(Job.id).output(load_json=True)
    return [row["payload"]["n"] for row in rows]


def _commits() -> int:
    return engine().writer_turn().commits  # type: ignore[attr-defined, no-any-return]


async def _holder(n: int, entered: asyncio.Event, go_on: asyncio.Event) -> None:
    """A writer that holds the open transaction until told to go on."""
    async with atomic():
        await _enqueue(n)
        entered.set()
        await go_on.wait()


async def test_concurrent_writers_share_commits_and_each_sees_its_write_committed() -> None:
    before = _commits()
    seen_after_commit: list[bool] = []

    async def writer(n: int) -> None:
        async with atomic() as tx:
            await _enqueue(n)
            await asyncio.sleep(0)

            async def check() -> None:  # runs after COMMIT, on another connection
                seen_after_commit.append(n in await _stored())

            tx.on_commit(check)

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(32))), timeout=60)
    assert sorted(await _stored()) == list(range(32))
    assert seen_after_commit == [True] * 32
    assert 1 <= _commits() - before < 32  # fewer COMMITs than writers


async def test_a_failing_writer_is_rolled_back_alone() -> None:
    entered, go_on = asyncio.Event(), asyncio.Event()
    before = _commits()
    first = asyncio.create_task(_holder(1, entered, go_on))
    await entered.wait()

    async def failing() -> None:
        async with atomic():
            await _enqueue(2)
            raise RuntimeError("this action fails")

    async def succeeding() -> None:
        async with atomic():
            assert await Job.count() == 1  # the group's earlier writer, not the failed one
            await _enqueue(3)

    queued = [asyncio.create_task(failing()), asyncio.create_task(succeeding())]
    await asyncio.sleep(0.05)  # both wait for their turn in the open transaction
    go_on.set()
    results = await asyncio.wait_for(asyncio.gather(first, *queued, return_exceptions=True), timeout=30)
    assert results[0] is None and isinstance(results[1], RuntimeError) and results[2] is None
    assert await _stored() == [1, 3]
    assert _commits() - before == 1  # one group, one COMMIT


async def test_a_failed_commit_fails_every_writer_of_the_group_and_keeps_nothing() -> None:
    entered, go_on = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_holder(1, entered, go_on))
    await entered.wait()

    async def breaks_at_commit() -> None:
        async with atomic():
            await Job.raw("PRAGMA defer_foreign_keys = ON")  # the check moves to COMMIT
            await insert(TicketMessage, {"ticket": 999_999, "kind": "public"})
            await _enqueue(2)

    async def innocent() -> None:
        async with atomic():
            await _enqueue(3)

    queued = [asyncio.create_task(breaks_at_commit()), asyncio.create_task(innocent())]
    await asyncio.sleep(0.05)
    go_on.set()
    results = await asyncio.wait_for(asyncio.gather(first, *queued, return_exceptions=True), timeout=30)
    assert all(isinstance(result, sqlite3.IntegrityError) for result in results), results
    assert await _stored() == []
    assert not await TicketMessage.exists().where(TicketMessage.ticket == 999_999)
    async with atomic():  # the next writer starts a sound transaction
        await _enqueue(4)
    assert await _stored() == [4]


async def test_a_writer_cancelled_while_queued_leaves_the_others_to_commit() -> None:
    entered, go_on = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_holder(1, entered, go_on))
    await entered.wait()

    async def queued_writer(n: int) -> None:
        async with atomic():
            await _enqueue(n)

    cancelled = asyncio.create_task(queued_writer(2))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    go_on.set()
    await asyncio.wait_for(first, timeout=30)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(queued_writer(3), timeout=30)  # the turn is free again
    await Job.update({Job.kind: "test.group.done"}).where(Job.kind == "test.group.job")  # a write of its own
    assert await _stored() == [1, 3]
    assert await Job.count().where(Job.kind == "test.group.done") == 2
