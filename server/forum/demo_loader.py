"""Loads the demo community (server/forum/demo/, format in the folder's files) through the forum
services, so demo content passes the same checks and makes the same search, realtime and
notification side effects as posts made in the app.

Idempotent: users are matched by email, categories by slug and threads by (category, title);
only what is missing is created, so running the seed again changes nothing. Threads are
back-dated (`days_ago`, replies `hours_after` the previous post); reactions come from other
demo members, as many as asked for (as far as there are members to give them).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from server.accounts.auth import load_actor, utcnow
from server.accounts.services import create_user
from server.accounts.tables import User
from server.accounts.usernames import backfill_usernames
from server.db import atomic
from server.forum import queries, services
from server.forum.tables import ForumCategory, ForumThread
from server.policy import Actor

DEMO_DIR = Path(__file__).resolve().parent / "demo"
SYSTEM = Actor(roles=frozenset({"admin"}))
DEFAULT_HOURS_BETWEEN_POSTS = 2.0


@dataclass
class LoadReport:
    users: int = 0
    categories: int = 0
    threads: int = 0
    replies: int = 0


def _read(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


async def _load_users(directory: Path, password: str, report: LoadReport) -> None:
    path = directory / "users.toml"
    if not path.exists():
        return
    for user in _read(path).get("user", []):
        email = user["email"].strip().lower()
        if not await User.exists().where(User.email == email):
            await create_user(email, password, user["name"], [], locale=user.get("locale", "en"))
            report.users += 1


async def _load_categories(directory: Path, report: LoadReport) -> dict[str, int]:
    path = directory / "categories.toml"
    if path.exists():
        for category in _read(path).get("category", []):
            if not await ForumCategory.exists().where(ForumCategory.slug == category["slug"]):
                await services.save_category(SYSTEM, None, services.CategoryInput(**category))
                report.categories += 1
    queries.clear_cache()
    return {row["slug"]: row["id"] for row in await ForumCategory.select(ForumCategory.slug, ForumCategory.id)}


class _People:
    """Actors by email, loaded once each."""

    def __init__(self) -> None:
        self._by_email: dict[str, Actor] = {}

    async def get(self, email: str) -> Actor:
        email = email.strip().lower()
        if email not in self._by_email:
            row = await User.select(User.id).where(User.email == email).first()
            actor = await load_actor(row["id"]) if row else None
            if actor is None:
                raise ValueError(f"demo author {email} does not exist (add them to users.toml)")
            self._by_email[email] = actor
        return self._by_email[email]

    async def reactors(self) -> list[Actor]:
        """Every active account, in a fixed order: who gives the demo reactions."""
        rows = await User.select(User.id).where(User.is_active == True).order_by(User.id)  # noqa: E712 - SQL
        found = []
        for row in rows:
            actor = await load_actor(row["id"])
            if actor is not None:
                found.append(actor)
        return found


async def _load_thread(
    data: dict[str, Any], category_id: int, people: _People, reactors: list[Actor], now: datetime, report: LoadReport
) -> None:
    author = await people.get(data["author"])
    moment = min(now - timedelta(days=float(data.get("days_ago", 0))), now)
    thread_id = await services.create_thread(
        author,
        services.NewThread(
            category_id, data["title"], data["body"], list(data.get("tags", [])), locale=data.get("locale")
        ),
        at=moment,
    )
    numbers = [1]  # reply index (0 = first post) -> post number
    posts = [await queries.post_by_number(thread_id, 1)]
    for reply in data.get("reply", []):
        moment = min(moment + timedelta(hours=float(reply.get("hours_after", DEFAULT_HOURS_BETWEEN_POSTS))), now)
        index = reply.get("reply_to")
        target = numbers[index] if isinstance(index, int) and 0 <= index < len(numbers) else None
        replier = await people.get(reply["author"])
        post = await services.create_reply(replier, thread_id, reply["body"], reply_to=target, at=moment)
        numbers.append(post["number"])
        posts.append(post)
        report.replies += 1
        await _react(post, reply.get("reactions", {}), reactors)
    if data.get("reactions"):
        await _react(posts[0], data["reactions"], reactors)
    accepted = data.get("accepted")
    if isinstance(accepted, int) and 1 <= accepted < len(numbers):
        post = posts[accepted]
        category = await queries.category_by_id(category_id)
        if post is not None and category is not None and category["qa"]:
            await services.accept_answer(author, post["id"])
    report.threads += 1


async def _react(post: dict[str, Any] | None, wanted: dict[str, int], reactors: list[Actor]) -> None:
    if post is None:
        return
    others = [a for a in reactors if a.user_id != post["author_id"]]
    for kind, count in wanted.items():
        for actor in others[: max(0, int(count))]:
            try:
                await services.react(actor, post["id"], kind)
            except Exception:  # noqa: S112 - a member who may not read the category just does not react
                continue


async def load_demo_forum(directory: Path = DEMO_DIR, password: str = "") -> LoadReport:
    """Create the demo members, categories and threads that are missing."""
    from server.seed import DEMO_PASSWORD

    report = LoadReport()
    if not directory.exists():
        return report
    await backfill_usernames()
    await _load_users(directory, password or DEMO_PASSWORD, report)
    category_ids = await _load_categories(directory, report)
    people = _People()
    reactors = await people.reactors()
    now = utcnow()
    existing = {
        (row["category"], row["title"]) for row in await ForumThread.select(ForumThread.category, ForumThread.title)
    }
    for path in sorted((directory / "threads").glob("*.toml")):
        data = _read(path)
        category_id = category_ids.get(data["category"])
        if category_id is None:
            raise ValueError(f"{path.name}: unknown category {data['category']!r}")
        title = " ".join(data["title"].split())
        if (category_id, title) in existing:
            continue
        async with atomic():  # one transaction per thread: the services' own ones join it
            await _load_thread(data, category_id, people, reactors, now, report)
        existing.add((category_id, title))
    return report
