"""Fixtures for the knowledge base: an editor, a public category with one section, and
clean per-process view counters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from litestar.testing import AsyncTestClient

from server.kb import cache, views
from server.policy import Actor
from tests.factories import login, make_user
from tests.kb.factories import make_category, make_section


@dataclass
class Place:
    category_id: int
    section_id: int


@pytest.fixture(autouse=True)
def fresh_view_counts() -> None:
    views.reset()


@pytest.fixture
async def editor() -> Actor:
    return await make_user("agent", name="Eddie Editor")


@pytest.fixture
async def customer() -> Actor:
    return await make_user(name="Casey Customer")


@pytest.fixture
async def place(editor: Actor) -> Place:
    category_id = await make_category(editor, "basics")
    return Place(category_id, await make_section(editor, category_id, "first-steps"))


@pytest.fixture
async def editor_client(client: AsyncTestClient, editor: Actor) -> AsyncIterator[AsyncTestClient]:
    response = await login(client, editor.email)
    assert response.status_code == 200
    yield client


@pytest.fixture(autouse=True)
def fresh_page_cache() -> None:
    """Tables are emptied between tests behind the services' back: start with no cached reads."""
    cache.clear()
