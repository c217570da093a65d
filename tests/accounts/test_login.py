"""Signing in and out: cookies, session rotation, failures, redirects, hash upgrades."""

from __future__ import annotations

from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

from server.accounts import services
from server.accounts.tables import Session, User
from server.policy import Actor
from tests.accounts.helpers import FORM_ERROR, SESSION_COOKIE, session_count, set_cookie, sha256, user_by_email
from tests.conftest import post_form
from tests.factories import PASSWORD, login


async def test_login_sets_an_httponly_lax_session_cookie_backed_by_a_hashed_row(
    client: AsyncTestClient, customer: Actor
) -> None:
    response = await login(client, customer.email)

    redirect = response.history[0]
    assert redirect.status_code == 303
    cookie = set_cookie(redirect, SESSION_COOKIE)
    assert cookie is not None
    token, attributes = cookie
    assert attributes["httponly"] is True
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    rows = await Session.select(Session.token_hash).where(Session.user == customer.user_id)
    assert [row["token_hash"] for row in rows] == [sha256(token)]
    assert customer.display_name in response.text  # the header shows who is signed in


async def test_login_rotates_a_session_that_was_there_before(
    client: AsyncTestClient, customer: Actor, admin: Actor
) -> None:
    await login(client, customer.email)
    before = client.cookies[SESSION_COOKIE]

    await login(client, admin.email)

    after = client.cookies[SESSION_COOKIE]
    assert after != before
    assert await Session.count().where(Session.token_hash == sha256(before)) == 0
    assert await session_count(customer.user_id) == 0
    assert await session_count(admin.user_id) == 1


async def test_login_rotates_a_planted_cookie(client: AsyncTestClient, customer: Actor) -> None:
    # Session fixation: whatever cookie a browser brings along, signing in issues a new one.
    client.cookies.set(SESSION_COOKIE, "planted-by-someone-else", domain="testserver.local")

    response = await login(client, customer.email)

    cookie = set_cookie(response.history[0], SESSION_COOKIE)
    assert cookie is not None and cookie[0] != "planted-by-someone-else"


async def test_wrong_password_is_a_form_error_without_a_session(client: AsyncTestClient, customer: Actor) -> None:
    response = await login(client, customer.email, "not the password")

    assert response.status_code == 422
    assert FORM_ERROR in response.text
    assert f'value="{customer.email}"' in response.text
    assert set_cookie(response, SESSION_COOKIE) is None
    assert await session_count(customer.user_id) == 0


async def test_unknown_email_gets_the_same_answer(client: AsyncTestClient) -> None:
    response = await login(client, "nobody@example.test")

    assert response.status_code == 422
    assert FORM_ERROR in response.text
    assert await Session.count() == 0


async def test_deactivated_user_cannot_log_in(client: AsyncTestClient, customer: Actor, admin: Actor) -> None:
    await services.admin_set_active(admin, customer.user_id, False)

    response = await login(client, customer.email)

    assert response.status_code == 422
    assert FORM_ERROR in response.text
    assert await session_count(customer.user_id) == 0


async def test_next_redirects_only_to_same_site_paths(client: AsyncTestClient, customer: Actor) -> None:
    response = await post_form(
        client, "/login", {"email": customer.email, "password": PASSWORD, "next": "/profile"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/profile"


async def test_open_redirect_attempts_are_ignored(client: AsyncTestClient, customer: Actor) -> None:
    shown = await client.get("/login", params={"next": "//evil.example"})
    assert "evil.example" not in shown.text
    assert '<input type="hidden" name="next" value="/">' in shown.text

    for target in ("//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        client.cookies.delete(SESSION_COOKIE)
        response = await post_form(
            client, "/login", {"email": customer.email, "password": PASSWORD, "next": target}, follow_redirects=False
        )
        assert response.status_code == 303, target
        assert response.headers["location"] == "/", target


async def test_logout_deletes_the_session_row(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)
    token = client.cookies[SESSION_COOKIE]

    response = await post_form(client, "/logout", {}, page="/profile", follow_redirects=False)

    assert response.status_code == 303
    assert await session_count(customer.user_id) == 0
    client.cookies.set(SESSION_COOKIE, token, domain="testserver.local")  # replaying the old cookie
    profile = await client.get("/profile", follow_redirects=False)
    assert profile.status_code == 303
    assert profile.headers["location"].startswith("/login")


async def test_old_argon2_parameters_are_upgraded_at_login(client: AsyncTestClient, customer: Actor) -> None:
    old_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    await User.update({User.password_hash: old_hash}).where(User.id == customer.user_id)
    current = PasswordHasher()
    assert current.check_needs_rehash(old_hash)

    response = await login(client, customer.email)

    assert response.status_code == 200
    new_hash = (await user_by_email(customer.email))["password_hash"]
    assert new_hash != old_hash
    assert not current.check_needs_rehash(new_hash)
    assert current.verify(new_hash, PASSWORD)
