"""Nobody reaches a ticket, its messages or its attachments unless the policy lets them:
another customer, the admin of another organisation and anonymous visitors get the same answer
as for a ticket that does not exist, on every ticket URL, in pages and the API."""

from __future__ import annotations

import pytest
from litestar import Litestar

from server.accounts import services as accounts
from server.desk import services
from server.desk.attachments import MAX_FILE_BYTES, Upload
from server.desk.tables import TicketAttachment
from tests.conftest import csrf_token, make_client
from tests.desk.conftest import People
from tests.desk.factories import make_ticket
from tests.factories import login

SUBJECT = "Quarterly invoice mismatch"
NOTE = "Suspected fraud, do not tell the customer"


async def _world(people: People) -> dict[str, int]:
    ticket_id = await make_ticket(people.customer, SUBJECT, "Numbers do not add up.")
    await services.add_reply(people.customer, ticket_id, "Invoice attached", uploads=[Upload("invoice.pdf", b"%PDF-1")])
    await services.add_note(people.agent, ticket_id, NOTE, uploads=[Upload("fraud.txt", b"evidence")])
    rows = await TicketAttachment.select(TicketAttachment.id, TicketAttachment.filename)
    files = {r["filename"]: r["id"] for r in rows}
    return {"ticket": ticket_id, "public_file": files["invoice.pdf"], "note_file": files["fraud.txt"]}


def page_urls(ids: dict[str, int]) -> list[tuple[str, str]]:
    t = ids["ticket"]
    return [
        ("GET", f"/support/tickets/{t}"),
        ("POST", f"/support/tickets/{t}/reply"),
        ("POST", f"/support/tickets/{t}/solve"),
        ("GET", f"/support/attachments/{ids['public_file']}"),
        ("GET", f"/support/attachments/{ids['note_file']}"),
    ]


def api_urls(ids: dict[str, int]) -> list[tuple[str, str, dict[str, object] | None]]:
    t = ids["ticket"]
    return [
        ("GET", f"/api/v1/tickets/{t}", None),
        ("PATCH", f"/api/v1/tickets/{t}", {"version": 1, "status": "solved"}),
        ("GET", f"/api/v1/tickets/{t}/messages", None),
        ("POST", f"/api/v1/tickets/{t}/messages", {"body": "sneaky"}),
    ]


@pytest.mark.parametrize("who", ["outsider", "outsider_admin", "colleague", "moderator", "anonymous"])
async def test_strangers_get_not_found_everywhere(app: Litestar, people: People, who: str) -> None:
    ids = await _world(people)
    person = None if who == "anonymous" else getattr(people, who)
    bearer = await accounts.create_api_token(person, "idor") if person else None
    async with make_client(app) as client:
        if person:
            await login(client, person.email)
        token = await csrf_token(client, "/")
        for method, url in page_urls(ids):
            response = await client.request(
                method,
                url,
                data={"_csrf_token": token, "body": "x"} if method == "POST" else None,
                follow_redirects=False,
            )
            expected = {303, 401} if person is None else {404}
            assert response.status_code in expected, (who, method, url, response.status_code)
            assert SUBJECT not in response.text and NOTE not in response.text
        headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
        for method, url, body in api_urls(ids):
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == (404 if person else 401), (who, method, url, response.status_code)
            assert SUBJECT not in response.text
        missing = await client.get("/api/v1/tickets/999999", headers=headers)
        assert missing.status_code == (404 if person else 401)
        listing = await client.get("/api/v1/tickets", headers=headers)
        assert SUBJECT not in listing.text


async def test_the_requester_and_their_org_admin_read_public_parts_only(app: Litestar, people: People) -> None:
    ids = await _world(people)
    for person in (people.customer, people.org_admin):
        bearer = await accounts.create_api_token(person, "idor")
        async with make_client(app) as client:
            await login(client, person.email)
            page = await client.get(f"/support/tickets/{ids['ticket']}")
            assert page.status_code == 200 and SUBJECT in page.text and NOTE not in page.text
            assert "fraud.txt" not in page.text and "invoice.pdf" in page.text
            assert (await client.get(f"/support/attachments/{ids['public_file']}")).status_code == 200
            assert (await client.get(f"/support/attachments/{ids['note_file']}")).status_code == 404
            headers = {"authorization": f"Bearer {bearer}"}
            messages = await client.get(f"/api/v1/tickets/{ids['ticket']}/messages", headers=headers)
            assert messages.status_code == 200 and NOTE not in messages.text
            assert {m["kind"] for m in messages.json()["items"]} == {"public"}
            desk = await client.get(f"/desk/tickets/{ids['ticket']}")
            assert desk.status_code == 403 and NOTE not in desk.text


async def test_agents_reach_everything(app: Litestar, people: People) -> None:
    ids = await _world(people)
    async with make_client(app) as client:
        await login(client, people.agent.email)
        page = await client.get(f"/desk/tickets/{ids['ticket']}")
        assert NOTE in page.text and "fraud.txt" in page.text
        assert (await client.get(f"/support/attachments/{ids['note_file']}")).status_code == 200


async def test_attachments_download_safely_and_limits_hold(app: Litestar, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    await services.add_reply(
        people.customer, ticket_id, "see file", uploads=[Upload('../../etc/"passwd".txt', b"<html><script>x</script>")]
    )
    row = await TicketAttachment.select().first()
    assert row and row["filename"] == "passwd.txt" and row["content_type"].startswith("text/plain")
    async with make_client(app) as client:
        await login(client, people.customer.email)
        response = await client.get(f"/support/attachments/{row['id']}")
        assert response.status_code == 200
        assert response.headers["content-disposition"].startswith('attachment; filename="passwd.txt"')
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-type"].startswith("text/plain")
        assert "sandbox" in response.headers["content-security-policy"]
        page = f"/support/tickets/{ticket_id}"
        token = await csrf_token(client, page)
        too_big = await client.post(
            f"{page}/reply",
            data={"body": "big", "_csrf_token": token},
            files={"attachments": ("big.zip", b"0" * (MAX_FILE_BYTES + 1))},
        )
        assert too_big.status_code == 422 and "larger than" in too_big.text
        svg = await client.post(
            f"{page}/reply", data={"body": "svg", "_csrf_token": token}, files={"attachments": ("x.svg", b"<svg/>")}
        )
        assert svg.status_code == 422
        many = [("attachments", (f"f{n}.txt", b"x")) for n in range(6)]
        too_many = await client.post(f"{page}/reply", data={"body": "many", "_csrf_token": token}, files=many)
        assert too_many.status_code == 422
    assert await TicketAttachment.count() == 1
