"""Retention: the hourly prunes of webhook delivery logs, API idempotency keys and deflection
events delete what is past its window, keep the rest (and every pending webhook delivery), work
in bounded batches, and keep themselves scheduled once an hour."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from litestar import Litestar

from server import features, jobs, retention  # noqa: F401 - features registers the prunes, as the worker does
from server.accounts import passwords
from server.accounts import services as accounts
from server.accounts.auth import utcnow
from server.desk import deflection, idempotency
from server.desk.tables import DeflectionEvent, DeskIdempotencyKey, Ticket
from server.policy import Actor
from server.settings import get_settings, load_settings
from server.webhooks import delivery, services
from server.webhooks.tables import WebhookDelivery, WebhookEvent
from tests.conftest import make_client
from tests.factories import make_user
from tests.webhooks.conftest import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver

PRUNE_KINDS = ["desk.deflection_prune", "desk.idempotency_prune", "jobs.prune_done", "webhooks.prune_log"]


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


# Webhook delivery logs ------------------------------------------------------------------------


async def age_event(uid: str, days: float) -> None:
    """Move an event and every attempt of it `days` into the past."""
    moment = utcnow() - timedelta(days=days)
    event_id = (await WebhookEvent.select(WebhookEvent.id).where(WebhookEvent.uid == uid).first())["id"]
    await WebhookEvent.update({WebhookEvent.created_at: moment}).where(WebhookEvent.id == event_id)
    await WebhookDelivery.update({WebhookDelivery.created_at: moment}).where(WebhookDelivery.event == event_id)


async def job_of(uid: str) -> dict[str, Any]:
    job = await jobs.Job.select().where(jobs.Job.idempotency_key.like(f"webhook:{uid}:%")).first()
    assert job is not None
    return job


async def attempts_of(uid: str) -> list[str]:
    rows = (
        await WebhookDelivery.select(WebhookDelivery.outcome)
        .where(WebhookDelivery.event.uid == uid)
        .order_by(WebhookDelivery.id)
    )
    return [row["outcome"] for row in rows]


async def event_uids() -> set[str]:
    return {row["uid"] for row in await WebhookEvent.select(WebhookEvent.uid)}


async def test_webhook_log_keeps_30_days_and_every_pending_delivery(receiver: Receiver) -> None:
    admin = await make_user("admin")
    endpoint_id = await add_endpoint(admin, receiver)

    old_delivered = await services.send_test(admin, endpoint_id)
    recent = await services.send_test(admin, endpoint_id)
    await jobs.run_pending()
    receiver.answers = [500]
    retrying = await services.send_test(admin, endpoint_id)
    await jobs.run_pending()
    receiver.answers = [500]
    dead = await services.send_test(admin, endpoint_id)
    await jobs.Job.update({jobs.Job.max_attempts: 1}).where(jobs.Job.id == (await job_of(dead))["id"])
    await jobs.run_pending()
    unsent = await services.send_test(admin, endpoint_id)  # queued, its first try not run yet

    assert await attempts_of(old_delivered) == await attempts_of(recent) == ["delivered"]
    assert await attempts_of(retrying) == await attempts_of(dead) == ["failed"]
    assert (await job_of(retrying))["status"] == jobs.QUEUED and (await job_of(dead))["status"] == jobs.DEAD
    for uid in (old_delivered, retrying, dead, unsent):
        await age_event(uid, 31)
    await age_event(recent, 29)

    assert await delivery.prune_log() == 4  # two attempts and their events
    assert await event_uids() == {recent, retrying, unsent}
    assert await attempts_of(recent) == ["delivered"]
    assert await attempts_of(retrying) == ["failed"]  # its job is waiting to retry
    assert await delivery.prune_log() == 0

    # The kept deliveries go out; once the retry succeeded, its old failed attempt may go, and the
    # event stays while its new attempt is in the log.
    await jobs.Job.update({jobs.Job.run_at: jobs.now()}).where(jobs.Job.status == jobs.QUEUED)
    receiver.received.clear()
    await jobs.run_pending()
    assert sorted(e["id"] for e in receiver.events("webhook.test")) == sorted([retrying, unsent])
    assert await attempts_of(retrying) == ["failed", "delivered"]
    assert await delivery.prune_log() == 1
    assert await attempts_of(retrying) == ["delivered"]
    assert await event_uids() == {recent, retrying, unsent}


async def test_webhook_log_days_is_a_setting(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv("WEBHOOK_LOG_DAYS", "7")
    assert load_settings().webhook_log_days == 7
    monkeypatch.setenv("WEBHOOK_LOG_DAYS", "0")
    assert load_settings().webhook_log_days == 1  # at least a day
    monkeypatch.delenv("WEBHOOK_LOG_DAYS")
    assert load_settings().webhook_log_days == 30

    admin = await make_user("admin")
    endpoint_id = await add_endpoint(admin, receiver)
    week_old, fresh = await services.send_test(admin, endpoint_id), await services.send_test(admin, endpoint_id)
    await jobs.run_pending()
    await age_event(week_old, 8)
    await age_event(fresh, 6)
    assert await delivery.prune_log() == 0  # 30 days by default
    seven = dataclasses.replace(get_settings(), webhook_log_days=7)
    monkeypatch.setattr(delivery, "get_settings", lambda: seven)
    assert await delivery.prune_log() == 2
    assert await event_uids() == {fresh}


# API idempotency keys -------------------------------------------------------------------------


async def age_key(key: str, hours: float) -> None:
    await DeskIdempotencyKey.update({DeskIdempotencyKey.created_at: utcnow() - timedelta(hours=hours)}).where(
        DeskIdempotencyKey.lookup.like(f"%:{key}")
    )


async def test_idempotency_keys_answer_retries_for_24_hours_then_go(app: Litestar) -> None:
    customer = await make_user()
    token = await accounts.create_api_token(customer, "retention test")
    body = {"subject": "Printer on fire", "body": "Again"}

    async def create(key: str) -> tuple[int, bool]:
        headers = {"authorization": f"Bearer {token}", "Idempotency-Key": key}
        async with make_client(app) as client:
            response = await client.post("/api/v1/tickets", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()["id"], response.headers.get("idempotent-replayed") == "true"

    old_ticket, _ = await create("yesterday")
    new_ticket, _ = await create("this-morning")
    await age_key("yesterday", 25)
    await age_key("this-morning", 23)

    assert await idempotency.prune_keys() == 1
    assert [row["lookup"] for row in await DeskIdempotencyKey.select(DeskIdempotencyKey.lookup)] == [
        f"{customer.user_id}:this-morning"
    ]
    assert await create("this-morning") == (new_ticket, True)  # still answers its retry
    again, replayed = await create("yesterday")  # forgotten: a new request
    assert not replayed and again not in (old_ticket, new_ticket)
    assert await Ticket.count() == 3


# Deflection events ----------------------------------------------------------------------------


async def visit(customer: Actor, query: str) -> str:
    """A web form visit: suggestions shown, one opened, then left without submitting."""
    visit_token = deflection.new_visit(customer)
    shown = deflection.shown_token(visit_token, query, ["kb:1", "kb:2"])
    await deflection.record(customer, "shown", shown)
    await deflection.record(customer, "click", shown, "kb:2")
    await deflection.record(customer, "left", visit_token)
    return deflection.read(visit_token).visit


async def test_deflection_events_are_kept_400_days_for_the_report() -> None:
    customer = await make_user()
    last_year, over_a_year = await visit(customer, "invoice"), await visit(customer, "refund")
    for visit_id, days in ((last_year, 399), (over_a_year, 401)):
        await DeflectionEvent.update({DeflectionEvent.created_at: utcnow() - timedelta(days=days)}).where(
            DeflectionEvent.visit == visit_id
        )
    assert await deflection.prune_events() == 3
    rows = await DeflectionEvent.select(DeflectionEvent.visit, DeflectionEvent.kind).order_by(DeflectionEvent.id)
    assert rows == [{"visit": last_year, "kind": kind} for kind in ("shown", "click", "left")]
    assert await deflection.prune_events() == 0


# Batches --------------------------------------------------------------------------------------


async def old_keys(customer: Actor, count: int, prefix: str) -> None:
    async def action() -> tuple[int, Any]:
        return 201, {"ok": True}

    for n in range(count):
        await idempotency.run_once(customer, f"{prefix}-{n}", "print", action)
        await age_key(f"{prefix}-{n}", 48)


async def test_prunes_delete_in_batches_until_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH_ROWS", 2)
    monkeypatch.setattr(retention, "BATCH_PAUSE_SECONDS", 0.0)
    customer = await make_user()
    await old_keys(customer, 5, "old")
    await old_keys(customer, 1, "fresh")
    await age_key("fresh-0", 1)

    assert await idempotency.prune_keys() == 5  # three statements of at most two rows
    assert [row["lookup"] for row in await DeskIdempotencyKey.select(DeskIdempotencyKey.lookup)] == [
        f"{customer.user_id}:fresh-0"
    ]

    # A run whose time is up stops after the batch in hand; the next run goes on.
    monkeypatch.setattr(retention, "RUN_SECONDS", 0.0)
    await old_keys(customer, 5, "backlog")
    assert [await idempotency.prune_keys() for _ in range(4)] == [2, 2, 1, 0]
    assert await DeskIdempotencyKey.count() == 1


# Scheduling -----------------------------------------------------------------------------------


async def prune_jobs() -> list[dict[str, Any]]:
    return (
        await jobs.Job.select(jobs.Job.kind, jobs.Job.idempotency_key, jobs.Job.status, jobs.Job.run_at)
        .where(jobs.Job.kind.is_in(PRUNE_KINDS))
        .order_by(jobs.Job.kind)
        .order_by(jobs.Job.id)
    )


async def test_prunes_run_hourly_and_schedule_their_next_hour() -> None:
    assert retention.kinds() == PRUNE_KINDS
    moment = jobs.now()
    this_hour, next_hour = moment.replace(minute=0, second=0, microsecond=0), retention.next_hour(moment)
    await retention.schedule()
    await retention.schedule()  # a second worker starting in the same hour adds nothing
    queued = await prune_jobs()
    assert [(j["idempotency_key"], j["status"]) for j in queued] == [
        (retention.hour_key(kind, this_hour), jobs.QUEUED) for kind in PRUNE_KINDS
    ]
    assert all(j["run_at"] <= jobs.now() for j in queued)

    assert await jobs.run_pending() == len(PRUNE_KINDS)
    chain = await prune_jobs()
    assert [(j["idempotency_key"], j["status"]) for j in chain] == [
        pair
        for kind in PRUNE_KINDS
        for pair in (
            (retention.hour_key(kind, this_hour), jobs.DONE),
            (retention.hour_key(kind, next_hour), jobs.QUEUED),
        )
    ]
    assert all(next_hour <= j["run_at"] < next_hour + timedelta(seconds=1) for j in chain if j["status"] == jobs.QUEUED)
    assert await jobs.run_pending() == 0  # not before the hour

    # A run of a past hour (a worker back after a long stop, a retried dead job) queues the same
    # next hour, not one run per missed hour.
    for kind in PRUNE_KINDS:
        await jobs.enqueue(kind, {}, key=retention.hour_key(kind, this_hour - timedelta(hours=5)))
    assert await jobs.run_pending() == len(PRUNE_KINDS)
    assert [j["idempotency_key"] for j in await prune_jobs() if j["status"] == jobs.QUEUED] == [
        retention.hour_key(kind, next_hour) for kind in PRUNE_KINDS
    ]


async def test_the_worker_starts_the_hourly_prunes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "worker",
        "--once",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        _out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    by_status: dict[str, list[str]] = {}
    for job in await prune_jobs():
        by_status.setdefault(job["status"], []).append(job["kind"])
    assert by_status == {jobs.DONE: PRUNE_KINDS, jobs.QUEUED: PRUNE_KINDS}


async def test_finished_jobs_go_after_30_days_and_failed_or_waiting_ones_stay() -> None:
    moment = jobs.now()

    async def job(key: str, status: str, finished_days_ago: float | None) -> None:
        finished = moment - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
        await jobs.Job.insert(
            jobs.Job(
                kind="mail.send",
                payload={},
                idempotency_key=key,
                status=status,
                run_at=moment - timedelta(days=40),
                created_at=moment - timedelta(days=40),
                finished_at=finished,
            )
        )

    await job("old-done", jobs.DONE, 31)
    await job("recent-done", jobs.DONE, 29)
    await job("old-dead", jobs.DEAD, 31)
    await job("waiting", jobs.QUEUED, None)

    assert await retention.prune_done_jobs() == 1
    left = {row["idempotency_key"] for row in await jobs.Job.select(jobs.Job.idempotency_key)}
    assert left == {"recent-done", "old-dead", "waiting"}
