"""Password reset: a uniform answer, a mailed single-use link, sessions ended everywhere."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from litestar.testing import AsyncTestClient

from server.policy import Actor
from tests.accounts.helpers import FORM_ERROR, session_count
from tests.conftest import post_form
from tests.factories import Mailbox, login

NEW_PASSWORD = "a brand new passphrase"
SENT = "If an account uses that address, we sent it a link to choose a new password."


async def request_reset(client: AsyncTestClient, email: str):  # noqa: ANN201
    return await post_form(client, "/forgot-password", {"email": email})


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def choose_password(client: AsyncTestClient, link: str, password: str):  # noqa: ANN201
    return await post_form(client, "/reset-password", {"token": token_of(link), "password": password}, page=link)


async def test_request_answers_the_same_for_known_and_unknown_addresses(
    client: AsyncTestClient, customer: Actor, mailbox: Mailbox
) -> None:
    answers = []
    for email in (customer.email, "nobody@example.test"):
        response = await post_form(client, "/forgot-password", {"email": email})
        answers.append((response.status_code, response.url.path, SENT in response.text))

    assert answers[0] == answers[1] == (200, "/login", True)
    messages = await mailbox.messages()
    assert [m.to for m in messages] == [customer.email]
    assert messages[0].subject == "Choose a new Kizuna password"


async def test_link_sets_the_password_and_signs_out_everywhere(
    client: AsyncTestClient, other_client: AsyncTestClient, customer: Actor, mailbox: Mailbox
) -> None:
    await login(client, customer.email)
    await login(other_client, customer.email)
    assert await session_count(customer.user_id) == 2
    await request_reset(client, customer.email)
    link = await mailbox.last_link(customer.email)

    form = await client.get(link)
    assert form.status_code == 200 and "Choose a new password" in form.text
    done = await choose_password(client, link, NEW_PASSWORD)

    assert done.status_code == 200
    assert "Your password has been changed" in done.text
    assert await session_count(customer.user_id) == 0
    still_in = await other_client.get("/profile", follow_redirects=False)
    assert still_in.headers["location"].startswith("/login")
    assert (await login(client, customer.email)).status_code == 422  # the old password is gone
    assert (await login(client, customer.email, NEW_PASSWORD)).status_code == 200


async def test_link_works_once(client: AsyncTestClient, customer: Actor, mailbox: Mailbox) -> None:
    await request_reset(client, customer.email)
    link = await mailbox.last_link(customer.email)
    await choose_password(client, link, NEW_PASSWORD)

    shown = await client.get(link)
    again = await choose_password(client, link, "yet another passphrase")

    for response in (shown, again):
        assert response.status_code == 400
        assert "This link has already been used" in response.text
    login_page = await login(client, customer.email, "yet another passphrase")
    assert FORM_ERROR in login_page.text


async def test_weak_password_is_refused_and_keeps_the_link_usable(
    client: AsyncTestClient, customer: Actor, mailbox: Mailbox
) -> None:
    await request_reset(client, customer.email)
    link = await mailbox.last_link(customer.email)

    weak = await choose_password(client, link, "short")

    assert weak.status_code == 422
    assert "Use at least 10 characters." in weak.text
    assert f'value="{token_of(link)}"' in weak.text
    assert (await choose_password(client, link, NEW_PASSWORD)).status_code == 200


async def test_forged_reset_link_gives_a_clear_400(client: AsyncTestClient) -> None:
    response = await client.get("/reset-password", params={"token": "forged.token.value"})

    assert response.status_code == 400
    assert "This link is not valid" in response.text


async def test_a_verification_link_cannot_reset_a_password(client: AsyncTestClient, mailbox: Mailbox) -> None:
    signup = {"display_name": "Vera", "email": "vera@example.test", "password": "a long enough secret"}
    await post_form(client, "/signup", signup)
    verify_link = await mailbox.last_link("vera@example.test")

    shown = await client.get("/reset-password", params={"token": token_of(verify_link)})
    used = await choose_password(client, verify_link, NEW_PASSWORD)

    for response in (shown, used):
        assert response.status_code == 400
        assert "This link is not valid" in response.text
    assert (await login(client, "vera@example.test", NEW_PASSWORD)).status_code == 422
