"""The tickets JSON API with real Bearer tokens."""

from __future__ import annotations

import asyncio

import httpx
from litestar import Litestar

from server.accounts import services as accounts
from server.desk.tables import DeskIdempotencyKey, Ticket, TicketMessage
from server.policy import Actor
from tests.conftest import make_client
from tests.desk.conftest import People
from tests.desk.factories import make_field, make_ticket


async def bearer(person: Actor) -> dict[str, str]:
    return {"authorization": f"Bearer {await accounts.create_api_token(person, 'api test')}"}


async def test_create_ticket_through_the_api_with_idempotency(app: Litestar, people: People) -> None:
    await make_field("plan_code", "select", options=["a", "b"], customer_editable=True)
    headers = await bearer(people.customer)
    body = {
        "subject": "API ticket",
        "body": "Made by a script",
        "priority": "high",
        "custom_fields": {"plan_code": "b"},
    }
    async with make_client(app) as client:
        first = await client.post("/api/v1/tickets", json=body, headers={**headers, "Idempotency-Key": "k-1"})
        assert first.status_code == 201, first.text
        data = first.json()
        assert data["channel"] == "api" and data["priority"] == "high" and data["custom_fields"] == {"plan_code": "b"}
        assert data["group_id"] is None and data["url"] == f"/support/tickets/{data['id']}"
        again = await client.post("/api/v1/tickets", json=body, headers={**headers, "Idempotency-Key": "k-1"})
        assert again.status_code == 201 and again.json() == data and again.headers["idempotent-replayed"] == "true"
        other = await client.post(
            "/api/v1/tickets", json={**body, "subject": "Other"}, headers={**headers, "Idempotency-Key": "k-1"}
        )
        assert other.status_code == 422
        third = await client.post("/api/v1/tickets", json=body, headers=headers)
        assert third.status_code == 201 and third.json()["id"] != data["id"]
        bad = await client.post("/api/v1/tickets", json={**body, "custom_fields": {"plan_code": "z"}}, headers=headers)
        assert bad.status_code == 422
        unknown = await client.post("/api/v1/tickets", json={**body, "hack": 1}, headers=headers)
        assert unknown.status_code == 400
    assert await Ticket.count() == 2
    assert await DeskIdempotencyKey.count() == 1


async def test_concurrent_retries_with_one_key_make_one_ticket(app: Litestar, people: People) -> None:
    headers = {**await bearer(people.customer), "Idempotency-Key": "burst"}
    body = {"subject": "Burst", "body": "Clicked five times"}
    async with make_client(app) as client:
        responses = await asyncio.gather(
            *[client.post("/api/v1/tickets", json=body, headers=headers) for _ in range(5)]
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await Ticket.count() == 1


async def test_list_filters_and_views(app: Litestar, people: People) -> None:
    mine = await make_ticket(people.customer, "Mine")
    await make_ticket(people.outsider, "Theirs")
    async with make_client(app) as client:
        customer = await bearer(people.customer)
        listing = (await client.get("/api/v1/tickets", headers=customer)).json()
        assert [t["id"] for t in listing["items"]] == [mine]
        assert (await client.get("/api/v1/tickets?view=all", headers=customer)).status_code == 422
        agent = await bearer(people.agent)
        assert len((await client.get("/api/v1/tickets?view=all", headers=agent)).json()["items"]) == 2
        patch = await client.patch(
            f"/api/v1/tickets/{mine}", json={"version": 1, "assignee_id": people.agent.user_id}, headers=agent
        )
        assert patch.status_code == 200 and patch.json()["assignee_id"] == people.agent.user_id
        assigned = (await client.get("/api/v1/tickets?assignee=me&status=new", headers=agent)).json()["items"]
        assert [t["id"] for t in assigned] == [mine]
        assert (await client.get("/api/v1/tickets?status=bogus", headers=agent)).status_code == 422
        page_one = (await client.get("/api/v1/tickets?limit=1", headers=agent)).json()
        page_two = (await client.get(f"/api/v1/tickets?limit=1&cursor={page_one['next_cursor']}", headers=agent)).json()
        assert page_one["items"][0]["id"] != page_two["items"][0]["id"] and page_two["next_cursor"] == ""


async def test_patch_with_a_stale_version_is_a_409_showing_the_other_change(app: Litestar, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    async with make_client(app) as client:
        ada, ben = await bearer(people.agent), await bearer(people.agent2)
        first = await client.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": 1, "priority": "urgent"}, headers=ada
        )
        assert first.status_code == 200 and first.json()["version"] == 2
        second = await client.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": 1, "status": "pending"}, headers=ben
        )
        assert second.status_code == 409
        conflict = second.json()
        assert conflict["current"]["priority"] == "urgent" and conflict["current"]["version"] == 2
        assert conflict["changes"][0]["by"] == "Ada Agent"
        assert {"field": "priority", "from": "normal", "to": "urgent"} in conflict["changes"][0]["changes"]
        customer = await bearer(people.customer)
        denied = await client.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": 2, "priority": "low"}, headers=customer
        )
        assert denied.status_code == 403
        solved = await client.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": 2, "status": "solved"}, headers=customer
        )
        assert solved.status_code == 200 and solved.json()["status"] == "solved"


async def test_messages_internal_for_agents_only(app: Litestar, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    async with make_client(app) as client:
        agent, customer = await bearer(people.agent), await bearer(people.customer)
        url = f"/api/v1/tickets/{ticket_id}/messages"
        note = await client.post(url, json={"body": "internal only", "internal": True}, headers=agent)
        assert note.status_code == 201 and note.json()["kind"] == "internal"
        sneaky = await client.post(url, json={"body": "let me in", "internal": True}, headers=customer)
        assert sneaky.status_code == 403
        reply = await client.post(url, json={"body": "customer reply"}, headers={**customer, "Idempotency-Key": "r1"})
        again = await client.post(url, json={"body": "customer reply"}, headers={**customer, "Idempotency-Key": "r1"})
        assert reply.status_code == again.status_code == 201 and reply.json()["id"] == again.json()["id"]
        theirs = (await client.get(url, headers=customer)).json()["items"]
        assert [m["kind"] for m in theirs] == ["public", "public"] and "internal only" not in str(theirs)
        ours = (await client.get(url, headers=agent)).json()["items"]
        assert [m["kind"] for m in ours] == ["public", "internal", "public"]
        too_big = await client.post(url, json={"body": "x" * 69_000}, headers=agent)
        assert too_big.status_code == 413
        anonymous = await client.get(url)
        assert anonymous.status_code == 401
    assert await TicketMessage.count().where(TicketMessage.body_md == "let me in") == 0


async def test_api_never_reads_the_session_cookie(client: httpx.AsyncClient, people: People) -> None:
    from tests.factories import login

    await login(client, people.customer.email)
    assert (await client.get("/api/v1/tickets")).status_code == 401
