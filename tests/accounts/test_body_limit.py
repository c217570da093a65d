"""Bodies over the configured limit are refused with 413 and a clear message, never a 500."""

from __future__ import annotations

import json

from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Message

from server.policy import Actor
from server.settings import get_settings
from tests.accounts.helpers import user_by_email, user_count
from tests.conftest import csrf_token
from tests.factories import PASSWORD, login

TOO_LARGE = "The request is too large."


def oversized() -> str:
    return "x" * (get_settings().max_body_bytes + 1)


async def test_oversized_sign_up_form_is_413_page(client: AsyncTestClient) -> None:
    token = await csrf_token(client, "/signup")

    response = await client.post(
        "/signup",
        data={"email": "big@example.test", "password": PASSWORD, "display_name": oversized(), "_csrf_token": token},
    )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert TOO_LARGE in response.text
    assert await user_count() == 0


async def test_oversized_profile_form_is_413_page(client: AsyncTestClient, customer: Actor) -> None:
    await login(client, customer.email)
    token = await csrf_token(client, "/profile")

    response = await client.post(
        "/profile",
        data={
            "display_name": oversized(),
            "locale": "en",
            "time_zone": "UTC",
            "email_mode": "off",
            "_csrf_token": token,
        },
    )

    assert response.status_code == 413
    assert TOO_LARGE in response.text
    assert (await user_by_email(customer.email))["display_name"] == customer.display_name


async def test_oversized_api_body_is_413_json(client: AsyncTestClient) -> None:
    body = f'{{"email": "big@example.test", "password": "{oversized()}"}}'.encode()

    response = await client.post("/api/v1/auth/token", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert response.json() == {"status_code": 413, "detail": TOO_LARGE}


async def test_a_body_just_under_the_limit_is_read(client: AsyncTestClient) -> None:
    padding = "x" * (get_settings().max_body_bytes - 200)
    body = f'{{"email": "a@example.test", "password": "p", "name": "{padding}"}}'.encode()
    assert len(body) < get_settings().max_body_bytes

    response = await client.post("/api/v1/auth/token", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400  # read and validated (the name is too long), not refused for size


async def test_oversized_streamed_body_without_length_is_413(app: Litestar) -> None:
    # A chunked upload announces no Content-Length; the limit must hold while the body streams.
    # The test client cannot stream a request body, so this talks ASGI to the app directly.
    chunks = [b'{"email": "big@example.test", "password": "', *[b"x" * 65_536] * 20, b'"}']
    sent: list[Message] = []

    async def receive() -> Message:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/token",
        "raw_path": b"/api/v1/auth/token",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver.local"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]

    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413
    assert json.loads(body)["detail"] == TOO_LARGE
