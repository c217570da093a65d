"""The bell, the notification list, settings and the subscription control, through the app:
each person sees and changes only their own; the count costs one query per page."""

from __future__ import annotations

import re

import httpx

from server.notifications import subscription_level
from server.notifications.services import preferences
from server.notifications.tables import Notification
from server.policy import Actor
from server.realtime.tables import RealtimeEvent
from tests.conftest import post_form
from tests.factories import login, make_user
from tests.notifications.conftest import FakeTargets, activity, record_and_run

HTMX = {"HX-Request": "true"}
COUNT_RE = re.compile(r'<span id="notification-count"[^>]*data-unread="(\d+)"')


async def notify(person: Actor, targets: FakeTargets, times: int = 1, title: str = "Spreadsheet import") -> list[int]:
    author = await make_user(name="Aiko")
    targets.add(1, title=title)
    for n in range(times):
        await record_and_run(activity(author, 1, object_id=n + 1, title=title, mentioned_user_ids=[person.user_id]))
    rows = await Notification.select(Notification.id).where(Notification.recipient == person.user_id)
    return [row["id"] for row in rows]


def bell_count(html: str) -> int | None:
    match = COUNT_RE.search(html)
    return int(match.group(1)) if match else None


async def test_anonymous_visitors_have_no_bell_and_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert bell_count(home.text) is None
    response = await client.get("/notifications", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert (await client.post("/notifications/read-all", follow_redirects=False)).status_code in (401, 403)


async def test_the_bell_shows_the_unread_count_on_every_page(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    person = await make_user()
    await notify(person, targets, times=2)
    await login(client, person.email)
    for path in ["/", "/help", "/notifications/preferences"]:
        assert bell_count((await client.get(path)).text) == 2, path
    page = await client.get("/notifications")
    assert "Aiko mentioned you in “Spreadsheet import”" in page.text
    assert "What the post says." in page.text
    # The dropdown asks for the list as an htmx partial (no layout).
    partial = await client.get("/notifications", headers=HTMX)
    assert "<html" not in partial.text and "Aiko mentioned you" in partial.text


async def test_people_see_only_their_own_notifications(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    owner, other = await make_user(), await make_user()
    [mine] = await notify(owner, targets, title="Owner only topic")
    await login(client, other.email)
    assert bell_count((await client.get("/")).text) == 0
    assert "Owner only topic" not in (await client.get("/notifications")).text
    for path in [f"/notifications/{mine}/read", f"/notifications/{mine}/open", "/notifications/999999/read"]:
        response = await post_form(client, path, {}, page="/notifications")
        assert response.status_code == 404, path
    row = await Notification.select(Notification.read_at).where(Notification.id == mine).first()
    assert row["read_at"] is None


async def test_marking_read_updates_the_item_and_the_bell(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    person = await make_user()
    first, second, third = await notify(person, targets, times=3)
    await login(client, person.email)
    response = await post_form(client, f"/notifications/{first}/read", {}, page="/notifications", headers=HTMX)
    assert response.status_code == 200
    assert f'id="notification-{first}"' in response.text and "is-unread" not in response.text
    assert 'hx-swap-oob="true"' in response.text and bell_count(response.text) == 2
    # The bell on the person's other open pages hears it over `user:{id}`.
    events = (
        await RealtimeEvent.select().where(RealtimeEvent.channel == f"user:{person.user_id}").output(load_json=True)
    )
    assert events[-1]["event"] == "notifications.unread" and events[-1]["payload"] == {"unread": 2}

    opened = await post_form(client, f"/notifications/{second}/open", {}, page="/notifications", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/test/1#p1"
    assert bell_count((await client.get("/")).text) == 1

    everything = await post_form(client, "/notifications/read-all", {}, page="/notifications", headers=HTMX)
    assert bell_count(everything.text) == 0
    assert await Notification.count().where(Notification.read_at.is_null()) == 0
    assert third  # marked by read-all too


async def test_email_settings(client: httpx.AsyncClient) -> None:
    person = await make_user()
    await login(client, person.email)
    page = await client.get("/notifications/preferences")
    assert page.status_code == 200 and "You do not follow any thread or category yet." in page.text
    response = await post_form(client, "/notifications/preferences", {"email_mode": "daily"})
    assert response.status_code == 200
    assert await preferences(person.user_id) == {"email": "daily", "mentions": False, "ticket_updates": True}  # type: ignore[arg-type]
    bad = await post_form(client, "/notifications/preferences", {"email_mode": "hourly", "mentions": "on"})
    assert bad.status_code == 422 and "Choose an option from the list." in bad.text
    assert (await preferences(person.user_id))["email"] == "daily"  # type: ignore[arg-type]


async def test_the_subscription_control(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    person = await make_user()
    targets.add(1, title="Readable")
    targets.add(2, audience=["staff"], title="Staff only")
    await login(client, person.email)
    form = {"target_kind": "test_target", "target_id": "1", "level": "watching"}
    response = await post_form(client, "/notifications/subscriptions", form, page="/", headers=HTMX)
    assert response.status_code == 200
    assert 'data-level="watching"' in response.text and "<html" not in response.text
    assert await subscription_level(person.user_id, "test_target", 1) == "watching"

    # Without htmx: back to the page it came from.
    plain = {**form, "level": "muted", "next": "/help"}
    response = await post_form(client, "/notifications/subscriptions", plain, page="/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/help"
    assert await subscription_level(person.user_id, "test_target", 1) == "muted"

    # The settings page lists it with its title.
    settings = await client.get("/notifications/preferences")
    assert "Readable" in settings.text and 'data-level="muted"' in settings.text

    for bad, status in [
        ({**form, "target_id": "2"}, 404),  # may not read it: looks missing
        ({**form, "target_id": "3"}, 404),  # missing
        ({**form, "target_kind": "nope"}, 404),
        ({**form, "target_id": "abc"}, 404),
        ({**form, "level": "loud"}, 422),
    ]:
        response = await post_form(client, "/notifications/subscriptions", bad, page="/", headers=HTMX)
        assert response.status_code == status, bad
    assert "Staff only" not in (await client.get("/notifications/preferences")).text
    assert await subscription_level(person.user_id, "test_target", 2) == "normal"


async def test_the_bell_count_is_one_query_and_skips_partials(targets: FakeTargets, client: httpx.AsyncClient) -> None:
    from server.notifications import bell

    person = await make_user()
    await notify(person, targets)
    await login(client, person.email)
    calls: list[int] = []
    original = bell.unread_count

    async def counting(user_id: int) -> int:
        calls.append(user_id)
        return await original(user_id)

    bell.unread_count = counting  # type: ignore[assignment]
    try:
        await client.get("/help")
        assert calls == [person.user_id]
        await client.get("/notifications/preferences", headers=HTMX)
        await client.get("/static/css/app.css")
        assert calls == [person.user_id]
    finally:
        bell.unread_count = original  # type: ignore[assignment]
