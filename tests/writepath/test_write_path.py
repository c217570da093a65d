"""The cheaper write path keeps its guarantees: jobs queued in one INSERT inside the action's
transaction (none when it fails), search sync not starved by single jobs, webhook listeners seen
at once after an endpoint is saved, and SQLite's reused connections staying sound."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3

import pytest

from server import jobs
from server.db import atomic, is_postgres
from server.jobs import Job
from server.policy import Actor
from server.webhooks import services as webhooks
from tests.factories import make_user
from tests.webhooks.conftest import add_endpoint
from tests.webhooks.receiver import Receiver

order: list[str] = []


@jobs.handler("test.writepath.single")
async def single(job: jobs.ClaimedJob) -> None:
    order.append(f"single:{job.payload['n']}")


@jobs.batch_handler("test.writepath.batch")
async def batch(group: list[jobs.ClaimedJob]) -> None:
    order.append(f"batch:{len(group)}")


async def _kinds() -> list[str]:
    return [r["kind"] for r in await Job.select(Job.kind).order_by(Job.id)]


async def test_batched_jobs_are_written_together_at_the_end_of_the_block_in_its_transaction() -> None:
    async with atomic(), jobs.batched():
        await jobs.enqueue("test.writepath.single", {"n": 1}, key="same")
        await jobs.enqueue("test.writepath.single", {"n": 2}, key="same")  # ignored, as one by one
        await jobs.enqueue("test.writepath.single", {"n": 3})
        assert await Job.count() == 0  # not yet: one INSERT when the block ends
    rows = await Job.select(Job.payload, Job.idempotency_key).order_by(Job.id).output(load_json=True)
    assert [(r["payload"]["n"], r["idempotency_key"]) for r in rows] == [(1, "same"), (3, None)]
    async with atomic(), jobs.batched():
        await jobs.enqueue("test.writepath.single", {"n": 4}, key="same")  # already queued: nothing
    assert await Job.count() == 2


async def test_nothing_is_queued_when_the_action_fails() -> None:
    with pytest.raises(RuntimeError):
        async with atomic(), jobs.batched():
            await jobs.enqueue("test.writepath.single", {"n": 1})
            raise RuntimeError("the action fails")
    assert await Job.count() == 0


async def test_a_ticket_queues_its_follow_ups_in_its_own_transaction() -> None:
    from server.desk import services

    customer = await make_user(email="writepath-customer@example.test")
    with pytest.raises(Exception):  # noqa: B017,PT011 - any failure after the insert
        async with atomic():
            await services.open_ticket(customer, "Export stops", "Steps to reproduce")
            raise RuntimeError("rolled back")
    assert await Job.count() == 0
    await services.open_ticket(customer, "Export stops", "Steps to reproduce")
    assert sorted(set(await _kinds())) == ["mail.ticket", "search.sync"]


async def test_batch_jobs_run_before_a_backlog_of_single_jobs() -> None:
    order.clear()
    async with atomic():
        for n in range(45):
            await jobs.enqueue("test.writepath.single", {"n": n})
        await jobs.enqueue("test.writepath.batch", {})
    assert await jobs.run_pending() == 46
    # Queued last, run in its own lane beside the singles' (server/jobs.py): within their first
    # claim, not after the backlog. Which of the two lanes' first jobs comes first is up to the
    # database's timing (on SQLite their claims share a commit; on PostgreSQL they do not).
    assert order.index("batch:1") <= jobs.SINGLES_PER_ROUND
    assert [o for o in order if o != "batch:1"] == [f"single:{n}" for n in range(45)]  # still in order


async def test_an_endpoint_saved_after_a_quiet_event_gets_the_next_one(admin: Actor, receiver: Receiver) -> None:
    from server.desk import services

    customer = await make_user(email="writepath-hooks@example.test")
    ticket_id = await services.open_ticket(customer, "First", "Nobody listens yet")
    assert await webhooks.emit("ticket.created", ticket_id=ticket_id) is None  # remembered: nobody listens
    await add_endpoint(admin, receiver, ["ticket.created"])
    assert await webhooks.emit("ticket.created", ticket_id=ticket_id) is not None


@pytest.mark.skipif(is_postgres(), reason="SQLite's connection reuse")
async def test_sqlite_connections_stay_sound_after_failures_and_under_concurrent_writers() -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await Job.raw("INSERT INTO job (id, kind) VALUES (NULL, NULL)")  # outside a transaction
    with pytest.raises(RuntimeError):
        async with atomic():
            await jobs.enqueue("test.writepath.single", {"n": 0})
            raise RuntimeError("rolled back")

    async def writer(n: int) -> None:
        for i in range(5):
            async with atomic():
                await jobs.enqueue("test.writepath.single", {"n": n * 10 + i})

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(16))), timeout=60)
    assert await Job.count() == 80


@pytest.mark.skipif(is_postgres(), reason="SQLite's writer queue")
async def test_reads_outside_a_transaction_do_not_queue_behind_the_writer() -> None:
    """A read is not a write: it must not wait for the writer's turn (a crowd of websockets
    reading the newest event id on connecting would otherwise hold up every write)."""

    async def count_elsewhere() -> int:
        return await Job.count()

    async with atomic():
        await jobs.enqueue("test.writepath.single", {"n": 1})
        # another request's read, outside this transaction, while the writer's turn is held
        outside = asyncio.get_running_loop().create_task(count_elsewhere(), context=contextvars.Context())
        assert await asyncio.wait_for(outside, timeout=10) == 0  # not blocked, and not seeing uncommitted rows
        crowd = [
            asyncio.get_running_loop().create_task(count_elsewhere(), context=contextvars.Context()) for _ in range(50)
        ]
        assert await asyncio.wait_for(asyncio.gather(*crowd), timeout=10) == [0] * 50
    assert await Job.count() == 1
