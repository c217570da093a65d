"""A password reset ends every way in that the old password gave: sessions and API tokens."""

from __future__ import annotations

import httpx

from tests.conftest import post_form
from tests.factories import PASSWORD, Mailbox, make_user


async def test_reset_revokes_api_tokens(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    user = await make_user()
    token = (await client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
    await post_form(client, "/forgot-password", {"email": user.email})
    link = await mailbox.last_link(user.email)
    await post_form(
        client, "/reset-password", {"token": link.split("token=")[1], "password": "a brand new passphrase"}, page=link
    )
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
