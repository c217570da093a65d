"""Durable jobs: the transactional outbox and the worker that drains it.

A service enqueues side effects as rows inside its own transaction, so nothing is sent before
commit and nothing is lost after it. Workers claim batches (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several workers never run one job twice; SQLite serialises writers, so one
claim statement is enough there), retry failures with exponential backoff, and move a job
that keeps failing to `dead`, where admins see it and can retry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.columns import JSON, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.db import atomic, is_postgres
from server.prepared import insert_many

log = logging.getLogger("kizuna.jobs")

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
DEFAULT_MAX_ATTEMPTS = 8
FOREVER = 1_000_000  # for jobs that must converge eventually (search sync): never dead
LEASE = timedelta(minutes=5)  # a running job older than this belonged to a dead worker
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 3600.0
HEARTBEAT_FRESH = timedelta(seconds=30)
WORKER_CLAIM_LIMIT = 200  # jobs of a batch kind the worker claims at once
HEARTBEAT_SECONDS = 5.0
SINGLES_PER_ROUND = 20  # one-by-one jobs claimed together (each renews its lease before it runs)


class Job(Table):
    kind = Varchar(length=64, index=True)
    payload = JSON(default={})
    idempotency_key = Varchar(length=200, unique=True, null=True, default=None)
    status = Varchar(length=10, default=QUEUED, index=True)
    attempts = Integer(default=0)
    max_attempts = Integer(default=DEFAULT_MAX_ATTEMPTS)
    run_at = Timestamptz(index=True)
    locked_at = Timestamptz(null=True, default=None)
    locked_by = Varchar(length=100, default="")
    last_error = Text(default="")
    created_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


class WorkerHeartbeat(Table):
    worker_id = Varchar(length=100, unique=True)
    seen_at = Timestamptz()


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    idempotency_key: str | None


Handler = Callable[[ClaimedJob], Awaitable[None]]
_handlers: dict[str, Handler] = {}
_retry_caps: dict[str, float] = {}


# A batch handler performs every claimed job of its kind in one call. It raises to fail them all
# (retried together), or returns the jobs that failed on their own ({job id: error}); the
# others succeeded.
BatchHandler = Callable[[list[ClaimedJob]], Awaitable[Mapping[int, Exception] | None]]
_batch_handlers: dict[str, BatchHandler] = {}
_gather_seconds: dict[str, float] = {}


def batch_handler(
    kind: str, *, retry_cap_seconds: float = BACKOFF_CAP_SECONDS, gather_seconds: float = 0.0
) -> Callable[[BatchHandler], BatchHandler]:
    """Register a function that performs every claimed job of `kind` in one call.
    `gather_seconds`: after a batch smaller than a full claim, the worker waits this long before
    claiming the kind again, so that its next batch is larger (for work whose cost is mostly per
    call, such as an indexing request)."""

    def register(fn: BatchHandler) -> BatchHandler:
        _batch_handlers[kind] = fn
        _retry_caps[kind] = retry_cap_seconds
        _gather_seconds[kind] = gather_seconds
        return fn

    return register


def handler(kind: str, *, retry_cap_seconds: float = BACKOFF_CAP_SECONDS) -> Callable[[Handler], Handler]:
    """Register the function that performs jobs of `kind`; retries wait at most `retry_cap_seconds`."""

    def register(fn: Handler) -> Handler:
        _handlers[kind] = fn
        _retry_caps[kind] = retry_cap_seconds
        return fn

    return register


def now() -> datetime:
    return datetime.now(UTC)


async def enqueue(
    kind: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    delay: timedelta | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> None:
    """Add a job in the caller's transaction. A repeated `key` is ignored (idempotent)."""
    moment = now()
    job = {
        "kind": kind,
        "payload": payload,
        "idempotency_key": key,
        "run_at": moment + (delay or timedelta()),
        "created_at": moment,
        "max_attempts": max_attempts,
    }
    pending = _pending.get()
    if pending is not None:
        pending.append(job)
        return
    await insert_many(Job, [job], skip_conflicts_on=Job.idempotency_key)


_pending: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "kizuna_jobs_pending", default=None
)


@contextlib.asynccontextmanager
async def batched() -> AsyncIterator[None]:
    """Use inside a transaction: the jobs enqueued in the block are written by one INSERT at
    its end, still in that transaction (nothing when the block raises: it rolls back anyway)."""
    if _pending.get() is not None:
        yield
        return
    pending: list[dict[str, Any]] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    # A repeated key is ignored, as `enqueue` one by one would.
    await insert_many(Job, pending, skip_conflicts_on=Job.idempotency_key)


def backoff(attempts: int, cap_seconds: float = BACKOFF_CAP_SECONDS) -> timedelta:
    seconds = min(cap_seconds, BACKOFF_BASE_SECONDS ** min(attempts, 30))
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


async def claim(
    worker_id: str, limit: int = 20, *, kinds: Sequence[str] = (), other_kinds: bool = False
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs: of any kind; only of `kinds`; or, with `other_kinds`, of
    any kind but `kinds`."""
    moment = now()
    lock = "FOR UPDATE SKIP LOCKED" if is_postgres() else ""
    marks = ", ".join("{}" for _kind in kinds)
    only = f"AND kind {'NOT ' if other_kinds else ''}IN ({marks})" if kinds else ""
    async with atomic():  # one transaction, one commit
        await _bury_abandoned_last_tries(moment)
        rows = await Job.raw(
            f"""
            UPDATE job SET status = 'running', locked_at = {{}}, locked_by = {{}},
                           attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM job
                WHERE ((status = 'queued' AND run_at <= {{}})
                       OR (status = 'running' AND locked_at < {{}} AND attempts < max_attempts)) {only}
                ORDER BY run_at, id LIMIT {{}} {lock}
            )
            RETURNING id, kind, payload, attempts, max_attempts, idempotency_key, run_at
            """,  # noqa: S608 - `lock` and `only` are made of constant strings and placeholders
            moment,
            worker_id,
            moment,
            moment - LEASE,
            *kinds,
            limit,
        )
    rows.sort(key=lambda row: (row["run_at"], row["id"]))  # RETURNING has no order (PostgreSQL)
    return [_claimed(row) for row in rows]


async def _bury_abandoned_last_tries(moment: datetime) -> None:
    """A job whose worker vanished during its last try is dead, not run again: it may be what
    killed the worker, and rerunning it forever would take every worker down in turn."""
    await Job.raw(
        """
        UPDATE job SET status = 'dead', finished_at = {}, last_error = {}
        WHERE status = 'running' AND locked_at < {} AND attempts >= max_attempts
        """,
        moment,
        "the worker stopped while running it (lease expired) on its last try",
        moment - LEASE,
    )


async def _renew_lease(job: ClaimedJob, worker_id: str) -> bool:
    """Just before running a job of a claimed batch, confirm it is still ours and restart its
    lease: the batch may have outlasted the lease, and another worker may have taken it over."""
    renewed = (
        await Job.update({Job.locked_at: now()})
        .where((Job.id == job.id) & (Job.status == RUNNING) & (Job.locked_by == worker_id))
        .returning(Job.id)
    )
    return bool(renewed)


def _claimed(row: dict[str, Any]) -> ClaimedJob:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return ClaimedJob(
        id=row["id"],
        kind=row["kind"],
        payload=payload,
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        idempotency_key=row["idempotency_key"],
    )


async def _failed(job: ClaimedJob, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:4000]
    if job.attempts >= job.max_attempts:
        log.error("job %s (%s) is dead after %s tries: %s", job.id, job.kind, job.attempts, error)
        await Job.update({Job.status: DEAD, Job.last_error: error, Job.finished_at: now()}).where(Job.id == job.id)
        return
    log.warning("job %s (%s) failed, will retry: %s", job.id, job.kind, error)
    await Job.update(
        {
            Job.status: QUEUED,
            Job.last_error: error,
            Job.run_at: now() + backoff(job.attempts, _retry_caps.get(job.kind, BACKOFF_CAP_SECONDS)),
        }
    ).where(Job.id == job.id)


async def _succeeded(jobs: list[ClaimedJob]) -> None:
    await Job.update({Job.status: DONE, Job.finished_at: now(), Job.last_error: ""}).where(
        Job.id.is_in([job.id for job in jobs])
    )


async def run_one(job: ClaimedJob) -> bool:
    """Perform one claimed job; record done, retry later, or dead. True when it succeeded."""
    fn = _handlers.get(job.kind)
    try:
        if fn is None:
            raise LookupError(f"no handler registered for job kind {job.kind!r}")
        await fn(job)
    except Exception as exc:
        await _failed(job, exc)
        return False
    await _succeeded([job])
    return True


async def run_group(jobs: list[ClaimedJob]) -> None:
    """Perform claimed jobs of one batch kind with one call (see BatchHandler); their outcomes
    are recorded in one transaction."""
    try:
        failures = await _batch_handlers[jobs[0].kind](jobs) or {}
    except Exception as exc:
        failures = {job.id: exc for job in jobs}
    async with atomic():
        for job in jobs:
            if job.id in failures:
                await _failed(job, failures[job.id])
        if succeeded := [job for job in jobs if job.id not in failures]:
            await _succeeded(succeeded)


async def run_pending(worker_id: str = "inline", limit: int = 100, stop: asyncio.Event | None = None) -> int:
    """Drain what is due now (the CLI and tests; the worker runs the same lanes on its own,
    see run_worker). Returns jobs run.

    Each batch kind (jobs claimed together run as one call, e.g. one indexing request) and the
    one-by-one jobs are separate lanes that run side by side, each claiming and running until it
    finds nothing: a backlog in one lane (mail) never holds up another (search sync), and their
    writes share commits. A job one lane queues for another after that lane ran dry is run by
    the next pass. A set `stop` ends the drain after the batches under way."""
    total = 0
    while not _stopped(stop):
        ran = sum(await asyncio.gather(*(_drain(lane, stop) for lane in _lanes(worker_id, limit))))
        if not ran:
            break
        total += ran
    return total


@dataclass(frozen=True)
class _Lane:
    run_once: Callable[[], Awaitable[int]]  # claim once and run what was claimed; how many ran
    full: int  # a round that ran this many found a backlog
    gather_seconds: float = 0.0


def _lanes(worker_id: str, limit: int) -> list[_Lane]:
    batch_kinds = sorted(_batch_handlers)

    def batch_lane(kind: str) -> _Lane:
        async def run_once() -> int:
            batch = await claim(worker_id, limit, kinds=[kind])
            if batch:
                await run_group(batch)  # at once: the claim's lease is fresh
            return len(batch)

        return _Lane(run_once, limit, _gather_seconds.get(kind, 0.0))

    singles = min(limit, SINGLES_PER_ROUND)

    async def run_singles() -> int:
        ran = 0
        for job in await claim(worker_id, singles, kinds=batch_kinds, other_kinds=True):
            if await _renew_lease(job, worker_id):  # the jobs before it may have outlasted the lease
                await run_one(job)
                ran += 1
        return ran

    return [*(batch_lane(kind) for kind in batch_kinds), _Lane(run_singles, 1)]


def _stopped(stop: asyncio.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def _drain(lane: _Lane, stop: asyncio.Event | None) -> int:
    ran = 0
    while not _stopped(stop) and (once := await lane.run_once()):
        ran += once
    return ran


async def _run_lane(lane: _Lane, stop: asyncio.Event, poll_seconds: float) -> None:
    """A lane of the worker: claim and run, at once again after a backlog, else after a pause."""
    while not stop.is_set():
        try:
            ran = await lane.run_once()
        except Exception:
            log.exception("worker lane error; continuing")
            ran = 0
        if ran >= lane.full:
            continue
        pause = lane.gather_seconds if ran else poll_seconds
        if pause:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)


async def beat(worker_id: str) -> None:
    await WorkerHeartbeat.insert(WorkerHeartbeat(worker_id=worker_id, seen_at=now())).on_conflict(
        target=WorkerHeartbeat.worker_id,
        action="DO UPDATE",
        values=[WorkerHeartbeat.seen_at],
    )


async def worker_status() -> str:
    """`ok` when some worker beat recently, else `down`."""
    latest = (
        await WorkerHeartbeat.select(WorkerHeartbeat.seen_at).order_by(WorkerHeartbeat.seen_at, ascending=False).first()
    )
    if latest and now() - latest["seen_at"] < HEARTBEAT_FRESH:
        return "ok"
    return "down"


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def release_orphans() -> int:
    """Jobs left running by a worker of this host whose process is gone (killed, crashed) get
    an expired lease, so they are taken over now instead of after LEASE. Their attempt still
    counts: a job that was on its last try is buried by the usual rule."""
    host = socket.gethostname()
    rows = await Job.select(Job.locked_by).where(Job.status == RUNNING).distinct()
    dead = []
    for row in rows:
        owner_host, _, pid = row["locked_by"].rpartition(":")
        if owner_host == host and pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            dead.append(row["locked_by"])
    if not dead:
        return 0
    released = (
        await Job.update({Job.locked_at: now() - LEASE - timedelta(seconds=1)})
        .where((Job.status == RUNNING) & Job.locked_by.is_in(dead))
        .returning(Job.id)
    )
    log.info("released %d job(s) of stopped workers %s", len(released), ", ".join(dead))
    return len(released)


async def run_worker(stop: asyncio.Event, poll_seconds: float = 0.25, limit: int = WORKER_CLAIM_LIMIT) -> None:
    worker_id = new_worker_id()
    log.info("worker %s started", worker_id)
    try:
        await release_orphans()
    except Exception:
        log.exception("could not release the jobs of stopped workers; they wait for their lease")
    lanes = [_run_lane(lane, stop, poll_seconds) for lane in _lanes(worker_id, limit)]
    await asyncio.gather(_beat_until(worker_id, stop), *lanes)
    log.info("worker %s stopped", worker_id)


async def _beat_until(worker_id: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await beat(worker_id)
        except Exception:
            log.exception("worker heartbeat failed; continuing")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=HEARTBEAT_SECONDS)


async def retry_dead(job_id: int) -> bool:
    """Admin action: give a dead job a fresh set of tries."""
    updated = (
        await Job.update({Job.status: QUEUED, Job.attempts: 0, Job.run_at: now(), Job.finished_at: None})
        .where((Job.id == job_id) & (Job.status == DEAD))
        .returning(Job.id)
    )
    return bool(updated)
