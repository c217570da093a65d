"""People a customer's mail is addressed to (To/Cc) are copied on the ticket through the real
pipeline (stored, processed by the worker), then get its later public replies over the real
SMTP sink; only the requester or someone copied already may add people, at most 20 a message,
never our own support mailbox, staff, deactivated or bouncing addresses."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from server.accounts import passwords
from server.accounts.auth import load_actor
from server.accounts.tables import User, UserRole
from server.channels.email import processing, tokens
from server.desk import queries, services
from server.desk.tables import TicketFollower, TicketMessage
from server.desk.web import describe_event
from server.errors import NotFound
from server.policy import Actor
from tests.channels.inbound_helpers import bounce_mail, deliver, raw_mail, support
from tests.factories import Mailbox, make_user


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def customer() -> Actor:
    return await make_user(email="casey@example.test", name="Casey Customer")


async def copied(ticket_id: int) -> list[str]:
    rows = (
        await TicketFollower.select(TicketFollower.user.email.as_alias("email"))
        .where(TicketFollower.ticket == ticket_id)
        .order_by(TicketFollower.id)
    )
    return [row["email"] for row in rows]


async def test_a_new_ticket_copies_its_cc_and_they_get_the_next_reply(customer: Actor, mailbox: Mailbox) -> None:
    fiona = await make_user(email="fiona@example.test", name="Fiona Follower")
    agent = await make_user("agent", email="ada@example.test", name="Ada Agent")
    gone = await make_user(email="gone@example.test")
    await User.update({User.is_active: False}).where(User.id == gone.user_id)
    await deliver(bounce_mail("<old@mail.example.test>", "dead@example.test"))  # marks it bouncing
    local, _sep, domain = support().partition("@")
    raw = raw_mail(
        sender="Casey Customer <casey@example.test>",
        to=f"{support()}, Colin Colleague <Colin@Example.test>",
        subject="Printer on fire",
        headers={
            "Cc": (
                f"fiona@example.test, ada@example.test, gone@example.test, dead@example.test, "
                f"casey@example.test, {local}+t1-abc@{domain}, {local.upper()}@{domain.upper()}"
            )
        },
    )
    done = await deliver(raw)
    assert done["status"] == "done", done["reason"]
    ticket_id = done["ticket"]
    assert await copied(ticket_id) == ["colin@example.test", "fiona@example.test"]
    assert "copied on the ticket: colin@example.test, fiona@example.test" in done["reason"]
    for left_out in ("ada@example.test (staff)", "gone@example.test (deactivated)", "dead@example.test (bouncing)"):
        assert left_out in done["reason"]
    assert support() not in done["reason"]  # our own mailbox is never even considered

    # An unknown address gets a customer account, named as the header named it.
    colin = await User.select().where(User.email == "colin@example.test").first()
    assert colin["display_name"] == "Colin Colleague" and colin["password_hash"] == ""
    assert [r["role"] for r in await UserRole.select(UserRole.role).where(UserRole.user == colin["id"])] == ["customer"]

    # The agent sees who copied whom; the copied may read the ticket.
    events = (
        await TicketMessage.select()
        .where((TicketMessage.ticket == ticket_id) & (TicketMessage.kind == "system"))
        .order_by(TicketMessage.id)
        .output(load_json=True)
    )
    assert [describe_event(e["event"])[0] for e in events] == [
        "colin@example.test was copied on this ticket.",
        "fiona@example.test was copied on this ticket.",
    ]
    assert {e["author"] for e in events} == {customer.user_id}
    assert (await queries.access_ticket(fiona, ticket_id))["id"] == ticket_id

    # The acknowledgement goes to the requester only; the next public reply to everyone copied.
    acks = await mailbox.messages()
    assert [m.to for m in acks] == ["Casey Customer <casey@example.test>"]
    for sent in acks:
        (mailbox.directory / sent.name).unlink()
    await services.add_reply(agent, ticket_id, "We are on it.")
    recipients = sorted(m.to for m in await mailbox.messages())
    assert recipients == [
        "Casey Customer <casey@example.test>",
        "Colin Colleague <colin@example.test>",
        "Fiona Follower <fiona@example.test>",
    ]


async def test_the_requester_and_people_copied_add_people_by_replying(customer: Actor) -> None:
    ticket_id = await services.open_ticket(customer, "Export fails", "The CSV export stops.")
    reply = raw_mail(
        headers={"In-Reply-To": tokens.message_id(ticket_id, "a"), "Cc": "Dora <dora@example.test>"},
        subject="Re: Export fails",
    )
    done = await deliver(reply)
    assert done["ticket"] == ticket_id and "copied on the ticket: dora@example.test" in done["reason"]
    from_dora = raw_mail(
        sender="dora@example.test",
        to=f"{tokens.reply_address(ticket_id)}, casey@example.test, eli@example.test",
        subject="Re: Export fails",
    )
    done = await deliver(from_dora)
    assert done["ticket"] == ticket_id, done["reason"]
    assert await copied(ticket_id) == ["dora@example.test", "eli@example.test"]  # Casey is the requester


async def test_a_stranger_matched_to_a_ticket_adds_nobody_to_it(customer: Actor) -> None:
    ticket_id = await services.open_ticket(customer, "Export fails", "The CSV export stops.")
    own = []
    for headers in (
        {"Cc": "spy@example.test"},  # matched by the subject tag
        {"Cc": "spy@example.test", "In-Reply-To": tokens.message_id(ticket_id, "fwd")},  # a forwarded reply
    ):
        raw = raw_mail(sender="mallory@example.test", subject=f"Re: Export fails [#{ticket_id}]", headers=headers)
        done = await deliver(raw)
        assert done["status"] == "done" and done["ticket"] != ticket_id, done["reason"]
        own.append(done["ticket"])
    assert await copied(ticket_id) == []
    assert await copied(own[0]) == ["spy@example.test"]  # the stranger's own ticket is theirs to share
    spy = await User.select(User.id).where(User.email == "spy@example.test").first()
    with pytest.raises(NotFound):
        await queries.access_ticket(await load_actor(spy["id"]), ticket_id)


async def test_at_most_twenty_people_per_message(customer: Actor) -> None:
    many = ", ".join(f"person{n:02d}@example.test" for n in range(30))
    done = await deliver(raw_mail(headers={"Cc": many}))
    assert done["status"] == "done", done["reason"]
    assert await copied(done["ticket"]) == [
        f"person{n:02d}@example.test" for n in range(processing.MAX_CCS_PER_MESSAGE)
    ]
    assert "person20@example.test (over 20 per message)" in done["reason"]
    assert not await User.exists().where(User.email == "person25@example.test")
