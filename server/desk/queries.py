"""Reads that the portal, the desk and the API share: visible tickets, conversations, views."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from piccolo.columns.combination import And, Or
from piccolo.querystring import QueryString

from server import policy
from server.db import engine
from server.desk.tables import (
    UNSOLVED,
    DeskField,
    DeskGroup,
    DeskGroupMember,
    DeskMacro,
    Ticket,
    TicketAttachment,
    TicketFieldValue,
    TicketFollower,
    TicketMessage,
)
from server.errors import NotFound
from server.policy import Actor
from server.shortcache import ShortCache

TICKET_COLUMNS = (
    *Ticket.all_columns(),
    Ticket.requester.display_name.as_alias("requester_name"),
    Ticket.requester.email.as_alias("requester_email"),
    Ticket.requester.locale.as_alias("requester_locale"),
    Ticket.organisation.name.as_alias("organisation_name"),
    Ticket.organisation.plan.as_alias("organisation_plan"),
    Ticket.organisation.size.as_alias("organisation_size"),
    Ticket.organisation.industry.as_alias("organisation_industry"),
    Ticket.assignee.display_name.as_alias("assignee_name"),
    Ticket.team.name.as_alias("team_name"),
)
LIST_COLUMNS = (
    Ticket.id,
    Ticket.version,  # bulk actions name the version each row was read at
    Ticket.subject,
    Ticket.status,
    Ticket.priority,
    Ticket.ticket_type,
    Ticket.channel,
    Ticket.created_at,
    Ticket.updated_at,
    Ticket.solved_at,
    Ticket.sla_due_at,
    Ticket.sla_at_risk_at,
    Ticket.requester.display_name.as_alias("requester_name"),
    Ticket.organisation.name.as_alias("organisation_name"),
    Ticket.assignee.display_name.as_alias("assignee_name"),
    Ticket.team.name.as_alias("team_name"),
)
VIEWS = ("mine", "unassigned", "groups", "pending", "sla", "solved", "all")
# "due": the next SLA due time (server/desk/sla.py); tickets without a running SLA clock are left out.
SORTS = {"updated": Ticket.updated_at, "created": Ticket.created_at, "due": Ticket.sla_due_at}
PAGE_SIZE = 25


def page_reads() -> Any:
    """`async with page_reads():` runs a page's reads on one connection, as one snapshot (on
    SQLite each query outside a transaction opens a connection of its own). Reads only."""
    return engine().transaction()


_TICKET_SQL: dict[str, str] = {}


def _ticket_statement() -> str:
    """get_ticket's statement as a template, built by Piccolo once per engine type: building its
    nine joins costs ~1.3 ms a call, more than running it."""
    engine_type = engine().engine_type
    if engine_type not in _TICKET_SQL:
        query = Ticket.select(*TICKET_COLUMNS).where(Ticket.id == 0).limit(1)
        sql, args = query.querystrings[0].compile_string(engine_type=engine_type)
        placeholder = "$1" if engine_type in ("postgres", "cockroach") else "?"
        if args != [0] or sql.count(placeholder) != 1 or "{" in sql or "}" in sql:
            raise RuntimeError("unexpected statement for get_ticket")
        _TICKET_SQL[engine_type] = sql.replace(placeholder, "{}")
    return _TICKET_SQL[engine_type]


async def get_ticket(ticket_id: int) -> dict[str, Any] | None:
    rows = await Ticket.raw(_ticket_statement(), ticket_id)
    if not rows:
        return None
    row = rows[0]
    if isinstance(row["tags"], str):  # JSON comes back as text (`output(load_json=True)` did this)
        row["tags"] = json.loads(row["tags"])
    return row


async def follower_ids(ticket_id: int) -> frozenset[int]:
    rows = await TicketFollower.select(TicketFollower.user).where(TicketFollower.ticket == ticket_id)
    return frozenset(r["user"] for r in rows)


async def access_ticket(actor: Actor, ticket_id: int) -> dict[str, Any]:
    """The ticket when the actor may see it; NotFound otherwise (the same as a missing ticket)."""
    if not actor.is_authenticated:
        raise NotFound
    ticket = await get_ticket(ticket_id)
    if ticket is None:
        raise NotFound
    followers = frozenset() if actor.is_agent else await follower_ids(ticket_id)
    if not policy.can_see_ticket(actor, ticket["requester"], ticket["organisation"], followers):
        raise NotFound
    return ticket


def visible_kinds(actor: Actor) -> tuple[str, ...]:
    """Customers read the public conversation only: no internal notes, no system events."""
    return ("public", "internal", "system") if policy.can_see_internal_notes(actor) else ("public",)


async def conversation(actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    """The messages the actor may read, oldest first, each with its attachments."""
    messages = (
        await TicketMessage.select(
            *TicketMessage.all_columns(),
            TicketMessage.author.display_name.as_alias("author_name"),
        )
        .where((TicketMessage.ticket == ticket_id) & TicketMessage.kind.is_in(list(visible_kinds(actor))))
        .order_by(TicketMessage.created_at)
        .order_by(TicketMessage.id)
        .output(load_json=True)
    )
    ids = [m["id"] for m in messages if m["kind"] != "system"]
    files: dict[int, list[dict[str, Any]]] = {}
    if ids:
        rows = (
            await TicketAttachment.select(
                TicketAttachment.id,
                TicketAttachment.message,
                TicketAttachment.filename,
                TicketAttachment.size_bytes,
                TicketAttachment.content_type,
            )
            .where(TicketAttachment.message.is_in(ids))
            .order_by(TicketAttachment.id)
        )
        for row in rows:
            files.setdefault(row["message"], []).append(row)
    for message in messages:
        message["attachments"] = files.get(message["id"], [])
    return messages


async def access_attachment(actor: Actor, attachment_id: int) -> dict[str, Any]:
    """An attachment the actor may download: its ticket is visible and, for customers, its
    message is public. NotFound otherwise."""
    row = (
        await TicketAttachment.select(*TicketAttachment.all_columns(), TicketAttachment.message.kind.as_alias("kind"))
        .where(TicketAttachment.id == attachment_id)
        .first()
    )
    if row is None:
        raise NotFound
    await access_ticket(actor, row["ticket"])
    if row["kind"] not in visible_kinds(actor):
        raise NotFound
    return row


async def field_definitions(*, active_only: bool = True, customer_only: bool = False) -> list[dict[str, Any]]:
    query = DeskField.select().order_by(DeskField.position).order_by(DeskField.id).output(load_json=True)
    clauses = []
    if active_only:
        clauses.append(DeskField.active == True)  # noqa: E712 - Piccolo builds SQL from ==
    if customer_only:
        clauses.append(DeskField.customer_editable == True)  # noqa: E712
    if clauses:
        query = query.where(*clauses)
    return await query


async def field_values(ticket_id: int) -> dict[str, str]:
    rows = await TicketFieldValue.select(TicketFieldValue.field.key.as_alias("key"), TicketFieldValue.value).where(
        TicketFieldValue.ticket == ticket_id
    )
    return {r["key"]: r["value"] for r in rows}


async def groups() -> list[dict[str, Any]]:
    return await DeskGroup.select(*DeskGroup.all_columns(), DeskGroup.lead.display_name.as_alias("lead_name")).order_by(
        DeskGroup.name
    )


async def group_ids_of(user_id: int | None) -> list[int]:
    if user_id is None:
        return []
    rows = await DeskGroupMember.select(DeskGroupMember.team).where(DeskGroupMember.user == user_id)
    return [r["team"] for r in rows]


async def agents() -> list[dict[str, Any]]:
    from server.accounts.tables import User, UserRole

    roles = UserRole.select(UserRole.user).where(UserRole.role.is_in(["agent", "admin"]))
    return (
        await User.select(User.id, User.display_name, User.email)
        .where(User.id.is_in(roles), User.is_active == True)  # noqa: E712
        .order_by(User.display_name)
    )


async def is_agent(user_id: int) -> bool:
    from server.accounts.tables import UserRole

    return await UserRole.exists().where(
        (UserRole.user == user_id) & UserRole.role.is_in(["agent", "admin"]) & (UserRole.user.is_active == True)  # noqa: E712
    )


async def macros(*, active_only: bool = True) -> list[dict[str, Any]]:
    query = DeskMacro.select().order_by(DeskMacro.position).order_by(DeskMacro.name).output(load_json=True)
    if active_only:
        query = query.where(DeskMacro.active == True)  # noqa: E712
    return await query


# What every agent's desk page shows the same (the assign and group lists, macros, custom field
# definitions), read once per process every two seconds for the read pages only: writes and the
# admin pages read fresh. The desk's admin routes clear it when a save succeeds, so the admin sees
# the change at once; other processes within two seconds.
REFERENCE = ShortCache(ttl_seconds=2.0, max_entries=16)


def clear_reference_cache() -> None:
    REFERENCE.clear()


async def cached_agents() -> list[dict[str, Any]]:
    return await REFERENCE.cached("agents", agents)


async def cached_groups() -> list[dict[str, Any]]:
    return await REFERENCE.cached("groups", groups)


async def cached_macros() -> list[dict[str, Any]]:
    return await REFERENCE.cached("macros", macros)


async def cached_field_definitions() -> list[dict[str, Any]]:
    return await REFERENCE.cached("fields", field_definitions)


async def links(ticket_id: int, ticket: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Related tickets, the parent and the children of a ticket (agents' sidebar), in one query.
    `ticket`: its row when the caller has just read it (its parent is then not read again)."""
    parent = (
        QueryString("{}", ticket["parent"])
        if ticket is not None
        else QueryString("(SELECT parent FROM ticket WHERE id = {})", ticket_id)
    )
    rows = await Ticket.raw(
        "SELECT id, subject, status, 'related' AS relation FROM ticket WHERE id IN ("
        " SELECT target FROM ticket_link WHERE source = {} UNION SELECT source FROM ticket_link WHERE target = {})"
        " UNION ALL SELECT id, subject, status, 'children' AS relation FROM ticket WHERE parent = {}"
        " UNION ALL SELECT id, subject, status, 'parent' AS relation FROM ticket WHERE id = {}"
        " ORDER BY relation, id",
        ticket_id,
        ticket_id,
        ticket_id,
        parent,
    )
    found: dict[str, list[dict[str, Any]]] = {"related": [], "children": [], "parent": []}
    for row in rows:
        found[row.pop("relation")].append(row)
    return found


async def past_tickets(requester_id: int, exclude_id: int, limit: int = 8) -> list[dict[str, Any]]:
    return (
        await Ticket.select(Ticket.id, Ticket.subject, Ticket.status, Ticket.created_at)
        .where((Ticket.requester == requester_id) & (Ticket.id != exclude_id))
        .order_by(Ticket.created_at, ascending=False)
        .limit(limit)
    )


# Agent views --------------------------------------------------------------------------------


def view_clause(actor: Actor, view: str) -> Any:
    unsolved = Ticket.status.is_in(list(UNSOLVED))
    if view == "mine":
        return And(Ticket.assignee == actor.user_id, Ticket.status.is_in(["new", "open"]))
    if view == "unassigned":
        return And(Ticket.assignee.is_null(), unsolved)
    if view == "groups":
        mine = DeskGroupMember.select(DeskGroupMember.team).where(DeskGroupMember.user == actor.user_id)
        return And(Ticket.team.is_in(mine), unsolved)
    if view == "pending":
        return Ticket.status == "pending"
    if view == "solved":
        return Ticket.status == "solved"
    if view == "sla":  # at risk (under 25% of a target left) or breached, as of now
        return And(Ticket.sla_at_risk_at <= datetime.now(UTC), unsolved)
    return unsolved


# Counts in the desk's navigation stop at this many: counting a million-ticket view on every page
# view would cost more than the page. Shown as "999+" (templates: `desk_count`).
COUNT_CAP = 1000


async def capped_count(clauses: list[Any]) -> int:
    """How many tickets match, counted up to COUNT_CAP (one index range of at most that many)."""
    query = Ticket.select(Ticket.id)
    if clauses:
        query = query.where(*clauses)
    rows = await Ticket.raw("SELECT COUNT(*) AS n FROM ({}) AS capped", query.limit(COUNT_CAP).querystrings[0])
    return int(rows[0]["n"])


def count_label(count: int) -> str:
    return f"{COUNT_CAP - 1}+" if count >= COUNT_CAP else str(count)


async def view_counts(actor: Actor) -> dict[str, int]:
    """Every built-in view's capped count in one statement (one round trip, not one per view)."""
    parts = []
    for view in VIEWS:
        capped = Ticket.select(Ticket.id).where(view_clause(actor, view)).limit(COUNT_CAP)
        parts.append(capped.querystrings[0])
    # Only the constant view names go into the text; every value stays a bound parameter.
    columns = ", ".join(f'(SELECT COUNT(*) FROM ({{}}) AS capped_{view}) AS "{view}"' for view in VIEWS)  # noqa: S608
    rows = await Ticket.raw(f"SELECT {columns}", *parts)
    return {view: int(rows[0][view]) for view in VIEWS}


def encode_cursor(moment: datetime, ticket_id: int) -> str:
    return f"{int(moment.timestamp() * 1_000_000)}.{ticket_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        micros, ticket_id = cursor.split(".")
        moment = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
        return moment, int(ticket_id)
    except (ValueError, OverflowError, OSError):
        return None


async def list_view(
    actor: Actor, view: str, *, sort: str = "-updated", cursor: str = "", limit: int = PAGE_SIZE, extra: Any = None
) -> tuple[list[dict[str, Any]], str]:
    """One page of a view, newest (or oldest) first, after `cursor`; returns (rows, next cursor)."""
    clauses = [view_clause(actor, view), *([extra] if extra is not None else [])]
    return await list_tickets(clauses, sort=sort, cursor=cursor, limit=limit)


async def list_tickets(
    clauses: list[Any], *, sort: str = "-updated", cursor: str = "", limit: int = PAGE_SIZE, columns: Any = LIST_COLUMNS
) -> tuple[list[dict[str, Any]], str]:
    """Keyset pagination over tickets matching `clauses`: every page costs the same, however deep."""
    descending = sort.startswith("-")
    column = SORTS.get(sort.lstrip("-"), Ticket.updated_at)
    clauses = list(clauses)
    if column is Ticket.sla_due_at:
        clauses.append(Ticket.sla_due_at.is_not_null())
    after = decode_cursor(cursor) if cursor else None
    if after is not None:
        moment, last_id = after
        if descending:
            clauses.append(Or(column < moment, And(column == moment, Ticket.id < last_id)))
        else:
            clauses.append(Or(column > moment, And(column == moment, Ticket.id > last_id)))
    # The page's ids first (one index range, no joins), then their rows with the joined names:
    # joining before the LIMIT would join every matching ticket, and plans the bigger query.
    keys = (
        await Ticket.select(Ticket.id)
        .where(*clauses)
        .order_by(column, ascending=not descending)
        .order_by(Ticket.id, ascending=not descending)
        .limit(limit + 1)
    )
    ids = [r["id"] for r in keys]
    more = len(ids) > limit
    ids = ids[:limit]
    found = await Ticket.select(*columns).where(Ticket.id.is_in(ids)).output(load_json=True) if ids else []
    by_id = {r["id"]: r for r in found}
    rows = [by_id[i] for i in ids if i in by_id]
    key = column._meta.name
    next_cursor = encode_cursor(rows[-1][key], rows[-1]["id"]) if more and rows else ""
    return rows, next_cursor


# Customer portal ----------------------------------------------------------------------------


def portal_clause(actor: Actor, scope: str) -> Any:
    if scope == "organisation" and actor.admin_org_ids:
        return Ticket.organisation.is_in(sorted(actor.admin_org_ids))
    return Ticket.requester == actor.user_id


async def portal_tickets(actor: Actor, scope: str, page_no: int, per_page: int = PAGE_SIZE) -> tuple[list[Any], bool]:
    rows = (
        await Ticket.select(*LIST_COLUMNS)
        .where(portal_clause(actor, scope))
        .order_by(Ticket.updated_at, ascending=False)
        .order_by(Ticket.id, ascending=False)
        .limit(per_page + 1)
        .offset((page_no - 1) * per_page)
    )
    return rows[:per_page], len(rows) > per_page


def _install_template_helpers() -> None:
    """`desk_count(n)` for the navigation's view counts ("999+" past the cap)."""
    from server.templating import environment

    environment().globals["desk_count"] = count_label


_install_template_helpers()
