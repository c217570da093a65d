"""Forum actions: start a thread, reply, edit, delete, accept an answer, react, bookmark, read.

Each action is one transaction that checks the policy, changes the rows, and queues its side
effects in the same transaction: search sync (outbox), the realtime event for the thread's
channel (stored, broadcast after commit), and the notification fan-out with the mentioned users
who may read the thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from piccolo.query.functions.aggregate import Count

from server import notifications, policy, realtime
from server.accounts.auth import utcnow
from server.db import atomic
from server.errors import Invalid, NotFound
from server.forum import cache, live, mentions, queries  # noqa: F401 - live registers the realtime events
from server.forum import search as _search  # noqa: F401 - registers the "thread" and "post" search types
from server.forum.categories import CategoryInput, save_category  # noqa: F401 - category actions, re-exported
from server.forum.tables import (
    REACTIONS,
    ForumBookmark,
    ForumCategory,
    ForumPost,
    ForumPostRevision,
    ForumReaction,
    ForumThread,
    ForumThreadRead,
    ForumThreadTag,
)
from server.forum.urls import thread_url
from server.i18n import _
from server.kb.fields import slugify
from server.markdown import render
from server.policy import Actor, ensure, ensure_signed_in
from server.search.sync import enqueue_sync
from server.webhooks import services as webhooks

MIN_TITLE_CHARS = 8
MAX_TITLE_CHARS = 200
MAX_TAGS = 5
TAG_RE = re.compile(r"^[\w][\w.+#-]{0,29}$")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
EXCERPT_CHARS = 200


class EditConflict(Exception):
    """The post changed since the editor opened it; `current` is what is stored now."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__(f"post is now at version {current['version']}")
        self.current = current


def detect_locale(text: str) -> str:
    """Japanese when Japanese characters are a fair share of the letters (a Japanese word in
    an English post does not make it Japanese; one kanji carries more than one Latin letter)."""
    japanese = len(JAPANESE.findall(text))
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "ja" if japanese and japanese * 2 >= latin else "en"


def excerpt(body_md: str) -> str:
    text = " ".join(body_md.split())
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


def clean_tags(tags: list[str], errors: dict[str, str]) -> list[str]:
    cleaned: list[str] = []
    for raw in tags:
        tag = "-".join(raw.strip().lower().split())
        if not tag:
            continue
        if not TAG_RE.match(tag):
            errors["tags"] = _("Tags are single words of letters, digits and - . + # (at most 30 characters).")
            continue
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        errors["tags"] = _("Use at most %(n)s tags.", n=MAX_TAGS)
    return cleaned[:MAX_TAGS]


def _check_body(body: str, errors: dict[str, str]) -> str:
    """Renders the body; MarkdownTooLarge propagates (the caller's 413)."""
    if not body.strip():
        errors["body"] = _("Write something first.")
        return ""
    return render(body)


def _check_title(title: str, errors: dict[str, str]) -> str:
    title = " ".join(title.split())
    if len(title) < MIN_TITLE_CHARS and not JAPANESE.search(title):
        errors["title"] = _("Use a title of at least %(n)s characters that says what it is about.", n=MIN_TITLE_CHARS)
    elif not title:
        errors["title"] = _("Enter a title.")
    elif len(title) > MAX_TITLE_CHARS:
        errors["title"] = _("Use at most %(n)s characters.", n=MAX_TITLE_CHARS)
    return title


async def _mentioned(
    body_md: str, category: dict[str, Any], thread: dict[str, Any], actor: Actor, before: str = ""
) -> tuple[dict[str, int], set[str]]:
    """(newly mentioned readers: handle -> id, every known handle to mark in the HTML)."""
    handles = mentions.handles_in(body_md)
    known = await mentions.resolve(handles)
    old = set(mentions.handles_in(before))
    fresh = [h for h in handles if h not in old]
    readers = await mentions.readers(fresh, category, thread, exclude=actor.user_id)
    return readers, set(known)


def _audience(category: dict[str, Any]) -> list[str]:
    return policy.forum_audience(category["audience"], category.get("tiers") or [])


async def _activity(
    kind: str,
    actor: Actor,
    thread: dict[str, Any],
    category: dict[str, Any],
    *,
    post_id: int | None,
    number: int | None,
    body_md: str,
    mentioned: list[int],
    replied_to: int | None = None,
) -> None:
    await notifications.record_activity(
        notifications.Activity(
            kind=kind,
            actor_id=actor.user_id or 0,
            target_kind="thread",
            target_id=thread["id"],
            parent_kind="category",
            parent_id=category["id"],
            url=thread_url(thread["id"], thread["slug"], number),
            title=thread["title"],
            excerpt=excerpt(body_md),
            audience=_audience(category),
            mentioned_user_ids=mentioned,
            replied_to_user_id=replied_to,
            object_id=post_id,
        )
    )


# Threads and posts ---------------------------------------------------------------------------


@dataclass
class NewThread:
    category_id: int
    title: str
    body: str
    tags: list[str] = field(default_factory=list)
    locale: str | None = None  # detected from the text when not given


async def create_thread(actor: Actor, data: NewThread, *, at: datetime | None = None) -> int:
    """A thread and its first post; the author watches it. `at` back-dates (demo data)."""
    ensure_signed_in(actor)
    errors: dict[str, str] = {}
    title = _check_title(data.title, errors)
    tags = clean_tags(data.tags, errors)
    html = _check_body(data.body, errors)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        category = await queries.category_by_id(data.category_id)
        if category is None or not policy.can_read_forum_category(actor, category):
            raise NotFound
        ensure(policy.can_start_forum_thread(actor, category), _("You may not start threads in this category."))
        if errors:
            raise Invalid(errors)
        moment = at or utcnow()
        locale = data.locale if data.locale in ("en", "ja") else detect_locale(f"{title}\n{data.body}")
        rows = await ForumThread.insert(
            ForumThread(
                category=category["id"],
                title=title,
                slug=slugify(title)[:120] if not JAPANESE.search(title) else "",
                locale=locale,
                author=actor.user_id,
                tags=tags,
                created_at=moment,
                last_posted_at=moment,
                last_poster=actor.user_id,
                post_count=1,
            )
        ).returning(ForumThread.id)
        thread_id = rows[0]["id"]
        thread = {"id": thread_id, "slug": "", "title": title, "author_id": actor.user_id}
        thread["slug"] = slugify(title)[:120] if not JAPANESE.search(title) else ""
        readers, known = await _mentioned(data.body, category, thread, actor)
        post_rows = await ForumPost.insert(
            ForumPost(
                thread=thread_id,
                number=1,
                author=actor.user_id,
                body_md=data.body,
                body_html=mentions.link_mentions(html, known),
                locale=locale,
                created_at=moment,
            )
        ).returning(ForumPost.id)
        post_id = post_rows[0]["id"]
        await ForumThread.update({ForumThread.first_post_id: post_id}).where(ForumThread.id == thread_id)
        if tags:
            await ForumThreadTag.insert(*[ForumThreadTag(thread=thread_id, tag=tag) for tag in tags])
        await ForumCategory.update({ForumCategory.thread_count: ForumCategory.thread_count + 1}).where(
            ForumCategory.id == category["id"]
        )
        await enqueue_sync("thread", thread_id)
        await webhooks.emit("post.created", post_id=post_id)
        await _activity(
            "thread.created",
            actor,
            thread,
            category,
            post_id=post_id,
            number=1,
            body_md=data.body,
            mentioned=list(readers.values()),
        )
        await notifications.subscribe_automatically(actor.user_id or 0, "thread", thread_id, "watching")
        await _mark_read(actor, thread_id, 1)
        tx.on_commit(queries.clear_cache)  # category thread counts
    return thread_id


async def create_reply(
    actor: Actor, thread_id: int, body: str, *, reply_to: int | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """A reply (optionally answering post number `reply_to`); the replier tracks the thread."""
    ensure_signed_in(actor)
    errors: dict[str, str] = {}
    html = _check_body(body, errors)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        thread, category = await queries.access_thread(actor, thread_id)
        ensure(policy.can_reply_forum(actor, category, thread), _("You may not reply in this thread."))
        target = None
        if reply_to:
            target = await queries.post_by_number(thread_id, reply_to)
            if target is None:
                errors["reply_to"] = _("The post you reply to does not exist.")
        if errors:
            raise Invalid(errors)
        moment = at or utcnow()
        counted = (
            await ForumThread.update(
                {
                    ForumThread.post_count: ForumThread.post_count + 1,
                    ForumThread.reply_count: ForumThread.reply_count + 1,
                    ForumThread.score: ForumThread.score + 1,
                    ForumThread.last_posted_at: moment,
                    ForumThread.last_poster: actor.user_id,
                }
            )
            .where(ForumThread.id == thread_id)
            .returning(ForumThread.post_count)
        )
        number = counted[0]["post_count"]
        readers, known = await _mentioned(body, category, thread, actor)
        rows = await ForumPost.insert(
            ForumPost(
                thread=thread_id,
                number=number,
                author=actor.user_id,
                body_md=body,
                body_html=mentions.link_mentions(html, known),
                locale=detect_locale(body),
                reply_to_id=target["id"] if target else None,
                reply_to_number=target["number"] if target else None,
                created_at=moment,
            )
        ).returning(ForumPost.id)
        post_id = rows[0]["id"]
        await enqueue_sync("post", post_id)
        await realtime.publish(tx, f"thread:{thread_id}", "post.created", {"thread_id": thread_id, "post_id": post_id})
        await webhooks.emit("post.created", post_id=post_id)
        await _activity(
            "post.created",
            actor,
            thread,
            category,
            post_id=post_id,
            number=number,
            body_md=body,
            mentioned=list(readers.values()),
            replied_to=target["author_id"] if target and target["author_id"] != actor.user_id else None,
        )
        await notifications.subscribe_automatically(actor.user_id or 0, "thread", thread_id, "tracking")
        await _mark_read(actor, thread_id, number)
    post = await queries.get_post(post_id)
    assert post is not None
    return post


async def edit_post(actor: Actor, post_id: int, body: str, version: int) -> dict[str, Any]:
    """New text for a post; the old text stays in its history. `version` is the one the editor
    started from: a newer stored version raises EditConflict (never a silent overwrite)."""
    ensure_signed_in(actor)
    errors: dict[str, str] = {}
    html = _check_body(body, errors)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        post, thread, category = await queries.access_post(actor, post_id)
        ensure(policy.can_edit_forum_post(actor, thread, post), _("You may not edit this post."))
        if post["deleted_at"] is not None:
            raise Invalid({"body": _("This post was deleted.")})
        if errors:
            raise Invalid(errors)
        if body == post["body_md"]:
            return post  # nothing to overwrite, so no conflict either
        if version != post["version"]:
            raise EditConflict(post)
        moment = utcnow()
        if post["version"] == 1:  # keep the original text as the first entry of the history
            await ForumPostRevision.insert(
                ForumPostRevision(
                    post=post_id,
                    version=1,
                    body_md=post["body_md"],
                    author=post["author_id"],
                    created_at=post["created_at"],
                )
            )
        readers, known = await _mentioned(body, category, thread, actor, before=post["body_md"])
        # The version in the WHERE makes check and write one step against a concurrent edit.
        updated = (
            await ForumPost.update(
                {
                    ForumPost.body_md: body,
                    ForumPost.body_html: mentions.link_mentions(html, known),
                    ForumPost.locale: detect_locale(body),
                    ForumPost.version: version + 1,
                    ForumPost.edited_at: moment,
                }
            )
            .where((ForumPost.id == post_id) & (ForumPost.version == version))
            .returning(ForumPost.id)
        )
        if not updated:
            fresh = await queries.get_post(post_id)
            raise EditConflict(fresh or post)
        await ForumPostRevision.insert(
            ForumPostRevision(post=post_id, version=version + 1, body_md=body, author=actor.user_id, created_at=moment)
        )
        await enqueue_sync(
            "thread" if post["number"] == 1 else "post", thread["id"] if post["number"] == 1 else post_id
        )
        await realtime.publish(
            tx, f"thread:{thread['id']}", "post.edited", {"thread_id": thread["id"], "post_id": post_id}
        )
        if readers:
            await _activity(
                "post.mentioned",
                actor,
                thread,
                category,
                post_id=post_id,
                number=post["number"],
                body_md=body,
                mentioned=list(readers.values()),
            )
    fresh = await queries.get_post(post_id)
    assert fresh is not None
    return fresh


async def delete_post(actor: Actor, post_id: int) -> None:
    """Soft delete: the post keeps its number and shows as deleted. The first post stands for
    the whole thread: its author may delete it only while nobody has replied."""
    ensure_signed_in(actor)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        post, thread, category = await queries.access_post(actor, post_id)
        ensure(policy.can_delete_forum_post(actor, thread, post), _("You may not delete this post."))
        if post["deleted_at"] is not None:
            return
        moment = utcnow()
        if post["number"] == 1:
            if thread["reply_count"] and not policy.can_moderate_forum(actor):
                ensure(False, _("Others have replied: only a moderator can delete this thread now."))
            await ForumPost.update({ForumPost.deleted_at: moment}).where(ForumPost.id == post_id)
            await ForumThread.update({ForumThread.deleted_at: moment}).where(ForumThread.id == thread["id"])
            await ForumCategory.update({ForumCategory.thread_count: ForumCategory.thread_count - 1}).where(
                ForumCategory.id == category["id"]
            )
            await enqueue_sync("thread", thread["id"])
            tx.on_commit(queries.clear_cache)
        else:
            await ForumPost.update({ForumPost.deleted_at: moment}).where(ForumPost.id == post_id)
            changes: dict[Any, Any] = {
                ForumThread.reply_count: ForumThread.reply_count - 1,
                ForumThread.score: ForumThread.score - 1,
            }
            if thread["accepted_post_id"] == post_id:
                changes.update({ForumThread.accepted_post_id: None, ForumThread.solved: False})
                await realtime.publish(
                    tx,
                    f"thread:{thread['id']}",
                    "answer.accepted",
                    {"thread_id": thread["id"], "post_id": None, "previous_id": post_id},
                )
                await enqueue_sync("thread", thread["id"])
            await ForumThread.update(changes).where(ForumThread.id == thread["id"])
            await enqueue_sync("post", post_id)
        await realtime.publish(
            tx, f"thread:{thread['id']}", "post.deleted", {"thread_id": thread["id"], "post_id": post_id}
        )


# Q&A -----------------------------------------------------------------------------------------


async def accept_answer(actor: Actor, post_id: int) -> None:
    ensure_signed_in(actor)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        post, thread, category = await queries.access_post(actor, post_id)
        ensure(policy.can_accept_forum_answer(actor, category, thread), _("Only the asker or a moderator can do that."))
        if post["number"] == 1 or post["deleted_at"] is not None:
            raise Invalid({"post": _("Choose a reply that is not deleted.")})
        if thread["accepted_post_id"] == post_id:
            return
        await ForumThread.update({ForumThread.accepted_post_id: post_id, ForumThread.solved: True}).where(
            ForumThread.id == thread["id"]
        )
        await enqueue_sync("thread", thread["id"])
        await realtime.publish(
            tx,
            f"thread:{thread['id']}",
            "answer.accepted",
            {"thread_id": thread["id"], "post_id": post_id, "previous_id": thread["accepted_post_id"]},
        )
        author = post["author_id"]
        await _activity(
            "answer.accepted",
            actor,
            thread,
            category,
            post_id=post_id,
            number=post["number"],
            body_md=post["body_md"],
            mentioned=[],
            replied_to=author if author != actor.user_id else None,
        )


async def unaccept_answer(actor: Actor, thread_id: int) -> None:
    ensure_signed_in(actor)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        thread, category = await queries.access_thread(actor, thread_id)
        ensure(policy.can_accept_forum_answer(actor, category, thread), _("Only the asker or a moderator can do that."))
        if thread["accepted_post_id"] is None:
            return
        await ForumThread.update({ForumThread.accepted_post_id: None, ForumThread.solved: False}).where(
            ForumThread.id == thread_id
        )
        await enqueue_sync("thread", thread_id)
        await realtime.publish(
            tx,
            f"thread:{thread_id}",
            "answer.accepted",
            {"thread_id": thread_id, "post_id": None, "previous_id": thread["accepted_post_id"]},
        )


# Reactions, bookmarks, reading ---------------------------------------------------------------


async def react(actor: Actor, post_id: int, kind: str, on: bool = True) -> dict[str, int]:
    """Add (or with on=False remove) the actor's reaction of `kind`; returns the post's counts."""
    ensure_signed_in(actor)
    if kind not in REACTIONS:
        raise Invalid({"kind": _("Choose a reaction from the list.")})
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        post, thread, category = await queries.access_post(actor, post_id)
        ensure(policy.can_react_forum(actor, category, thread))
        if post["deleted_at"] is not None:
            raise Invalid({"post": _("This post was deleted.")})
        # Touch the post row first: on PostgreSQL the row lock serialises reactions on one post.
        await ForumPost.update({ForumPost.version: ForumPost.version}).where(ForumPost.id == post_id)
        key = f"{post_id}:{actor.user_id}:{kind}"
        exists = await ForumReaction.exists().where(ForumReaction.key == key)
        if on == exists:
            return dict(post["reactions"] or {})
        if on:
            await ForumReaction.insert(
                ForumReaction(post=post_id, user=actor.user_id, kind=kind, key=key, created_at=utcnow())
            )
        else:
            await ForumReaction.delete().where(ForumReaction.key == key)
        rows = (
            await ForumReaction.select(ForumReaction.kind, Count(alias="n"))
            .where(ForumReaction.post == post_id)
            .group_by(ForumReaction.kind)
        )
        counts = {row["kind"]: row["n"] for row in rows if row["n"]}
        step = 1 if on else -1
        await ForumPost.update({ForumPost.reactions: counts}).where(ForumPost.id == post_id)
        await ForumThread.update(
            {
                ForumThread.reaction_count: ForumThread.reaction_count + step,
                ForumThread.score: ForumThread.score + step,
            }
        ).where(ForumThread.id == thread["id"])
        await realtime.publish(
            tx, f"thread:{thread['id']}", "reaction.changed", {"thread_id": thread["id"], "post_id": post_id}
        )
    return counts


async def bookmark(actor: Actor, thread_id: int, on: bool = True, post_number: int = 1) -> None:
    ensure_signed_in(actor)
    async with atomic():
        await queries.access_thread(actor, thread_id)
        key = f"{actor.user_id}:{thread_id}"
        if not on:
            await ForumBookmark.delete().where(ForumBookmark.key == key)
        elif not await ForumBookmark.exists().where(ForumBookmark.key == key):
            await ForumBookmark.insert(
                ForumBookmark(
                    user=actor.user_id, thread=thread_id, post_number=post_number, key=key, created_at=utcnow()
                )
            )


async def mark_read(actor: Actor, thread_id: int, number: int) -> int:
    """Remember that the actor has read up to post `number` (never moves backwards)."""
    ensure_signed_in(actor)
    async with atomic():
        thread, _category = await queries.access_thread(actor, thread_id)
        return await _mark_read(actor, thread_id, min(max(number, 0), thread["post_count"]))


async def _mark_read(actor: Actor, thread_id: int, number: int) -> int:
    key = f"{actor.user_id}:{thread_id}"
    row = await ForumThreadRead.select(ForumThreadRead.last_read_number).where(ForumThreadRead.key == key).first()
    if row is None:
        await ForumThreadRead.insert(
            ForumThreadRead(user=actor.user_id, thread=thread_id, last_read_number=number, key=key, updated_at=utcnow())
        )
        return number
    if number > row["last_read_number"]:
        await ForumThreadRead.update(
            {ForumThreadRead.last_read_number: number, ForumThreadRead.updated_at: utcnow()}
        ).where(ForumThreadRead.key == key)
        return number
    return row["last_read_number"]
