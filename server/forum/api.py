"""JSON API for the forum (Bearer tokens). Reads follow the same policy as the pages (404 for a
thread the caller may not read); writes answer 403 when not allowed, 409 on an edit conflict,
413 for a post over 64 KiB, 422 for invalid input and 429 when posting too fast."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from server import policy
from server.accounts.auth import CurrentActor
from server.errors import Invalid, NotFound
from server.forum import queries, services
from server.forum.routes import throttle, too_large_message
from server.forum.schemas import (
    ConflictOut,
    PostCreate,
    PostOut,
    PostUpdate,
    ReactionsOut,
    ThreadCreate,
    ThreadList,
    ThreadOut,
    ThreadSummary,
)
from server.forum.tables import REACTIONS
from server.forum.urls import thread_url
from server.i18n import _
from server.markdown import MarkdownTooLarge
from server.policy import Actor, ensure, ensure_signed_in

MAX_LIMIT = 100


def _too_large() -> Response[Any]:
    return Response({"status_code": 413, "detail": too_large_message()}, status_code=413)


def _post_out(row: dict[str, Any], thread: dict[str, Any]) -> PostOut:
    deleted = row["deleted_at"] is not None
    return PostOut(
        id=row["id"],
        thread_id=thread["id"],
        number=row["number"],
        author_id=row["author_id"],
        author_name=row["author_name"] or "",
        author_username=row["author_username"],
        body="" if deleted else row["body_md"],
        body_html="" if deleted else row["body_html"],
        reply_to=row["reply_to_number"],
        reactions=dict(row["reactions"] or {}),
        version=row["version"],
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted=deleted,
        accepted=thread["accepted_post_id"] == row["id"],
        url=thread_url(thread["id"], thread["slug"], row["number"]),
    )


async def _thread_out(actor: Actor, thread_id: int, page: int) -> ThreadOut:
    thread, category = await queries.access_thread(actor, thread_id)
    pages = queries.page_count(thread["post_count"])
    page = min(max(page, 1), pages)
    posts = await queries.posts_page(thread_id, page)
    return ThreadOut(
        id=thread["id"],
        title=thread["title"],
        url=thread_url(thread["id"], thread["slug"]),
        category=category["slug"],
        tags=list(thread["tags"]),
        author_id=thread["author_id"],
        author_name=thread["author_name"] or "",
        created_at=thread["created_at"],
        last_posted_at=thread["last_posted_at"],
        post_count=thread["post_count"],
        solved=thread["solved"],
        locked=thread["locked"],
        accepted_post_id=thread["accepted_post_id"],
        page=page,
        pages=pages,
        posts=[_post_out(p, thread) for p in posts],
    )


@get("/api/v1/forum/threads", tags=["forum"])
async def list_threads(
    actor: CurrentActor,
    category: FromQuery[str] = "",
    filter: FromQuery[str] = "latest",
    period: FromQuery[str] = "all",
    tag: FromQuery[str] = "",
    cursor: FromQuery[str] = "",
    limit: FromQuery[int] = 30,
) -> ThreadList:
    """Threads the caller may read: `filter` latest | top | unanswered | solved | unsolved,
    `period` (top) day | week | month | all; pass `next_cursor` back as `cursor` for more."""
    if filter not in queries.FILTERS:
        raise Invalid({"filter": _("Choose a list from the tabs.")})
    if period not in queries.TOP_PERIODS:
        raise Invalid({"period": _("Choose a period from the list.")})
    category_ids = None
    if category:
        category_ids = [(await queries.access_category(actor, category))["id"]]
    rows, next_cursor = await queries.list_threads(
        actor,
        filter=filter,
        period=period,
        category_ids=category_ids,
        tag=tag.lower() or None,
        cursor=cursor,
        limit=max(1, min(limit, MAX_LIMIT)),
    )
    slugs = {c["id"]: c["slug"] for c in await queries.categories()}
    items = [
        ThreadSummary(
            id=r["id"],
            title=r["title"],
            url=thread_url(r["id"], r["slug"]),
            category=slugs.get(r["category_id"], ""),
            tags=list(r["tags"]),
            author_name=r["author_name"] or "",
            created_at=r["created_at"],
            last_posted_at=r["last_posted_at"],
            post_count=r["post_count"],
            reply_count=r["reply_count"],
            solved=r["solved"],
            locked=r["locked"],
            pinned=r["pinned"],
        )
        for r in rows
    ]
    return ThreadList(items=items, next_cursor=next_cursor)


@get("/api/v1/forum/threads/{thread_id:int}", tags=["forum"])
async def get_thread(actor: CurrentActor, thread_id: FromPath[int], page: FromQuery[int] = 1) -> ThreadOut:
    """One thread with one page (20) of its posts."""
    return await _thread_out(actor, thread_id, page)


@post("/api/v1/forum/threads", tags=["forum"], status_code=201)
async def create_thread(actor: CurrentActor, data: JSONBody[ThreadCreate]) -> ThreadOut | Response[Any]:
    ensure_signed_in(actor)
    category = await queries.category_by_slug(data.category)
    if category is None or not policy.can_read_forum_category(actor, category):
        raise NotFound
    ensure(policy.can_start_forum_thread(actor, category), _("You may not start threads in this category."))
    await throttle(actor)
    try:
        thread_id = await services.create_thread(
            actor, services.NewThread(category_id=category["id"], title=data.title, body=data.body, tags=data.tags)
        )
    except MarkdownTooLarge:
        return _too_large()
    return await _thread_out(actor, thread_id, 1)


@post("/api/v1/forum/threads/{thread_id:int}/posts", tags=["forum"], status_code=201)
async def create_post(
    actor: CurrentActor, thread_id: FromPath[int], data: JSONBody[PostCreate]
) -> PostOut | Response[Any]:
    ensure_signed_in(actor)
    thread, category = await queries.access_thread(actor, thread_id)
    ensure(policy.can_reply_forum(actor, category, thread), _("You may not reply in this thread."))
    await throttle(actor)
    try:
        row = await services.create_reply(actor, thread_id, data.body, reply_to=data.reply_to)
    except MarkdownTooLarge:
        return _too_large()
    return _post_out(row, await queries.get_thread(thread_id) or thread)


async def _patch(actor: Actor, post_id: int, data: PostUpdate) -> PostOut | Response[Any]:
    ensure_signed_in(actor)
    row, thread, _category = await queries.access_post(actor, post_id)
    ensure(policy.can_edit_forum_post(actor, thread, row), _("You may not edit this post."))
    await throttle(actor)
    try:
        saved = await services.edit_post(actor, post_id, data.body, data.version)
    except services.EditConflict as exc:
        conflict = ConflictOut(
            status_code=409,
            detail=_("Someone else changed this post while you were editing. Compare and save again."),
            current_version=exc.current["version"],
            current_body=exc.current["body_md"],
        )
        return Response(conflict, status_code=409)
    except MarkdownTooLarge:
        return _too_large()
    return _post_out(saved, await queries.get_thread(thread["id"]) or thread)


@patch("/api/v1/forum/posts/{post_id:int}", tags=["forum"])
async def update_post(
    actor: CurrentActor, post_id: FromPath[int], data: JSONBody[PostUpdate]
) -> PostOut | Response[Any]:
    """New text for a post; `version` is the one you read (409 with the current text if stale)."""
    return await _patch(actor, post_id, data)


@post("/api/v1/forum/posts/{post_id:int}/accept", tags=["forum"], status_code=200)
async def accept_answer(actor: CurrentActor, post_id: FromPath[int]) -> ThreadOut:
    """Mark a reply as the accepted answer (Q&A categories; the asker or a moderator)."""
    ensure_signed_in(actor)
    row, thread, _category = await queries.access_post(actor, post_id)
    await services.accept_answer(actor, post_id)
    return await _thread_out(actor, thread["id"], queries.page_of(row["number"]))


def _kind(kind: str) -> str:
    if kind not in REACTIONS:
        raise Invalid({"kind": _("Choose a reaction from the list.")})
    return kind


@post("/api/v1/forum/posts/{post_id:int}/reactions/{kind:str}", tags=["forum"], status_code=200)
async def add_reaction(actor: CurrentActor, post_id: FromPath[int], kind: FromPath[str]) -> ReactionsOut:
    ensure_signed_in(actor)
    counts = await services.react(actor, post_id, _kind(kind), on=True)
    return ReactionsOut(post_id=post_id, reactions=counts)


@delete("/api/v1/forum/posts/{post_id:int}/reactions/{kind:str}", tags=["forum"], status_code=200)
async def remove_reaction(actor: CurrentActor, post_id: FromPath[int], kind: FromPath[str]) -> ReactionsOut:
    ensure_signed_in(actor)
    counts = await services.react(actor, post_id, _kind(kind), on=False)
    return ReactionsOut(post_id=post_id, reactions=counts)


api_router = Router(
    path="/",
    route_handlers=[
        list_threads,
        get_thread,
        create_thread,
        create_post,
        update_post,
        accept_answer,
        add_reaction,
        remove_reaction,
    ],
)
