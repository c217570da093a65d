"""The delivery job: POST one stored event to one endpoint, signed, and log the attempt.

2xx is delivered. Anything else (another status, a timeout, a refused connection, a redirect,
which is never followed) is logged and raised, so server/jobs.py retries with exponential
backoff until the job's attempts run out. A worker killed mid-request leaves the job `running`;
after its lease the job runs again and sends the same event id (at-least-once delivery:
receivers dedupe by Kizuna-Webhook-Id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from server import jobs
from server.accounts.auth import utcnow
from server.db import atomic
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
        return  # the endpoint was deleted meanwhile (its log went with it)
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
