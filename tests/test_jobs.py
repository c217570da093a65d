"""Durable jobs: enqueued with the caller's transaction, retried with backoff, dead after too
many tries (and retried by an admin), reclaimed after a worker dies, never run twice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from server import jobs
from server.db import atomic
from server.jobs import Job
from tests.conftest import post_form
from tests.factories import login, make_user

runs: list[int] = []


@jobs.handler("test.record")
async def record(job: jobs.ClaimedJob) -> None:
    runs.append(job.id)


@jobs.handler("test.fail")
async def fail(job: jobs.ClaimedJob) -> None:
    runs.append(job.id)
    raise RuntimeError(f"boom {job.payload.get('n', '')}")


@jobs.handler("test.outlives-lease")
async def outlives_lease(job: jobs.ClaimedJob) -> None:
    """Runs past the lease: by the time it ends, the rest of its worker's batch looks abandoned
    and another worker has taken it over."""
    runs.append(job.id)
    await Job.update({Job.locked_at: jobs.now() - jobs.LEASE * 2}).where(Job.id != job.id)
    await jobs.run_pending("rescuer")


@pytest.fixture(autouse=True)
def clear_runs() -> Iterator[None]:
    runs.clear()
    yield
    runs.clear()


async def job_by_key(key: str) -> dict[str, Any]:
    row = await Job.select().where(Job.idempotency_key == key).output(load_json=True).first()
    assert row is not None, f"no job with key {key!r}"
    return row


async def mark_running(key: str, worker: str, *, attempts: int, locked_ago: timedelta) -> None:
    """Put a job in the state a worker leaves it in while running it (or after dying mid-run)."""
    await Job.update(
        {
            Job.status: jobs.RUNNING,
            Job.attempts: attempts,
            Job.locked_by: worker,
            Job.locked_at: jobs.now() - locked_ago,
        }
    ).where(Job.idempotency_key == key)


async def make_due(job_id: int) -> None:
    """Skip the backoff wait, as if its time had come."""
    await Job.update({Job.run_at: jobs.now()}).where(Job.id == job_id)


# Enqueue: the transactional outbox -------------------------------------------------------


async def test_enqueue_in_committed_transaction_leaves_a_job() -> None:
    async with atomic():
        await jobs.enqueue("test.record", {"n": 1}, key="commit-1")
    row = await job_by_key("commit-1")
    assert (row["kind"], row["payload"], row["status"], row["attempts"]) == ("test.record", {"n": 1}, "queued", 0)


async def test_enqueue_in_rolled_back_transaction_leaves_nothing() -> None:
    with pytest.raises(RuntimeError, match="action failed"):
        async with atomic():
            await jobs.enqueue("test.record", {"n": 1}, key="rollback-1")
            raise RuntimeError("action failed after enqueue")
    assert await Job.count() == 0
    assert await jobs.run_pending() == 0
    assert runs == []


async def test_same_idempotency_key_gives_one_job() -> None:
    async with atomic():
        await jobs.enqueue("test.record", {"n": 1}, key="once")
    async with atomic():
        await jobs.enqueue("test.record", {"n": 2}, key="once")
    await jobs.enqueue("test.record", {"n": 3}, key="once")
    assert await Job.count() == 1
    assert (await job_by_key("once"))["payload"] == {"n": 1}  # the first one wins
    assert await jobs.run_pending() == 1
    assert len(runs) == 1


async def test_jobs_without_key_are_all_kept_and_run_once() -> None:
    for n in range(3):
        await jobs.enqueue("test.record", {"n": n})
    assert await jobs.run_pending() == 3
    assert await jobs.run_pending() == 0
    assert len(runs) == len(set(runs)) == 3
    assert await Job.count().where(Job.status == jobs.DONE) == 3


async def test_delayed_job_waits_for_its_time() -> None:
    await jobs.enqueue("test.record", {}, key="later", delay=timedelta(minutes=10))
    assert await jobs.run_pending() == 0
    await make_due((await job_by_key("later"))["id"])
    assert await jobs.run_pending() == 1


# Failure, backoff, dead ---------------------------------------------------------------


async def test_failed_job_is_requeued_with_exponential_backoff() -> None:
    await jobs.enqueue("test.fail", {"n": 7}, key="flaky", max_attempts=5)
    job_id = (await job_by_key("flaky"))["id"]
    delays = []
    for attempt in (1, 2, 3):
        before = jobs.now()
        assert await jobs.run_pending() == 1
        row = await job_by_key("flaky")
        assert row["status"] == jobs.QUEUED
        assert row["attempts"] == attempt
        assert row["last_error"] == "RuntimeError: boom 7"
        assert row["finished_at"] is None
        delay = (row["run_at"] - before).total_seconds()
        expected = jobs.BACKOFF_BASE_SECONDS**attempt
        assert 0.8 * expected - 1 <= delay <= 1.2 * expected + 1, (attempt, delay)
        delays.append(delay)
        assert await jobs.run_pending() == 0  # not due yet: the backoff is respected
        await make_due(job_id)
    assert delays == sorted(delays)
    assert runs == [job_id] * 3


async def test_job_is_dead_after_max_attempts() -> None:
    await jobs.enqueue("test.fail", {"n": 1}, key="doomed", max_attempts=3)
    job_id = (await job_by_key("doomed"))["id"]
    for _ in range(3):
        await make_due(job_id)
        assert await jobs.run_pending() == 1
    row = await job_by_key("doomed")
    assert (row["status"], row["attempts"], row["last_error"]) == (jobs.DEAD, 3, "RuntimeError: boom 1")
    assert row["finished_at"] is not None
    await make_due(job_id)
    assert await jobs.run_pending() == 0  # dead jobs stay put until someone retries them
    assert len(runs) == 3


async def test_job_without_handler_fails_with_a_clear_error() -> None:
    await jobs.enqueue("test.nobody-handles-this", {}, key="orphan", max_attempts=1)
    await jobs.run_pending()
    row = await job_by_key("orphan")
    assert row["status"] == jobs.DEAD
    assert "no handler registered" in row["last_error"]


async def _dead_job() -> int:
    await jobs.enqueue("test.fail", {"n": 9}, key="for-admin", max_attempts=1)
    await jobs.run_pending()
    row = await job_by_key("for-admin")
    assert row["status"] == jobs.DEAD
    return row["id"]


async def test_admin_sees_dead_jobs_and_retries_one(client: httpx.AsyncClient) -> None:
    job_id = await _dead_job()
    admin = await make_user("admin")
    await login(client, admin.email)

    listing = await client.get("/admin/jobs")
    assert listing.status_code == 200
    assert "test.fail" in listing.text and "RuntimeError: boom 9" in listing.text
    assert f'action="/admin/jobs/{job_id}/retry"' in listing.text

    response = await post_form(client, f"/admin/jobs/{job_id}/retry", {}, page="/admin/jobs", follow_redirects=False)
    assert response.status_code in (302, 303)
    row = await job_by_key("for-admin")
    assert (row["status"], row["attempts"]) == (jobs.QUEUED, 0)
    assert "test.fail" not in (await client.get("/admin/jobs")).text

    runs.clear()
    assert await jobs.run_pending() == 1  # the worker picks it up again
    assert runs == [job_id]


async def test_retrying_a_job_that_is_not_dead_is_404(client: httpx.AsyncClient) -> None:
    await jobs.enqueue("test.record", {}, key="alive")
    job_id = (await job_by_key("alive"))["id"]
    admin = await make_user("admin")
    await login(client, admin.email)
    response = await post_form(client, f"/admin/jobs/{job_id}/retry", {}, page="/admin/jobs", follow_redirects=False)
    assert response.status_code == 404
    assert (await job_by_key("alive"))["status"] == jobs.QUEUED


async def test_non_admin_cannot_see_or_retry_dead_jobs(client: httpx.AsyncClient) -> None:
    job_id = await _dead_job()
    agent = await make_user("agent", "moderator")
    await login(client, agent.email)
    assert (await client.get("/admin/jobs")).status_code == 403
    response = await post_form(client, f"/admin/jobs/{job_id}/retry", {}, page="/", follow_redirects=False)
    assert response.status_code == 403
    assert (await job_by_key("for-admin"))["status"] == jobs.DEAD


async def test_anonymous_cannot_retry_dead_jobs(client: httpx.AsyncClient) -> None:
    job_id = await _dead_job()
    assert (await client.get("/admin/jobs", follow_redirects=False)).status_code in (302, 303, 401)
    response = await post_form(client, f"/admin/jobs/{job_id}/retry", {}, page="/login", follow_redirects=False)
    assert response.status_code in (302, 303, 401)
    assert (await job_by_key("for-admin"))["status"] == jobs.DEAD


# Dead workers and concurrent claims ----------------------------------------------------


async def test_job_of_a_dead_worker_is_claimed_again_after_the_lease() -> None:
    await jobs.enqueue("test.record", {}, key="orphaned")
    await jobs.enqueue("test.record", {}, key="busy")
    await mark_running("orphaned", "dead-worker", attempts=1, locked_ago=jobs.LEASE * 2)
    await mark_running("busy", "live-worker", attempts=1, locked_ago=timedelta(seconds=1))

    claimed = await jobs.claim("rescuer")
    assert [job.idempotency_key for job in claimed] == ["orphaned"]  # the live worker keeps its job
    assert claimed[0].attempts == 2
    row = await job_by_key("orphaned")
    assert (row["status"], row["locked_by"]) == (jobs.RUNNING, "rescuer")
    assert await jobs.run_one(claimed[0])
    assert (await job_by_key("orphaned"))["status"] == jobs.DONE
    assert (await job_by_key("busy"))["status"] == jobs.RUNNING


async def test_jobs_of_a_stopped_worker_on_this_host_are_released_without_waiting_for_the_lease() -> None:
    import socket
    import sys

    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # a real process id that no longer runs
    host = socket.gethostname()
    await jobs.enqueue("test.record", {}, key="of-the-dead")
    await jobs.enqueue("test.record", {}, key="of-the-living")
    await jobs.enqueue("test.record", {}, key="elsewhere")
    await mark_running("of-the-dead", f"{host}:{gone.pid}", attempts=1, locked_ago=timedelta(seconds=1))
    await mark_running("of-the-living", f"{host}:{os.getpid()}", attempts=1, locked_ago=timedelta(seconds=1))
    await mark_running("elsewhere", f"another-host:{gone.pid}", attempts=1, locked_ago=timedelta(seconds=1))

    assert await jobs.release_orphans() == 1
    claimed = await jobs.claim("rescuer")
    assert [job.idempotency_key for job in claimed] == ["of-the-dead"]
    assert claimed[0].attempts == 2  # the interrupted try still counts


async def test_a_worker_told_to_stop_claims_no_more_jobs() -> None:
    for n in range(5):
        await jobs.enqueue("test.record", {"n": n}, key=f"backlog-{n}")
    stop = asyncio.Event()
    stop.set()
    assert await jobs.run_pending("stopping", limit=2, stop=stop) == 0
    assert await jobs.run_pending("draining", limit=2) == 5


async def test_jobs_taken_over_after_the_lease_are_not_run_again_by_their_first_worker() -> None:
    await jobs.enqueue("test.outlives-lease", {}, key="slow")
    for n in range(3):
        await jobs.enqueue("test.record", {"n": n}, key=f"batch-{n}")
    ran = await jobs.run_pending("first")
    assert sorted(runs) == sorted(set(runs))  # nothing ran twice
    assert len(runs) == 4
    assert ran == 1  # the first worker ran only the slow job; the rescuer ran the rest
    rows = await Job.select(Job.status, Job.locked_by).where(Job.kind == "test.record")
    assert {(row["status"], row["locked_by"]) for row in rows} == {(jobs.DONE, "rescuer")}


async def test_job_whose_worker_died_on_its_last_try_is_dead_not_rerun() -> None:
    """A job that kills its worker (out of memory, a crash in C code) must not take down every
    worker in turn, forever."""
    await jobs.enqueue("test.record", {}, key="poison", max_attempts=3)
    await mark_running("poison", "dead-worker", attempts=3, locked_ago=jobs.LEASE * 2)
    assert await jobs.claim("next-worker") == []
    row = await job_by_key("poison")
    assert row["status"] == jobs.DEAD
    assert row["finished_at"] is not None
    assert "worker stopped" in row["last_error"]
    assert runs == []
    assert await jobs.retry_dead(row["id"])  # an admin can still give it another chance
    assert await jobs.run_pending() == 1
    assert runs == [row["id"]]


async def test_concurrent_claims_never_share_a_job() -> None:
    total = 60
    for n in range(total):
        await jobs.enqueue("test.record", {"n": n}, key=f"c-{n}")
    claimed: list[int] = []
    for _round in range(10):
        batches = await asyncio.gather(*(jobs.claim(f"w{i}", limit=7) for i in range(6)))
        found = [job.id for batch in batches for job in batch]
        if not found:
            break
        claimed += found
    assert len(claimed) == len(set(claimed)) == total
    rows = await Job.select(Job.attempts, Job.status).where(Job.kind == "test.record")
    assert {(row["attempts"], row["status"]) for row in rows} == {(1, jobs.RUNNING)}


# Heartbeat ---------------------------------------------------------------------------------


async def test_worker_status_follows_the_heartbeat(client: httpx.AsyncClient) -> None:
    assert await jobs.worker_status() == "down"
    assert (await client.get("/healthz")).json()["worker"] == "down"
    await jobs.beat("test-worker")
    await jobs.beat("test-worker")  # a second beat updates, it does not add a row
    assert await jobs.WorkerHeartbeat.count() == 1
    assert await jobs.worker_status() == "ok"
    assert (await client.get("/healthz")).json()["worker"] == "ok"


async def test_stale_heartbeat_means_worker_down() -> None:
    await jobs.beat("old-worker")
    await jobs.WorkerHeartbeat.update({jobs.WorkerHeartbeat.seen_at: jobs.now() - jobs.HEARTBEAT_FRESH * 2}).where(
        jobs.WorkerHeartbeat.worker_id == "old-worker"
    )
    assert await jobs.worker_status() == "down"


# Several worker processes ------------------------------------------------------------------

WORKERS = 3
MAIL_JOBS = 240  # more than two claim batches (100), so every worker gets some


async def _hold_job_table_until_workers_wait(url: str, procs: list[asyncio.subprocess.Process]) -> None:
    """On PostgreSQL, lock the job table until every worker is queued behind the lock, so
    they all start claiming at the same moment instead of whichever imports fastest."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE job IN EXCLUSIVE MODE")
            for _tick in range(600):
                waiting = await conn.fetchval(
                    "SELECT count(DISTINCT pid) FROM pg_locks WHERE relation = 'job'::regclass AND NOT granted"
                )
                if waiting >= len(procs):
                    break
                assert all(proc.returncode is None for proc in procs), "a worker exited early"
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the workers never reached the job table")
    finally:
        await conn.close()


async def test_worker_processes_send_every_mail_exactly_once(mailbox: Any) -> None:
    """Real `worker --once` processes drain mail jobs concurrently; the sink must receive each
    message once (a job run twice would deliver its Message-ID twice)."""
    import os
    import socket
    import sys

    from server import mail
    from server.mailsink import list_captured

    expected = set()
    async with atomic():
        for n in range(MAIL_JOBS):
            key = f"multi-{n}"
            payload = {"to": f"r{n}@example.test", "subject": f"Message {n}", "text": f"Body {n}"}
            await jobs.enqueue(mail.KIND, payload, key=key)
            expected.add(mail.build_message(payload["to"], payload["subject"], payload["text"], key)["Message-ID"])

    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "worker", "--once", stderr=asyncio.subprocess.PIPE
        )
        for _ in range(WORKERS)
    ]
    postgres = os.environ["DATABASE_URL"].startswith("postgres")
    if postgres:
        await _hold_job_table_until_workers_wait(os.environ["DATABASE_URL"], procs)
    outputs = await asyncio.wait_for(asyncio.gather(*(proc.communicate() for proc in procs)), timeout=180)
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()

    received = [str(m.message["Message-ID"]) for m in list_captured(mailbox.directory, limit=MAIL_JOBS * 2)]
    assert len(received) == MAIL_JOBS
    assert set(received) == expected

    rows = await Job.select(Job.status, Job.attempts, Job.locked_by).where(Job.kind == mail.KIND)
    assert len(rows) == MAIL_JOBS
    assert {(row["status"], row["attempts"]) for row in rows} == {(jobs.DONE, 1)}  # claimed once each
    if postgres:
        workers = {f"{socket.gethostname()}:{proc.pid}" for proc in procs}
        assert {row["locked_by"] for row in rows} == workers  # all of them took part


_slow_lane_may_finish = asyncio.Event()
_slow_lane_started = asyncio.Event()
_quick_lane_ran = asyncio.Event()
_lanes_seen: list[str] = []


@jobs.batch_handler("test.lanes.slow")
async def _slow_lane(batch: list[jobs.ClaimedJob]) -> None:
    _lanes_seen.append("slow started")
    _slow_lane_started.set()
    await _slow_lane_may_finish.wait()
    _lanes_seen.append("slow finished")


@jobs.batch_handler("test.lanes.quick")
async def _quick_lane(batch: list[jobs.ClaimedJob]) -> dict[int, Exception]:
    _lanes_seen.append("quick")
    _quick_lane_ran.set()
    return {job.id: RuntimeError("this one fails alone") for job in batch if job.payload.get("fail")}


async def test_the_worker_runs_each_batch_kind_in_its_own_lane() -> None:
    """A batch that takes long (mail to a slow server) does not hold up another kind (search
    sync); a batch handler can fail some of its jobs and not the others."""
    _lanes_seen.clear()
    for event in (_slow_lane_may_finish, _slow_lane_started, _quick_lane_ran):
        event.clear()
    await jobs.enqueue("test.lanes.slow", {})
    stop = asyncio.Event()
    worker = asyncio.create_task(jobs.run_worker(stop, poll_seconds=0.05))
    try:
        await asyncio.wait_for(_slow_lane_started.wait(), timeout=30)
        async with atomic():
            await jobs.enqueue("test.lanes.quick", {"n": 1})
            await jobs.enqueue("test.lanes.quick", {"n": 2, "fail": True})
        await asyncio.wait_for(_quick_lane_ran.wait(), timeout=30)
        assert _lanes_seen == ["slow started", "quick"]  # while the slow batch still runs
    finally:
        _slow_lane_may_finish.set()
        stop.set()
        await asyncio.wait_for(worker, timeout=30)  # lanes finish what they claimed, then stop
    assert _lanes_seen == ["slow started", "quick", "slow finished"]
    rows = await Job.select(Job.kind, Job.status, Job.payload).order_by(Job.id).output(load_json=True)
    assert [(r["kind"], r["status"], r["payload"].get("n")) for r in rows] == [
        ("test.lanes.slow", jobs.DONE, None),
        ("test.lanes.quick", jobs.DONE, 1),
        ("test.lanes.quick", jobs.QUEUED, 2),  # failed on its own: back in the queue, later
    ]
