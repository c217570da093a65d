"""Personal API tokens: issued for credentials, Bearer-only, revocable, stored hashed."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from server.accounts.tables import ApiToken
from server.policy import Actor
from tests.accounts.helpers import sha256
from tests.conftest import post_form
from tests.factories import PASSWORD, login


async def issue(client: AsyncTestClient, actor: Actor, **extra: str) -> str:
    response = await client.post("/api/v1/auth/token", json={"email": actor.email, "password": PASSWORD, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    return body["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_token_for_credentials_identifies_the_user(client: AsyncTestClient, customer: Actor) -> None:
    token = await issue(client, customer, name="ci script")

    response = await client.get("/api/v1/me", headers=bearer(token))

    assert response.status_code == 200
    me = response.json()
    assert (me["id"], me["email"], me["display_name"]) == (customer.user_id, customer.email, customer.display_name)
    assert me["roles"] == ["customer"]
    assert me["email_verified"] is True


async def test_wrong_password_is_401_json(client: AsyncTestClient, customer: Actor) -> None:
    response = await client.post("/api/v1/auth/token", json={"email": customer.email, "password": "guess"})

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"] == "The email or password is not right."
    assert await ApiToken.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "someone@example.test"}, "password"),
        ({"email": 42, "password": "x"}, "email"),
        ({"email": "someone@example.test", "password": "x", "admin": True}, "admin"),
    ],
    ids=["missing-field", "wrong-type", "unknown-field"],
)
async def test_malformed_body_is_400_with_details(client: AsyncTestClient, body: dict[str, object], field: str) -> None:
    response = await client.post("/api/v1/auth/token", json=body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors and any(field in (error.get("key", "") + error.get("message", "")) for error in errors), errors


async def test_body_that_is_not_json_is_400(client: AsyncTestClient) -> None:
    response = await client.post(
        "/api/v1/auth/token", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status_code"] == 400


async def test_unknown_or_missing_bearer_is_401_json(client: AsyncTestClient) -> None:
    for headers in ({}, bearer("kz_not-a-real-token"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["status_code"] == 401


async def test_session_cookie_alone_is_not_accepted(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)
    assert (await client.get("/profile")).status_code == 200

    response = await client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")


async def test_token_revoked_on_the_profile_page_stops_working(client: AsyncTestClient, customer: Actor) -> None:
    token = await issue(client, customer, name="laptop")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200  # its actor is cached now
    await login(client, customer.email)
    profile = await client.get("/profile")
    assert "laptop" in profile.text and token[:8] in profile.text
    match = re.search(r'action="(/profile/tokens/\d+/revoke)"', profile.text)
    assert match

    revoked = await post_form(client, match.group(1), {}, page="/profile")

    assert revoked.status_code == 200 and "The token is revoked." in revoked.text
    assert "laptop" not in revoked.text
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401


async def test_someone_elses_token_cannot_be_revoked(client: AsyncTestClient, customer: Actor, admin: Actor) -> None:
    token = await issue(client, customer)
    row = await ApiToken.select(ApiToken.id).first()
    await login(client, admin.email)

    response = await post_form(client, f"/profile/tokens/{row['id']}/revoke", {}, page="/profile")

    assert response.status_code == 404
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200


async def test_tokens_are_stored_hashed(client: AsyncTestClient, customer: Actor) -> None:
    token = await issue(client, customer)

    rows = await ApiToken.select()

    assert len(rows) == 1
    assert rows[0]["token_hash"] == sha256(token)
    assert rows[0]["prefix"] == token[:8]
    assert not any(token in str(value) for value in rows[0].values())
