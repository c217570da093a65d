"""Reads that the portal, the desk and the API share: visible tickets, conversations, views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from piccolo.columns.combination import And, Or, WhereRaw
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
from server.prepared import Prepared, prepared
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


@prepared
def _ticket(ticket_id: Any) -> Any:
    return Ticket.select(*TICKET_COLUMNS).where(Ticket.id == ticket_id).limit(1).output(load_json=True)


async def get_ticket(ticket_id: int) -> dict[str, Any] | None:
    return await _ticket.first(ticket_id)


@prepared
def _followers(ticket_id: Any) -> Any:
    return TicketFollower.select(TicketFollower.user).where(TicketFollower.ticket == ticket_id)


async def follower_ids(ticket_id: int) -> frozenset[int]:
    return frozenset(r["user"] for r in await _followers(ticket_id))


@prepared
def _followers_named(ticket_id: Any) -> Any:
    return TicketFollower.select(
        TicketFollower.user,
        TicketFollower.user.display_name.as_alias("name"),
        TicketFollower.user.email.as_alias("email"),
    ).where(TicketFollower.ticket == ticket_id)


async def followers(ticket_id: int) -> list[dict[str, Any]]:
    """Who is copied on the ticket: user id, name and email (the agent's sidebar)."""
    return await _followers_named(ticket_id)


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


def _conversation_reads(kinds: tuple[str, ...]) -> tuple[Prepared, Prepared]:
    """The two reads of a conversation limited to `kinds`: its messages, and the attachments of
    those that are not system events."""
    files_kinds = [k for k in kinds if k != "system"]

    @prepared
    def messages(ticket_id: Any) -> Any:
        return (
            TicketMessage.select(
                *TicketMessage.all_columns(), TicketMessage.author.display_name.as_alias("author_name")
            )
            .where((TicketMessage.ticket == ticket_id) & TicketMessage.kind.is_in(list(kinds)))
            .order_by(TicketMessage.created_at)
            .order_by(TicketMessage.id)
            .output(load_json=True)
        )

    @prepared
    def files(ticket_id: Any) -> Any:
        shown = TicketMessage.select(TicketMessage.id).where(
            (TicketMessage.ticket == ticket_id) & TicketMessage.kind.is_in(files_kinds)
        )
        return (
            TicketAttachment.select(
                TicketAttachment.id,
                TicketAttachment.message,
                TicketAttachment.filename,
                TicketAttachment.size_bytes,
                TicketAttachment.content_type,
            )
            .where(TicketAttachment.message.is_in(shown))
            .order_by(TicketAttachment.id)
        )

    return messages, files


_CONVERSATION = {kinds: _conversation_reads(kinds) for kinds in (("public", "internal", "system"), ("public",))}


async def conversation(actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    """The messages the actor may read, oldest first, each with its attachments."""
    read_messages, read_files = _CONVERSATION[visible_kinds(actor)]
    messages = await read_messages(ticket_id)
    files: dict[int, list[dict[str, Any]]] = {}
    if any(m["kind"] != "system" for m in messages):
        for row in await read_files(ticket_id):
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


@prepared
def _field_values(ticket_id: Any) -> Any:
    return TicketFieldValue.select(TicketFieldValue.field.key.as_alias("key"), TicketFieldValue.value).where(
        TicketFieldValue.ticket == ticket_id
    )


async def field_values(ticket_id: int) -> dict[str, str]:
    return {r["key"]: r["value"] for r in await _field_values(ticket_id)}


async def groups() -> list[dict[str, Any]]:
    return await DeskGroup.select(*DeskGroup.all_columns(), DeskGroup.lead.display_name.as_alias("lead_name")).order_by(
        DeskGroup.name
    )


@prepared
def _group_ids(user_id: Any) -> Any:
    return DeskGroupMember.select(DeskGroupMember.team).where(DeskGroupMember.user == user_id)


async def group_ids_of(user_id: int | None) -> list[int]:
    if user_id is None:
        return []
    return [r["team"] for r in await _group_ids(user_id)]


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


_LINKS_SQL = (
    "SELECT id, subject, status, 'related' AS relation FROM ticket WHERE id IN ("
    " SELECT target FROM ticket_link WHERE source = {} UNION SELECT source FROM ticket_link WHERE target = {})"
    " UNION ALL SELECT id, subject, status, 'children' AS relation FROM ticket WHERE parent = {}"
    " UNION ALL SELECT id, subject, status, 'parent' AS relation FROM ticket WHERE id = {}"
    " ORDER BY relation, id"
)


def _links_read(parent: str) -> Prepared:
    """Related tickets, the children and the parent of a ticket; `parent`: the SQL of the
    parent's id from the second value (that id, or a subquery of the ticket's id)."""

    @prepared
    def read(ticket_id: Any, parent_key: Any) -> Any:
        return Ticket.raw(_LINKS_SQL, ticket_id, ticket_id, ticket_id, QueryString(parent, parent_key))

    return read


_LINKS_OF_ROW = _links_read("{}")
_LINKS_OF_ID = _links_read("(SELECT parent FROM ticket WHERE id = {})")


async def links(ticket_id: int, ticket: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Related tickets, the parent and the children of a ticket (agents' sidebar), in one query.
    `ticket`: its row when the caller has just read it (its parent is then not read again)."""
    if ticket is not None:
        rows = await _LINKS_OF_ROW(ticket_id, ticket["parent"])
    else:
        rows = await _LINKS_OF_ID(ticket_id, ticket_id)
    found: dict[str, list[dict[str, Any]]] = {"related": [], "children": [], "parent": []}
    for row in rows:
        found[row.pop("relation")].append(row)
    return found


@prepared
def _past_tickets(requester_id: Any, exclude_id: Any) -> Any:
    # One row per ticket: a ticket has at most one rating (desk_csat.ticket is unique).
    return Ticket.raw(
        "SELECT ticket.id, ticket.subject, ticket.status, ticket.created_at, COALESCE(desk_csat.rating, '') AS csat"
        " FROM ticket LEFT JOIN desk_csat ON desk_csat.ticket = ticket.id"
        " WHERE ticket.requester = {} AND ticket.id != {}"
        " ORDER BY ticket.created_at DESC LIMIT 8",
        requester_id,
        exclude_id,
    )


async def past_tickets(requester_id: int, exclude_id: int) -> list[dict[str, Any]]:
    """The requester's latest other tickets (the customer context), each with its `csat` rating
    ("" when not rated)."""
    return await _past_tickets(requester_id, exclude_id)


# Agent views --------------------------------------------------------------------------------


# What each built-in view's condition depends on besides constants (the others depend on none).
_VIEW_INPUTS = {"mine": ("user_id",), "groups": ("user_id",), "sla": ("now",)}


# "My open" names its statuses as literals, not bound values: the partial index `ticket_mine`
# (migration 2026-12-05T06:50:00, same predicate) then serves its reads in every plan.
# PostgreSQL's generic plan of a prepared read cannot match an index predicate against bound
# values, and scanned all tickets newest first instead (3 ms against 0.05 ms at 1M tickets).
_MINE_STATUSES = WhereRaw("\"ticket\".\"status\" IN ('new', 'open')")


def _view_where(view: str, user_id: Any = None, now: Any = None) -> Any:
    unsolved = Ticket.status.is_in(list(UNSOLVED))
    if view == "mine":
        return And(Ticket.assignee == user_id, _MINE_STATUSES)
    if view == "unassigned":
        return And(Ticket.assignee.is_null(), unsolved)
    if view == "groups":
        mine = DeskGroupMember.select(DeskGroupMember.team).where(DeskGroupMember.user == user_id)
        return And(Ticket.team.is_in(mine), unsolved)
    if view == "pending":
        return Ticket.status == "pending"
    if view == "solved":
        return Ticket.status == "solved"
    if view == "sla":  # at risk (under 25% of a target left) or breached, as of now
        return And(Ticket.sla_at_risk_at <= now, unsolved)
    return unsolved


def _view_inputs(actor: Actor, view: str) -> tuple[Any, ...]:
    """The values of the view's inputs (_VIEW_INPUTS), in order."""
    known = {"user_id": actor.user_id, "now": datetime.now(UTC)}
    return tuple(known[name] for name in _VIEW_INPUTS.get(view, ()))


def view_clause(actor: Actor, view: str) -> Any:
    return _view_where(view, **dict(zip(_VIEW_INPUTS.get(view, ()), _view_inputs(actor, view), strict=True)))


# Counts in the desk's navigation stop at this many, shown as "99+" (templates: `desk_count`), as
# inbox badges do: beyond a hundred the number changes nothing an agent does next, and every page
# view counts all seven views (with a cap of 1,000: 2.3 ms of PostgreSQL time per page at
# 1,000,000 tickets, more than the rest of the page's reads).
COUNT_CAP = 100


async def capped_count(clauses: list[Any]) -> int:
    """How many tickets match, counted up to COUNT_CAP (one index range of at most that many)."""
    query = Ticket.select(Ticket.id)
    if clauses:
        query = query.where(*clauses)
    rows = await Ticket.raw("SELECT COUNT(*) AS n FROM ({}) AS capped", query.limit(COUNT_CAP).querystrings[0])
    return int(rows[0]["n"])


def count_label(count: int) -> str:
    return f"{COUNT_CAP - 1}+" if count >= COUNT_CAP else str(count)


@prepared
def _view_counts(user_id: Any, now: Any) -> Any:
    inputs = {"user_id": user_id, "now": now}
    parts = []
    for view in VIEWS:
        where = _view_where(view, **{name: inputs[name] for name in _VIEW_INPUTS.get(view, ())})
        parts.append(Ticket.select(Ticket.id).where(where).limit(COUNT_CAP).querystrings[0])
    # Only the constant view names go into the text; every value stays a bound parameter.
    columns = ", ".join(f'(SELECT COUNT(*) FROM ({{}}) AS capped_{view}) AS "{view}"' for view in VIEWS)  # noqa: S608
    return Ticket.raw(f"SELECT {columns}", *parts)


async def view_counts(actor: Actor) -> dict[str, int]:
    """Every built-in view's capped count in one statement (one round trip, not one per view)."""
    rows = await _view_counts(actor.user_id, datetime.now(UTC))
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


def _page_query(clauses: list[Any], *, sort: str, after: tuple[Any, Any] | None, limit: int, columns: Any) -> Any:
    """One page of tickets matching `clauses` in `sort` order after the row `after` (its sort
    value and id), plus one row that tells whether a next page exists."""
    descending = sort.startswith("-")
    column = SORTS.get(sort.lstrip("-"), Ticket.updated_at)
    clauses = list(clauses)
    if column is Ticket.sla_due_at:
        clauses.append(Ticket.sla_due_at.is_not_null())
    if after is not None:
        moment, last_id = after
        if descending:
            clauses.append(Or(column < moment, And(column == moment, Ticket.id < last_id)))
        else:
            clauses.append(Or(column > moment, And(column == moment, Ticket.id > last_id)))
    # The page's ids in a subquery (one index range, no joins), then their rows with the joined
    # names: joining before the LIMIT would join every matching ticket, and plans a bigger query.
    keys = (
        Ticket.select(Ticket.id)
        .where(*clauses)
        .order_by(column, ascending=not descending)
        .order_by(Ticket.id, ascending=not descending)
        .limit(limit + 1)
    )
    return (
        Ticket.select(*columns)
        .where(Ticket.id.is_in(keys))
        .order_by(column, ascending=not descending)
        .order_by(Ticket.id, ascending=not descending)
        .output(load_json=True)
    )


def _paged(rows: list[dict[str, Any]], sort: str, limit: int) -> tuple[list[dict[str, Any]], str]:
    more = len(rows) > limit
    rows = rows[:limit]
    key = SORTS.get(sort.lstrip("-"), Ticket.updated_at)._meta.name
    next_cursor = encode_cursor(rows[-1][key], rows[-1]["id"]) if more and rows else ""
    return rows, next_cursor


_VIEW_PAGES: dict[tuple[str, str, bool, int], Prepared] = {}


def _view_page(view: str, sort: str, after: bool, limit: int) -> Prepared:
    """A built-in view's page read, prepared per view, order and limit, with or without a cursor."""
    shape = (view, sort, after, limit)
    read = _VIEW_PAGES.get(shape)
    if read is None:
        names = _VIEW_INPUTS.get(view, ())

        def build(*values: Any) -> Any:
            where = _view_where(view, **dict(zip(names, values[: len(names)], strict=True)))
            cursor = (values[len(names)], values[len(names) + 1]) if after else None
            return _page_query([where], sort=sort, after=cursor, limit=limit, columns=LIST_COLUMNS)

        read = _VIEW_PAGES[shape] = Prepared(build, arity=len(names) + (2 if after else 0))
    return read


async def list_view(
    actor: Actor, view: str, *, sort: str = "-updated", cursor: str = "", limit: int = PAGE_SIZE, extra: Any = None
) -> tuple[list[dict[str, Any]], str]:
    """One page of a view, newest (or oldest) first, after `cursor`; returns (rows, next cursor)."""
    if extra is not None or view not in VIEWS or sort.lstrip("-") not in SORTS:
        clauses = [view_clause(actor, view), *([extra] if extra is not None else [])]
        return await list_tickets(clauses, sort=sort, cursor=cursor, limit=limit)
    after = decode_cursor(cursor) if cursor else None
    read = _view_page(view, sort, after is not None, limit)
    rows = await read(*_view_inputs(actor, view), *(after or ()))
    return _paged(rows, sort, limit)


async def list_tickets(
    clauses: list[Any], *, sort: str = "-updated", cursor: str = "", limit: int = PAGE_SIZE, columns: Any = LIST_COLUMNS
) -> tuple[list[dict[str, Any]], str]:
    """Keyset pagination over tickets matching `clauses`: every page costs the same, however deep."""
    after = decode_cursor(cursor) if cursor else None
    rows = await _page_query(clauses, sort=sort, after=after, limit=limit, columns=columns)
    return _paged(rows, sort, limit)


async def tickets_by_id(ticket_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The list columns of these tickets, by id (search hits shown with their current state)."""
    if not ticket_ids:
        return {}
    rows = await Ticket.select(*LIST_COLUMNS).where(Ticket.id.is_in(ticket_ids)).output(load_json=True)
    return {row["id"]: row for row in rows}


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
    """`desk_count(n)` for the navigation's view counts ("99+" past the cap)."""
    from server.templating import environment

    environment().globals["desk_count"] = count_label


_install_template_helpers()
