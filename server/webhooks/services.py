"""Webhook actions: emit events (called by other features' services), manage endpoints, send a
test event, redeliver.

`emit` runs inside the caller's transaction: it writes the event once (its JSON body fixed
there) and queues one delivery job per active endpoint that listens to the event, with an
idempotency key per (event, endpoint). Delivery itself is server/webhooks/delivery.py.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from server import jobs, policy
from server.accounts.auth import utcnow
from server.db import atomic
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure
from server.settings import get_settings
from server.webhooks import signing
from server.webhooks.tables import WebhookDelivery, WebhookEndpoint, WebhookEvent

DELIVER_KIND = "webhooks.deliver"
MAX_ATTEMPTS = 8  # with jobs.backoff: about 2, 4, 8 … 128 s apart, then the job is dead
MAX_URL_CHARS = 500
TEST_EVENT = "webhook.test"

# Every event an endpoint can subscribe to. `guide.published` is registered so admins can
# choose it now; guides do not exist yet, so nothing emits it (docs/WEBHOOKS.md).
EVENTS = (
    "ticket.created",
    "ticket.updated",
    "ticket.solved",
    "message.created",
    "sla.breached",
    "post.created",
    "guide.published",
)


def event_labels() -> dict[str, str]:
    return {
        "ticket.created": _("A ticket was opened"),
        "ticket.updated": _("A ticket's fields changed"),
        "ticket.solved": _("A ticket was solved"),
        "message.created": _("A reply or internal note was added to a ticket"),
        "sla.breached": _("An SLA target was breached"),
        "post.created": _("A community thread or reply was posted"),
        "guide.published": _("A guide was published (guides are not built yet)"),
    }


# Emitting ------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def new_event_uid() -> str:
    return "evt_" + secrets.token_hex(12)


def encode(uid: str, event: str, created_at: datetime, data: dict[str, Any]) -> str:
    body = {"id": uid, "event": event, "created_at": created_at.isoformat(), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


# "Nobody listens to this event" is remembered for a second per process, so the hot write paths
# (every ticket, every reply) skip the endpoint query on a desk without webhooks. Saving or
# deleting an endpoint forgets it at once in this process; other processes see a new endpoint
# within NOBODY_LISTENS_SECONDS.
NOBODY_LISTENS_SECONDS = 1.0
_nobody_listens: dict[str, float] = {}
_forgotten = [0]  # bumped by forget_listeners: a read that began before it is not remembered


def forget_listeners() -> None:
    _forgotten[0] += 1
    _nobody_listens.clear()


async def _listening(event: str) -> list[int]:
    if _nobody_listens.get(event, 0.0) > time.monotonic():
        return []
    started, generation = time.monotonic(), _forgotten[0]
    rows = await WebhookEndpoint.select(WebhookEndpoint.id, WebhookEndpoint.events).where(
        WebhookEndpoint.active == True  # noqa: E712
    )
    ids = [r["id"] for r in rows if event in _events_of(r["events"])]
    if not ids and generation == _forgotten[0]:
        _nobody_listens[event] = started + NOBODY_LISTENS_SECONDS
    return ids


def _events_of(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = json.loads(raw or "[]")
    return [str(e) for e in raw or []]


async def _store_and_queue(event: str, data: dict[str, Any], endpoint_ids: list[int]) -> str:
    uid, moment = new_event_uid(), utcnow()
    rows = await WebhookEvent.insert(
        WebhookEvent(uid=uid, event=event, body=encode(uid, event, moment, data), created_at=moment)
    ).returning(WebhookEvent.id)
    for endpoint_id in endpoint_ids:
        await queue_delivery(rows[0]["id"], endpoint_id, key=f"webhook:{uid}:{endpoint_id}")
    return uid


async def queue_delivery(event_id: int, endpoint_id: int, *, key: str, redelivery: bool = False) -> None:
    await jobs.enqueue(
        DELIVER_KIND,
        {"event": event_id, "endpoint": endpoint_id, "redelivery": redelivery},
        key=key,
        max_attempts=MAX_ATTEMPTS,
    )


async def emit(event: str, **refs: int | str | list[Any] | None) -> str | None:
    """Queue `event` for every active endpoint that listens to it; returns the event id (None
    when nobody listens: then nothing is read or written). `refs` name the objects the data is
    built from: ticket_id, message_id, post_id, and extras (changes, target, due_at)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    async with atomic():
        endpoint_ids = await _listening(event)
        if not endpoint_ids:
            return None
        data = await build_data(event, refs)
        if data is None:
            return None
        return await _store_and_queue(event, data, endpoint_ids)


async def ticket_changed(ticket_id: int, changes: list[dict[str, Any]], *, solved: bool) -> None:
    """After a ticket's fields changed: `ticket.updated`, and `ticket.solved` when it became solved."""
    await emit("ticket.updated", ticket_id=ticket_id, changes=changes)
    if solved:
        await emit("ticket.solved", ticket_id=ticket_id)


# Payloads: chosen columns only (never password hashes, tokens or session data) ----------------


async def build_data(event: str, refs: dict[str, Any]) -> dict[str, Any] | None:
    if event.startswith("ticket.") or event == "sla.breached":
        ticket = await ticket_data(int(refs["ticket_id"]))
        if ticket is None:
            return None
        data: dict[str, Any] = {"ticket": ticket}
        if event == "ticket.updated":
            data["changes"] = refs.get("changes") or []
        if event == "sla.breached":
            data["target"], data["due_at"] = refs.get("target"), refs.get("due_at")
        return data
    if event == "message.created":
        return await message_data(int(refs["message_id"]))
    if event == "post.created":
        return await post_data(int(refs["post_id"]))
    return dict(refs)


async def ticket_data(ticket_id: int) -> dict[str, Any] | None:
    from server.desk import queries

    ticket = await queries.get_ticket(ticket_id)
    if ticket is None:
        return None
    base = get_settings().base_url
    first = await _first_message_body(ticket_id)
    return {
        "id": ticket["id"],
        "url": f"{base}/desk/tickets/{ticket['id']}",
        "subject": ticket["subject"],
        "status": ticket["status"],
        "priority": ticket["priority"],
        "type": ticket["ticket_type"],
        "channel": ticket["channel"],
        "channel_ref": ticket["channel_ref"],
        "requester": {
            "id": ticket["requester"],
            "name": ticket["requester_name"] or "",
            "email": ticket["requester_email"] or "",
        },
        "organisation": {"id": ticket["organisation"], "name": ticket["organisation_name"]}
        if ticket["organisation"]
        else None,
        "group": {"id": ticket["team"], "name": ticket["team_name"]} if ticket["team"] else None,
        "assignee": {"id": ticket["assignee"], "name": ticket["assignee_name"]} if ticket["assignee"] else None,
        "tags": list(ticket["tags"] or []),
        "version": ticket["version"],
        "description": first,
        "created_at": _iso(ticket["created_at"]),
        "updated_at": _iso(ticket["updated_at"]),
        "solved_at": _iso(ticket["solved_at"]),
    }


async def _first_message_body(ticket_id: int) -> str:
    from server.desk.tables import TicketMessage

    row = (
        await TicketMessage.select(TicketMessage.body_md)
        .where((TicketMessage.ticket == ticket_id) & (TicketMessage.kind == "public"))
        .order_by(TicketMessage.id)
        .first()
    )
    return row["body_md"] if row else ""


async def message_data(message_id: int) -> dict[str, Any] | None:
    """A public reply or an internal note (`internal: true`): webhooks go to the admin's own
    systems, so notes are included and flagged; receivers that forward to customers must skip them."""
    from server.desk.tables import TicketMessage

    row = (
        await TicketMessage.select(
            TicketMessage.id,
            TicketMessage.ticket,
            TicketMessage.kind,
            TicketMessage.body_md,
            TicketMessage.channel,
            TicketMessage.created_at,
            TicketMessage.author,
            TicketMessage.author.display_name.as_alias("author_name"),
        )
        .where(TicketMessage.id == message_id)
        .first()
    )
    if row is None:
        return None
    ticket = await ticket_data(row["ticket"])
    return {
        "ticket": ticket,
        "message": {
            "id": row["id"],
            "internal": row["kind"] == "internal",
            "author": {"id": row["author"], "name": row["author_name"] or ""} if row["author"] else None,
            "body": row["body_md"],
            "channel": row["channel"],
            "created_at": _iso(row["created_at"]),
        },
    }


async def post_data(post_id: int) -> dict[str, Any] | None:
    """A thread's first post or a reply, with the category's audience (staff-only categories are
    sent too: the receiver is the admin's own system)."""
    from server.forum import queries
    from server.forum.urls import thread_url

    post = await queries.get_post(post_id)
    if post is None:
        return None
    thread = await queries.get_thread(post["thread_id"])
    if thread is None:
        return None
    category = await queries.category_by_id(thread["category_id"])
    base = get_settings().base_url
    return {
        "post": {
            "id": post["id"],
            "number": post["number"],
            "url": base + thread_url(thread["id"], thread["slug"], post["number"]),
            "author": {"id": post["author_id"], "name": post.get("author_name") or ""} if post["author_id"] else None,
            "body": post["body_md"],
            "reply_to_number": post.get("reply_to_number"),
            "created_at": _iso(post["created_at"]),
        },
        "thread": {
            "id": thread["id"],
            "title": thread["title"],
            "url": base + thread_url(thread["id"], thread["slug"]),
            "tags": list(thread.get("tags") or []),
            "first_post": post["number"] == 1,
        },
        "category": {
            "id": category["id"],
            "slug": category["slug"],
            "audience": category["audience"],
        }
        if category
        else None,
    }


# Endpoints (admins) --------------------------------------------------------------------------


def clean_url(raw: str, errors: dict[str, str]) -> str:
    """http or https with a host. Private and loopback addresses are allowed: self-hosted
    installs post to their own internal services (docs/WEBHOOKS.md)."""
    url = raw.strip()
    if not url:
        errors["url"] = _("Enter the address that receives the events.")
        return url
    if len(url) > MAX_URL_CHARS:
        errors["url"] = _("Use at most %(n)s characters.", n=MAX_URL_CHARS)
        return url
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        errors["url"] = _("The address cannot contain spaces or control characters.")
        return url
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        errors["url"] = _("Enter a valid http or https address.")
        return url
    if parts.scheme not in ("http", "https"):
        errors["url"] = _("Only http and https addresses can receive webhooks.")
    elif not parts.hostname:
        errors["url"] = _("Enter a valid http or https address.")
    elif parts.username or parts.password:
        errors["url"] = _("Leave credentials out of the address; receivers check the signature instead.")
    del port
    return url


def clean_events(raw: list[str], errors: dict[str, str]) -> list[str]:
    chosen = [e for e in EVENTS if e in set(raw)]
    if set(raw) - set(EVENTS):
        errors["events"] = _("Choose events from the list.")
    elif not chosen:
        errors["events"] = _("Choose at least one event.")
    return chosen


async def list_endpoints() -> list[dict[str, Any]]:
    rows = await WebhookEndpoint.select().order_by(WebhookEndpoint.id).output(load_json=True)
    for row in rows:
        row["secret_hint"] = signing.masked(row.pop("secret"))
    return rows


async def get_endpoint(endpoint_id: int) -> dict[str, Any]:
    row = await WebhookEndpoint.select().where(WebhookEndpoint.id == endpoint_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    row["secret_hint"] = signing.masked(row["secret"])
    return row


async def save_endpoint(
    actor: Actor, endpoint_id: int | None, url: str, events: list[str], active: bool, description: str = ""
) -> tuple[int, str | None]:
    """Create or change an endpoint. Returns (id, the new secret when one was created: shown once)."""
    ensure(policy.can_manage_webhooks(actor))
    errors: dict[str, str] = {}
    url = clean_url(url, errors)
    chosen = clean_events(events, errors)
    description = " ".join(description.split())
    if len(description) > 200:
        errors["description"] = _("Use at most %(n)s characters.", n=200)
    if errors:
        raise Invalid(errors)
    moment = utcnow()
    forget_listeners()
    async with atomic() as tx:
        tx.on_commit(forget_listeners)
        if endpoint_id is None:
            secret = signing.new_secret()
            rows = await WebhookEndpoint.insert(
                WebhookEndpoint(
                    url=url,
                    description=description,
                    events=chosen,
                    active=active,
                    secret=secret,
                    created_by=actor.user_id,
                    created_at=moment,
                    updated_at=moment,
                )
            ).returning(WebhookEndpoint.id)
            return rows[0]["id"], secret
        updated = (
            await WebhookEndpoint.update(
                {
                    WebhookEndpoint.url: url,
                    WebhookEndpoint.description: description,
                    WebhookEndpoint.events: chosen,
                    WebhookEndpoint.active: active,
                    WebhookEndpoint.updated_at: moment,
                }
            )
            .where(WebhookEndpoint.id == endpoint_id)
            .returning(WebhookEndpoint.id)
        )
        if not updated:
            raise NotFound
        return endpoint_id, None


async def regenerate_secret(actor: Actor, endpoint_id: int) -> str:
    """A new secret at once; deliveries still queued are signed with it when they go out."""
    ensure(policy.can_manage_webhooks(actor))
    secret = signing.new_secret()
    async with atomic():
        updated = (
            await WebhookEndpoint.update({WebhookEndpoint.secret: secret, WebhookEndpoint.updated_at: utcnow()})
            .where(WebhookEndpoint.id == endpoint_id)
            .returning(WebhookEndpoint.id)
        )
        if not updated:
            raise NotFound
    return secret


async def delete_endpoint(actor: Actor, endpoint_id: int) -> None:
    ensure(policy.can_manage_webhooks(actor))
    async with atomic() as tx:
        tx.on_commit(forget_listeners)
        deleted = await WebhookEndpoint.delete().where(WebhookEndpoint.id == endpoint_id).returning(WebhookEndpoint.id)
        if not deleted:
            raise NotFound


async def send_test(actor: Actor, endpoint_id: int) -> str:
    """A `webhook.test` event to this endpoint alone (whether or not it is active)."""
    ensure(policy.can_manage_webhooks(actor))
    async with atomic():
        endpoint = await get_endpoint(endpoint_id)
        data = {"message": "This is a test event from Kizuna.", "endpoint": {"id": endpoint["id"]}}
        uid, moment = new_event_uid(), utcnow()
        rows = await WebhookEvent.insert(
            WebhookEvent(uid=uid, event=TEST_EVENT, body=encode(uid, TEST_EVENT, moment, data), created_at=moment)
        ).returning(WebhookEvent.id)
        await queue_delivery(rows[0]["id"], endpoint_id, key=f"webhook:{uid}:{endpoint_id}")
    return uid


async def redeliver(actor: Actor, endpoint_id: int, delivery_id: int) -> str:
    """Send the event of a logged delivery again: the same id and body, a new signature."""
    ensure(policy.can_manage_webhooks(actor))
    async with atomic():
        row = (
            await WebhookDelivery.select(WebhookDelivery.event, WebhookDelivery.event.uid.as_alias("uid"))
            .where((WebhookDelivery.id == delivery_id) & (WebhookDelivery.endpoint == endpoint_id))
            .first()
        )
        if row is None:
            raise NotFound
        key = f"webhook:{row['uid']}:{endpoint_id}:redeliver:{secrets.token_hex(6)}"
        await queue_delivery(row["event"], endpoint_id, key=key, redelivery=True)
    return row["uid"]


DELIVERY_PAGE = 50


async def deliveries(endpoint_id: int, before: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """The endpoint's delivery log, newest first; (rows, the id to page on or None)."""
    query = WebhookDelivery.select(
        *WebhookDelivery.all_columns(),
        WebhookDelivery.event.uid.as_alias("event_uid"),
        WebhookDelivery.event.event.as_alias("event_name"),
    ).where(WebhookDelivery.endpoint == endpoint_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = await query.order_by(WebhookDelivery.id, ascending=False).limit(DELIVERY_PAGE + 1)
    more = len(rows) > DELIVERY_PAGE
    rows = rows[:DELIVERY_PAGE]
    return rows, rows[-1]["id"] if more else None
