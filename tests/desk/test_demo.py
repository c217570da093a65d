"""The demo desk that `python -m server seed` loads: every status, both languages, idempotent."""

from __future__ import annotations

import pytest

from server.accounts.services import create_user, save_organisation
from server.desk import demo, queries
from server.desk.search import JAPANESE
from server.desk.tables import DeskField, DeskGroup, DeskMacro, Ticket, TicketMessage
from server.seed import DEMO_PASSWORD, ORGANISATIONS, SYSTEM, USERS


async def _seed_people() -> None:
    for slug, name, size, industry, plan in ORGANISATIONS:
        await save_organisation(SYSTEM, None, name=name, slug=slug, size=size, industry=industry, plan=plan)
    for email, name, roles, org, org_admin, locale in USERS:
        await create_user(email, DEMO_PASSWORD, name, roles, org_slug=org, org_admin=org_admin, locale=locale)


async def test_demo_desk_looks_like_a_working_day_and_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "TICKETS", 80)  # the real seed makes 300; the shape is the same
    await _seed_people()
    assert await demo.load_demo_desk() == 80
    assert await DeskGroup.count() == len(demo.GROUPS)
    assert await DeskField.count() == len(demo.FIELDS)
    assert await DeskMacro.count() == len(demo.MACROS)
    rows = await Ticket.select(Ticket.status, Ticket.subject, Ticket.created_at)
    assert {r["status"] for r in rows} == {"new", "open", "pending", "on_hold", "solved", "closed"}
    assert any(JAPANESE.search(r["subject"]) for r in rows) and any(not JAPANESE.search(r["subject"]) for r in rows)
    assert len({r["created_at"].date() for r in rows}) > 5  # spread over past days
    assert await TicketMessage.count().where(TicketMessage.kind == "internal") > 0
    assert await demo.load_demo_desk() == 0  # idempotent
    assert await Ticket.count() == 80
    agent = await queries.get_ticket((await Ticket.select(Ticket.id).where(Ticket.status == "open").first())["id"])  # type: ignore[index]
    assert agent is not None and agent["assignee"] is not None
