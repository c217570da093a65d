"""Events from real service calls reach an independent receiver that checks every signature;
retries, the delivery log, redelivery, redirects, refused connections and replays."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from server import jobs
from server.accounts import services as accounts
from server.desk import services as desk
from server.errors import Invalid
from server.policy import Actor
from server.webhooks import services
from server.webhooks.tables import WebhookDelivery, WebhookEvent
from tests.conftest import _free_port, make_client
from tests.desk.conftest import People
from tests.desk.factories import make_ticket
from tests.forum.factories import make_category, make_thread, reply
from tests.webhooks.conftest import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver

FORBIDDEN_KEYS = ("password", "hash", "token", "session", "secret")


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


async def bearer(person: Actor) -> dict[str, str]:
    return {"authorization": f"Bearer {await accounts.create_api_token(person, 'webhook test')}"}


async def log_rows(endpoint_id: int) -> list[dict[str, Any]]:
    return (
        await WebhookDelivery.select(*WebhookDelivery.all_columns(), WebhookDelivery.event.uid.as_alias("uid"))
        .where(WebhookDelivery.endpoint == endpoint_id)
        .order_by(WebhookDelivery.id)
    )


async def make_due_now() -> None:
    """Skip the backoff wait of queued jobs (their run_at was checked by the caller)."""
    await jobs.Job.update({jobs.Job.run_at: jobs.now() - timedelta(seconds=1)}).where(jobs.Job.status == jobs.QUEUED)


async def test_api_ticket_lifecycle_reaches_the_receiver_signed(
    app: Litestar, people: People, receiver: Receiver, admin: Actor
) -> None:
    await add_endpoint(admin, receiver)
    async with make_client(app) as client:
        created = await client.post(
            "/api/v1/tickets",
            json={"subject": "Webhook ticket", "body": "From a script"},
            headers=await bearer(people.customer),
        )
        assert created.status_code == 201, created.text
        ticket_id = created.json()["id"]
        agent = await bearer(people.agent)
        reply_out = await client.post(
            f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Public answer"}, headers=agent
        )
        note_out = await client.post(
            f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Agents only", "internal": True}, headers=agent
        )
        assert reply_out.status_code == note_out.status_code == 201
        version = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=agent)).json()["version"]
        solved = await client.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": version, "status": "solved"}, headers=agent
        )
        assert solved.status_code == 200, solved.text
    await jobs.run_pending()

    assert receiver.received and all(r.verified and r.answered == 200 for r in receiver.received)
    names = [e["event"] for e in receiver.events()]
    assert sorted(names) == sorted(
        ["ticket.created", "message.created", "message.created", "ticket.updated", "ticket.updated", "ticket.solved"]
    ), names  # the agent's reply opened the ticket (new → open): one update, solving another
    opened = receiver.events("ticket.created")[0]["data"]["ticket"]
    assert opened["id"] == ticket_id and opened["channel"] == "api" and opened["description"] == "From a script"
    assert opened["requester"]["email"] == people.customer.email
    messages = {e["data"]["message"]["body"]: e["data"]["message"] for e in receiver.events("message.created")}
    assert messages["Public answer"]["internal"] is False and messages["Agents only"]["internal"] is True
    assert messages["Agents only"]["author"]["id"] == people.agent.user_id
    changes = [c for e in receiver.events("ticket.updated") for c in e["data"]["changes"]]
    assert {"field": "status", "from": "open", "to": "solved"} in changes
    assert receiver.events("ticket.solved")[0]["data"]["ticket"]["status"] == "solved"
    for request in receiver.received:
        body = request.json
        assert request.webhook_id == body["id"] and request.headers["kizuna-webhook-event"] == body["event"]
        assert not {k for k in keys_of(body) if any(word in k.lower() for word in FORBIDDEN_KEYS)}, body
    assert await WebhookDelivery.count().where(WebhookDelivery.outcome == "delivered") == len(receiver.received)


async def test_forum_threads_and_replies_emit_post_created(people: People, receiver: Receiver, admin: Actor) -> None:
    await add_endpoint(admin, receiver, ["post.created"])
    category_id = await make_category("general")
    thread_id = await make_thread(people.customer, category_id, "Webhooks from the forum")
    await reply(people.colleague, thread_id, "A helpful reply")
    await jobs.run_pending()
    posts = sorted(receiver.events("post.created"), key=lambda e: e["data"]["post"]["number"])  # order is not promised
    assert [p["data"]["post"]["number"] for p in posts] == [1, 2]
    assert posts[0]["data"]["thread"]["first_post"] is True and posts[1]["data"]["thread"]["first_post"] is False
    assert posts[1]["data"]["post"]["body"] == "A helpful reply"
    assert posts[1]["data"]["thread"]["id"] == thread_id and posts[1]["data"]["category"]["audience"] == "public"
    assert posts[1]["data"]["post"]["url"].endswith(f"/community/t/{thread_id}/2")


async def test_sla_breach_emits_sla_breached(people: People, receiver: Receiver, admin: Actor) -> None:
    from tests.desk.test_sla import age, make_policy

    await add_endpoint(admin, receiver, ["sla.breached"])
    await make_policy("normal")
    ticket_id = await make_ticket(people.customer, "Server down")
    await age(ticket_id, 61)  # the first reply is overdue: the SLA check job runs now
    await jobs.run_pending()
    await jobs.run_pending()  # the delivery queued by the check
    breaches = receiver.events("sla.breached")
    assert len(breaches) == 1
    assert breaches[0]["data"]["target"] == "first_reply" and breaches[0]["data"]["ticket"]["id"] == ticket_id


async def test_only_active_endpoints_listening_to_the_event_get_it(
    people: People, receiver: Receiver, admin: Actor
) -> None:
    await add_endpoint(admin, receiver, ["ticket.created"])
    with running_receiver() as paused:
        endpoint_id, _secret = await services.save_endpoint(admin, None, paused.url, list(services.EVENTS), False)
        ticket_id = await make_ticket(people.customer)
        await desk.add_reply(people.agent, ticket_id, "An answer")
        await jobs.run_pending()
        assert paused.received == [] and await log_rows(endpoint_id) == []
    assert [e["event"] for e in receiver.events()] == ["ticket.created"]
    assert await WebhookEvent.count() == 1  # nobody listens to message.created: nothing stored


async def test_a_500_is_logged_and_retried_with_backoff_then_delivered_with_the_same_id(
    people: People, admin: Actor
) -> None:
    with running_receiver(answers=[500]) as receiver:
        endpoint_id = await add_endpoint(admin, receiver)
        await make_ticket(people.customer)
        await jobs.run_pending()
        job = await jobs.Job.select().where(jobs.Job.kind == services.DELIVER_KIND).first()
        assert job["status"] == jobs.QUEUED and job["attempts"] == 1
        wait = (job["run_at"] - jobs.now()).total_seconds()
        assert 1.0 < wait <= 2.5, wait  # the first backoff step: 2 s ± 20 %
        await jobs.run_pending()
        assert len(receiver.received) == 1  # not due yet
        await make_due_now()
        await jobs.run_pending()
    first, second = receiver.received
    assert first.answered == 500 and second.answered == 200 and first.verified and second.verified
    assert first.webhook_id == second.webhook_id and first.body == second.body
    rows = await log_rows(endpoint_id)
    assert [(r["attempt"], r["outcome"], r["status_code"]) for r in rows] == [(1, "failed", 500), (2, "delivered", 200)]
    assert '"ok": true' in rows[0]["response_excerpt"] and rows[0]["error"] == "HTTP 500"
    assert all(r["duration_ms"] >= 0 and r["uid"] == first.webhook_id for r in rows)
    done = await jobs.Job.select(jobs.Job.status).where(jobs.Job.kind == services.DELIVER_KIND).first()
    assert done["status"] == jobs.DONE


async def test_a_receiver_that_keeps_failing_ends_dead_after_the_attempt_cap(people: People, admin: Actor) -> None:
    with running_receiver(answers=[404] * services.MAX_ATTEMPTS) as receiver:
        endpoint_id = await add_endpoint(admin, receiver, ["ticket.created"])
        await make_ticket(people.customer)
        for _ in range(services.MAX_ATTEMPTS + 2):
            await jobs.run_pending()
            await make_due_now()
    rows = await log_rows(endpoint_id)
    assert len(rows) == services.MAX_ATTEMPTS and {r["status_code"] for r in rows} == {404}
    assert [r["attempt"] for r in rows] == list(range(1, services.MAX_ATTEMPTS + 1))
    job = await jobs.Job.select(jobs.Job.status).where(jobs.Job.kind == services.DELIVER_KIND).first()
    assert job["status"] == jobs.DEAD


async def test_refused_connections_and_redirects_are_failures_with_a_reason(people: People, admin: Actor) -> None:
    closed_port = _free_port()
    refused_id, _secret = await services.save_endpoint(
        admin, None, f"http://127.0.0.1:{closed_port}/nobody", ["ticket.created"], True
    )
    with running_receiver(answers=[302]) as receiver:
        redirect_id = await add_endpoint(admin, receiver, ["ticket.created"])
        await make_ticket(people.customer)
        await jobs.run_pending()
        assert len(receiver.received) == 1  # the redirect was not followed anywhere
    refused = (await log_rows(refused_id))[0]
    assert refused["outcome"] == "failed" and refused["status_code"] is None and "Connect" in refused["error"]
    redirected = (await log_rows(redirect_id))[0]
    assert redirected["status_code"] == 302 and "redirects are not followed" in redirected["error"]


async def test_redelivery_sends_the_same_event_again(people: People, receiver: Receiver, admin: Actor) -> None:
    endpoint_id = await add_endpoint(admin, receiver, ["ticket.created"])
    await make_ticket(people.customer)
    await jobs.run_pending()
    delivered = (await log_rows(endpoint_id))[0]
    uid = await services.redeliver(admin, endpoint_id, delivered["id"])
    await jobs.run_pending()
    first, again = receiver.received
    assert uid == first.webhook_id == again.webhook_id and first.body == again.body and again.verified
    rows = await log_rows(endpoint_id)
    assert [(r["redelivery"], r["outcome"], r["attempt"]) for r in rows] == [
        (False, "delivered", 1),
        (True, "delivered", 1),
    ]
    with pytest.raises(Exception, match="not allowed"):
        await services.redeliver(people.agent, endpoint_id, delivered["id"])


async def test_test_event_goes_to_a_paused_endpoint_too(receiver: Receiver, admin: Actor) -> None:
    endpoint_id = await add_endpoint(admin, receiver, ["ticket.created"])
    await services.save_endpoint(admin, endpoint_id, receiver.url, ["ticket.created"], False)
    uid = await services.send_test(admin, endpoint_id)
    await jobs.run_pending()
    (event,) = receiver.events()
    assert event["id"] == uid and event["event"] == "webhook.test" and event["data"]["endpoint"]["id"] == endpoint_id


async def test_a_new_secret_replaces_the_old_one_at_once(people: People, receiver: Receiver, admin: Actor) -> None:
    endpoint_id = await add_endpoint(admin, receiver, ["ticket.created"])
    new_secret = await services.regenerate_secret(admin, endpoint_id)
    assert new_secret != receiver.secret
    await make_ticket(people.customer)
    await jobs.run_pending()
    assert receiver.received[0].verified is False and receiver.received[0].answered == 401  # still the old secret
    receiver.secret = new_secret
    await make_due_now()
    await jobs.run_pending()
    assert receiver.received[-1].verified and receiver.received[-1].answered == 200


async def test_receivers_can_refuse_replays_and_tampering(people: People, receiver: Receiver, admin: Actor) -> None:
    await add_endpoint(admin, receiver, ["ticket.created"])
    await make_ticket(people.customer)
    await jobs.run_pending()
    original = receiver.received[0]
    assert original.verified
    replay_headers = {k: v for k, v in original.headers.items() if k.startswith("kizuna-") or k == "content-type"}
    async with httpx.AsyncClient() as client:
        receiver.clock_skew_seconds = 301  # the same request, replayed six minutes later
        replayed = await client.post(receiver.url, content=original.body, headers=replay_headers)
        assert replayed.status_code == 401 and replayed.json()["reason"] == "stale timestamp"
        receiver.clock_skew_seconds = 0
        tampered_body = original.body.replace(b"Export fails", b"Export works")
        tampered = await client.post(receiver.url, content=tampered_body, headers=replay_headers)
        assert tampered.status_code == 401 and tampered.json()["reason"] == "bad signature"
        older = {**replay_headers, "kizuna-webhook-timestamp": str(int(replay_headers["kizuna-webhook-timestamp"]) + 1)}
        moved = await client.post(receiver.url, content=original.body, headers=older)
        assert moved.json()["reason"] == "bad signature"  # the timestamp is signed too


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.test/kizuna", True),
        ("http://127.0.0.1:9000/internal", True),  # self-hosted installs post to internal services
        ("http://10.1.2.3/hook", True),
        ("ftp://example.test/hook", False),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
        ("http://", False),
        ("https://user:pw@example.test/hook", False),
        ("https://example.test/a b", False),
        ("https://example.test:99999/", False),
        ("https://example.test/" + "a" * 600, False),
        ("", False),
    ],
)
async def test_endpoint_addresses(url: str, ok: bool, admin: Actor) -> None:
    if ok:
        endpoint_id, _secret = await services.save_endpoint(admin, None, url, ["ticket.created"], True)
        assert endpoint_id
    else:
        with pytest.raises(Invalid) as caught:
            await services.save_endpoint(admin, None, url, ["ticket.created"], True)
        assert "url" in caught.value.errors


async def test_events_must_come_from_the_list_and_guides_are_registered_but_silent(admin: Actor) -> None:
    with pytest.raises(Invalid) as caught:
        await services.save_endpoint(admin, None, "https://example.test/", ["ticket.exploded"], True)
    assert "events" in caught.value.errors
    with pytest.raises(Invalid):
        await services.save_endpoint(admin, None, "https://example.test/", [], True)
    assert "guide.published" in services.EVENTS and "guide.published" in services.event_labels()
    with pytest.raises(ValueError, match="unknown webhook event"):
        await services.emit("ticket.exploded", ticket_id=1)


async def test_bodies_are_stored_once_and_sent_byte_for_byte(people: People, receiver: Receiver, admin: Actor) -> None:
    await add_endpoint(admin, receiver, ["ticket.created"])
    await make_ticket(people.customer, "日本語の件名", "本文です")
    await jobs.run_pending()
    stored = await WebhookEvent.select(WebhookEvent.body, WebhookEvent.uid).first()
    assert receiver.received[0].body == stored["body"].encode()
    assert json.loads(stored["body"])["data"]["ticket"]["subject"] == "日本語の件名"


async def test_a_receiver_that_does_not_answer_in_time_is_a_logged_failure(
    people: People, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from server.webhooks import delivery

    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    with running_receiver(hold=threading.Event()) as receiver:
        endpoint_id = await add_endpoint(admin, receiver, ["ticket.created"])
        await make_ticket(people.customer)
        await jobs.run_pending()
        row = (await log_rows(endpoint_id))[0]
        assert row["outcome"] == "failed" and row["status_code"] is None
        assert row["error"] == "no answer within 0.5 s" and 400 <= row["duration_ms"] < 3000
        job = await jobs.Job.select(jobs.Job.status).where(jobs.Job.kind == services.DELIVER_KIND).first()
        assert job["status"] == jobs.QUEUED  # to be retried


async def test_deliveries_for_a_deleted_or_paused_endpoint_are_dropped(
    people: People, receiver: Receiver, admin: Actor
) -> None:
    endpoint_id = await add_endpoint(admin, receiver, ["ticket.created"])
    with running_receiver() as other:
        other_id, secret = await services.save_endpoint(admin, None, other.url, ["ticket.created"], True)
        await make_ticket(people.customer)
        await services.delete_endpoint(admin, other_id)
        await services.save_endpoint(admin, endpoint_id, receiver.url, ["ticket.created"], False)
        await jobs.run_pending()
        assert other.received == [] and receiver.received == []
    statuses = await jobs.Job.select(jobs.Job.status).where(jobs.Job.kind == services.DELIVER_KIND)
    assert [s["status"] for s in statuses] == [jobs.DONE, jobs.DONE] and await WebhookDelivery.count() == 0
