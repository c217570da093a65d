"""Forum fixtures: people in every role, a public Q&A category, and clean per-process caches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from server.forum import cache, queries, views
from server.policy import Actor
from tests.factories import login, make_user
from tests.forum.factories import make_category


@pytest.fixture(autouse=True)
def fresh_forum_caches() -> None:
    """Tables are emptied between tests behind the services' back."""
    queries.clear_cache()
    cache.clear()
    views.reset()


@pytest.fixture
async def asker() -> Actor:
    return await make_user(name="Asha Asker", email="asha@example.test")


@pytest.fixture
async def helper() -> Actor:
    return await make_user(name="Hiro Helper", email="hiro@example.test")


@pytest.fixture
async def moderator() -> Actor:
    return await make_user("moderator", name="Mona Moderator", email="mona@example.test")


@pytest.fixture
async def qa_category() -> int:
    return await make_category("questions", qa=True)


@pytest.fixture
async def asker_client(client: AsyncTestClient, asker: Actor) -> AsyncIterator[AsyncTestClient]:
    response = await login(client, asker.email)
    assert response.status_code == 200
    yield client
