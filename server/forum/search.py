"""Forum threads and replies as search documents.

"thread": the title and the first post, one document in the thread's language; "post": each
reply, titled with its thread. Both carry the category's audience, so search shows them only to
those who may read the category. Deleted or hidden content builds no document (= removed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server import policy
from server.forum import queries
from server.forum.tables import ForumPost, ForumThread
from server.forum.urls import thread_url
from server.kb.search import html_text
from server.search import fallback, registry
from server.search.registry import SearchDoc

THREAD_COLUMNS = (
    ForumThread.id,
    ForumThread.title,
    ForumThread.slug,
    ForumThread.locale,
    ForumThread.tags,
    ForumThread.solved,
    ForumThread.score,
    ForumThread.last_posted_at,
    ForumThread.category.as_alias("category_id"),
    ForumThread.first_post_id,
)

POST_COLUMNS = (
    ForumPost.id,
    ForumPost.number,
    ForumPost.body_html,
    ForumPost.locale,
    ForumPost.created_at,
    ForumPost.edited_at,
    ForumPost.reactions,
    ForumPost.thread.as_alias("thread_id"),
    ForumPost.thread.title.as_alias("title"),
    ForumPost.thread.slug.as_alias("slug"),
    ForumPost.thread.tags.as_alias("tags"),
    ForumPost.thread.category.as_alias("category_id"),
    ForumPost.thread.accepted_post_id.as_alias("accepted_post_id"),
)


def _live_thread() -> list[Any]:
    return [ForumThread.deleted_at.is_null(), ForumThread.hidden == False]  # noqa: E712 - SQL


def _live_post() -> list[Any]:
    return [
        ForumPost.deleted_at.is_null(),
        ForumPost.number > 1,
        ForumPost.thread.deleted_at.is_null(),
        ForumPost.thread.hidden == False,  # noqa: E712 - SQL
    ]


async def _categories() -> dict[int, dict[str, Any]]:
    queries.clear_cache()  # the worker must not index with an old audience
    return {c["id"]: c for c in await queries.categories()}


def _facets(category: dict[str, Any], locale: str, tags: list[str], solved: bool) -> dict[str, str | list[str]]:
    return {
        "category": category[f"name_{locale}"] or category["name_en"],
        "tags": list(tags),
        "solved": "yes" if solved else "no",
    }


def _audience(category: dict[str, Any]) -> list[str]:
    return policy.forum_audience(category["audience"], category.get("tiers") or [])


def _thread_doc(row: dict[str, Any], first_html: str, category: dict[str, Any]) -> SearchDoc:
    locale = row["locale"] if row["locale"] in ("en", "ja") else "en"
    return SearchDoc(
        type="thread",
        pk=row["id"],
        locale=locale,
        title=row["title"],
        text=html_text(first_html),
        url=thread_url(row["id"], row["slug"]),
        audience=_audience(category),
        facets=_facets(category, locale, row["tags"], row["solved"]),
        rank=float(row["score"]) + (5.0 if row["solved"] else 0.0),
        updated_at=int(row["last_posted_at"].timestamp()),
    )


def _post_doc(row: dict[str, Any], category: dict[str, Any]) -> SearchDoc:
    locale = row["locale"] if row["locale"] in ("en", "ja") else "en"
    accepted = row["accepted_post_id"] == row["id"]
    return SearchDoc(
        type="post",
        pk=row["id"],
        locale=locale,
        title=row["title"],
        text=html_text(row["body_html"]),
        url=thread_url(row["thread_id"], row["slug"], row["number"]),
        audience=_audience(category),
        facets=_facets(category, locale, row["tags"], accepted),
        rank=float(sum((row["reactions"] or {}).values())) + (10.0 if accepted else 0.0),
        updated_at=int((row["edited_at"] or row["created_at"]).timestamp()),
    )


class ThreadDocuments:
    name = "thread"
    facet_fields = ("category", "tags", "solved")

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        docs: dict[int, list[SearchDoc]] = {pk: [] for pk in pks}
        if not pks:
            return docs
        categories = await _categories()
        rows = (
            await ForumThread.select(*THREAD_COLUMNS)
            .where(ForumThread.id.is_in(list(pks)), *_live_thread())
            .output(load_json=True)
        )
        first = {
            row["id"]: row["body_html"]
            for row in await ForumPost.select(ForumPost.id, ForumPost.body_html).where(
                ForumPost.id.is_in([r["first_post_id"] for r in rows if r["first_post_id"]] or [0])
            )
        }
        for row in rows:
            category = categories.get(row["category_id"])
            if category is not None:
                docs[row["id"]].append(_thread_doc(row, first.get(row["first_post_id"], ""), category))
        return docs

    def all_pks(self) -> AsyncIterator[list[int]]:
        return fallback.id_batches(ForumThread, _live_thread())

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        facets = dict(facets)
        locale = facets.pop("locale", None) or locale
        if set(facets) - set(self.facet_fields):
            return [], 0
        categories = await _categories()
        allowed = [cid for cid, c in categories.items() if _readable(audience, c) and _facet_ok(c, facets)]
        if not allowed:
            return [], 0
        clauses: list[Any] = [*_live_thread(), ForumThread.category.is_in(allowed)]
        if locale:
            clauses.append(ForumThread.locale == locale)
        if "solved" in facets:
            clauses.append(ForumThread.solved == (facets["solved"] == "yes"))
        clauses.extend(fallback.every_term(query, ["forum_thread.title"]))
        total = await ForumThread.count().where(*clauses)
        rows = (
            await ForumThread.select(*THREAD_COLUMNS)
            .where(*clauses)
            .order_by(ForumThread.score, ascending=False)
            .limit(max(1, limit))
            .output(load_json=True)
        )
        if "tags" in facets:
            rows = [r for r in rows if facets["tags"] in r["tags"]]
        return [_thread_doc(row, "", categories[row["category_id"]]) for row in rows], total


class PostDocuments:
    name = "post"
    facet_fields = ("category", "tags", "solved")

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        docs: dict[int, list[SearchDoc]] = {pk: [] for pk in pks}
        if not pks:
            return docs
        categories = await _categories()
        rows = (
            await ForumPost.select(*POST_COLUMNS)
            .where(ForumPost.id.is_in(list(pks)), *_live_post())
            .output(load_json=True)
        )
        for row in rows:
            category = categories.get(row["category_id"])
            if category is not None:
                docs[row["id"]].append(_post_doc(row, category))
        return docs

    def all_pks(self) -> AsyncIterator[list[int]]:
        return fallback.id_batches(ForumPost, [ForumPost.deleted_at.is_null(), ForumPost.number > 1])

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        facets = dict(facets)
        locale = facets.pop("locale", None) or locale
        if set(facets) - set(self.facet_fields) or "solved" in facets or "tags" in facets:
            return [], 0
        categories = await _categories()
        allowed = [cid for cid, c in categories.items() if _readable(audience, c) and _facet_ok(c, facets)]
        if not allowed:
            return [], 0
        clauses: list[Any] = [*_live_post(), ForumPost.thread.category.is_in(allowed)]
        if locale:
            clauses.append(ForumPost.locale == locale)
        clauses.extend(fallback.every_term(query, ["forum_post.body_md"]))
        total = await ForumPost.count().where(*clauses)
        rows = (
            await ForumPost.select(*POST_COLUMNS)
            .where(*clauses)
            .order_by(ForumPost.id, ascending=False)
            .limit(max(1, limit))
            .output(load_json=True)
        )
        return [_post_doc(row, categories[row["category_id"]]) for row in rows], total


def _readable(audience: list[str] | None, category: dict[str, Any]) -> bool:
    return audience is None or bool(set(_audience(category)) & set(audience))


def _facet_ok(category: dict[str, Any], facets: dict[str, str]) -> bool:
    wanted = facets.get("category")
    return wanted is None or wanted in (category["name_en"], category["name_ja"])


threads = registry.register(ThreadDocuments())
posts = registry.register(PostDocuments())
