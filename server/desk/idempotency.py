"""`Idempotency-Key` for API POSTs: the first result for (user, key) is stored in the same
transaction as the action, and a retry with the same key gets that result back instead of doing
the action twice. A key reused for a different request is a 422.

A key answers retries for KEEP_KEYS (24 hours, Stripe's window) and is then deleted by an hourly
job, so within the following hour; the same key afterwards starts a new request."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from server import retention
from server.accounts.auth import utcnow
from server.db import atomic
from server.desk.tables import DeskIdempotencyKey
from server.errors import Invalid
from server.i18n import _
from server.policy import Actor

MAX_KEY_CHARS = 200
KEEP_KEYS = timedelta(hours=24)  # a client retries within minutes; nobody retries a POST days later
PRUNE_KIND = "desk.idempotency_prune"


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def run_once(
    actor: Actor, key: str | None, print_: str, action: Callable[[], Awaitable[tuple[int, Any]]]
) -> tuple[int, Any, bool]:
    """(status code, JSON-ready body, replayed?)."""
    if key is None:
        status, body = await action()
        return status, body, False
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise Invalid({"idempotency_key": _("Use an Idempotency-Key of 1 to %(n)s characters.", n=MAX_KEY_CHARS)})
    lookup = f"{actor.user_id}:{key}"
    async with atomic():
        # On PostgreSQL a concurrent twin waits here on the unique index until we commit.
        inserted = (
            await DeskIdempotencyKey.insert(
                DeskIdempotencyKey(lookup=lookup, user=actor.user_id, fingerprint=print_, created_at=utcnow())
            )
            .on_conflict(target=DeskIdempotencyKey.lookup, action="DO NOTHING")
            .returning(DeskIdempotencyKey.id)
        )
        if not inserted:
            row = (
                await DeskIdempotencyKey.select()
                .where(DeskIdempotencyKey.lookup == lookup)
                .output(load_json=True)
                .first()
            )
            assert row is not None
            if row["fingerprint"] != print_:
                raise Invalid({"idempotency_key": _("This Idempotency-Key was used for a different request.")})
            return row["status_code"], row["response"], True
        status, body = await action()
        await DeskIdempotencyKey.update(
            {DeskIdempotencyKey.status_code: status, DeskIdempotencyKey.response: body}
        ).where(DeskIdempotencyKey.id == inserted[0]["id"])
    return status, body, False


@retention.prunes(PRUNE_KIND)
async def prune_keys() -> int:
    """Delete the keys older than KEEP_KEYS; returns how many went."""
    return await retention.delete_in_batches(DeskIdempotencyKey, "created_at < {}", utcnow() - KEEP_KEYS)
