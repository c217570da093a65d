"""Outbound ticket mail skips an address that bounces (a delivery report named it, processed by
the real inbound pipeline) and says so on the agent's ticket page, in English and Japanese; the
address gets mail again once it writes to us. Sent over a real SMTP server."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher

from server import jobs
from server.accounts import passwords
from server.channels.email import bounces, outbound, tokens
from server.channels.email.inbound_tables import MailBounce
from server.channels.email.outbound_tables import MailDelivery
from server.desk import services
from server.jobs import Job
from tests.channels.inbound_helpers import bounce_mail, deliver, raw_mail
from tests.channels.outbound_smtp import recording_smtp_server
from tests.factories import login, make_user


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _reply_html(page: str, reply_id: int) -> str:
    return " ".join(page.split(f'id="m{reply_id}"', 1)[1].split(' id="m', 1)[0].split())


async def test_no_mail_to_a_bouncing_address_until_it_writes_again(client: httpx.AsyncClient) -> None:
    customer = await make_user(name="Casey Customer", email="casey@customer.example")
    fiona = await make_user(name="Fiona Follower", email="fiona@customer.example")
    agent = await make_user("agent", name="Ada Agent")
    ticket_id = await services.open_ticket(customer, "Export fails", "The CSV export stops.", notify=False)
    await services.add_follower(agent, ticket_id, fiona.email)
    with recording_smtp_server() as server:
        await services.add_reply(agent, ticket_id, "First answer.")
        await jobs.run_pending()
        [to_fiona] = server.messages(fiona.email)
        # Fiona's server reports the mail as undeliverable: her address is marked as bouncing.
        bounced = await deliver(bounce_mail(str(to_fiona.message["Message-ID"]), fiona.email))
        assert bounced["status"] == "done" and bounced["ticket"] == ticket_id, bounced["reason"]
        assert await bounces.bouncing(["Fiona@Customer.example"])

        reply_id = await services.add_reply(agent, ticket_id, "Second answer.")
        assert await jobs.run_pending() >= 2
        assert len(server.messages(customer.email)) == 2
        assert len(server.messages(fiona.email)) == 1  # nothing more reached her address
        rows = {r["recipient"]: r for r in await MailDelivery.select().where(MailDelivery.ticket_message == reply_id)}
        assert rows[customer.email]["status"] == "sent"
        skipped = rows[fiona.email]
        assert skipped["status"] == "skipped" and skipped["last_error"] == outbound.BOUNCING
        assert skipped["sent_at"] is None
        job = await Job.select().where(Job.idempotency_key == skipped["key"]).first()
        assert job["status"] == jobs.DONE  # not retried: trying again would not help

        await login(client, agent.email)
        reply_html = _reply_html((await client.get(f"/desk/tickets/{ticket_id}")).text, reply_id)
        assert f"Sent to {customer.email}" in reply_html
        assert f"Not sent to {fiona.email}: the address is bouncing" in reply_html
        japanese = await make_user("agent", name="山田 太郎", locale="ja")
        await login(client, japanese.email)
        reply_html = _reply_html((await client.get(f"/desk/tickets/{ticket_id}")).text, reply_id)
        assert f"{fiona.email} には送信していません: このアドレスへのメールは不達になっています" in reply_html
        await login(client, customer.email)
        portal = (await client.get(f"/support/tickets/{ticket_id}")).text
        assert "Second answer." in portal and "Not sent" not in portal and "bouncing" not in portal

        # Her out-of-office answer proves nothing; a message she writes herself does.
        away = raw_mail(sender=fiona.email, subject="Away", headers={"Auto-Submitted": "auto-replied"})
        assert (await deliver(away))["status"] == "ignored"
        assert await bounces.bouncing([fiona.email])
        back = raw_mail(
            sender=f"Fiona Follower <{fiona.email}>",
            subject="Re: Export fails",
            headers={"In-Reply-To": str(to_fiona.message["Message-ID"])},
        )
        written = await deliver(back)
        assert written["status"] == "done" and written["ticket"] == ticket_id, written["reason"]
        assert not await bounces.bouncing([fiona.email])
        assert await MailBounce.count() == 0

        await services.add_reply(agent, ticket_id, "Third answer.")
        await jobs.run_pending()
        assert [
            "Third answer." in r.message.get_body(("plain",)).get_content() for r in server.messages(fiona.email)
        ] == [
            False,
            True,
        ]


async def test_a_bouncing_requester_who_writes_in_gets_the_acknowledgement() -> None:
    customer = await make_user(name="Casey Customer", email="casey@customer.example")
    ticket_id = await services.open_ticket(customer, "Old", "old question", notify=False)
    with recording_smtp_server() as server:
        await deliver(bounce_mail(tokens.message_id(ticket_id, "ack"), customer.email))
        assert await bounces.bouncing([customer.email])
        await services.add_reply(await make_user("agent"), ticket_id, "Answer nobody reads.")
        await jobs.run_pending()
        assert server.messages(customer.email) == []
        done = await deliver(raw_mail(sender=customer.email, subject="A new question"))
        assert done["status"] == "done" and done["ticket"] != ticket_id
        [ack] = server.messages(customer.email)
        assert f"[#{done['ticket']}]" in str(ack.message["Subject"])
