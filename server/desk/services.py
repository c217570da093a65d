"""Ticket actions: open, reply, note, change fields, macros, solve, auto-close, merge and link.

Every action is one transaction that also queues its side effects (search sync, mail, the
auto-close timer) in the outbox. Field changes name the ticket version they started from: a
stale version is a `TicketConflict` carrying what changed since, never a silent overwrite.
Each change is written to the conversation as a system event (agents see those; customers see
the public conversation only).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from server import jobs, policy
from server.accounts.auth import utcnow
from server.accounts.tables import User
from server.channels.email import outbound
from server.db import atomic
from server.desk import attachments, csat, fields, live, placeholders, queries, sla
from server.desk import search as _search  # noqa: F401 - registers the "ticket" type we sync
from server.desk.attachments import Stored, Upload
from server.desk.tables import (
    UNSOLVED,
    DeskField,
    DeskGroup,
    DeskMacro,
    Ticket,
    TicketAttachment,
    TicketFieldValue,
    TicketFollower,
    TicketLink,
    TicketMessage,
)
from server.errors import Invalid, NotFound
from server.i18n import _
from server.markdown import render
from server.policy import Actor, ensure
from server.prepared import insert
from server.search.sync import enqueue_sync
from server.settings import get_settings
from server.webhooks import services as webhooks

log = logging.getLogger("kizuna.desk")

AUTO_CLOSE_KIND = "desk.auto_close"
MAX_BODY_CHARS = 70_000  # the renderer refuses more than 64 KiB first (413)
FIELD_KEYS = ("status", "priority", "ticket_type", "team", "assignee", "tags")


class TicketConflict(Exception):
    """The ticket changed since the editor read it: `current` is the stored ticket, `changes`
    the system events written since the version the editor had."""

    def __init__(self, current: dict[str, Any], changes: list[dict[str, Any]]) -> None:
        super().__init__(f"ticket {current['id']} is now at version {current['version']}")
        self.current = current
        self.changes = changes


def _check_body(body: str, errors: dict[str, str], *, required: bool = True) -> str:
    """Validate and render; MarkdownTooLarge propagates (the route's 413)."""
    if required and not body.strip():
        errors["body"] = _("Write a message.")
        return ""
    if len(body) > MAX_BODY_CHARS:
        errors["body"] = _("Keep the message under %(n)s characters.", n=MAX_BODY_CHARS)
        return ""
    return render(body)


async def _lock(ticket_id: int) -> None:
    """Touch the row: on PostgreSQL this row lock serialises actions on one ticket (SQLite's
    immediate transactions serialise every writer already)."""
    await Ticket.update({Ticket.version: Ticket.version}).where(Ticket.id == ticket_id)


async def _requester_org(actor: Actor) -> int | None:
    return min(actor.org_ids) if actor.org_ids else None


async def _store_attachments(ticket_id: int, message_id: int, uploader_id: int | None, uploads: list[Upload]) -> None:
    attachments.check(uploads)
    written: list[str] = []
    try:
        for upload in uploads:
            stored = attachments.store(upload)
            written.append(stored.storage_key)
            await _insert_attachment(ticket_id, message_id, uploader_id, stored)
    except BaseException:  # e.g. StorageFull on the 2nd file: the 1st goes too, the rows roll back
        for key in written:
            attachments.remove(key)
        raise


async def _insert_attachment(ticket_id: int, message_id: int, uploader_id: int | None, stored: Stored) -> None:
    await insert(
        TicketAttachment,
        {
            "ticket": ticket_id,
            "message": message_id,
            "uploader": uploader_id,
            "filename": stored.filename,
            "content_type": stored.content_type,
            "size_bytes": stored.size_bytes,
            "storage_key": stored.storage_key,
            "sha256": stored.sha256,
            "created_at": utcnow(),
        },
    )


async def _insert_message(
    ticket_id: int,
    author_id: int | None,
    kind: str,
    body_md: str = "",
    body_html: str = "",
    *,
    event: dict[str, Any] | None = None,
    channel: str = "web",
    moment: datetime | None = None,
) -> int:
    return await insert(
        TicketMessage,
        {
            "ticket": ticket_id,
            "author": author_id,
            "kind": kind,
            "body_md": body_md,
            "body_html": body_html,
            "event": event or {},
            "channel": channel,
            "created_at": moment or utcnow(),
        },
    )


def ticket_url(ticket_id: int, *, agent: bool = False) -> str:
    return f"/desk/tickets/{ticket_id}" if agent else f"/support/tickets/{ticket_id}"


async def _mail_requester(
    ticket: dict[str, Any],
    template: str,
    key: str,
    *,
    ticket_message: int | None = None,
    fresh: bool = False,
    has_files: bool = True,
    **context: Any,
) -> None:
    """Mail the requester and the customers copied on the ticket (never with internal text),
    threaded as ticket mail (server/channels/email/outbound.py). `ticket_message`: the agent's
    public reply the mail carries (a human mail); without it the mail is automatic. `fresh`:
    the ticket was opened in this transaction (no one copied, no mail sent yet). `has_files=False`:
    the reply carries no attachments (nothing to look up)."""
    people = [outbound.Recipient(ticket["requester_email"], ticket["requester_locale"], ticket["requester_name"])]
    if not fresh:
        follower_rows = await TicketFollower.select(
            TicketFollower.user.email.as_alias("email"),
            TicketFollower.user.locale.as_alias("locale"),
            TicketFollower.user.display_name.as_alias("name"),
        ).where(TicketFollower.ticket == ticket["id"])
        people += [outbound.Recipient(r["email"], r["locale"], r["name"]) for r in follower_rows]
    url = get_settings().base_url + ticket_url(ticket["id"])
    context = {"ticket_id": ticket["id"], "subject": ticket["subject"], "url": url, **context}
    await outbound.queue_ticket_mail(
        ticket,
        people,
        template,
        key,
        context,
        ticket_message=ticket_message,
        automatic=ticket_message is None,
        fresh=fresh,
        has_files=has_files,
    )


# Opening ------------------------------------------------------------------------------------


async def _check_custom_fields(
    actor: Actor, values: dict[str, Any], errors: dict[str, str], *, customer: bool
) -> dict[int, tuple[str, str]]:
    """{field id: (key, cleaned value)} for the given {key: raw value}."""
    if not values:
        return {}
    definitions = {d["key"]: d for d in await queries.field_definitions()}
    cleaned: dict[int, tuple[str, str]] = {}
    for key, raw in values.items():
        definition = definitions.get(key)
        if definition is None or (customer and not definition["customer_editable"]):
            errors[f"cf_{key}"] = _("There is no field %(key)s.", key=key)
            continue
        cleaned[definition["id"]] = (key, fields.clean_field_value(definition, raw, errors))
    return cleaned


async def _save_field_values(ticket_id: int, cleaned: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Upsert values; returns the changes as system-event entries."""
    changes: list[dict[str, Any]] = []
    if not cleaned:
        return changes
    current = await queries.field_values(ticket_id)
    for field_id, (key, value) in cleaned.items():
        before = current.get(key, "")
        if before == value:
            continue
        existing = (
            await TicketFieldValue.select(TicketFieldValue.id)
            .where((TicketFieldValue.ticket == ticket_id) & (TicketFieldValue.field == field_id))
            .first()
        )
        if existing:
            await TicketFieldValue.update({TicketFieldValue.value: value}).where(TicketFieldValue.id == existing["id"])
        else:
            await TicketFieldValue.insert(TicketFieldValue(ticket=ticket_id, field=field_id, value=value))
        changes.append({"field": f"cf:{key}", "from": before, "to": value})
    return changes


async def open_ticket(
    actor: Actor,
    subject: str,
    body: str,
    *,
    channel: str = "web",
    channel_ref: str = "",
    priority: str = "normal",
    ticket_type: str = "question",
    tags: list[str] | None = None,
    custom_fields: dict[str, Any] | None = None,
    uploads: list[Upload] | None = None,
    notify: bool = True,
) -> int:
    """`open_ticket_with_message`, returning the ticket's id only."""
    ticket_id, _message_id = await open_ticket_with_message(
        actor,
        subject,
        body,
        channel=channel,
        channel_ref=channel_ref,
        priority=priority,
        ticket_type=ticket_type,
        tags=tags,
        custom_fields=custom_fields,
        uploads=uploads,
        notify=notify,
    )
    return ticket_id


async def open_ticket_with_message(
    actor: Actor,
    subject: str,
    body: str,
    *,
    channel: str = "web",
    channel_ref: str = "",
    priority: str = "normal",
    ticket_type: str = "question",
    tags: list[str] | None = None,
    custom_fields: dict[str, Any] | None = None,
    uploads: list[Upload] | None = None,
    notify: bool = True,
) -> tuple[int, int]:
    """A new ticket from the actor (the requester), with its first public message; returns
    (ticket id, message id). `notify=False` (demo data, imports) sends the requester no
    acknowledgement."""
    policy.ensure_signed_in(actor)
    ensure(policy.can_open_ticket(actor))
    fields.check_channel(channel)
    errors: dict[str, str] = {}
    subject = fields.check_subject(subject, errors)
    html = _check_body(body, errors)
    fields.check_priority(priority, errors)
    fields.check_type(ticket_type, errors)
    clean_tags = fields.clean_tags(tags or [], errors)
    uploads = uploads or []
    try:
        attachments.check(uploads)
    except Invalid as exc:
        errors.update(exc.errors)
    async with atomic(), jobs.batched():
        cleaned = await _check_custom_fields(actor, custom_fields or {}, errors, customer=not actor.is_agent)
        fields.raise_if(errors)
        moment = utcnow()
        timers = None
        if channel != "email":  # the actor's roles are the account's (mail senders act as customers)
            first_by_staff = bool(set(actor.roles) & set(sla.STAFF_ROLES))
            timers = await sla.timers_for_new(priority, moment, first_by_staff)
        ticket_id = await insert(
            Ticket,
            {
                "subject": subject,
                "requester": actor.user_id,
                "organisation": await _requester_org(actor),
                "channel": channel,
                "channel_ref": channel_ref[:200],
                "status": "new",
                "priority": priority,
                "ticket_type": ticket_type,
                "tags": clean_tags,
                "version": 1,
                "created_at": moment,
                "updated_at": moment,
                "locale": actor.locale,
                "sla_due_at": timers.clocks.due_at if timers else None,
                "sla_at_risk_at": timers.clocks.at_risk_at if timers else None,
            },
        )
        message_id = await _insert_message(
            ticket_id, actor.user_id, "public", body, html, channel=channel, moment=moment
        )
        await _store_attachments(ticket_id, message_id, actor.user_id, uploads)
        await _save_field_values(ticket_id, cleaned)
        if timers is not None:
            await sla.store_new(ticket_id, timers, moment)
        elif channel == "email":  # a sender by mail acts as a customer, whatever the account: read it back
            inserted = {"status": "new", "priority": priority, "created_at": moment, "updated_at": moment}
            await sla.recompute(ticket_id, new=inserted)
        if notify:
            if actor.email:  # what the acknowledgement needs is known: no re-read
                ticket: dict[str, Any] | None = {
                    "id": ticket_id,
                    "subject": subject,
                    "channel": channel,
                    "channel_ref": channel_ref[:200],
                    "requester_email": actor.email,
                    "requester_locale": actor.locale,
                    "requester_name": actor.display_name,
                }
            else:
                ticket = await queries.get_ticket(ticket_id)
            assert ticket is not None
            await _mail_requester(ticket, "desk_ticket_created", f"desk.created:{ticket_id}", fresh=True)
        await enqueue_sync("ticket", ticket_id)
        await live.queue_changed(ticket_id)
        await webhooks.emit("ticket.created", ticket_id=ticket_id)
    return ticket_id, message_id


# Conversation -------------------------------------------------------------------------------


async def _load_for_change(actor: Actor, ticket_id: int) -> dict[str, Any]:
    await _lock(ticket_id)
    return await queries.access_ticket(actor, ticket_id)


async def add_reply(
    actor: Actor,
    ticket_id: int,
    body: str,
    *,
    uploads: list[Upload] | None = None,
    status: str | None = None,
    version: int | None = None,
    channel: str = "web",
    notify: bool = True,
    seen_message_id: int | None = None,
) -> int:
    """A public reply. An agent's reply opens a new ticket (or sets `status`); a customer's
    reply reopens a solved or pending ticket. Closed tickets take no replies."""
    errors: dict[str, str] = {}
    html = _check_body(body, errors, required=not uploads)
    uploads = uploads or []
    async with atomic(), jobs.batched():
        ticket = await _load_for_change(actor, ticket_id)
        if ticket["status"] == "closed":
            raise Invalid({"body": _("This ticket is closed. Open a new ticket to follow up.")})
        ensure(policy.can_reply_to_ticket(actor, True, ticket["status"]))
        if status is not None and not policy.can_work_tickets(actor):
            raise Invalid({"status": _("Only agents can change the status.")})
        fields.raise_if(errors)
        if seen_message_id is not None:  # the replier saw up to this message: warn of newer replies (409)
            await live.check_collision(actor, ticket_id, seen_message_id)
        message_id = await _insert_message(ticket_id, actor.user_id, "public", body, html, channel=channel)
        await _store_attachments(ticket_id, message_id, actor.user_id, uploads)
        await live.message_added(ticket_id, message_id)
        moment = utcnow()
        is_staff_reply = policy.can_work_tickets(actor) and actor.user_id != ticket["requester"]
        new_status = ticket["status"]
        if is_staff_reply:
            new_status = status or ("open" if ticket["status"] == "new" else ticket["status"])
            if ticket["first_replied_at"] is None:
                await Ticket.update({Ticket.first_replied_at: moment}).where(Ticket.id == ticket_id)
        elif ticket["status"] in ("solved", "pending"):
            new_status = "open"
        if new_status != ticket["status"]:
            clean = await _validate_changes(ticket, {"status": new_status}, errors)
            fields.raise_if(errors)
            await _apply_changes(actor, ticket, clean, expected_version=version, reread=False)
        else:
            await Ticket.update({Ticket.updated_at: moment}).where(Ticket.id == ticket_id)
        if is_staff_reply and notify:
            await _mail_requester(
                ticket,
                "desk_ticket_reply",
                f"desk.reply:{message_id}",
                ticket_message=message_id,
                author=actor.display_name,
                body=body.strip(),
                has_files=bool(uploads),
            )
        if new_status == ticket["status"]:  # else _apply_changes recomputed it, after this reply, and queued the sync
            await sla.recompute(ticket_id)
            await enqueue_sync("ticket", ticket_id)
        await webhooks.emit("message.created", message_id=message_id)
    return message_id


async def add_note(actor: Actor, ticket_id: int, body: str, *, uploads: list[Upload] | None = None) -> int:
    """An internal note: agents only, never shown or sent to customers."""
    ensure(policy.can_work_tickets(actor))
    errors: dict[str, str] = {}
    html = _check_body(body, errors, required=not uploads)
    fields.raise_if(errors)
    async with atomic():
        await _load_for_change(actor, ticket_id)
        message_id = await _insert_message(ticket_id, actor.user_id, "internal", body, html)
        await _store_attachments(ticket_id, message_id, actor.user_id, uploads or [])
        await live.message_added(ticket_id, message_id)
        await Ticket.update({Ticket.updated_at: utcnow()}).where(Ticket.id == ticket_id)
        await enqueue_sync("ticket", ticket_id)
        await webhooks.emit("message.created", message_id=message_id)
    return message_id


# Fields -------------------------------------------------------------------------------------


async def changes_since(ticket_id: int, version: int) -> list[dict[str, Any]]:
    """System events that moved the ticket past `version` (what the other person changed)."""
    rows = (
        await TicketMessage.select(
            TicketMessage.event, TicketMessage.created_at, TicketMessage.author.display_name.as_alias("author_name")
        )
        .where((TicketMessage.ticket == ticket_id) & (TicketMessage.kind == "system"))
        .order_by(TicketMessage.id, ascending=False)
        .limit(50)
        .output(load_json=True)
    )
    return [r for r in reversed(rows) if int(r["event"].get("version", 0)) > version]


async def _children_open(ticket_id: int) -> list[int]:
    rows = await Ticket.select(Ticket.id).where((Ticket.parent == ticket_id) & Ticket.status.is_in(list(UNSOLVED)))
    return [r["id"] for r in rows]


async def _validate_changes(ticket: dict[str, Any], changes: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Checked and normalised changes of the ticket's own fields."""
    clean: dict[str, Any] = {}
    if "status" in changes:
        fields.check_status(changes["status"], errors)
        clean["status"] = changes["status"]
        if changes["status"] in ("solved", "closed") and (children := await _children_open(ticket["id"])):
            errors["status"] = _(
                "Solve the child tickets first: %(ids)s.", ids=", ".join(f"#{child}" for child in children)
            )
    if "priority" in changes:
        fields.check_priority(changes["priority"], errors)
        clean["priority"] = changes["priority"]
    if "ticket_type" in changes:
        fields.check_type(changes["ticket_type"], errors)
        clean["ticket_type"] = changes["ticket_type"]
    if "team" in changes:
        team = changes["team"]
        if team is not None and not await DeskGroup.exists().where(DeskGroup.id == team):
            errors["team"] = _("Choose a group from the list.")
        clean["team"] = team
    if "assignee" in changes:
        assignee = changes["assignee"]
        if assignee is not None and not await queries.is_agent(assignee):
            errors["assignee"] = _("Choose an agent from the list.")
        clean["assignee"] = assignee
    if "tags" in changes:
        clean["tags"] = fields.clean_tags(changes["tags"], errors)
    return clean


async def _names(field: str, values: list[Any]) -> dict[Any, str]:
    ids = [v for v in values if v is not None]
    if not ids:
        return {}
    if field == "team":
        rows = await DeskGroup.select(DeskGroup.id, DeskGroup.name.as_alias("name")).where(DeskGroup.id.is_in(ids))
    else:
        rows = await User.select(User.id, User.display_name.as_alias("name")).where(User.id.is_in(ids))
    return {r["id"]: r["name"] for r in rows}


async def _apply_changes(
    actor: Actor | None,
    ticket: dict[str, Any],
    clean: dict[str, Any],
    *,
    expected_version: int | None = None,
    extra_events: list[dict[str, Any]] | None = None,
    reread: bool = True,
) -> dict[str, Any]:
    """Write validated changes (and the custom-field events already saved) with the version
    check, one system event, the status timestamps and the auto-close timer. Returns the ticket
    as it is now (`reread=False`: as it was before, for a caller that does not use it)."""
    ticket_id = ticket["id"]
    current = await queries.get_ticket(ticket_id)
    assert current is not None
    if expected_version is not None and expected_version != current["version"]:
        raise TicketConflict(current, await changes_since(ticket_id, expected_version))
    events: list[dict[str, Any]] = []
    update: dict[Any, Any] = {}
    columns = {
        "status": Ticket.status,
        "priority": Ticket.priority,
        "ticket_type": Ticket.ticket_type,
        "team": Ticket.team,
        "assignee": Ticket.assignee,
        "tags": Ticket.tags,
    }
    for key, value in clean.items():
        before = current[key]
        if before == value:
            continue
        update[columns[key]] = value
        entry: dict[str, Any] = {"field": key, "from": before, "to": value}
        if key in ("team", "assignee"):
            names = await _names(key, [before, value])
            entry["from_name"], entry["to_name"] = names.get(before, ""), names.get(value, "")
        events.append(entry)
    events += extra_events or []
    if not events:
        return current
    moment = utcnow()
    new_version = current["version"] + 1
    update.update({Ticket.version: new_version, Ticket.updated_at: moment})
    status = clean.get("status", current["status"])
    if status != current["status"]:
        if status == "solved":
            update[Ticket.solved_at], update[Ticket.closed_at] = moment, None
        elif status == "closed":
            update[Ticket.solved_at], update[Ticket.closed_at] = current["solved_at"] or moment, moment
        else:  # reopened, or moved between unsolved states
            update[Ticket.solved_at], update[Ticket.closed_at] = None, None
    written = (
        await Ticket.update(update)
        .where((Ticket.id == ticket_id) & (Ticket.version == current["version"]))
        .returning(Ticket.id)
    )
    if not written:  # unreachable while the row is locked, but never overwrite
        fresh = await queries.get_ticket(ticket_id)
        raise TicketConflict(fresh or current, await changes_since(ticket_id, current["version"]))
    system_id = await _insert_message(
        ticket_id,
        actor.user_id if actor else None,
        "system",
        event={"changes": events, "version": new_version},
        moment=moment,
    )
    await live.ticket_updated(ticket_id, system_id)
    await webhooks.ticket_changed(ticket_id, events, solved=status == "solved" and current["status"] != "solved")
    if status == "solved" and current["status"] != "solved":
        days = get_settings().desk_auto_close_days
        await jobs.enqueue(
            AUTO_CLOSE_KIND,
            {"ticket_id": ticket_id},
            key=f"{AUTO_CLOSE_KIND}:{ticket_id}:{new_version}",
            delay=timedelta(days=days),
        )
        await csat.ticket_solved(ticket_id)
    await sla.recompute(ticket_id)
    await enqueue_sync("ticket", ticket_id)
    if not reread:
        return current
    fresh = await queries.get_ticket(ticket_id)
    assert fresh is not None
    return fresh


async def update_ticket(
    actor: Actor,
    ticket_id: int,
    version: int,
    changes: dict[str, Any],
    custom_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Agents change status, priority, type, group, assignee, tags and custom fields.
    `version` is the one the agent read: a newer stored version raises TicketConflict."""
    ensure(policy.can_work_tickets(actor))
    unknown = set(changes) - set(FIELD_KEYS)
    if unknown:
        raise Invalid({key: _("This field cannot be changed.") for key in unknown})
    async with atomic():
        ticket = await _load_for_change(actor, ticket_id)
        if ticket["version"] != version:
            raise TicketConflict(ticket, await changes_since(ticket_id, version))
        if ticket["merged_into"] is not None:
            raise Invalid({"status": _("This ticket was merged into #%(id)s.", id=ticket["merged_into"])})
        errors: dict[str, str] = {}
        clean = await _validate_changes(ticket, changes, errors)
        cleaned_fields = await _check_custom_fields(actor, custom_fields or {}, errors, customer=False)
        fields.raise_if(errors)
        field_events = await _save_field_values(ticket_id, cleaned_fields)
        return await _apply_changes(actor, ticket, clean, expected_version=version, extra_events=field_events)


async def mark_solved(actor: Actor, ticket_id: int) -> None:
    """The requester (or an admin of its organisation) says the problem is solved."""
    async with atomic():
        ticket = await _load_for_change(actor, ticket_id)
        ensure(policy.can_solve_own_ticket(actor, ticket["requester"], ticket["organisation"]))
        if ticket["status"] in ("solved", "closed"):
            return
        errors: dict[str, str] = {}
        clean = await _validate_changes(ticket, {"status": "solved"}, errors)
        fields.raise_if(errors)
        await _apply_changes(actor, ticket, clean)


# Macros -------------------------------------------------------------------------------------


def placeholder_values(ticket: dict[str, Any], agent: Actor) -> dict[str, str]:
    return {
        "requester.first_name": placeholders.first_name(ticket["requester_name"] or ""),
        "requester.name": ticket["requester_name"] or "",
        "requester.email": ticket["requester_email"] or "",
        "organisation.name": ticket["organisation_name"] or "",
        "ticket.id": str(ticket["id"]),
        "ticket.subject": ticket["subject"],
        "agent.first_name": placeholders.first_name(agent.display_name),
        "agent.name": agent.display_name,
    }


def macro_changes(macro: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
    actions = macro.get("actions") or {}
    changes: dict[str, Any] = {k: actions[k] for k in ("status", "priority", "ticket_type") if actions.get(k)}
    if actions.get("team"):
        changes["team"] = int(actions["team"])
    if actions.get("assignee"):
        changes["assignee"] = int(actions["assignee"])
    add, remove = actions.get("add_tags") or [], set(actions.get("remove_tags") or [])
    if add or remove:
        tags = [t for t in ticket["tags"] if t not in remove]
        changes["tags"] = tags + [t for t in add if t not in tags]
    return changes


async def apply_macro(actor: Actor, ticket_id: int, macro_id: int, version: int) -> int | None:
    """Post the macro's text (public reply or internal note, placeholders filled in) and apply
    its field changes, in one transaction. Returns the new message's id, if any."""
    ensure(policy.can_work_tickets(actor))
    async with atomic():
        ticket = await _load_for_change(actor, ticket_id)
        macro = (
            await DeskMacro.select()
            .where((DeskMacro.id == macro_id) & (DeskMacro.active == True))  # noqa: E712
            .output(load_json=True)
            .first()
        )
        if macro is None:
            raise Invalid({"macro": _("Choose a macro from the list.")})
        if ticket["version"] != version:
            raise TicketConflict(ticket, await changes_since(ticket_id, version))
        changes = macro_changes(macro, ticket)
        status = changes.pop("status", None)
        if changes:
            ticket = await update_ticket(actor, ticket_id, version, changes)
            version = ticket["version"]
        text = placeholders.render(macro["body_md"], placeholder_values(ticket, actor)).strip()
        message_id = None
        if text and macro["internal"]:
            message_id = await add_note(actor, ticket_id, text)
        elif text:
            message_id = await add_reply(actor, ticket_id, text, status=status, version=version)
            status = None
        if status:
            await update_ticket(actor, ticket_id, version, {"status": status})
        return message_id


# Auto-close ---------------------------------------------------------------------------------


async def close_if_due(ticket_id: int, *, now: datetime | None = None) -> bool:
    """Close a ticket that has stayed solved for the configured number of days."""
    moment = now or utcnow()
    cutoff = moment - timedelta(days=get_settings().desk_auto_close_days)
    async with atomic():
        await _lock(ticket_id)
        ticket = await queries.get_ticket(ticket_id)
        if ticket is None or ticket["status"] != "solved" or ticket["solved_at"] is None:
            return False
        if ticket["solved_at"] > cutoff:
            return False
        await _apply_changes(None, ticket, {"status": "closed"})
    return True


async def close_due_tickets(*, now: datetime | None = None, batch: int = 500) -> int:
    """Sweep: close every ticket solved longer ago than the setting (timers lost, settings changed)."""
    moment = now or utcnow()
    cutoff = moment - timedelta(days=get_settings().desk_auto_close_days)
    rows = (
        await Ticket.select(Ticket.id)
        .where((Ticket.status == "solved") & (Ticket.solved_at <= cutoff))
        .order_by(Ticket.id)
        .limit(batch)
    )
    closed = 0
    for row in rows:
        closed += await close_if_due(row["id"], now=moment)
    return closed


@jobs.handler(AUTO_CLOSE_KIND)
async def _auto_close_job(job: jobs.ClaimedJob) -> None:
    ticket_id = int(job.payload["ticket_id"])
    if not await close_if_due(ticket_id):
        ticket = await Ticket.select(Ticket.status, Ticket.solved_at).where(Ticket.id == ticket_id).first()
        if ticket and ticket["status"] == "solved" and ticket["solved_at"] is not None:
            # Not due yet (the setting grew): look again when it is.
            due = ticket["solved_at"] + timedelta(days=get_settings().desk_auto_close_days)
            async with atomic():
                await jobs.enqueue(
                    AUTO_CLOSE_KIND,
                    {"ticket_id": ticket_id},
                    key=f"{AUTO_CLOSE_KIND}:{ticket_id}:at:{int(due.timestamp())}",
                    delay=max(due - utcnow(), timedelta(seconds=1)),
                )


# Merge, links, followers --------------------------------------------------------------------


async def merge_tickets(actor: Actor, source_id: int, target_id: int) -> None:
    """Move the source ticket's conversation into the target; the source closes and points to
    the target; both requesters are told by mail."""
    ensure(policy.can_work_tickets(actor))
    if source_id == target_id:
        raise Invalid({"target": _("A ticket cannot be merged into itself.")})
    async with atomic():
        for ticket_id in sorted((source_id, target_id)):  # one lock order: no deadlock
            await _lock(ticket_id)
        source = await queries.access_ticket(actor, source_id)
        try:
            target = await queries.access_ticket(actor, target_id)
        except NotFound:
            raise Invalid({"target": _("There is no ticket #%(id)s.", id=target_id)}) from None
        if source["merged_into"] is not None or source["status"] == "closed":
            raise Invalid({"target": _("This ticket is closed and cannot be merged.")})
        if target["merged_into"] is not None or target["status"] == "closed":
            raise Invalid({"target": _("Ticket #%(id)s is closed; choose an open ticket.", id=target_id)})
        await TicketMessage.update({TicketMessage.ticket: target_id}).where(TicketMessage.ticket == source_id)
        await TicketAttachment.update({TicketAttachment.ticket: target_id}).where(TicketAttachment.ticket == source_id)
        await Ticket.update({Ticket.parent: target_id}).where(Ticket.parent == source_id)
        if source["requester"] != target["requester"]:
            await _add_follower(target_id, source["requester"])
        for row in await TicketFollower.select(TicketFollower.user).where(TicketFollower.ticket == source_id):
            if row["user"] != target["requester"]:
                await _add_follower(target_id, row["user"])
        moment = utcnow()
        await Ticket.update(
            {
                Ticket.merged_into: target_id,
                Ticket.status: "closed",
                Ticket.closed_at: moment,
                Ticket.updated_at: moment,
                Ticket.version: source["version"] + 1,
            }
        ).where(Ticket.id == source_id)
        await _insert_message(
            source_id,
            actor.user_id,
            "system",
            event={"event": "merged_into", "other": target_id, "version": source["version"] + 1},
        )
        await _insert_message(target_id, actor.user_id, "system", event={"event": "merged_from", "other": source_id})
        await Ticket.update({Ticket.updated_at: moment}).where(Ticket.id == target_id)
        await sla.recompute(source_id)
        await sla.recompute(target_id)
        await _mail_requester(
            source,
            "desk_ticket_merged",
            f"desk.merged:{source_id}",
            target_id=target_id,
            url=get_settings().base_url + ticket_url(target_id),
        )
        if target["requester"] != source["requester"]:
            await _mail_requester(target, "desk_ticket_merged_into", f"desk.merged_into:{target_id}:{source_id}")
        await enqueue_sync("ticket", source_id)
        await enqueue_sync("ticket", target_id)
        await live.ticket_updated(source_id)
        await live.ticket_updated(target_id)


async def link_related(actor: Actor, ticket_id: int, other_id: int) -> None:
    ensure(policy.can_work_tickets(actor))
    if ticket_id == other_id:
        raise Invalid({"other": _("A ticket cannot be linked to itself.")})
    low, high = sorted((ticket_id, other_id))
    async with atomic():
        await _lock(low)
        await queries.access_ticket(actor, ticket_id)
        if await queries.get_ticket(other_id) is None:
            raise Invalid({"other": _("There is no ticket #%(id)s.", id=other_id)})
        if await TicketLink.exists().where((TicketLink.source == low) & (TicketLink.target == high)):
            return
        await TicketLink.insert(TicketLink(source=low, target=high, created_at=utcnow()))
        for one, two in ((ticket_id, other_id), (other_id, ticket_id)):
            await _insert_message(one, actor.user_id, "system", event={"event": "linked", "other": two})


async def unlink_related(actor: Actor, ticket_id: int, other_id: int) -> None:
    ensure(policy.can_work_tickets(actor))
    low, high = sorted((ticket_id, other_id))
    async with atomic():
        await queries.access_ticket(actor, ticket_id)
        removed = (
            await TicketLink.delete()
            .where((TicketLink.source == low) & (TicketLink.target == high))
            .returning(TicketLink.id)
        )
        if removed:
            for one, two in ((ticket_id, other_id), (other_id, ticket_id)):
                await _insert_message(one, actor.user_id, "system", event={"event": "unlinked", "other": two})


async def set_parent(actor: Actor, ticket_id: int, parent_id: int | None) -> None:
    """Make `ticket_id` a child of `parent_id` (None: no parent). No cycles; a solved parent
    cannot take an open child."""
    ensure(policy.can_work_tickets(actor))
    async with atomic():
        ticket = await _load_for_change(actor, ticket_id)
        if parent_id is not None:
            if parent_id == ticket_id:
                raise Invalid({"parent": _("A ticket cannot be its own parent.")})
            parent = await queries.get_ticket(parent_id)
            if parent is None:
                raise Invalid({"parent": _("There is no ticket #%(id)s.", id=parent_id)})
            ancestor: int | None = parent_id
            seen = set()
            while ancestor is not None and ancestor not in seen:
                if ancestor == ticket_id:
                    raise Invalid({"parent": _("Ticket #%(id)s is already below this one.", id=parent_id)})
                seen.add(ancestor)
                row = await Ticket.select(Ticket.parent).where(Ticket.id == ancestor).first()
                ancestor = row["parent"] if row else None
            if parent["status"] in ("solved", "closed") and ticket["status"] in UNSOLVED:
                raise Invalid({"parent": _("Ticket #%(id)s is already solved.", id=parent_id)})
        if ticket["parent"] == parent_id:
            return
        moment = utcnow()
        await Ticket.update(
            {Ticket.parent: parent_id, Ticket.version: ticket["version"] + 1, Ticket.updated_at: moment}
        ).where(Ticket.id == ticket_id)
        await _insert_message(
            ticket_id,
            actor.user_id,
            "system",
            event={
                "changes": [{"field": "parent", "from": ticket["parent"], "to": parent_id}],
                "version": ticket["version"] + 1,
            },
            moment=moment,
        )


async def _add_follower(ticket_id: int, user_id: int) -> bool:
    if await TicketFollower.exists().where((TicketFollower.ticket == ticket_id) & (TicketFollower.user == user_id)):
        return False
    await TicketFollower.insert(TicketFollower(ticket=ticket_id, user=user_id, created_at=utcnow()))
    return True


async def copy_on_ticket(ticket_id: int, user_id: int, email: str, *, by: int | None, channel: str = "web") -> bool:
    """Inside the caller's transaction, after its checks: make the user a follower, with a
    "was copied" event by `by` shown live. False when they already follow the ticket."""
    if not await _add_follower(ticket_id, user_id):
        return False
    message_id = await _insert_message(
        ticket_id, by, "system", event={"event": "cc_added", "email": email}, channel=channel
    )
    await live.message_added(ticket_id, message_id)
    return True


async def add_follower(actor: Actor, ticket_id: int, email: str) -> None:
    """Copy someone on the ticket (by the email of their account): they can read it and get its
    public replies by mail."""
    ensure(policy.can_work_tickets(actor))
    async with atomic():
        ticket = await _load_for_change(actor, ticket_id)
        user = await User.select(User.id).where(User.email == email.strip().lower()).first()
        if user is None:
            raise Invalid({"email": _("No account uses this email address.")})
        if user["id"] != ticket["requester"]:
            await copy_on_ticket(ticket_id, user["id"], email, by=actor.user_id)


async def remove_follower(actor: Actor, ticket_id: int, user_id: int) -> None:
    ensure(policy.can_work_tickets(actor))
    async with atomic():
        await _load_for_change(actor, ticket_id)
        await TicketFollower.delete().where((TicketFollower.ticket == ticket_id) & (TicketFollower.user == user_id))


# Admin: groups, fields, macros ----------------------------------------------------------------


async def save_group(
    actor: Actor, group_id: int | None, name: str, description: str, lead_id: int | None, member_ids: list[int]
) -> int:
    from server.desk.tables import DeskGroupMember

    ensure(policy.can_administer_desk(actor))
    errors: dict[str, str] = {}
    name = " ".join(name.split())
    if not name or len(name) > 80:
        errors["name"] = _("Give the group a name (up to 80 characters).")
    clash = DeskGroup.exists().where(DeskGroup.name == name)
    if group_id is not None:
        clash = clash.where(DeskGroup.id != group_id)
    async with atomic():
        if name and await clash:
            errors["name"] = _("Another group already has this name.")
        for user_id in [*member_ids, *([lead_id] if lead_id else [])]:
            if not await queries.is_agent(user_id):
                errors["members"] = _("Groups are made of agents.")
        fields.raise_if(errors)
        values = {DeskGroup.name: name, DeskGroup.description: description.strip()[:1000], DeskGroup.lead: lead_id}
        if group_id is None:
            rows = await DeskGroup.insert(
                DeskGroup(name=name, description=description.strip()[:1000], lead=lead_id, created_at=utcnow())
            ).returning(DeskGroup.id)
            group_id = rows[0]["id"]
        else:
            updated = await DeskGroup.update(values).where(DeskGroup.id == group_id).returning(DeskGroup.id)
            if not updated:
                raise NotFound
        await DeskGroupMember.delete().where(DeskGroupMember.team == group_id)
        for user_id in dict.fromkeys([*member_ids, *([lead_id] if lead_id else [])]):
            await DeskGroupMember.insert(DeskGroupMember(team=group_id, user=user_id))
    return group_id


async def delete_group(actor: Actor, group_id: int) -> None:
    ensure(policy.can_administer_desk(actor))
    async with atomic():
        deleted = await DeskGroup.delete().where(DeskGroup.id == group_id).returning(DeskGroup.id)
        if not deleted:
            raise NotFound


async def save_field(actor: Actor, field_id: int | None, data: dict[str, Any]) -> int:
    """`data`: key, label_en, label_ja, field_type, options (list), customer_editable, position, active."""
    ensure(policy.can_administer_desk(actor))
    errors: dict[str, str] = {}
    key = str(data.get("key", "")).strip().lower()
    fields.check_field_key(key, errors)
    label_en = " ".join(str(data.get("label_en", "")).split())
    if not label_en or len(label_en) > 80:
        errors["label_en"] = _("Give the field a label (up to 80 characters).")
    label_ja = " ".join(str(data.get("label_ja", "")).split())[:80]
    field_type = str(data.get("field_type", "text"))
    fields.check_field_type(field_type, errors)
    options = [str(o).strip()[:80] for o in data.get("options", []) if str(o).strip()]
    options = list(dict.fromkeys(options))[:50]
    if field_type == "select" and not options:
        errors["options"] = _("A drop-down needs at least one choice.")
    async with atomic():
        clash = DeskField.exists().where(DeskField.key == key)
        if field_id is not None:
            clash = clash.where(DeskField.id != field_id)
        if "key" not in errors and await clash:
            errors["key"] = _("Another field already uses this key.")
        fields.raise_if(errors)
        row = {
            DeskField.key: key,
            DeskField.label_en: label_en,
            DeskField.label_ja: label_ja,
            DeskField.field_type: field_type,
            DeskField.options: options if field_type == "select" else [],
            DeskField.customer_editable: bool(data.get("customer_editable")),
            DeskField.position: int(data.get("position") or 0),
            DeskField.active: bool(data.get("active", True)),
        }
        if field_id is None:
            rows = await DeskField.insert(DeskField(**{col._meta.name: v for col, v in row.items()})).returning(
                DeskField.id
            )
            return rows[0]["id"]
        updated = await DeskField.update(row).where(DeskField.id == field_id).returning(DeskField.id)
        if not updated:
            raise NotFound
        return field_id


async def save_macro(actor: Actor, macro_id: int | None, data: dict[str, Any]) -> int:
    """`data`: name, body_md, internal, position, active, actions {status, priority, ticket_type,
    team, assignee, add_tags, remove_tags}."""
    ensure(policy.can_administer_desk(actor))
    errors: dict[str, str] = {}
    name = " ".join(str(data.get("name", "")).split())
    if not name or len(name) > 120:
        errors["name"] = _("Give the macro a name (up to 120 characters).")
    body = str(data.get("body_md", ""))
    if len(body) > MAX_BODY_CHARS:
        errors["body_md"] = _("Keep the message under %(n)s characters.", n=MAX_BODY_CHARS)
    raw = data.get("actions") or {}
    actions: dict[str, Any] = {}
    if raw.get("status"):
        fields.check_status(raw["status"], errors)
        actions["status"] = raw["status"]
    if raw.get("priority"):
        fields.check_priority(raw["priority"], errors)
        actions["priority"] = raw["priority"]
    if raw.get("ticket_type"):
        fields.check_type(raw["ticket_type"], errors)
        actions["ticket_type"] = raw["ticket_type"]
    for key in ("add_tags", "remove_tags"):
        if raw.get(key):
            actions[key] = fields.clean_tags(raw[key], errors)
    async with atomic():
        if raw.get("team"):
            team = int(raw["team"]) if str(raw["team"]).isdigit() else 0
            if not await DeskGroup.exists().where(DeskGroup.id == team):
                errors["team"] = _("Choose a group from the list.")
            actions["team"] = team
        if raw.get("assignee"):
            assignee = int(raw["assignee"]) if str(raw["assignee"]).isdigit() else 0
            if not await queries.is_agent(assignee):
                errors["assignee"] = _("Choose an agent from the list.")
            actions["assignee"] = assignee
        if not body.strip() and not actions:
            errors["body_md"] = _("A macro needs a text or at least one change.")
        fields.raise_if(errors)
        values = {
            DeskMacro.name: name,
            DeskMacro.body_md: body,
            DeskMacro.internal: bool(data.get("internal")),
            DeskMacro.actions: actions,
            DeskMacro.position: int(data.get("position") or 0),
            DeskMacro.active: bool(data.get("active", True)),
        }
        if macro_id is None:
            rows = await DeskMacro.insert(
                DeskMacro(created_at=utcnow(), **{col._meta.name: v for col, v in values.items()})
            ).returning(DeskMacro.id)
            return rows[0]["id"]
        updated = await DeskMacro.update(values).where(DeskMacro.id == macro_id).returning(DeskMacro.id)
        if not updated:
            raise NotFound
        return macro_id


async def delete_macro(actor: Actor, macro_id: int) -> None:
    ensure(policy.can_administer_desk(actor))
    async with atomic():
        deleted = await DeskMacro.delete().where(DeskMacro.id == macro_id).returning(DeskMacro.id)
        if not deleted:
            raise NotFound
