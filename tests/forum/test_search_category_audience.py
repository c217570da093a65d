"""A forum category's audience change, end to end through the real Meilisearch index (the
actions and pages are in test_admin_categories.py).

Kept in a file that sorts after test_routes.py: starting Meilisearch for the session changes
what the deflection test there meets (it expects the database fallback)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server import jobs
from server.forum import services
from server.policy import ANONYMOUS, Actor
from server.search.query import search
from server.search.sync import wait_until_idle
from tests.conftest import fresh_indexes
from tests.factories import make_user
from tests.forum.factories import ADMIN, make_category, make_thread, reply


@pytest.fixture
async def forum_index(meili_server: str) -> AsyncIterator[None]:
    """Fresh forum indexes, dropped afterwards: later tests that expect the database fallback
    (no forum index yet) must not meet this test's documents."""
    await fresh_indexes(("thread", "post"))
    yield
    await fresh_indexes(("thread", "post"), create=False)


async def test_audience_change_reaches_the_real_index(forum_index: None, asker: Actor, helper: Actor) -> None:
    category_id = await make_category("open-talk")
    thread_id = await make_thread(asker, category_id, "Kanban swimlane colours", "Can swimlanes have colours?")
    await reply(helper, thread_id, "Yes: swimlane settings, then colour")
    await jobs.run_pending("test")
    await wait_until_idle(timeout_seconds=60)
    found = await search(ANONYMOUS, "swimlane", types=["thread", "post"])
    assert {h.type for h in found.hits} == {"thread", "post"}

    await services.save_category(
        ADMIN,
        category_id,
        services.CategoryInput(slug="open-talk", name_en="Open talk", name_ja="雑談", audience="staff"),
    )
    await jobs.run_pending("test")
    await wait_until_idle(timeout_seconds=60)
    assert (await search(ANONYMOUS, "swimlane", types=["thread", "post"])).hits == []
    assert (await search(helper, "swimlane", types=["thread", "post"])).hits == []
    agent = await make_user("agent")
    assert {h.type for h in (await search(agent, "swimlane", types=["thread", "post"])).hits} == {"thread", "post"}
