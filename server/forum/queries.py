"""Reads that forum pages, the API, realtime renderers and search share.

Lists are scoped by the ids of the categories the actor may read (categories are few and kept
in a short per-process cache), so a thread in a category the actor may not read never reaches
a page, a count or the API. Thread pages read one page of posts as a range of post numbers on
the (thread, number) index: the cost of page 500 equals the cost of page 1.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from piccolo.columns.combination import And, Or

from server import policy
from server.errors import NotFound
from server.forum.tables import (
    ForumBookmark,
    ForumCategory,
    ForumPost,
    ForumPostRevision,
    ForumReaction,
    ForumThread,
    ForumThreadRead,
    ForumThreadTag,
)
from server.policy import Actor
from server.prepared import prepared

PAGE_SIZE = 20
LIST_SIZE = 30
CATEGORY_TTL_SECONDS = 5.0
NEW_DAYS = 14
TOP_PERIODS = {"day": 1, "week": 7, "month": 30, "all": None}
FILTERS = ("latest", "top", "unanswered", "solved", "unsolved")

_categories: tuple[float, list[dict[str, Any]]] | None = None


def clear_cache() -> None:
    global _categories
    _categories = None


async def categories() -> list[dict[str, Any]]:
    """Every category in display order (cached for a few seconds per process; forum writes
    that change categories clear it)."""
    global _categories
    moment = time.monotonic()
    if _categories is not None and _categories[0] > moment:
        return _categories[1]
    rows = (
        await ForumCategory.select().order_by(ForumCategory.position).order_by(ForumCategory.id).output(load_json=True)
    )
    _categories = (moment + CATEGORY_TTL_SECONDS, rows)
    return rows


async def category_by_id(category_id: int) -> dict[str, Any] | None:
    return next((c for c in await categories() if c["id"] == category_id), None)


async def category_by_slug(slug: str) -> dict[str, Any] | None:
    return next((c for c in await categories() if c["slug"] == slug), None)


async def readable_categories(actor: Actor) -> list[dict[str, Any]]:
    return [c for c in await categories() if policy.can_read_forum_category(actor, c)]


async def access_category(actor: Actor, slug: str) -> dict[str, Any]:
    category = await category_by_slug(slug)
    if category is None or not policy.can_read_forum_category(actor, category):
        raise NotFound
    return category


THREAD_COLUMNS = (
    *ForumThread.all_columns(exclude=[ForumThread.author, ForumThread.category, ForumThread.last_poster]),
    ForumThread.category.as_alias("category_id"),
    ForumThread.author.as_alias("author_id"),
    ForumThread.author.display_name.as_alias("author_name"),
    ForumThread.author.username.as_alias("author_username"),
)


async def get_thread(thread_id: int) -> dict[str, Any] | None:
    return await ForumThread.select(*THREAD_COLUMNS).where(ForumThread.id == thread_id).output(load_json=True).first()


async def access_thread(actor: Actor, thread_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(thread, category); NotFound when missing, deleted, hidden or in an unreadable category."""
    thread = await get_thread(thread_id)
    if thread is None:
        raise NotFound
    category = await category_by_id(thread["category_id"])
    if category is None or not policy.can_read_forum_thread(actor, category, thread):
        raise NotFound
    return thread, category


POST_COLUMNS = (
    ForumPost.id,
    ForumPost.thread.as_alias("thread_id"),
    ForumPost.number,
    ForumPost.body_md,
    ForumPost.body_html,
    ForumPost.locale,
    ForumPost.reply_to_id,
    ForumPost.reply_to_number,
    ForumPost.reactions,
    ForumPost.version,
    ForumPost.created_at,
    ForumPost.edited_at,
    ForumPost.deleted_at,
    ForumPost.author.as_alias("author_id"),
    ForumPost.author.display_name.as_alias("author_name"),
    ForumPost.author.username.as_alias("author_username"),
)


async def get_post(post_id: int) -> dict[str, Any] | None:
    return await ForumPost.select(*POST_COLUMNS).where(ForumPost.id == post_id).output(load_json=True).first()


async def access_post(actor: Actor, post_id: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(post, thread, category), NotFound as for the thread."""
    post = await get_post(post_id)
    if post is None:
        raise NotFound
    thread, category = await access_thread(actor, post["thread_id"])
    return post, thread, category


async def post_by_number(thread_id: int, number: int) -> dict[str, Any] | None:
    return (
        await ForumPost.select(*POST_COLUMNS)
        .where((ForumPost.thread == thread_id) & (ForumPost.number == number))
        .output(load_json=True)
        .first()
    )


def page_of(number: int) -> int:
    return max(1, (number - 1) // PAGE_SIZE + 1)


def page_count(post_count: int) -> int:
    return max(1, page_of(post_count))


async def posts_page(thread_id: int, page: int) -> list[dict[str, Any]]:
    """One page of posts: numbers ((page-1)*20, page*20], a range scan on (thread, number)."""
    first = (page - 1) * PAGE_SIZE + 1
    return (
        await ForumPost.select(*POST_COLUMNS)
        .where((ForumPost.thread == thread_id) & (ForumPost.number >= first) & (ForumPost.number < first + PAGE_SIZE))
        .order_by(ForumPost.number)
        .output(load_json=True)
    )


async def my_reactions(actor: Actor, post_ids: list[int]) -> set[tuple[int, str]]:
    if not actor.is_authenticated or not post_ids:
        return set()
    rows = await ForumReaction.select(ForumReaction.post, ForumReaction.kind).where(
        (ForumReaction.user == actor.user_id) & ForumReaction.post.is_in(post_ids)
    )
    return {(row["post"], row["kind"]) for row in rows}


async def my_reactions_in(actor: Actor, thread_id: int, first: int, last: int) -> set[tuple[int, str]]:
    """The viewer's reactions on posts first..last of a thread (one query, for a page)."""
    if not actor.is_authenticated:
        return set()
    rows = await ForumReaction.select(ForumReaction.post, ForumReaction.kind).where(
        (ForumReaction.user == actor.user_id)
        & ForumReaction.post.is_in(
            ForumPost.select(ForumPost.id).where(
                (ForumPost.thread == thread_id) & (ForumPost.number >= first) & (ForumPost.number <= last)
            )
        )
    )
    return {(row["post"], row["kind"]) for row in rows}


async def last_read(actor: Actor, thread_id: int) -> int:
    if not actor.is_authenticated:
        return 0
    row = (
        await ForumThreadRead.select(ForumThreadRead.last_read_number)
        .where(ForumThreadRead.key == f"{actor.user_id}:{thread_id}")
        .first()
    )
    return row["last_read_number"] if row else 0


async def is_bookmarked(actor: Actor, thread_id: int) -> bool:
    if not actor.is_authenticated:
        return False
    return await ForumBookmark.exists().where(ForumBookmark.key == f"{actor.user_id}:{thread_id}")


# Lists -------------------------------------------------------------------------------------

LIST_COLUMNS = (
    ForumThread.id,
    ForumThread.title,
    ForumThread.slug,
    ForumThread.locale,
    ForumThread.tags,
    ForumThread.created_at,
    ForumThread.last_posted_at,
    ForumThread.post_count,
    ForumThread.reply_count,
    ForumThread.reaction_count,
    ForumThread.score,
    ForumThread.solved,
    ForumThread.pinned,
    ForumThread.locked,
    ForumThread.hidden,
    ForumThread.view_count,
    ForumThread.category.as_alias("category_id"),
    ForumThread.author.as_alias("author_id"),
    ForumThread.author.display_name.as_alias("author_name"),
    ForumThread.last_poster.display_name.as_alias("last_poster_name"),
)


def encode_cursor(row: dict[str, Any], order: str) -> str:
    if order == "top":
        return f"s{row['score']}_{row['id']}"
    return f"t{int(row['last_posted_at'].timestamp() * 1_000_000)}_{row['id']}"


def _cursor_clause(cursor: str, order: str) -> Any:
    """Keyset: the rows after the last one shown; a malformed cursor starts from the top."""
    try:
        head, _sep, tail = cursor[1:].partition("_")
        value, last_id = int(head), int(tail)
    except ValueError:
        return None
    if order == "top" and cursor.startswith("s"):
        return Or(ForumThread.score < value, And(ForumThread.score == value, ForumThread.id < last_id))
    if order != "top" and cursor.startswith("t"):
        moment = datetime.fromtimestamp(value / 1_000_000).astimezone()
        return Or(
            ForumThread.last_posted_at < moment,
            And(ForumThread.last_posted_at == moment, ForumThread.id < last_id),
        )
    return None


async def list_threads(
    actor: Actor,
    *,
    filter: str = "latest",
    period: str = "all",
    category_ids: list[int] | None = None,
    tag: str | None = None,
    cursor: str = "",
    limit: int = LIST_SIZE,
) -> tuple[list[dict[str, Any]], str | None]:
    """`_list_threads`, shared for a moment by everyone with the same reading scope."""
    from server.forum import cache

    readable = tuple(policy.readable_forum_category_ids(actor, await categories()))
    key = (
        "list",
        readable,
        policy.can_moderate_forum(actor),
        filter,
        period,
        tuple(category_ids or ()),
        tag,
        cursor,
        limit,
    )

    async def load() -> tuple[list[dict[str, Any]], str | None]:
        return await _list_threads(
            actor, filter=filter, period=period, category_ids=category_ids, tag=tag, cursor=cursor, limit=limit
        )

    rows, next_cursor = await cache.cached(key, load)
    return [dict(row) for row in rows], next_cursor  # callers decorate their copy


async def _list_threads(
    actor: Actor,
    *,
    filter: str = "latest",
    period: str = "all",
    category_ids: list[int] | None = None,
    tag: str | None = None,
    cursor: str = "",
    limit: int = LIST_SIZE,
) -> tuple[list[dict[str, Any]], str | None]:
    """Threads the actor may read, newest activity first (or by score for `top`), one page
    after `cursor`; returns (rows, cursor of the next page or None)."""
    every = await categories()
    readable = policy.readable_forum_category_ids(actor, every)
    if category_ids is not None:
        readable = [c for c in readable if c in category_ids]
    if not readable:
        return [], None
    unreadable = [c["id"] for c in every if c["id"] not in readable]
    # `category IN (most of them)` makes SQLite sort every matching thread; naming the few
    # excluded categories instead (or one category, on the (category, last_posted_at) index)
    # lets it walk an index in list order and stop after one page.
    if len(readable) == 1:
        scope = ForumThread.category == readable[0]
    elif unreadable:
        scope = ForumThread.category.not_in(unreadable)
    else:
        scope = None
    clauses: list[Any] = [ForumThread.deleted_at.is_null()] + ([scope] if scope is not None else [])
    if not policy.can_moderate_forum(actor):
        clauses.append(ForumThread.hidden == False)  # noqa: E712 - SQL
    if filter == "unanswered":
        clauses.append(ForumThread.reply_count == 0)
    elif filter == "solved":
        clauses.append(ForumThread.solved == True)  # noqa: E712
    elif filter == "unsolved":
        clauses.append(ForumThread.solved == False)  # noqa: E712
    elif filter == "top" and TOP_PERIODS.get(period):
        since = datetime.now().astimezone() - timedelta(days=TOP_PERIODS[period] or 0)
        clauses.append(ForumThread.created_at >= since)
    if tag:
        clauses.append(
            ForumThread.id.is_in(ForumThreadTag.select(ForumThreadTag.thread).where(ForumThreadTag.tag == tag))
        )
    order = "top" if filter == "top" else "latest"
    if cursor and (after := _cursor_clause(cursor, order)) is not None:
        clauses.append(after)
    query = ForumThread.select(*LIST_COLUMNS).where(*clauses).output(load_json=True)
    if order == "top":
        query = query.order_by(ForumThread.score, ascending=False)
    else:
        query = query.order_by(ForumThread.last_posted_at, ascending=False)
    rows = await query.order_by(ForumThread.id, ascending=False).limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1], order) if more and rows else None)


async def read_marks(actor: Actor, thread_ids: list[int]) -> dict[int, int]:
    """thread id -> last read post number, for the threads this user has opened."""
    if not actor.is_authenticated or not thread_ids:
        return {}
    rows = await ForumThreadRead.select(ForumThreadRead.thread, ForumThreadRead.last_read_number).where(
        (ForumThreadRead.user == actor.user_id) & ForumThreadRead.thread.is_in(thread_ids)
    )
    return {row["thread"]: row["last_read_number"] for row in rows}


def mark_unread(actor: Actor, rows: list[dict[str, Any]], marks: dict[int, int]) -> None:
    """Adds `unread` (posts after the last one read) and `is_new` (recent, never opened)."""
    recent = datetime.now().astimezone() - timedelta(days=NEW_DAYS)
    for row in rows:
        if not actor.is_authenticated:
            row["unread"], row["is_new"] = 0, False
        elif row["id"] in marks:
            row["unread"], row["is_new"] = max(0, row["post_count"] - marks[row["id"]]), False
        else:
            row["unread"], row["is_new"] = 0, row["created_at"] >= recent


async def revisions(post_id: int) -> list[dict[str, Any]]:
    return (
        await ForumPostRevision.select(
            ForumPostRevision.version,
            ForumPostRevision.body_md,
            ForumPostRevision.created_at,
            ForumPostRevision.author.display_name.as_alias("author_name"),
        )
        .where(ForumPostRevision.post == post_id)
        .order_by(ForumPostRevision.version, ascending=False)
    )


async def bookmarked_threads(actor: Actor, limit: int = 100) -> list[dict[str, Any]]:
    """The actor's bookmarked threads that they may still read, newest bookmark first."""
    if not actor.is_authenticated:
        return []
    readable = policy.readable_forum_category_ids(actor, await categories())
    if not readable:
        return []
    marked = ForumBookmark.select(ForumBookmark.thread).where(ForumBookmark.user == actor.user_id)
    return (
        await ForumThread.select(*LIST_COLUMNS)
        .where(ForumThread.id.is_in(marked), ForumThread.category.is_in(readable), ForumThread.deleted_at.is_null())
        .order_by(ForumThread.last_posted_at, ascending=False)
        .limit(limit)
        .output(load_json=True)
    )


RECENT_ACTIVITY = 5


@prepared
def _recent_activity(user_id: Any) -> Any:
    return (
        ForumPost.select(
            ForumPost.id,
            ForumPost.number,
            ForumPost.created_at,
            ForumPost.thread.id.as_alias("thread_id"),
            ForumPost.thread.title.as_alias("title"),
            ForumPost.thread.solved.as_alias("solved"),
        )
        .where(
            (ForumPost.author == user_id)
            & ForumPost.deleted_at.is_null()
            & ForumPost.thread.deleted_at.is_null()
            & (ForumPost.thread.hidden == False)  # noqa: E712 - SQL
        )
        .order_by(ForumPost.created_at, ascending=False)
        .limit(RECENT_ACTIVITY)
    )


async def recent_activity_of(user_id: int) -> list[dict[str, Any]]:
    """A member's latest visible posts (threads started and replies), for staff context such as
    the desk's customer sidebar: deleted posts and hidden or deleted threads are left out."""
    return await _recent_activity(user_id)
