"""The demo loader: two fixture threads (not the real demo text), loaded twice."""

from __future__ import annotations

from pathlib import Path

from server.accounts.tables import User
from server.forum import queries
from server.forum.demo_loader import DEMO_DIR, load_demo_forum
from server.forum.tables import ForumCategory, ForumPost, ForumReaction, ForumThread
from tests.factories import make_user

FIXTURE = Path(__file__).parent / "demo_fixture"


async def test_loads_fixture_threads_idempotently() -> None:
    await make_user("admin", email="admin@lumenfold.example", name="Rina Okafor")
    report = await load_demo_forum(FIXTURE, password="a demo password")
    assert (report.users, report.categories, report.threads, report.replies) == (2, 1, 2, 2)
    again = await load_demo_forum(FIXTURE, password="a demo password")
    assert (again.users, again.categories, again.threads, again.replies) == (0, 0, 0, 0)
    assert await ForumCategory.count() == 1 and await ForumThread.count() == 2 and await ForumPost.count() == 4

    thread = await ForumThread.select().where(ForumThread.title == "How do I share a board with a client?").first()
    assert thread["solved"] and thread["post_count"] == 3 and thread["locale"] == "en"
    answer = await queries.post_by_number(thread["id"], 2)
    assert answer is not None and thread["accepted_post_id"] == answer["id"]
    assert answer["reactions"] == {"like": 2, "heart": 1} and await ForumReaction.count() == 3
    assert '<span class="mention">@olivia.bennett</span>' in answer["body_html"]
    third = await queries.post_by_number(thread["id"], 3)
    assert third is not None and third["reply_to_number"] == 2
    assert third["created_at"] > answer["created_at"] > thread["created_at"]
    japanese = await ForumThread.select().where(ForumThread.locale == "ja").first()
    assert japanese["title"] == "同期が遅いときの対処法" and japanese["slug"] == ""
    handles = {r["username"] for r in await User.select(User.username)}
    assert {"kenji.watanabe", "olivia.bennett", "admin"} <= handles


def test_the_real_demo_content_follows_the_format() -> None:
    """Whatever the writer has put in server/forum/demo/ parses and names known categories."""
    import tomllib

    if not (DEMO_DIR / "categories.toml").exists():
        return
    slugs = {c["slug"] for c in tomllib.loads((DEMO_DIR / "categories.toml").read_text())["category"]}
    for path in sorted((DEMO_DIR / "threads").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert data["category"] in slugs, path.name
        assert data["title"].strip() and data["body"].strip(), path.name
