"""Retention: the worker prunes tables that would otherwise grow without bound.

Each table's rule (which rows go, after how long, and why) lives beside its feature and is
registered with `@prunes(KIND)`: webhook delivery logs (server/webhooks/delivery.py), API
idempotency keys (server/desk/idempotency.py), the web form's deflection events
(server/desk/deflection.py), and the job queue's finished jobs (below).

Scheduling is the realtime purge's: one job per hour, the hour in its idempotency key
(`<kind>:<YYYYmmddHH>`), so asking for it again in the same hour adds nothing. Each run first
queues the next hour's run (before pruning, so a failing prune never breaks the chain; its retries
and, in the end, Admin → Failed jobs show the failure), and the worker asks for the current hour's
run of every kind when it starts, which starts the chain on a new install and mends it if it ever
broke.

Deleting: one statement removes at most BATCH_ROWS rows (its own transaction: call the pruners
outside `atomic()`), and the loop pauses between batches, so a backlog of millions of rows never
holds SQLite's write lock for long: writers waiting meanwhile (of this process or another) go
first. A run stops after RUN_SECONDS, well inside the job lease, and the next hour goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from piccolo.table import Table

from server import jobs

log = logging.getLogger("kizuna.retention")

BATCH_ROWS = 5_000  # rows per DELETE statement
BATCH_PAUSE_SECONDS = 0.05  # between two full batches: other writers take SQLite's lock meanwhile
RUN_SECONDS = 120.0  # one run's budget (the job lease is 5 minutes); the rest waits an hour
EVERY = timedelta(hours=1)

Pruner = Callable[[], Awaitable[int]]
_pruners: dict[str, Pruner] = {}


def hour_key(kind: str, moment: datetime) -> str:
    return f"{kind}:{moment.strftime('%Y%m%d%H')}"


def next_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + EVERY


def prunes(kind: str) -> Callable[[Pruner], Pruner]:
    """Register `fn` (deletes what is past its window, returns how many rows) as the hourly
    job `kind`."""

    def register(fn: Pruner) -> Pruner:
        _pruners[kind] = fn

        @jobs.handler(kind)
        async def run(job: jobs.ClaimedJob) -> None:
            await schedule_next(kind)
            started = time.monotonic()
            deleted = await fn()
            if deleted:
                log.info("%s: deleted %d row(s) in %.1f s", kind, deleted, time.monotonic() - started)

        return fn

    return register


def kinds() -> list[str]:
    return sorted(_pruners)


async def schedule_next(kind: str) -> None:
    """Queue the run of the next hour (from now, not from the hour this run was for: a worker
    back after a long stop runs once, not once per missed hour)."""
    moment = jobs.now()
    due = next_hour(moment)
    await jobs.enqueue(kind, {}, key=hour_key(kind, due), delay=due - moment)


async def schedule() -> None:
    """The worker calls this when it starts: this hour's run of every pruner, due now (nothing
    new when it already exists, done or not)."""
    moment = jobs.now()
    for kind in kinds():
        await jobs.enqueue(kind, {}, key=hour_key(kind, moment))


async def delete_in_batches(table: type[Table], where: str, *args: Any) -> int:
    """Delete the rows of `table` that match `where` (raw SQL over the table's own columns, `{}`
    for each of `args`), at most BATCH_ROWS per statement, until none is left or the run's time
    is up. Returns how many rows went."""
    name = table._meta.tablename
    deadline = time.monotonic() + RUN_SECONDS
    deleted = 0
    while True:
        batch = BATCH_ROWS
        rows = await table.raw(
            f"DELETE FROM {name} WHERE id IN (SELECT id FROM {name} WHERE {where} LIMIT {{}}) RETURNING id",  # noqa: S608 - the table name and condition come from code
            *args,
            batch,
        )
        deleted += len(rows)
        if len(rows) < batch or time.monotonic() >= deadline:
            return deleted
        await asyncio.sleep(BATCH_PAUSE_SECONDS)


# The job queue's own rows -----------------------------------------------------------------------

KEEP_DONE_JOBS = timedelta(days=30)
PRUNE_JOBS_KIND = "jobs.prune_done"


@prunes(PRUNE_JOBS_KIND)
async def prune_done_jobs() -> int:
    """Jobs that finished over 30 days ago. A done job's row is also the record that its
    idempotency key ran (asking for the key again adds nothing), so it stays well past any retry,
    reminder or redelivery that could ask for the same key; every key names its event (a ticket's
    acknowledgement, an hour's prune, a day's digest), so none is asked for a month later. Failed
    (dead) jobs stay for the admin's list until retried."""
    return await delete_in_batches(jobs.Job, "status = {} AND finished_at < {}", jobs.DONE, jobs.now() - KEEP_DONE_JOBS)
