"""A fake target kind ("test_target", with parent kind "test_parent") so notification tests do
not depend on forum tables: targets are rows of a dict with an audience, like forum threads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from server import features, jobs, policy  # noqa: F401 - job handlers, as in the worker
from server.db import atomic
from server.notifications import Activity, record_activity, register_target, registry
from server.policy import Actor

PARENT_ID = 7


@dataclass
class FakeTargets:
    """target id -> audience labels; every target's parent is ("test_parent", PARENT_ID)."""

    audiences: dict[int, list[str]] = field(default_factory=dict)
    titles: dict[int, str] = field(default_factory=dict)

    def add(self, target_id: int, audience: list[str] | None = None, title: str = "") -> int:
        self.audiences[target_id] = audience or ["public"]
        self.titles[target_id] = title or f"Target {target_id}"
        return target_id


@pytest.fixture
def targets() -> Iterator[FakeTargets]:
    fake = FakeTargets()

    async def can_read(actor: Actor, target_id: int) -> bool:
        audience = fake.audiences.get(target_id)
        return audience is not None and policy.can_read_audience(actor, audience)

    async def can_read_parent(actor: Actor, parent_id: int) -> bool:
        return parent_id == PARENT_ID

    async def parent(target_id: int) -> tuple[str, int] | None:
        return ("test_parent", PARENT_ID) if target_id in fake.audiences else None

    async def describe(ids: list[int]) -> dict[int, tuple[str, str]]:
        return {i: (fake.titles[i], f"/test/{i}") for i in ids if i in fake.titles}

    register_target("test_target", can_read, parent=parent, describe=describe)
    register_target("test_parent", can_read_parent)
    yield fake
    registry.unregister("test_target")
    registry.unregister("test_parent")


def activity(actor: Actor, target_id: int, kind: str = "post.created", **fields: object) -> Activity:
    assert actor.user_id is not None
    values: dict[str, object] = {
        "parent_kind": "test_parent",
        "parent_id": PARENT_ID,
        "url": f"/test/{target_id}#p1",
        "title": f"Target {target_id}",
        "excerpt": "What the post says.",
        "audience": ["public"],
        "object_id": 1,
        **fields,
    }
    return Activity(kind=kind, actor_id=actor.user_id, target_kind="test_target", target_id=target_id, **values)  # type: ignore[arg-type]


async def record(item: Activity) -> None:
    """As a feature does: inside its own transaction."""
    async with atomic():
        await record_activity(item)


async def record_and_run(item: Activity) -> None:
    await record(item)
    await jobs.run_pending("test-worker")
