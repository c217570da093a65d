"""The profile page: display name, language, time zone, notifications, API tokens."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from server.policy import Actor
from tests.accounts.helpers import user_by_email
from tests.conftest import post_form
from tests.factories import login

CHANGES = {
    "display_name": "Casey Renamed",
    "locale": "ja",
    "time_zone": "Asia/Tokyo",
    "email_mode": "daily",
    "mentions": "on",
}


async def test_profile_needs_a_sign_in(client: AsyncTestClient) -> None:
    response = await client.get("/profile", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/profile"


async def test_profile_changes_are_saved_and_shown(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)

    response = await post_form(client, "/profile", CHANGES)

    assert response.status_code == 200
    user = await user_by_email(customer.email)
    assert (user["display_name"], user["locale"], user["time_zone"]) == ("Casey Renamed", "ja", "Asia/Tokyo")
    assert user["notification_prefs"] == {"email": "daily", "mentions": True, "ticket_updates": False}
    assert '<html lang="ja">' in response.text  # the saved language applies at once
    assert 'value="Casey Renamed"' in response.text
    assert '<option value="Asia/Tokyo" selected>' in response.text
    assert '<option value="daily" selected>' in response.text
    assert re.search(r'name="mentions"\s+checked', response.text)
    assert not re.search(r'name="ticket_updates"\s+checked', response.text)


async def test_invalid_time_zone_is_422_and_changes_nothing(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)

    response = await post_form(client, "/profile", {**CHANGES, "time_zone": "Mars/Olympus_Mons"})

    assert response.status_code == 422
    assert "Choose a time zone from the list." in response.text
    assert 'value="Casey Renamed"' in response.text  # what was typed stays in the form
    user = await user_by_email(customer.email)
    assert (user["display_name"], user["time_zone"]) == (customer.display_name, "UTC")


async def test_other_invalid_fields_are_422(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)

    response = await post_form(
        client, "/profile", {**CHANGES, "display_name": " ", "locale": "xx", "email_mode": "hourly"}
    )

    assert response.status_code == 422
    for message in ("Enter a display name.", "Choose a language from the list.", "Choose an option from the list."):
        assert message in response.text


async def test_new_token_is_shown_once_and_works(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)

    created = await post_form(client, "/profile/tokens", {"name": "deploy bot"}, page="/profile")

    assert created.status_code == 200
    match = re.search(r"<code class=\"token\" data-new-token>([^<]+)</code>", created.text)
    assert match, created.text
    token = match.group(1)
    assert "It will not be shown again" in created.text
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == customer.email
    again = await client.get("/profile")
    assert "deploy bot" in again.text
    assert token not in again.text and "data-new-token" not in again.text


async def test_token_without_a_name_is_422(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)

    response = await post_form(client, "/profile/tokens", {"name": "  "}, page="/profile")

    assert response.status_code == 422
    assert "Give the token a name" in response.text
    assert "data-new-token" not in response.text
