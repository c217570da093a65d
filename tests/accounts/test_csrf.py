"""Unsafe HTML requests need the form's CSRF token; the Bearer-only API does not."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from server.accounts.tables import Session, User
from server.policy import Actor
from tests.accounts.helpers import CSRF_MESSAGE, user_by_email
from tests.conftest import csrf_token
from tests.factories import PASSWORD, login

SIGNUP = {"display_name": "Mallory", "email": "mallory@example.test", "password": "a long enough secret"}


def bad_tokens() -> list[dict[str, str]]:
    return [{}, {"_csrf_token": "wrong"}, {"_csrf_token": ""}]


@pytest.mark.parametrize("extra", bad_tokens(), ids=["missing", "wrong", "empty"])
async def test_login_without_a_valid_token_is_refused(
    client: AsyncTestClient, customer: Actor, extra: dict[str, str]
) -> None:
    await client.get("/login")  # the browser holds the CSRF cookie; the form lacks the token

    response = await client.post("/login", data={"email": customer.email, "password": PASSWORD, **extra})

    assert response.status_code == 403
    assert CSRF_MESSAGE in response.text
    assert await Session.count() == 0


@pytest.mark.parametrize("extra", bad_tokens(), ids=["missing", "wrong", "empty"])
async def test_signup_without_a_valid_token_is_refused(client: AsyncTestClient, extra: dict[str, str]) -> None:
    await client.get("/signup")

    response = await client.post("/signup", data={**SIGNUP, **extra})

    assert response.status_code == 403
    assert CSRF_MESSAGE in response.text
    assert await User.count() == 0


@pytest.mark.parametrize("extra", bad_tokens(), ids=["missing", "wrong", "empty"])
async def test_profile_without_a_valid_token_is_refused(
    client: AsyncTestClient, customer: Actor, extra: dict[str, str]
) -> None:
    await login(client, customer.email)

    response = await client.post(
        "/profile",
        data={"display_name": "Hijacked", "locale": "en", "time_zone": "UTC", "email_mode": "off", **extra},
    )

    assert response.status_code == 403
    assert CSRF_MESSAGE in response.text
    assert (await user_by_email(customer.email))["display_name"] == customer.display_name


async def test_a_token_from_another_browser_is_refused(
    client: AsyncTestClient, other_client: AsyncTestClient, customer: Actor
) -> None:
    foreign = await csrf_token(other_client)
    await client.get("/login")

    response = await client.post("/login", data={"email": customer.email, "password": PASSWORD, "_csrf_token": foreign})

    assert response.status_code == 403


async def test_the_api_needs_no_csrf_token(client: AsyncTestClient, customer: Actor) -> None:
    response = await client.post("/api/v1/auth/token", json={"email": customer.email, "password": PASSWORD})

    assert response.status_code == 201
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json()['token']}"})
    assert me.status_code == 200
