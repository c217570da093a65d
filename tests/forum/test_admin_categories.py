"""Forum categories for administrators: the actions (save, move, delete), the pages under
/admin/community/categories, who may use them, and an audience change reaching search and
subscriptions."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from litestar.exceptions import PermissionDeniedException

from server import jobs, notifications
from server.errors import Invalid, NotFound
from server.forum import categories, queries, services
from server.forum.categories import CategoryInput, CategoryInUse
from server.forum.search import posts, threads
from server.forum.tables import ForumCategory
from server.notifications import registry as targets
from server.policy import ANONYMOUS, Actor
from server.search.sync import SYNC_KIND
from tests.conftest import csrf_token, post_form
from tests.factories import login, make_user
from tests.forum.factories import ADMIN, make_category, make_thread, reply

HTMX = {"HX-Request": "true"}
LIST = "/admin/community/categories"


def _input(**changes: Any) -> CategoryInput:
    values: dict[str, Any] = {"slug": "boards", "name_en": "Boards", "name_ja": "ボード", "colour": "#2F6FDF"}
    return CategoryInput(**{**values, **changes})


def _same(**changes: Any) -> CategoryInput:
    """The "open-talk" category of make_category, with `changes`."""
    return _input(**{"slug": "open-talk", "name_en": "Open-Talk EN", "name_ja": "open-talk 日本語", **changes})


async def _row(category_id: int) -> dict[str, Any]:
    row = await categories.get_category(category_id)
    assert row is not None
    return row


async def _queued(kind: str) -> list[dict[str, Any]]:
    rows = await jobs.Job.select(jobs.Job.payload).where(jobs.Job.kind == kind).order_by(jobs.Job.id)
    return [row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"]) for row in rows]


async def _synced(kind: str) -> set[int]:
    return {int(p["pk"]) for p in await _queued(SYNC_KIND) if p["type"] == kind}


async def _run_resync() -> None:
    """Run the category walk (and whatever else is due); search.sync jobs without a search
    server fail and wait for a retry, which is fine here: we read what they would index."""
    await jobs.run_pending("test")


# Actions -------------------------------------------------------------------------------------


async def test_save_creates_and_updates_with_clean_values() -> None:
    category_id = await categories.save_category(
        ADMIN, None, _input(name_en="  Boards   and cards ", audience="members", tiers=["Gold", "gold", " silver"])
    )
    row = await _row(category_id)
    assert (row["name_en"], row["colour"], row["tiers"], row["qa"]) == (
        "Boards and cards",
        "#2f6fdf",
        ["gold", "silver"],
        False,
    )
    await categories.save_category(
        ADMIN, category_id, _input(audience="public", tiers=["gold"], qa=True, can_start="staff", position=40)
    )
    row = await _row(category_id)
    assert (row["audience"], row["tiers"], row["qa"], row["can_start"], row["position"]) == (
        "public",
        [],
        True,
        "staff",
        40,
    )
    # Pages read the cached category list: the change is there at once.
    assert (await queries.category_by_id(category_id) or {})["qa"] is True


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"name_ja": "  "}, "name_ja"),
        ({"name_en": "x" * 121}, "name_en"),
        ({"description_ja": "説" * 2001}, "description_ja"),
        ({"colour": "red"}, "colour"),
        ({"colour": "#fff"}, "colour"),
        ({"colour": "#12345g"}, "colour"),
        ({"colour": "#2f6fdf;x"}, "colour"),
        ({"audience": "everyone"}, "audience"),
        ({"audience": "members", "tiers": ["not a tier!"]}, "tiers"),
        ({"can_start": "admins"}, "can_start"),
        ({"can_reply": ""}, "can_reply"),
        ({"position": -1}, "position"),
    ],
)
async def test_save_refuses_bad_fields(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        await categories.save_category(ADMIN, None, _input(**changes))
    assert field in caught.value.errors
    assert await ForumCategory.count() == 0


async def test_slug_clash_missing_category_and_non_admins() -> None:
    first = await categories.save_category(ADMIN, None, _input())
    other = await categories.save_category(ADMIN, None, _input(slug="cards"))
    with pytest.raises(Invalid) as caught:
        await categories.save_category(ADMIN, other, _input(slug="boards"))
    assert "slug" in caught.value.errors
    await categories.save_category(ADMIN, first, _input(slug="boards", name_en="Renamed"))  # its own slug: fine
    with pytest.raises(NotFound):
        await categories.save_category(ADMIN, 999_999, _input(slug="ghost"))
    for role in ("moderator", "agent", None):
        actor = Actor(user_id=1, roles=frozenset({role} if role else set()))
        with pytest.raises(PermissionDeniedException):
            await categories.save_category(actor, first, _input())
        with pytest.raises(PermissionDeniedException):
            await categories.move_category(actor, first, 1)
        with pytest.raises(PermissionDeniedException):
            await categories.delete_category(actor, other)


async def test_move_renumbers_the_order() -> None:
    a = await categories.save_category(ADMIN, None, _input(slug="a", position=5))
    b = await categories.save_category(ADMIN, None, _input(slug="b", position=5))
    c = await categories.save_category(ADMIN, None, _input(slug="c", position=7))

    async def order() -> list[tuple[str, int]]:
        return [(r["slug"], r["position"]) for r in await categories.list_categories()]

    await categories.move_category(ADMIN, c, -1)
    assert await order() == [("a", 10), ("c", 20), ("b", 30)]
    await categories.move_category(ADMIN, a, -1)  # already first: stays
    await categories.move_category(ADMIN, a, 1)
    assert await order() == [("c", 10), ("a", 20), ("b", 30)]
    assert [c["slug"] for c in await queries.categories()] == ["c", "a", "b"]  # the cache followed
    with pytest.raises(Invalid):
        await categories.move_category(ADMIN, b, 0)
    with pytest.raises(NotFound):
        await categories.move_category(ADMIN, 999_999, 1)


async def test_delete_only_empty_categories(asker: Actor) -> None:
    empty = await make_category("empty")
    used = await make_category("used")
    thread_id = await make_thread(asker, used)
    with pytest.raises(CategoryInUse) as caught:
        await categories.delete_category(ADMIN, used)
    assert caught.value.threads == 1 and "1" in caught.value.message
    # A deleted thread keeps its row, and so keeps the category.
    await services.delete_post(asker, (await queries.get_thread(thread_id) or {})["first_post_id"])
    with pytest.raises(CategoryInUse):
        await categories.delete_category(ADMIN, used)
    await categories.delete_category(ADMIN, empty)
    assert await categories.get_category(empty) is None and await queries.category_by_id(empty) is None
    with pytest.raises(NotFound):
        await categories.delete_category(ADMIN, empty)
    assert [r["threads"] for r in await categories.list_categories()] == [1]


# An audience change reaches search and subscriptions ------------------------------------------


async def test_audience_change_reindexes_every_thread_and_reply(
    asker: Actor, helper: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(categories, "RESYNC_BATCH", 2)  # several steps of the walk
    category_id = await make_category("open-talk")
    other = await make_category("elsewhere")
    thread_ids = [await make_thread(asker, category_id, f"Question number {n} here") for n in range(3)]
    reply_ids = [(await reply(helper, t, f"Answer to {t}"))["id"] for t in thread_ids for _ in range(2)]
    elsewhere = await make_thread(asker, other, "A thread somewhere else")
    await _run_resync()
    assert (await threads.build(thread_ids[:1]))[thread_ids[0]][0].audience == ["public"]
    await jobs.Job.delete(force=True)

    # Colour, description, order, Q&A: the documents do not change, so nothing is queued.
    await services.save_category(
        ADMIN, category_id, _same(colour="#00aa00", description_en="Chat", position=3, qa=True)
    )
    assert await _queued(categories.RESYNC_KIND) == []
    # A new name is a search facet: queued.
    await services.save_category(ADMIN, category_id, _same(name_en="Open talk"))
    assert [p["kind"] for p in await _queued(categories.RESYNC_KIND)] == ["thread"]
    await _run_resync()
    await jobs.Job.delete(force=True)

    await services.save_category(ADMIN, category_id, _same(audience="staff"))
    assert len(await _queued(categories.RESYNC_KIND)) == 1  # one job in the admin's transaction
    assert await _queued(SYNC_KIND) == []
    await _run_resync()
    assert await _synced("thread") == set(thread_ids) and elsewhere not in await _synced("thread")
    assert await _synced("post") == set(reply_ids)
    for thread_id in thread_ids:
        assert [d.audience for d in (await threads.build([thread_id]))[thread_id]] == [["staff"]]
    for post_id in reply_ids:
        assert [d.audience for d in (await posts.build([post_id]))[post_id]] == [["staff"]]
    assert (await threads.build([elsewhere]))[elsewhere][0].audience == ["public"]

    await services.save_category(ADMIN, category_id, _same(audience="members", tiers=["gold"]))
    await _run_resync()
    assert (await threads.build(thread_ids[:1]))[thread_ids[0]][0].audience == ["tier:gold"]


async def test_audience_change_decides_who_may_subscribe(asker: Actor, helper: Actor) -> None:
    category_id = await make_category("open-talk")
    thread_id = await make_thread(asker, category_id)
    await notifications.set_subscription(helper, "category", category_id, "watching")
    await services.save_category(
        ADMIN, category_id, _input(slug="open-talk", audience="staff", can_start="staff", can_reply="staff")
    )
    agent = await make_user("agent")
    assert not await targets.can_read(helper, "category", category_id)
    assert not await targets.can_read(helper, "thread", thread_id)
    assert await targets.can_read(agent, "category", category_id)
    with pytest.raises(NotFound):
        await notifications.set_subscription(helper, "category", category_id, "watching")
    with pytest.raises(NotFound):
        await notifications.set_subscription(asker, "thread", thread_id, "tracking")
    await notifications.set_subscription(agent, "category", category_id, "watching")
    await services.save_category(ADMIN, category_id, _input(slug="open-talk", audience="signed_in"))
    await notifications.set_subscription(helper, "category", category_id, "tracking")
    assert not await targets.can_read(ANONYMOUS, "category", category_id)


# Pages ---------------------------------------------------------------------------------------


@pytest.fixture
async def admin_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    admin = await make_user("admin", name="Ada Admin")
    assert (await login(client, admin.email)).status_code == 200
    return client


async def test_access_is_for_admins_only(client: httpx.AsyncClient) -> None:
    category_id = await make_category("open-talk")
    paths = [LIST, f"{LIST}/new", f"{LIST}/{category_id}"]
    for path in paths:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    token = await csrf_token(client)
    for path in [f"{LIST}/new", f"{LIST}/{category_id}", f"{LIST}/{category_id}/move", f"{LIST}/{category_id}/delete"]:
        assert (await client.post(path, data={"_csrf_token": token, "direction": "up"})).status_code == 401
    for role in ("customer", "agent", "moderator"):
        user = await make_user(role) if role != "customer" else await make_user()
        await login(client, user.email)
        for path in paths:
            assert (await client.get(path)).status_code == 403
        token = await csrf_token(client, "/profile")
        response = await client.post(f"{LIST}/{category_id}/delete", data={"_csrf_token": token})
        assert response.status_code == 403
        await client.post("/logout", data={"_csrf_token": token})
    assert await categories.get_category(category_id) is not None


async def test_list_shows_each_category(admin_client: httpx.AsyncClient, asker: Actor) -> None:
    qa = await make_category("questions", qa=True, colour="#aa3300")
    await make_category("gold-lounge", audience="members", tiers=["gold"], can_reply="staff")
    await make_thread(asker, qa)
    page = await admin_client.get(LIST)
    assert page.status_code == 200
    text = page.text
    assert 'href="/admin/community/categories"' in text  # the admin nav links here
    assert 'fill="#aa3300"' in text and "Questions EN" in text and "gold-lounge 日本語" in text
    row = text[text.index('id="forum-category-' + str(qa)) :]
    row = row[: row.index("</tr>")]
    assert re.search(r"<td>yes</td>\s*<td>1</td>", row)  # Q&A, one thread
    assert "Members (of the tiers below): gold" in text and "Staff only" in text
    partial = await admin_client.get(LIST, headers=HTMX)
    assert partial.text.lstrip().startswith('<div id="forum-category-admin">') and "<html" not in partial.text


async def test_create_edit_and_field_errors(admin_client: httpx.AsyncClient) -> None:
    form = {
        "slug": "ideas",
        "name_en": "Ideas",
        "name_ja": "アイデア",
        "description_en": "Suggest features",
        "description_ja": "機能の提案",
        "colour": "#123abc",
        "position": "30",
        "audience": "members",
        "tiers": "gold、silver",
        "can_start": "signed_in",
        "can_reply": "staff",
        "qa": "on",
    }
    bad = await post_form(admin_client, f"{LIST}/new", {**form, "colour": "blue", "position": "third"})
    assert bad.status_code == 422
    assert "Use a colour like #2f6fdf." in bad.text and "Use a whole number" in bad.text
    assert 'value="blue"' in bad.text and 'value="Ideas"' in bad.text and "<html" in bad.text
    assert await ForumCategory.count() == 0

    token = await csrf_token(admin_client, f"{LIST}/new")
    partial = await admin_client.post(f"{LIST}/new", data={**form, "name_ja": "", "_csrf_token": token}, headers=HTMX)
    assert partial.status_code == 422 and "<html" not in partial.text
    assert partial.text.lstrip().startswith("<form") and "Enter a name in both languages." in partial.text

    saved = await post_form(admin_client, f"{LIST}/new", form)
    assert saved.status_code == 200 and str(saved.url).endswith(LIST) and "The category is saved." in saved.text
    row = (await categories.list_categories())[0]
    assert (row["slug"], row["colour"], row["tiers"], row["can_reply"], row["qa"], row["position"]) == (
        "ideas", "#123abc", ["gold", "silver"], "staff", True, 30,
    )  # fmt: skip

    edit = await admin_client.get(f"{LIST}/{row['id']}")
    assert edit.status_code == 200 and 'value="gold, silver"' in edit.text and "checked" in edit.text
    token = await csrf_token(admin_client, f"{LIST}/{row['id']}")
    changed = {**form, "audience": "staff", "qa": "", "_csrf_token": token}
    response = await admin_client.post(f"{LIST}/{row['id']}", data=changed, headers=HTMX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == LIST
    row = await _row(row["id"])
    assert (row["audience"], row["tiers"], row["qa"]) == ("staff", [], False)
    assert len(await _queued(categories.RESYNC_KIND)) == 1
    assert (await admin_client.get(f"{LIST}/999999")).status_code == 404
    token = await csrf_token(admin_client, f"{LIST}/new")
    assert (await admin_client.post(f"{LIST}/999999", data={**form, "_csrf_token": token})).status_code == 404


async def test_move_and_delete_from_the_list(admin_client: httpx.AsyncClient, asker: Actor) -> None:
    first = await make_category("first", position=10)
    second = await make_category("second", position=20)
    token = await csrf_token(admin_client, LIST)
    moved = await admin_client.post(
        f"{LIST}/{second}/move", data={"direction": "up", "_csrf_token": token}, headers=HTMX
    )
    assert moved.status_code == 200 and "<html" not in moved.text
    assert moved.text.index("Second EN") < moved.text.index("First EN")
    plain = await admin_client.post(f"{LIST}/{second}/move", data={"direction": "down", "_csrf_token": token})
    assert str(plain.url).endswith(LIST) and plain.text.index("First EN") < plain.text.index("Second EN")

    await make_thread(asker, first)
    refused = await admin_client.post(f"{LIST}/{first}/delete", data={"_csrf_token": token}, headers=HTMX)
    assert refused.status_code == 409 and "still holds 1 threads" in refused.text and "<html" not in refused.text
    refused = await admin_client.post(f"{LIST}/{first}/delete", data={"_csrf_token": token})
    assert refused.status_code == 409 and "still holds 1 threads" in refused.text and "<html" in refused.text
    deleted = await admin_client.post(f"{LIST}/{second}/delete", data={"_csrf_token": token}, headers=HTMX)
    assert deleted.status_code == 200 and "The category is deleted." in deleted.text and "Second EN" not in deleted.text
    assert [r["id"] for r in await categories.list_categories()] == [first]
    missing = await admin_client.post(f"{LIST}/{second}/delete", data={"_csrf_token": token})
    assert missing.status_code == 404


async def test_pages_in_japanese(client: httpx.AsyncClient) -> None:
    admin = await make_user("admin", locale="ja")
    await login(client, admin.email)
    await make_category("open-talk")
    page = await client.get(LIST)
    assert "コミュニティのカテゴリ" in page.text and "新しいカテゴリ" in page.text and "上へ" in page.text
    form = await client.get(f"{LIST}/new")
    assert "読める人" in form.text and "返信できる人" in form.text
