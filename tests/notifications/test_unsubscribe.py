"""Unsubscribe links from notification mail work without signing in: GET only shows what the
link would do, POST applies it (also a mail client's one-click POST); forged or expired links
get a clear 400 page and change nothing."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest

from server.notifications import set_subscription, subscription_level, unsubscribe
from server.notifications.services import preferences
from tests.factories import Mailbox, make_user
from tests.notifications.conftest import FakeTargets, activity, record_and_run


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_the_link_in_a_mail_stops_watching_without_signing_in(
    targets: FakeTargets, mailbox: Mailbox, client: httpx.AsyncClient
) -> None:
    author, watcher = await make_user(), await make_user()
    targets.add(1, title="Printer drivers")
    await set_subscription(watcher, "test_target", 1, "watching")
    await record_and_run(activity(author, 1))
    [message] = await mailbox.messages(watcher.email)
    link = path_of(message.message["List-Unsubscribe"].strip("<>"))

    page = await client.get(link)
    assert page.status_code == 200
    assert "Printer drivers" in page.text
    assert "Stop watching this conversation" in page.text
    assert await subscription_level(watcher.user_id, "test_target", 1) == "watching"  # GET changed nothing

    token = link.split("token=", 1)[1]
    done = await client.post("/notifications/unsubscribe", data={"token": token, "action": "stop"})
    assert done.status_code == 200
    assert "You stopped watching" in done.text
    assert await subscription_level(watcher.user_id, "test_target", 1) == "normal"
    assert (await preferences(watcher.user_id))["email"] == "immediate"  # only that subscription


async def test_one_click_unsubscribe_from_a_mail_client(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    """RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` to the header's URL, with
    no cookies and no CSRF token."""
    watcher = await make_user()
    targets.add(1)
    await set_subscription(watcher, "test_target", 1, "watching")
    token = unsubscribe.make_token(watcher.user_id, "test_target", 1)  # type: ignore[arg-type]
    url = path_of(unsubscribe.unsubscribe_url(token))
    response = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert await subscription_level(watcher.user_id, "test_target", 1) == "normal"


async def test_mute_and_stop_all_email(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    person = await make_user()
    targets.add(1)
    token = unsubscribe.make_token(person.user_id, "test_target", 1)  # type: ignore[arg-type]
    await client.post("/notifications/unsubscribe", data={"token": token, "action": "mute"})
    assert await subscription_level(person.user_id, "test_target", 1) == "muted"
    everything = unsubscribe.make_token(person.user_id)  # type: ignore[arg-type]
    page = await client.get(f"/notifications/unsubscribe?token={everything}")
    assert "You will get no more notification email." in page.text
    assert (await preferences(person.user_id))["email"] == "immediate"
    response = await client.post(path_of(unsubscribe.unsubscribe_url(everything)), data={})
    assert response.status_code == 200
    assert (await preferences(person.user_id))["email"] == "off"


async def test_a_link_for_everything_cannot_be_used_for_a_target_action(client: httpx.AsyncClient) -> None:
    person = await make_user()
    token = unsubscribe.make_token(person.user_id)  # type: ignore[arg-type]
    response = await client.post("/notifications/unsubscribe", data={"token": token, "action": "mute"})
    assert response.status_code == 422
    assert (await preferences(person.user_id))["email"] == "immediate"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_forged_links_get_a_clear_400(method: str, targets: FakeTargets, client: httpx.AsyncClient) -> None:
    person, victim = await make_user(), await make_user()
    targets.add(1)
    await set_subscription(victim, "test_target", 1, "watching")
    genuine = unsubscribe.make_token(person.user_id, "test_target", 1)  # type: ignore[arg-type]
    payload, _sep, signature = genuine.rpartition(".")
    tampered = unsubscribe.make_token(victim.user_id, "test_target", 1).rpartition(".")[0] + "." + signature  # type: ignore[arg-type]
    for token in ["", "not-a-token", genuine[:-3] + "abc", tampered, "x" * 5000]:
        if method == "GET":
            response = await client.get("/notifications/unsubscribe", params={"token": token})
        else:
            response = await client.post("/notifications/unsubscribe", data={"token": token, "action": "stop"})
        assert response.status_code == 400, token
        assert "This unsubscribe link is not valid." in response.text
    assert await subscription_level(victim.user_id, "test_target", 1) == "watching"


async def test_expired_links_get_a_clear_400(
    targets: FakeTargets, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await make_user()
    targets.add(1)
    await set_subscription(person, "test_target", 1, "watching")
    with monkeypatch.context() as patch:  # the link was made long ago
        issued = time.time() - unsubscribe.MAX_AGE_SECONDS - 60
        patch.setattr("itsdangerous.timed.time.time", lambda: issued)
        token = unsubscribe.make_token(person.user_id, "test_target", 1)  # type: ignore[arg-type]
    for response in [
        await client.get("/notifications/unsubscribe", params={"token": token}),
        await client.post("/notifications/unsubscribe", data={"token": token, "action": "mute"}),
    ]:
        assert response.status_code == 400
        assert "This unsubscribe link has expired." in response.text
    assert await subscription_level(person.user_id, "test_target", 1) == "watching"


async def test_links_are_signed_for_unsubscribing_only(client: httpx.AsyncClient) -> None:
    """A password-reset or email-verification link's signature does not open this door."""
    from server.accounts import links

    person = await make_user()
    other_purpose = links.sign("reset", {"u": person.user_id})
    response = await client.post("/notifications/unsubscribe", data={"token": other_purpose})
    assert response.status_code == 400
    assert (await preferences(person.user_id))["email"] == "immediate"
