"""Unexpected failures become clear pages or JSON, never a trace."""

from collections.abc import AsyncIterator

import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.conftest import make_client


@get("/boom", include_in_schema=False)
async def boom() -> str:
    raise RuntimeError("secret internals")


@get("/api/v1/boom", include_in_schema=False)
async def api_boom() -> str:
    raise RuntimeError("secret internals")


@get("/db-down", include_in_schema=False)
async def db_down() -> str:
    raise ConnectionRefusedError("connection to 10.0.0.1:5432 refused")


@pytest.fixture
async def failing_client() -> AsyncIterator[AsyncTestClient]:
    app = create_app()  # a separate app, so the real one's route table stays as it is
    for handler in (boom, api_boom, db_down):
        app.register(handler)
    async with make_client(app) as client:
        yield client


async def test_unexpected_error_is_a_plain_500_page(failing_client: AsyncTestClient) -> None:
    response = await failing_client.get("/boom")
    assert response.status_code == 500
    assert "We could not complete this request" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_unexpected_api_error_is_json(failing_client: AsyncTestClient) -> None:
    response = await failing_client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json()["status_code"] == 500
    assert "secret internals" not in response.text


async def test_unreachable_backing_service_is_503(failing_client: AsyncTestClient) -> None:
    response = await failing_client.get("/db-down")
    assert response.status_code == 503
    assert "unreachable" in response.text
    assert "10.0.0.1" not in response.text


async def test_wrong_method_is_405_page(client: AsyncTestClient) -> None:
    response = await client.put("/help")
    assert response.status_code == 405
    assert "Method not allowed" in response.text
