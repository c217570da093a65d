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
from server.search import registry
from server.search.engine import client as meili_client
from server.search.query import search
from server.search.sync import ensure_index, wait_until_idle
from tests.factories import make_user
from tests.forum.factories import ADMIN, make_category, make_thread, reply


async def _drop_forum_indexes() -> None:
    meili = meili_client()
    for name in ("thread", "post"):
        task = await meili.index(name).delete()
        await meili.wait_for_task(task.task_uid, timeout_in_ms=30_000)


@pytest.fixture
async def forum_index(meili_server: str) -> AsyncIterator[None]:
    """Fresh forum indexes, dropped afterwards: later tests that expect the database fallback
    (no forum index yet) must not meet this test's documents."""
    await _drop_forum_indexes()
    for name in ("thread", "post"):
        await ensure_index(registry.get(name))
    yield
    await _drop_forum_indexes()


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
