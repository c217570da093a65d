"""Bulk actions on selected tickets: assign, set the status, add or remove tags, apply a macro.

One action is one transaction for every selected ticket. Each ticket runs in a savepoint
through the same service as a single change (same policy, same version check, same rules such
as "a parent cannot be solved while children are open"); a ticket that cannot be changed is
rolled back to its savepoint, with its realtime events, and reported as skipped with the reason,
while the others go through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.exceptions import PermissionDeniedException

from server import policy
from server.db import atomic, engine
from server.desk import fields, queries, services
from server.desk.tables import STATUSES, DeskMacro
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure

ACTIONS = ("assign", "status", "add_tags", "remove_tags", "macro")
MAX_TICKETS = 100


@dataclass
class BulkResult:
    ticket_id: int
    done: bool
    reason: str = ""


def action_labels() -> dict[str, str]:
    return {
        "assign": _("Assign"),
        "status": _("Set status"),
        "add_tags": _("Add tags"),
        "remove_tags": _("Remove tags"),
        "macro": _("Apply macro"),
    }


async def form_context() -> dict[str, Any]:
    """What templates/desk/_bulk_form.html needs."""
    return {
        "bulk_actions": action_labels(),
        "bulk_agents": await queries.cached_agents(),
        "bulk_macros": await queries.cached_macros(),
        "bulk_statuses": STATUSES,
    }


def parse_selection(values: list[str]) -> list[tuple[int, int]]:
    """["12:3", ...] (ticket id : the version the list showed) → [(12, 3), ...]."""
    selected: dict[int, int] = {}
    for value in values:
        ticket, _sep, version = value.partition(":")
        if not (ticket.isdigit() and version.isdigit()) or len(ticket) > 12 or len(version) > 9:
            raise Invalid({"tickets": _("The selection is not valid; reload the list.")})
        selected[int(ticket)] = int(version)
    return sorted(selected.items())


async def _check(actor: Actor, action: str, value: str) -> Any:
    """The action's argument, checked once for all tickets."""
    errors: dict[str, str] = {}
    if action not in ACTIONS:
        raise Invalid({"action": _("Choose an action from the list.")})
    if action == "assign":
        if value in ("", "none"):
            return None
        if value == "me":
            return actor.user_id
        if not value.isdigit() or not await queries.is_agent(int(value)):
            raise Invalid({"value": _("Choose an agent from the list.")})
        return int(value)
    if action == "status":
        if value not in STATUSES:
            raise Invalid({"value": _("Choose a value from the list.")})
        return value
    if action in ("add_tags", "remove_tags"):
        tags = fields.clean_tags(value, errors)
        if errors or not tags:
            raise Invalid({"value": errors.get("tags") or _("Enter at least one tag.")})
        return tags
    macro_id = int(value) if value.isdigit() else 0
    if not await DeskMacro.exists().where((DeskMacro.id == macro_id) & (DeskMacro.active == True)):  # noqa: E712
        raise Invalid({"value": _("Choose a macro from the list.")})
    return macro_id


async def _apply_one(actor: Actor, ticket_id: int, version: int, action: str, argument: Any) -> None:
    if action == "macro":
        await services.apply_macro(actor, ticket_id, argument, version)
        return
    if action == "assign":
        changes: dict[str, Any] = {"assignee": argument}
    elif action == "status":
        changes = {"status": argument}
    else:
        ticket = await queries.access_ticket(actor, ticket_id)
        tags = list(ticket["tags"])
        if action == "add_tags":
            tags += [t for t in argument if t not in tags]
        else:
            tags = [t for t in tags if t not in argument]
        changes = {"tags": tags}
    await services.update_ticket(actor, ticket_id, version, changes)


def _reason(exc: Exception) -> str:
    if isinstance(exc, services.TicketConflict):
        return _("Someone else changed it after the list was loaded.")
    if isinstance(exc, Invalid):
        return " ".join(exc.errors.values())
    if isinstance(exc, PermissionDeniedException):
        return _("You are not allowed to change it.")
    return _("It no longer exists.")


async def bulk_apply(actor: Actor, selection: list[tuple[int, int]], action: str, value: str) -> list[BulkResult]:
    """Apply one action to every selected (ticket id, version) in one transaction; returns what
    happened to each ticket, in ticket order."""
    ensure(policy.can_work_tickets(actor))
    if not selection:
        raise Invalid({"tickets": _("Select at least one ticket.")})
    if len(selection) > MAX_TICKETS:
        raise Invalid({"tickets": _("Select at most %(n)s tickets at once.", n=MAX_TICKETS)})
    argument = await _check(actor, action, value)
    results: list[BulkResult] = []
    async with atomic() as tx:
        transaction = engine().current_transaction.get()
        for ticket_id, version in sorted(selection):  # one lock order: no deadlock with another bulk action
            savepoint = await transaction.savepoint()
            mark = len(tx.callbacks)
            try:
                await _apply_one(actor, ticket_id, version, action, argument)
            except (services.TicketConflict, Invalid, NotFound, PermissionDeniedException) as exc:
                await savepoint.rollback_to()
                del tx.callbacks[mark:]  # nothing of this ticket is broadcast either
                tx.__dict__.get("_desk_live_once", set()).difference_update(
                    {key for key in tx.__dict__.get("_desk_live_once", set()) if key[2] == ticket_id}
                )
                results.append(BulkResult(ticket_id, False, _reason(exc)))
            else:
                await savepoint.release()
                results.append(BulkResult(ticket_id, True))
    return results
