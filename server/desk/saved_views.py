"""Agents' saved views: named filters (status, priority, assignee, group, tags, channel), a sort
and the visible columns, private or shared with one of the owner's groups, with live counts.

"me" and "my groups" in a filter mean the agent looking at the view, so one shared view shows
each agent their own tickets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from piccolo.columns.combination import WhereRaw
from piccolo.utils.encoding import dump_json

from server import policy
from server.accounts.auth import utcnow
from server.db import atomic
from server.desk import fields, queries
from server.desk.agent_tables import DeskSavedView
from server.desk.tables import CHANNELS, PRIORITIES, STATUSES, DeskGroupMember, Ticket
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure
from server.prepared import prepared

COLUMNS = (
    "id",
    "subject",
    "requester",
    "status",
    "priority",
    "assignee",
    "group",
    "channel",
    "tags",
    "created",
    "updated",
)
DEFAULT_COLUMNS = ("id", "subject", "requester", "status", "priority", "assignee", "updated")
SORT_KEYS = ("-updated", "updated", "-created", "created")
MAX_NAME_CHARS = 80
MAX_VIEWS_PER_AGENT = 50
LIST_COLUMNS = (*queries.LIST_COLUMNS, Ticket.tags)


def column_labels() -> dict[str, str]:
    return {
        "id": "#",
        "subject": _("Subject"),
        "requester": _("Requester"),
        "status": _("Status"),
        "priority": _("Priority"),
        "assignee": _("Assignee"),
        "group": _("Group"),
        "channel": _("Channel"),
        "tags": _("Tags"),
        "created": _("Created"),
        "updated": _("Updated"),
    }


@dataclass
class ViewSpec:
    """What a view shows. `filters` hold only what was chosen (normalised)."""

    filters: dict[str, Any] = field(default_factory=dict)
    sort: str = "-updated"
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))

    def query(self) -> str:
        """The spec as a query string (links, and the hidden field of the save form)."""
        pairs: list[tuple[str, str]] = []
        for key in ("status", "priority", "channel", "tags"):
            pairs += [(key, value) for value in self.filters.get(key, [])]
        for key in ("assignee", "team"):
            if self.filters.get(key):
                pairs.append((key, str(self.filters[key])))
        pairs.append(("sort", self.sort))
        pairs += [("col", column) for column in self.columns]
        return urlencode(pairs)

    def as_row(self) -> dict[str, Any]:
        return {"filters": self.filters, "sort": self.sort, "columns": self.columns}


def _one_of(values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v in allowed]


def parse_spec(params: Mapping[str, Sequence[str]], errors: dict[str, str] | None = None) -> ViewSpec:
    """A spec from multi-valued parameters (query string or form). Unknown choices are dropped;
    bad tags are reported in `errors` when given."""
    filters: dict[str, Any] = {}
    for key, allowed in (("status", STATUSES), ("priority", PRIORITIES), ("channel", CHANNELS)):
        chosen = _one_of(params.get(key, []), allowed)
        if chosen:
            filters[key] = chosen
    for key in ("assignee", "team"):
        value = (params.get(key) or [""])[-1].strip()
        special = ("me", "none") if key == "assignee" else ("mine", "none")
        if value in special or (value.isdigit() and len(value) < 12):
            filters[key] = value
    raw_tags = " ".join(params.get("tags", []))
    tag_errors: dict[str, str] = {}
    tags = fields.clean_tags(raw_tags, tag_errors)
    if tag_errors and errors is not None:
        errors.update(tag_errors)
    if tags and not tag_errors:
        filters["tags"] = tags
    sort = (params.get("sort") or ["-updated"])[-1]
    columns = _one_of(params.get("col", []), COLUMNS) or list(DEFAULT_COLUMNS)
    return ViewSpec(filters, sort if sort in SORT_KEYS else "-updated", columns)


def spec_from_row(row: dict[str, Any]) -> ViewSpec:
    """A stored view, read back through the same checks (choices may have changed since)."""
    params: dict[str, list[str]] = {}
    for key, value in (row.get("filters") or {}).items():
        params[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    params["sort"] = [row.get("sort") or "-updated"]
    params["col"] = [str(c) for c in row.get("columns") or []]
    return parse_spec(params)


def spec_from_query(query: str) -> ViewSpec:
    return parse_spec(parse_qs(query[:4000], keep_blank_values=False))


def _tag_clause(tag: str) -> WhereRaw:
    """Tickets whose JSON list of tags holds `tag` (the stored text, on SQLite and PostgreSQL)."""
    needle = dump_json(tag).replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return WhereRaw("CAST(ticket.tags AS TEXT) LIKE {} ESCAPE '!'", f"%{needle}%")


def spec_clauses(actor: Actor, spec: ViewSpec) -> list[Any]:
    f = spec.filters
    clauses: list[Any] = []
    if f.get("status"):
        clauses.append(Ticket.status.is_in(f["status"]))
    if f.get("priority"):
        clauses.append(Ticket.priority.is_in(f["priority"]))
    if f.get("channel"):
        clauses.append(Ticket.channel.is_in(f["channel"]))
    assignee = f.get("assignee")
    if assignee == "me":
        clauses.append(Ticket.assignee == actor.user_id)
    elif assignee == "none":
        clauses.append(Ticket.assignee.is_null())
    elif assignee:
        clauses.append(Ticket.assignee == int(assignee))
    team = f.get("team")
    if team == "mine":
        mine = DeskGroupMember.select(DeskGroupMember.team).where(DeskGroupMember.user == actor.user_id)
        clauses.append(Ticket.team.is_in(mine))
    elif team == "none":
        clauses.append(Ticket.team.is_null())
    elif team:
        clauses.append(Ticket.team == int(team))
    clauses += [_tag_clause(tag) for tag in f.get("tags", [])]
    return clauses


async def list_spec(actor: Actor, spec: ViewSpec, cursor: str = "") -> tuple[list[dict[str, Any]], str]:
    return await queries.list_tickets(spec_clauses(actor, spec), sort=spec.sort, cursor=cursor, columns=LIST_COLUMNS)


async def count_spec(actor: Actor, spec: ViewSpec) -> int:
    """Capped like the built-in views' counts (queries.COUNT_CAP)."""
    return await queries.capped_count(spec_clauses(actor, spec))


# Reading ----------------------------------------------------------------------------------------

VIEW_COLUMNS = (*DeskSavedView.all_columns(), DeskSavedView.owner.display_name.as_alias("owner_name"))


@prepared
def _own_and_shared_views(user_id: Any) -> Any:
    """The user's views and those shared with a group of the user (the policy still checks each)."""
    teams = DeskGroupMember.select(DeskGroupMember.team).where(DeskGroupMember.user == user_id)
    return (
        DeskSavedView.select(*VIEW_COLUMNS)
        .where((DeskSavedView.owner == user_id) | DeskSavedView.team.is_in(teams))
        .order_by(DeskSavedView.name)
        .output(load_json=True)
    )


async def visible_views(actor: Actor) -> list[dict[str, Any]]:
    """The agent's own views and those shared with the agent's groups, by name."""
    if not policy.can_use_desk(actor):
        return []
    mine = frozenset(await queries.group_ids_of(actor.user_id))
    rows = await _own_and_shared_views(actor.user_id)
    return [r for r in rows if policy.can_read_saved_view(actor, r["owner"], r["team"], mine)]


async def access_view(actor: Actor, view_id: int) -> dict[str, Any]:
    """A view the agent may read; NotFound otherwise (the same as a missing one)."""
    row = await DeskSavedView.select(*VIEW_COLUMNS).where(DeskSavedView.id == view_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    teams = frozenset(await queries.group_ids_of(actor.user_id))
    if not policy.can_read_saved_view(actor, row["owner"], row["team"], teams):
        raise NotFound
    return row


async def nav_entries(actor: Actor) -> list[dict[str, Any]]:
    """The views for the desk's navigation, each with its live count."""
    entries = []
    for row in await visible_views(actor):
        entries.append(
            {
                "id": row["id"],
                "name": row["name"],
                "shared": row["team"] is not None,
                "mine": row["owner"] == actor.user_id,
                "count": await count_spec(actor, spec_from_row(row)),
            }
        )
    return entries


# Writing ----------------------------------------------------------------------------------------


async def _check(actor: Actor, name: str, team_id: int | None, errors: dict[str, str]) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_CHARS:
        errors["name"] = _("Give the view a name (up to %(n)s characters).", n=MAX_NAME_CHARS)
    if team_id is not None and team_id not in await queries.group_ids_of(actor.user_id):
        errors["team"] = _("Share the view with one of your own groups.")
    return name


async def save_view(actor: Actor, view_id: int | None, name: str, team_id: int | None, spec: ViewSpec) -> int:
    """Create (view_id None) or change the agent's own view."""
    ensure(policy.can_use_desk(actor))
    errors: dict[str, str] = {}
    async with atomic():
        name = await _check(actor, name, team_id, errors)
        if view_id is None:
            count = await DeskSavedView.count().where(DeskSavedView.owner == actor.user_id)
            if count >= MAX_VIEWS_PER_AGENT:
                errors["name"] = _("You have %(n)s views already; delete one first.", n=MAX_VIEWS_PER_AGENT)
        if errors:
            raise Invalid(errors)
        moment = utcnow()
        if view_id is None:
            rows = await DeskSavedView.insert(
                DeskSavedView(
                    owner=actor.user_id, name=name, team=team_id, created_at=moment, updated_at=moment, **spec.as_row()
                )
            ).returning(DeskSavedView.id)
            return rows[0]["id"]
        view = await access_view(actor, view_id)
        ensure(policy.can_edit_saved_view(actor, view["owner"]))
        await DeskSavedView.update(
            {
                DeskSavedView.name: name,
                DeskSavedView.team: team_id,
                DeskSavedView.filters: spec.filters,
                DeskSavedView.sort: spec.sort,
                DeskSavedView.columns: spec.columns,
                DeskSavedView.updated_at: moment,
            }
        ).where(DeskSavedView.id == view_id)
        return view_id


async def delete_view(actor: Actor, view_id: int) -> None:
    ensure(policy.can_use_desk(actor))
    async with atomic():
        view = await access_view(actor, view_id)
        ensure(policy.can_edit_saved_view(actor, view["owner"]))
        await DeskSavedView.delete().where(DeskSavedView.id == view_id)
