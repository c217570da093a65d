"""Sign-up and email verification, through the pages and real SMTP."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from litestar.testing import AsyncTestClient

from server import jobs, mail
from server.accounts.tables import OneTimeToken
from server.jobs import Job
from server.mailsink import list_captured
from server.settings import get_settings
from tests.accounts.helpers import job_count, roles_of, user_by_email, user_count
from tests.conftest import post_form
from tests.factories import Mailbox

EMAIL = "new.person@example.test"
SIGNUP = {"display_name": "New Person", "email": EMAIL, "password": "a long enough secret"}


async def sign_up(client: AsyncTestClient, **overrides: str):  # noqa: ANN201
    return await post_form(client, "/signup", {**SIGNUP, **overrides})


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def test_sign_up_creates_unverified_customer_and_mails_a_link(client: AsyncTestClient, mailbox: Mailbox) -> None:
    response = await sign_up(client, email="  New.Person@Example.TEST ")

    assert response.status_code == 200
    assert str(response.url).endswith("/login")
    assert "we sent you an email" in response.text
    user = await user_by_email(EMAIL)
    assert user is not None and user["display_name"] == "New Person"
    assert user["email_verified_at"] is None
    assert await roles_of(user["id"]) == {"customer"}
    assert user["password_hash"].startswith("$argon2id$")

    # The mail waits in the outbox until the worker runs; then it goes out over SMTP.
    queued = await Job.select(Job.status).where(Job.kind == mail.KIND)
    assert [job["status"] for job in queued] == [jobs.QUEUED]
    assert list_captured(mailbox.directory) == []
    messages = await mailbox.messages(to=EMAIL)
    assert [m.subject for m in messages] == ["Confirm your email address for Kizuna"]
    assert (await mailbox.last_link(EMAIL)).startswith("/verify-email?token=")
    assert (await Job.select(Job.status).where(Job.kind == mail.KIND).first())["status"] == jobs.DONE


async def test_get_on_the_link_only_shows_a_button_and_post_verifies(client: AsyncTestClient, mailbox: Mailbox) -> None:
    await sign_up(client)
    link = await mailbox.last_link(EMAIL)

    for _ in range(2):  # a mail scanner prefetching the link must not use it up
        shown = await client.get(link)
        assert shown.status_code == 200
        assert "Confirm my email" in shown.text
        assert f'value="{token_of(link)}"' in shown.text
    assert (await user_by_email(EMAIL))["email_verified_at"] is None

    confirmed = await post_form(client, "/verify-email", {"token": token_of(link)}, page=link)
    assert confirmed.status_code == 200
    assert "Your email address is confirmed" in confirmed.text
    assert (await user_by_email(EMAIL))["email_verified_at"] is not None


async def test_a_used_link_gives_a_clear_400(client: AsyncTestClient, mailbox: Mailbox) -> None:
    await sign_up(client)
    link = await mailbox.last_link(EMAIL)
    await post_form(client, "/verify-email", {"token": token_of(link)}, page=link)

    again = await post_form(client, "/verify-email", {"token": token_of(link)}, page=link)

    assert again.status_code == 400
    assert "This link has already been used" in again.text


async def test_a_forged_link_gives_a_clear_400(client: AsyncTestClient, mailbox: Mailbox) -> None:
    await sign_up(client)
    token = token_of(await mailbox.last_link(EMAIL))
    payload, _sep, signature = token.rpartition(".")
    tampered = f"{payload}.{signature[::-1]}"
    foreign_key = URLSafeTimedSerializer("not-our-secret", salt="kizuna.link.verify").dumps({"u": 1, "j": "x"})

    for forged in (tampered, foreign_key, "garbage", ""):
        response = await post_form(client, "/verify-email", {"token": forged}, page="/verify-email")
        assert response.status_code == 400, forged
        assert "This link is not valid" in response.text
    assert (await user_by_email(EMAIL))["email_verified_at"] is None


class _SignedFourDaysAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 4 * 24 * 3600


async def test_an_expired_link_gives_a_clear_400(client: AsyncTestClient, mailbox: Mailbox) -> None:
    await sign_up(client)
    user = await user_by_email(EMAIL)
    row = await OneTimeToken.select(OneTimeToken.jti).where(OneTimeToken.user == user["id"]).first()
    # The user's own link, signed as if it had been sent four days ago (links last three).
    old = URLSafeTimedSerializer(get_settings().secret_key, salt="kizuna.link.verify", signer=_SignedFourDaysAgo).dumps(
        {"u": user["id"], "j": row["jti"]}
    )

    response = await post_form(client, "/verify-email", {"token": old}, page="/verify-email")

    assert response.status_code == 400
    assert "This link has expired" in response.text
    assert (await user_by_email(EMAIL))["email_verified_at"] is None


async def test_duplicate_email_is_refused_and_keeps_the_values(client: AsyncTestClient, mailbox: Mailbox) -> None:
    await sign_up(client)
    jobs_before = await job_count()

    response = await sign_up(client, email=EMAIL.upper(), display_name="Second Try", password="another secret pw")

    assert response.status_code == 422
    assert "An account with this email already exists" in response.text
    assert f'value="{EMAIL.upper()}"' in response.text  # as typed
    assert 'value="Second Try"' in response.text
    assert "another secret pw" not in response.text
    assert await user_count() == 1
    assert await job_count() == jobs_before
    assert len(await mailbox.messages(to=EMAIL)) == 1


async def test_invalid_input_rerenders_field_errors_and_writes_nothing(client: AsyncTestClient) -> None:
    response = await sign_up(client, email="not-an-email", password="short", display_name="")

    assert response.status_code == 422
    assert "Enter a valid email address." in response.text
    assert "Use at least 10 characters." in response.text
    assert "Enter a display name." in response.text
    assert response.text.count('aria-invalid="true"') == 3
    assert 'value="not-an-email"' in response.text
    assert 'value="short"' not in response.text
    assert await user_count() == 0
    assert await job_count() == 0
