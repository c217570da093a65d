"""server/prepared.py: a read built by Piccolo once runs again with new values and returns what
Piccolo itself returns, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from server.db import atomic
from server.desk import queries, services
from server.desk.tables import Ticket
from server.prepared import Prepared, prepared
from tests.desk.factories import make_ticket
from tests.factories import make_org, make_user


def _ticket_with_names(ticket_id: Any) -> Any:
    # joins, aliases, a JSON column (loaded), timestamps and an ordering
    return Ticket.select(*queries.TICKET_COLUMNS).where(Ticket.id == ticket_id).output(load_json=True)


async def test_rows_are_those_piccolo_returns_for_each_value() -> None:
    await make_org()
    customer = await make_user(org="acme-corp", name="Casey Customer")
    first = await make_ticket(customer, "Export fails", tags=["export", "csv"])
    second = await make_ticket(customer, "Login broken", tags=[])
    read = Prepared(_ticket_with_names)
    for ticket_id in (first, second, first, 10**9):
        assert await read(ticket_id) == await _ticket_with_names(ticket_id)
    row = await read.first(first)
    assert row["tags"] == ["csv", "export"] or row["tags"] == ["export", "csv"]
    assert row["requester_name"] == "Casey Customer" and row["organisation_name"] == "Acme Corp"
    assert row["created_at"].tzinfo is not None
    assert await read.first(10**9) is None


async def test_counts_and_raw_statements_bind_every_place_of_a_value() -> None:
    await make_org()
    customer = await make_user(org="acme-corp")
    other = await make_user(org="acme-corp")
    ids = [await make_ticket(customer, f"Ticket {n}") for n in range(3)]
    await make_ticket(other, "Someone else's")

    @prepared
    def count_of(requester: Any) -> Any:
        return Ticket.count().where(Ticket.requester == requester)

    @prepared
    def others_of(requester: Any, exclude: Any) -> Any:
        return Ticket.raw(
            "SELECT id FROM ticket WHERE requester = {} AND id != {} AND requester = {} ORDER BY id",
            requester,
            exclude,
            requester,
        )

    assert await count_of(customer.user_id) == 3 and await count_of(other.user_id) == 1
    assert [r["id"] for r in await others_of(customer.user_id, ids[1])] == [ids[0], ids[2]]


async def test_it_reads_inside_the_current_transaction() -> None:
    await make_org()
    customer = await make_user(org="acme-corp")
    read = Prepared(_ticket_with_names)
    async with atomic():
        ticket_id = await services.open_ticket(customer, "Not committed yet", "Body")
        assert (await read.first(ticket_id))["subject"] == "Not committed yet"


async def test_a_value_that_does_not_reach_the_statement_is_refused() -> None:
    @prepared
    def ignores_its_argument(ticket_id: Any) -> Any:
        return Ticket.select(Ticket.id).where(Ticket.id == 1)

    with pytest.raises(TypeError, match="bound"):
        await ignores_its_argument(5)
    with pytest.raises(TypeError, match="takes 1 values"):
        await Prepared(_ticket_with_names)(1, 2)


async def test_insert_stores_what_piccolo_insert_stores() -> None:
    """insert: every kind of column (JSON, boolean, timestamps, foreign keys, nulls and
    defaults) ends in the database as Piccolo's own insert leaves it."""
    from server.accounts.auth import utcnow
    from server.desk.tables import TicketMessage
    from server.prepared import insert

    await make_org()
    customer = await make_user(org="acme-corp")
    ticket_id = await make_ticket(customer, "Export fails")
    moment = utcnow()

    def message(body: str) -> dict[str, Any]:
        return {
            "ticket": ticket_id,
            "author": customer.user_id,
            "kind": "system",
            "body_md": body,
            "event": {"event": "cc_added", "email": "ann@example.test", "nested": [1, 2]},
            "channel": "email",
            "created_at": moment,
        }

    ours_id = await insert(TicketMessage, message("ours"))
    [theirs] = await TicketMessage.insert(TicketMessage(**message("theirs"))).returning(TicketMessage.id)
    rows = await TicketMessage.select().where(TicketMessage.id.is_in([ours_id, theirs["id"]])).output(load_json=True)
    first, second = sorted(rows, key=lambda row: row["id"])
    assert first["id"] == ours_id and first.pop("body_md") == "ours" and second.pop("body_md") == "theirs"
    first.pop("id"), second.pop("id")
    assert first == second

    async with atomic():  # inside a write transaction too
        inside = await insert(TicketMessage, message("inside"))
    assert await TicketMessage.exists().where(TicketMessage.id == inside)


async def test_insert_fills_defaults_and_converts_values_as_piccolo_does() -> None:
    """insert({column: value}): columns left out take their defaults (constants, per-row
    timestamps, JSON), values are converted (JSON dumped, a row object as its key), and the
    stored row equals the one Piccolo's own insert of `Table(**values)` leaves."""
    from server.desk.tables import TicketMessage
    from server.prepared import insert

    customer = await make_user()
    ticket_id = await make_ticket(customer, "Export fails")
    author = (await make_user(email="other@example.test")).user_id
    values = {"ticket": ticket_id, "author": author, "kind": "public", "event": {"nested": [1, "二"]}}

    ours = await insert(TicketMessage, values)
    [theirs] = await TicketMessage.insert(TicketMessage(**values)).returning(TicketMessage.id)
    rows = await TicketMessage.select().where(TicketMessage.id.is_in([ours, theirs["id"]])).output(load_json=True)
    first, second = sorted(rows, key=lambda row: row["id"])
    assert first["id"] == ours and first["event"] == {"nested": [1, "二"]}
    assert abs((first.pop("created_at") - second.pop("created_at")).total_seconds()) < 5  # each its own now
    first.pop("id"), second.pop("id")
    assert first == second

    with pytest.raises(ValueError, match="Unrecognized"):
        await insert(TicketMessage, {**values, "colour": "red"})


async def test_insert_many_skips_rows_whose_unique_value_exists() -> None:
    """skip_conflicts_on: a row whose key is stored already, or came earlier in the same call, is
    left out; the keys of the rows inserted come back, in order."""
    from server.jobs import Job, now
    from server.prepared import insert_many

    moment = now()

    def job(key: str | None, n: int) -> dict[str, Any]:
        return {"kind": "test.job", "payload": {"n": n}, "idempotency_key": key, "run_at": moment, "created_at": moment}

    [first] = await insert_many(Job, [job("a", 1)], skip_conflicts_on=Job.idempotency_key)
    pks = await insert_many(
        Job, [job("a", 2), job("b", 3), job("b", 4), job(None, 5), job(None, 6)], skip_conflicts_on=Job.idempotency_key
    )
    assert len(pks) == 3 and first < pks[0] < pks[1] < pks[2]
    rows = await Job.select(Job.idempotency_key, Job.payload).order_by(Job.id).output(load_json=True)
    assert [(r["idempotency_key"], r["payload"]["n"]) for r in rows] == [("a", 1), ("b", 3), (None, 5), (None, 6)]
    assert await insert_many(Job, []) == []
