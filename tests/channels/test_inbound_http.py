"""`POST /api/v1/inbound/email` through the app, the admin's email channel page (quarantine list,
view, retry, delete) and the original-email pages of ticket messages."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher

from server import jobs
from server.accounts import passwords
from server.channels.email import inbound, tokens
from server.channels.email.inbound_tables import InboundMail
from server.desk import services
from server.settings import get_settings
from tests.channels.inbound_helpers import deliver, raw_mail, row
from tests.conftest import csrf_token
from tests.factories import Mailbox, login, make_org, make_user

ENDPOINT = "/api/v1/inbound/email"


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _auth(secret: str | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {secret if secret is not None else get_settings().inbound_secret}",
        "Content-Type": "message/rfc822",
    }


async def test_a_posted_message_is_stored_then_becomes_a_ticket(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    raw = raw_mail(sender="Hana <hana@example.test>", subject="請求書について", body="請求書が届きません。")
    response = await client.post(ENDPOINT, content=raw, headers=_auth())
    assert response.status_code == 202, response.text
    inbound_id = response.json()["id"]
    stored = await row(inbound_id)
    assert stored["status"] == "pending" and stored["source"] == "http" and stored["size_bytes"] == len(raw)
    assert inbound.read_raw(stored["storage_key"]) == raw
    await jobs.run_pending("test-worker")
    done = await row(inbound_id)
    assert done["status"] == "done" and done["subject"] == "請求書について"
    acks = await mailbox.messages(to="hana@example.test")
    assert len(acks) == 1  # in Japanese: the new account's language was guessed from the mail
    assert "請求書について" in acks[0].subject + acks[0].body


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
async def test_a_wrong_secret_is_401_and_stores_nothing(client: httpx.AsyncClient, secret: str) -> None:
    response = await client.post(ENDPOINT, content=raw_mail(), headers=_auth(secret))
    assert response.status_code == 401
    assert "secret" in response.json()["detail"]
    no_header = await client.post(ENDPOINT, content=raw_mail(), headers={"Content-Type": "message/rfc822"})
    assert no_header.status_code == 401
    assert await InboundMail.count() == 0


async def test_a_user_api_token_is_not_the_channel_secret(client: httpx.AsyncClient) -> None:
    from server.accounts import services as accounts

    admin = await make_user("admin")
    token = await accounts.create_api_token(admin, "not for mail")
    response = await client.post(ENDPOINT, content=raw_mail(), headers=_auth(token))
    assert response.status_code == 401


async def test_other_content_types_are_415(client: httpx.AsyncClient) -> None:
    headers = {**_auth(), "Content-Type": "application/json"}
    response = await client.post(ENDPOINT, content=b'{"subject": "x"}', headers=headers)
    assert response.status_code == 415 and "message/rfc822" in response.json()["detail"]
    assert await InboundMail.count() == 0


async def test_an_empty_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(ENDPOINT, content=b"  \r\n", headers=_auth())
    assert response.status_code == 400


async def test_over_the_size_limit_is_413_and_its_head_is_quarantined(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbound, "max_bytes", lambda: 50_000)
    raw = raw_mail(subject="Huge", body="z" * 200_000)
    response = await client.post(ENDPOINT, content=raw, headers=_auth())
    assert response.status_code == 413 and response.json()["status"] == "quarantined"
    kept = await row(response.json()["id"])
    assert kept["status"] == "quarantined" and kept["truncated"] and "too large" in kept["reason"]
    assert kept["size_bytes"] >= len(raw)
    head = inbound.read_raw(kept["storage_key"])
    assert raw.startswith(head) and len(head) == inbound.HEAD_BYTES
    admin = await make_user("admin")
    with pytest.raises(Exception, match="first part"):
        await inbound.retry(admin, kept["id"])
    assert await jobs.Job.count().where(jobs.Job.kind == inbound.JOB_KIND) == 0


async def test_the_endpoint_is_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert ENDPOINT in schema["paths"]


# The admin page ---------------------------------------------------------------------------------


async def test_admins_see_the_channel_and_its_quarantine(client: httpx.AsyncClient) -> None:
    quarantined = await deliver(raw_mail(sender=None, subject="<script>alert('x')</script>", body="<b>inert</b>"))
    ignored = await deliver(raw_mail(subject="Away", headers={"Auto-Submitted": "auto-replied"}))
    done = await deliver(raw_mail(subject="Fine"))
    admin = await make_user("admin")
    await login(client, admin.email)
    page = await client.get("/admin/channels/email")
    assert page.status_code == 200
    assert tokens.support_address() in page.text and get_settings().inbound_secret in page.text
    assert f"/admin/channels/email/{quarantined['id']}" in page.text
    assert f"/admin/channels/email/{ignored['id']}" in page.text
    assert f"/admin/channels/email/{done['id']}" not in page.text  # processed: not a problem
    assert "<script>alert" not in page.text
    everything = await client.get("/admin/channels/email", params={"status": "all"})
    assert f"/admin/channels/email/{done['id']}" in everything.text
    partial = await client.get("/admin/channels/email", params={"status": "ignored"}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="inbound-rows">')
    assert f"/admin/channels/email/{quarantined['id']}" not in partial.text
    assert (await client.get("/admin/channels/email", params={"status": "nonsense"})).status_code == 422
    view = await client.get(f"/admin/channels/email/{quarantined['id']}")
    assert view.status_code == 200 and "no usable From address" in view.text
    assert "<b>inert</b>" not in view.text and "&lt;b&gt;inert&lt;/b&gt;" in view.text
    assert "<script>alert" not in view.text


async def test_admins_retry_and_delete(client: httpx.AsyncClient) -> None:
    quarantined = await deliver(raw_mail(headers={"X-Long": "q" * 2500}))
    doomed = await deliver(raw_mail(sender=None))
    admin = await make_user("admin")
    await login(client, admin.email)
    token = await csrf_token(client, f"/admin/channels/email/{quarantined['id']}")
    retried = await client.post(f"/admin/channels/email/{quarantined['id']}/retry", data={"_csrf_token": token})
    assert retried.status_code == 200 and "queued" in retried.text
    await jobs.run_pending("test-worker")
    assert (await row(quarantined["id"]))["status"] == "done"
    again = await client.post(f"/admin/channels/email/{quarantined['id']}/delete", data={"_csrf_token": token})
    assert "Only quarantined" in again.text  # done messages stay
    path = inbound.path_for(doomed["storage_key"])
    assert path.exists()
    deleted = await client.post(f"/admin/channels/email/{doomed['id']}/delete", data={"_csrf_token": token})
    assert deleted.status_code == 200
    assert not await InboundMail.exists().where(InboundMail.id == doomed["id"]) and not path.exists()


async def test_only_admins_reach_the_channel_page(client: httpx.AsyncClient) -> None:
    quarantined = await deliver(raw_mail(sender=None))
    agent = await make_user("agent")
    await login(client, agent.email)
    assert (await client.get("/admin/channels/email")).status_code == 403
    assert (await client.get(f"/admin/channels/email/{quarantined['id']}")).status_code == 403


# The original email of a ticket message -------------------------------------------------------------


async def test_the_original_is_shown_to_agents_and_its_author_only(app: object) -> None:
    from tests.conftest import make_client

    await make_org("acme-corp", "Acme Corp")
    customer = await make_user(email="casey@example.test", org="acme-corp")
    org_admin = await make_user(org="acme-corp", org_admin=True)
    other = await make_user()
    agent = await make_user("agent")
    body = "New words.\n\nOn Mon, Casey wrote:\n> quoted <b>history</b>"
    done = await deliver(raw_mail(sender=customer.email, body=body))
    ticket_id, message_id = done["ticket"], done["ticket_message"]
    desk_url = f"/desk/tickets/{ticket_id}/messages/{message_id}/mail"
    support_url = f"/support/tickets/{ticket_id}/messages/{message_id}/mail"
    async with make_client(app) as client:
        await login(client, agent.email)
        ticket_page = await client.get(f"/desk/tickets/{ticket_id}")
        assert desk_url in ticket_page.text
        page = await client.get(desk_url)
        assert page.status_code == 200 and "quoted &lt;b&gt;history&lt;/b&gt;" in page.text
        assert "casey@example.test" in page.text
    async with make_client(app) as client:
        await login(client, customer.email)
        assert support_url in (await client.get(f"/support/tickets/{ticket_id}")).text
        assert (await client.get(support_url)).status_code == 200
        assert (await client.get(desk_url)).status_code == 403
    async with make_client(app) as client:
        await login(client, org_admin.email)
        assert (await client.get(f"/support/tickets/{ticket_id}")).status_code == 200
        assert (await client.get(support_url)).status_code == 403
    async with make_client(app) as client:
        await login(client, other.email)
        assert (await client.get(support_url)).status_code == 404
    web_ticket = await services.open_ticket(customer, "From the web", "Typed in the form.")
    first = (await services.queries.conversation(customer, web_ticket))[0]["id"]
    async with make_client(app) as client:
        await login(client, agent.email)
        assert (await client.get(f"/desk/tickets/{web_ticket}/messages/{first}/mail")).status_code == 404
