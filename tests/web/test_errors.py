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


async def test_numbers_too_large_for_the_database_are_400(client: AsyncTestClient) -> None:
    for path in ("/help/articles/99999999999999999999", "/api/v1/kb/articles/99999999999999999999"):
        response = await client.get(path)
        assert response.status_code == 400, path
        assert "out of range" in response.text
    assert (await client.get("/api/v1/kb/articles", params={"offset": "9" * 20})).status_code == 200


async def test_errors_before_routing_carry_security_headers(client: AsyncTestClient) -> None:
    for method, path, status in (("GET", "/nope", 404), ("DELETE", "/help", 405), ("POST", "/logout", 403)):
        response = await client.request(method, path)
        assert response.status_code == status
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
