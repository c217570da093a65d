"""Target kinds ("thread", "category", later "ticket") that people can follow and be told about.

A feature registers each kind once with `can_read`, so nobody subscribes to, or hears about,
something the policy hides from them. `parent` lets a thread inherit its category's level;
`describe` gives titles and links for the preferences page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.policy import Actor

log = logging.getLogger("kizuna.notifications")

CanRead = Callable[[Actor, int], Awaitable[bool]]
Parent = Callable[[int], Awaitable[tuple[str, int] | None]]
Describe = Callable[[list[int]], Awaitable[dict[int, tuple[str, str]]]]  # id -> (title, url)


@dataclass(frozen=True)
class TargetKind:
    kind: str
    can_read: CanRead
    parent: Parent | None = None
    describe: Describe | None = None


_targets: dict[str, TargetKind] = {}


def register(kind: str, can_read: CanRead, *, parent: Parent | None = None, describe: Describe | None = None) -> None:
    _targets[kind] = TargetKind(kind, can_read, parent, describe)


def unregister(kind: str) -> None:
    """For tests that register a kind of their own."""
    _targets.pop(kind, None)


def get(kind: str) -> TargetKind | None:
    return _targets.get(kind)


async def can_read(actor: Actor, kind: str, target_id: int) -> bool:
    """False for an unknown kind: fail closed."""
    target = _targets.get(kind)
    if target is None:
        log.warning("notification target kind %r is not registered", kind)
        return False
    return await target.can_read(actor, target_id)


async def parent_of(kind: str, target_id: int) -> tuple[str, int] | None:
    target = _targets.get(kind)
    if target is None or target.parent is None:
        return None
    return await target.parent(target_id)


async def describe(kind: str, ids: list[int]) -> dict[int, tuple[str, str]]:
    target = _targets.get(kind)
    if target is None or target.describe is None or not ids:
        return {}
    return await target.describe(ids)
