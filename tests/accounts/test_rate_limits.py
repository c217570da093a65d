"""Auth endpoints stop answering after too many attempts and say when to come back."""

from __future__ import annotations

import asyncio
import time

from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

from server import ratelimit
from server.accounts.tables import Session, User
from server.policy import Actor
from tests.accounts.helpers import user_count
from tests.conftest import csrf_token
from tests.factories import PASSWORD, Mailbox


async def cheap_to_check(actor: Actor) -> None:
    """Ten wrong guesses against a full-cost argon2 hash take seconds; light parameters keep the
    attempts real (each is verified) but quick."""
    light = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    await User.update({User.password_hash: light}).where(User.id == actor.user_id)


async def away_from_window_edge(limit: ratelimit.Limit) -> None:
    """Windows are fixed: a burst that straddles two would be counted in both halves."""
    into_window = time.time() % limit.window_seconds
    if into_window > limit.window_seconds - 5:
        await asyncio.sleep(limit.window_seconds - into_window + 0.1)


def assert_retry_after(response, limit: ratelimit.Limit) -> None:  # noqa: ANN001
    assert response.status_code == 429
    seconds = int(response.headers["retry-after"])
    assert 0 < seconds <= limit.window_seconds
    assert f"wait {seconds} seconds" in response.text


async def test_eleventh_login_attempt_is_429_even_with_the_right_password(
    client: AsyncTestClient, customer: Actor
) -> None:
    await cheap_to_check(customer)
    await away_from_window_edge(ratelimit.LOGIN)
    token = await csrf_token(client)
    for _ in range(ratelimit.LOGIN.attempts):
        wrong = await client.post("/login", data={"email": customer.email, "password": "guess", "_csrf_token": token})
        assert wrong.status_code == 422

    blocked = await client.post("/login", data={"email": customer.email, "password": PASSWORD, "_csrf_token": token})

    assert_retry_after(blocked, ratelimit.LOGIN)
    assert "Too many attempts" in blocked.text
    assert await Session.count() == 0


async def test_sixth_sign_up_is_429_and_creates_nothing(client: AsyncTestClient) -> None:
    await away_from_window_edge(ratelimit.SIGNUP)
    token = await csrf_token(client, "/signup")
    for n in range(ratelimit.SIGNUP.attempts):
        invalid = await client.post("/signup", data={"email": f"bad{n}", "_csrf_token": token})
        assert invalid.status_code == 422

    blocked = await client.post(
        "/signup",
        data={
            "email": "late@example.test",
            "display_name": "Late",
            "password": "a long enough secret",
            "_csrf_token": token,
        },
    )

    assert_retry_after(blocked, ratelimit.SIGNUP)
    assert await user_count() == 0


async def test_sixth_reset_request_is_429_and_sends_nothing_more(
    client: AsyncTestClient, customer: Actor, mailbox: Mailbox
) -> None:
    await away_from_window_edge(ratelimit.RESET)
    token = await csrf_token(client, "/forgot-password")
    for _ in range(ratelimit.RESET.attempts):
        sent = await client.post(
            "/forgot-password", data={"email": customer.email, "_csrf_token": token}, follow_redirects=False
        )
        assert sent.status_code == 303

    blocked = await client.post("/forgot-password", data={"email": customer.email, "_csrf_token": token})

    assert_retry_after(blocked, ratelimit.RESET)
    assert len(await mailbox.messages(to=customer.email)) == ratelimit.RESET.attempts


async def test_token_api_limit_answers_json_with_retry_after(client: AsyncTestClient, customer: Actor) -> None:
    await cheap_to_check(customer)
    await away_from_window_edge(ratelimit.TOKEN)
    body = {"email": customer.email, "password": "guess"}
    for _ in range(ratelimit.TOKEN.attempts):
        assert (await client.post("/api/v1/auth/token", json=body)).status_code == 401

    blocked = await client.post("/api/v1/auth/token", json={**body, "password": PASSWORD})

    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many attempts" in blocked.json()["detail"]
