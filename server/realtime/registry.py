"""What features register: topic kinds (who may subscribe), event renderers and typing renderers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from server.policy import Actor

Authorize = Callable[[Actor, int], Awaitable[str | None]]
"""(actor, object id) -> the actor's audience group for that object, or None to refuse."""

Render = Callable[[dict[str, Any], str, str], Awaitable[str]]
"""(payload, audience group, locale) -> HTML fragment; "" sends nothing to that group."""

TypingRender = Callable[[str, int, str], Awaitable[str]]
"""(channel, number of other people typing, locale) -> HTML fragment for the indicator."""

CHANNEL_RE = re.compile(r"^([a-z][a-z0-9_]{0,31}):([0-9]{1,18})$")
EVENT_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

_topics: dict[str, Authorize] = {}
_events: dict[str, Render] = {}
_typing: dict[str, TypingRender] = {}


def register_topic(kind: str, authorize: Authorize) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", kind):
        raise ValueError(f"bad topic kind {kind!r}: lowercase letters, digits and _")
    _topics[kind] = authorize


def register_event(name: str, render: Render) -> None:
    if not EVENT_RE.match(name):
        raise ValueError(f"bad event name {name!r}")
    _events[name] = render


def register_typing(kind: str, render: TypingRender) -> None:
    """Replace the default "N people are replying" indicator of one topic kind."""
    _typing[kind] = render


def channel_name(kind: str, object_id: int) -> str:
    return f"{kind}:{object_id}"


def parse_channel(channel: str) -> tuple[str, int] | None:
    """`("thread", 42)` for "thread:42"; None when malformed or of an unregistered kind."""
    match = CHANNEL_RE.match(channel)
    if match is None or match.group(1) not in _topics:
        return None
    return match.group(1), int(match.group(2))


def topic_authorizer(kind: str) -> Authorize | None:
    return _topics.get(kind)


def event_renderer(name: str) -> Render | None:
    return _events.get(name)


def typing_renderer(kind: str) -> TypingRender | None:
    return _typing.get(kind)
