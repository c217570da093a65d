"""Forum objects for tests, made through the real services."""

from __future__ import annotations

from typing import Any

from server.forum import services
from server.policy import Actor

ADMIN = Actor(roles=frozenset({"admin"}))


async def make_category(slug: str = "general", audience: str = "public", **extra: Any) -> int:
    data = services.CategoryInput(
        slug=slug, name_en=f"{slug.title()} EN", name_ja=f"{slug} 日本語", audience=audience, **extra
    )
    return await services.save_category(ADMIN, None, data)


async def make_thread(
    author: Actor,
    category_id: int,
    title: str = "How do I share a board?",
    body: str = "I want to share my **board** with a client.",
    tags: list[str] | None = None,
) -> int:
    return await services.create_thread(author, services.NewThread(category_id, title, body, tags or []))


async def reply(
    author: Actor, thread_id: int, body: str = "Open the board and press Share.", **kw: Any
) -> dict[str, Any]:
    return await services.create_reply(author, thread_id, body, **kw)
