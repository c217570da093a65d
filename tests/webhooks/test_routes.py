"""The admin pages: the secret shown once, form errors, the delivery log, test events and
redelivery through the buttons, admins only, English and Japanese."""

from __future__ import annotations

import re

from litestar import Litestar

from server import jobs
from server.policy import Actor
from server.webhooks.tables import WebhookDelivery, WebhookEndpoint
from tests.conftest import csrf_token, make_client, post_form
from tests.desk.conftest import People
from tests.factories import login
from tests.webhooks.receiver import Receiver

SECRET_RE = re.compile(r'<code class="webhook-secret">(whsec_[\w-]+)</code>')


async def test_admin_adds_an_endpoint_sees_the_secret_once_and_uses_the_buttons(
    app: Litestar, admin: Actor, receiver: Receiver
) -> None:
    async with make_client(app) as client:
        await login(client, admin.email)
        created = await post_form(
            client,
            "/admin/webhooks/new",
            {"url": receiver.url, "events": ["ticket.created", "post.created"], "active": "on", "description": "CRM"},
        )
        assert created.status_code == 200, created.text
        match = SECRET_RE.search(created.text)
        assert match, created.text
        receiver.secret = match.group(1)
        endpoint = await WebhookEndpoint.select().first()
        assert endpoint["secret"] == receiver.secret and endpoint["active"] and endpoint["description"] == "CRM"
        page = await client.get(f"/admin/webhooks/{endpoint['id']}")
        assert receiver.secret not in page.text and receiver.secret[-4:] in page.text  # masked from now on
        listing = await client.get("/admin/webhooks")
        assert receiver.url in listing.text and "post.created" in listing.text

        sent = await post_form(
            client, f"/admin/webhooks/{endpoint['id']}/test", {}, page=f"/admin/webhooks/{endpoint['id']}"
        )
        assert sent.status_code == 200 and "Test event evt_" in sent.text
        await jobs.run_pending()
        assert receiver.events("webhook.test")
        page = await client.get(f"/admin/webhooks/{endpoint['id']}")
        assert "Delivered" in page.text and "<strong>200</strong>" in page.text and "Redeliver" in page.text

        delivery = await WebhookDelivery.select(WebhookDelivery.id).first()
        again = await post_form(
            client,
            f"/admin/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver",
            {},
            page=f"/admin/webhooks/{endpoint['id']}",
        )
        assert again.status_code == 200 and "queued for redelivery" in again.text
        await jobs.run_pending()
        assert len(receiver.received) == 2 and receiver.received[0].webhook_id == receiver.received[1].webhook_id

        regenerated = await post_form(
            client, f"/admin/webhooks/{endpoint['id']}/secret", {}, page=f"/admin/webhooks/{endpoint['id']}"
        )
        new = SECRET_RE.search(regenerated.text)
        assert new and new.group(1) != receiver.secret

        saved = await post_form(
            client,
            f"/admin/webhooks/{endpoint['id']}",
            {"url": receiver.url, "events": ["ticket.solved"]},
            page=f"/admin/webhooks/{endpoint['id']}",
        )
        assert saved.status_code == 200 and "Webhook saved." in saved.text
        row = await WebhookEndpoint.select().where(WebhookEndpoint.id == endpoint["id"]).output(load_json=True).first()
        assert row["events"] == ["ticket.solved"] and row["active"] is False

        gone = await post_form(client, f"/admin/webhooks/{endpoint['id']}/delete", {}, page="/admin/webhooks")
        assert gone.status_code == 200 and await WebhookEndpoint.count() == 0 and await WebhookDelivery.count() == 0


async def test_bad_input_re_renders_the_form_with_errors(app: Litestar, admin: Actor) -> None:
    async with make_client(app) as client:
        await login(client, admin.email)
        bad = await post_form(client, "/admin/webhooks/new", {"url": "ftp://example.test/x"})
        assert bad.status_code == 422
        assert "Only http and https addresses can receive webhooks." in bad.text
        assert "Choose at least one event." in bad.text and 'value="ftp://example.test/x"' in bad.text
        assert await WebhookEndpoint.count() == 0
        missing = await client.get("/admin/webhooks/999999")
        assert missing.status_code == 404
        token = await csrf_token(client, "/admin/webhooks")
        redeliver = await client.post(
            "/admin/webhooks/999999/deliveries/1/redeliver", data={"_csrf_token": token}, follow_redirects=False
        )
        assert redeliver.status_code == 404


async def test_only_admins_reach_the_pages(app: Litestar, people: People) -> None:
    async with make_client(app) as client:
        anonymous = await client.get("/admin/webhooks", follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        for person in (people.customer, people.agent, people.moderator):
            await login(client, person.email)
            assert (await client.get("/admin/webhooks")).status_code == 403
            await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})


async def test_pages_in_japanese(app: Litestar) -> None:
    from tests.factories import make_user

    admin = await make_user("admin", locale="ja")
    async with make_client(app) as client:
        await login(client, admin.email)
        await post_form(client, "/locale", {"locale": "ja", "next": "/"}, page="/")
        page = await client.get("/admin/webhooks/new")
        assert page.status_code == 200
        assert "Webhook を追加" in page.text and "チケットが作成された" in page.text
        assert "Add a webhook" not in page.text
