"""The delivery job: POST one stored event to one endpoint, signed, and log the attempt.

2xx is delivered. Anything else (another status, a timeout, a refused connection, a redirect,
which is never followed) is logged and raised, so server/jobs.py retries with exponential
backoff until the job's attempts run out. A worker killed mid-request leaves the job `running`;
after its lease the job runs again and sends the same event id (at-least-once delivery:
receivers dedupe by Kizuna-Webhook-Id).

The log is kept WEBHOOK_LOG_DAYS (30 by default): `prune_log`, an hourly job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import httpx

from server import jobs, retention
from server.accounts.auth import utcnow
from server.db import atomic, is_postgres
from server.settings import get_settings
from server.webhooks import signing
from server.webhooks.services import DELIVER_KIND, TEST_EVENT
from server.webhooks.tables import (
    DELIVERED,
    FAILED,
    INTERRUPTED,
    SENDING,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

log = logging.getLogger("kizuna.webhooks")

TIMEOUT_SECONDS = 5.0
EXCERPT_BYTES = 1024
RETRY_CAP_SECONDS = 3600.0
PRUNE_KIND = "webhooks.prune_log"


class DeliveryFailed(Exception):
    """The endpoint did not answer 2xx; the job is retried."""


async def _read_excerpt(response: httpx.Response) -> bytes:
    excerpt = b""
    async for chunk in response.aiter_bytes():
        excerpt += chunk
        if len(excerpt) >= EXCERPT_BYTES:
            break
    return excerpt[:EXCERPT_BYTES]


async def post_signed(url: str, secret: str, uid: str, event: str, body: bytes) -> tuple[int, bytes]:
    """(status code, the first KiB of the response). Raises httpx errors and TimeoutError."""
    timestamp = int(time.time())
    headers = signing.headers(secret, uid, event, timestamp, body)
    async with (
        asyncio.timeout(TIMEOUT_SECONDS),
        httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        return response.status_code, await _read_excerpt(response)


async def _start_attempt(job: jobs.ClaimedJob, endpoint_id: int, event_id: int) -> int:
    async with atomic():
        # An earlier try of this job that never recorded its result ended with its worker.
        await WebhookDelivery.update({WebhookDelivery.outcome: INTERRUPTED}).where(
            (WebhookDelivery.job_id == job.id) & (WebhookDelivery.outcome == SENDING)
        )
        rows = await WebhookDelivery.insert(
            WebhookDelivery(
                endpoint=endpoint_id,
                event=event_id,
                job_id=job.id,
                attempt=job.attempts,
                redelivery=bool(job.payload.get("redelivery")),
                outcome=SENDING,
                created_at=utcnow(),
            )
        ).returning(WebhookDelivery.id)
    return rows[0]["id"]


async def _finish_attempt(delivery_id: int, values: dict[Any, Any]) -> None:
    async with atomic():
        await WebhookDelivery.update(values).where(WebhookDelivery.id == delivery_id)


@jobs.handler(DELIVER_KIND, retry_cap_seconds=RETRY_CAP_SECONDS)
async def deliver(job: jobs.ClaimedJob) -> None:
    endpoint_id, event_id = int(job.payload["endpoint"]), int(job.payload["event"])
    endpoint = (
        await WebhookEndpoint.select(WebhookEndpoint.url, WebhookEndpoint.secret, WebhookEndpoint.active)
        .where(WebhookEndpoint.id == endpoint_id)
        .first()
    )
    event = await WebhookEvent.select().where(WebhookEvent.id == event_id).first()
    if endpoint is None or event is None:
        # The endpoint was deleted meanwhile (its log went with it), or a dead job was retried
        # after its event outlived the log's retention (prune_log).
        return
    if not endpoint["active"] and event["event"] != TEST_EVENT:
        return  # switched off since the event was queued
    delivery_id = await _start_attempt(job, endpoint_id, event_id)
    started = time.monotonic()
    status_code: int | None = None
    excerpt = b""
    error = ""
    try:
        status_code, excerpt = await post_signed(
            endpoint["url"], endpoint["secret"], event["uid"], event["event"], event["body"].encode()
        )
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}".strip()[:1000] or type(exc).__name__
        if isinstance(exc, TimeoutError):
            error = f"no answer within {TIMEOUT_SECONDS:g} s"
    delivered = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not delivered:
        error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
    await _finish_attempt(
        delivery_id,
        {
            WebhookDelivery.outcome: DELIVERED if delivered else FAILED,
            WebhookDelivery.status_code: status_code,
            WebhookDelivery.response_excerpt: excerpt.decode("utf-8", errors="replace").replace("\x00", ""),
            WebhookDelivery.error: error,
            WebhookDelivery.duration_ms: int((time.monotonic() - started) * 1000),
        },
    )
    if not delivered:
        log.info("webhook %s to endpoint %s failed (try %s): %s", event["uid"], endpoint_id, job.attempts, error)
        raise DeliveryFailed(error)


# Retention -----------------------------------------------------------------------------------

# A delivery is pending while its job is queued or running (its first try, a retry waiting out its
# backoff, or a dead job an admin sent again): its attempts and its event stay, whatever their age.
_PENDING = f"job.status IN ('{jobs.QUEUED}', '{jobs.RUNNING}')"
_ATTEMPT_GONE = (
    "created_at < {} AND NOT EXISTS ("  # noqa: S608 - made of constants
    f"SELECT 1 FROM job WHERE job.id = webhook_delivery.job_id AND {_PENDING})"
)


def _event_gone() -> str:
    """An event goes once no attempt of it is left and no job will still send it (a first try
    that has not run yet has no attempt row: the job's payload names the event)."""
    if is_postgres():
        names_event = "job.payload ->> 'event' = CAST(webhook_event.id AS TEXT)"
    else:
        names_event = "json_extract(job.payload, '$.event') = webhook_event.id"
    return (
        "created_at < {} "  # noqa: S608 - made of constants
        "AND NOT EXISTS (SELECT 1 FROM webhook_delivery WHERE webhook_delivery.event = webhook_event.id) "
        f"AND NOT EXISTS (SELECT 1 FROM job WHERE job.kind = '{DELIVER_KIND}' AND {_PENDING} AND {names_event})"
    )


@retention.prunes(PRUNE_KIND)
async def prune_log() -> int:
    """Delete delivery attempts older than WEBHOOK_LOG_DAYS, except those of a pending delivery,
    then the events of that age that nothing needs any more. Returns the rows deleted."""
    cutoff = utcnow() - timedelta(days=get_settings().webhook_log_days)
    attempts = await retention.delete_in_batches(WebhookDelivery, _ATTEMPT_GONE, cutoff)
    events = await retention.delete_in_batches(WebhookEvent, _event_gone(), cutoff)
    return attempts + events
