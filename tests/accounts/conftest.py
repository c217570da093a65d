"""Fixtures for account flows: a second browser, and signed-in people of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from server.policy import Actor
from tests.conftest import make_client
from tests.factories import login, make_user


@pytest.fixture
async def other_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser with its own cookie jar."""
    async with make_client(app) as second:
        yield second


@pytest.fixture
async def customer() -> Actor:
    return await make_user(name="Casey Customer")


@pytest.fixture
async def admin() -> Actor:
    return await make_user("admin", name="Ada Admin")


@pytest.fixture
async def admin_client(client: httpx.AsyncClient, admin: Actor) -> httpx.AsyncClient:
    response = await login(client, admin.email)
    assert response.status_code == 200
    return client
