"""Forum categories: the administrators' actions (create, update, reorder, delete).

A category's audience decides who reads its threads everywhere: lists, thread pages, search,
realtime channels and notification subscriptions. Pages and subscriptions read the category
row (through `queries.categories()`, a cache that every change clears on commit), so they
follow a change at once. Search documents carry the audience, so a change that touches what
documents say (audience, tiers, names) queues one `forum.category_resync` job in the same
transaction; the worker walks the category's threads and then its replies in batches and
queues a search sync for each, one batch per job run, so a category of any size neither
bloats the admin's transaction nor holds one long job.

There is no archive flag: a category that still holds threads (deleted ones included, they
keep their rows) cannot be deleted; move or delete its threads first.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from piccolo.query.functions.aggregate import Count

from server import jobs, policy
from server.accounts.auth import utcnow
from server.db import atomic
from server.errors import Invalid, NotFound
from server.forum import cache, queries
from server.forum.tables import AUDIENCES, POSTERS, ForumCategory, ForumPost, ForumThread
from server.i18n import _
from server.kb import fields
from server.policy import Actor, ensure
from server.search.sync import enqueue_sync

COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
MAX_NAME_CHARS = 120
MAX_DESCRIPTION_CHARS = 2000
MAX_POSITION = 1_000_000
POSITION_STEP = 10
RESYNC_KIND = "forum.category_resync"
RESYNC_BATCH = 500


@dataclass
class CategoryInput:
    slug: str
    name_en: str
    name_ja: str
    description_en: str = ""
    description_ja: str = ""
    colour: str = "#2f6fdf"
    position: int = 0
    audience: str = "public"
    tiers: list[str] = field(default_factory=list)
    can_start: str = "signed_in"
    can_reply: str = "signed_in"
    qa: bool = False


class CategoryInUse(Exception):
    """The category still holds threads (the route's 409)."""

    def __init__(self, threads: int) -> None:
        super().__init__(f"the category holds {threads} threads")
        self.threads = threads

    @property
    def message(self) -> str:
        return _(
            "This category still holds %(n)s threads (deleted ones count too). Move them to another category "
            "or delete them before deleting the category.",
            n=self.threads,
        )


def check_category(data: CategoryInput) -> dict[str, str]:
    """Field errors of a category form (also cleans `data` in place: trimmed text, tiers, colour)."""
    errors: dict[str, str] = {}
    data.slug = data.slug.strip()
    data.name_en = " ".join(data.name_en.split())
    data.name_ja = " ".join(data.name_ja.split())
    data.description_en = data.description_en.strip()
    data.description_ja = data.description_ja.strip()
    data.colour = data.colour.strip().lower()
    if not SLUG_RE.match(data.slug):
        errors["slug"] = _("Use lower-case letters, digits and hyphens (at most %(n)s).", n=80)
    for key in ("name_en", "name_ja"):
        value = getattr(data, key)
        if not value:
            errors[key] = _("Enter a name in both languages.")
        elif len(value) > MAX_NAME_CHARS:
            errors[key] = _("Keep this under %(n)s characters.", n=MAX_NAME_CHARS)
    for key in ("description_en", "description_ja"):
        if len(getattr(data, key)) > MAX_DESCRIPTION_CHARS:
            errors[key] = _("Keep this under %(n)s characters.", n=MAX_DESCRIPTION_CHARS)
    if not COLOUR_RE.match(data.colour):
        errors["colour"] = _("Use a colour like #2f6fdf.")
    if not 0 <= data.position <= MAX_POSITION:
        errors["position"] = _("Use a whole number from 0 to %(n)s.", n=MAX_POSITION)
    if data.audience not in AUDIENCES:
        errors["audience"] = _("Choose an audience from the list.")
    data.tiers = fields.clean_labels(data.tiers, "tiers", errors) if data.audience == "members" else []
    if data.can_start not in POSTERS:
        errors["can_start"] = _("Choose who may post from the list.")
    if data.can_reply not in POSTERS:
        errors["can_reply"] = _("Choose who may post from the list.")
    return errors


# Columns whose change alters the search documents of the category's threads and replies.
_INDEXED = ("audience", "tiers", "name_en", "name_ja")


async def save_category(actor: Actor, category_id: int | None, data: CategoryInput) -> int:
    """Create (category_id None) or update a category; an update that changes its audience or
    names re-indexes its threads and replies (through the outbox)."""
    ensure(policy.can_administer_forum(actor))
    errors = check_category(data)
    if errors:
        raise Invalid(errors)
    values = {
        ForumCategory.slug: data.slug,
        ForumCategory.name_en: data.name_en,
        ForumCategory.name_ja: data.name_ja,
        ForumCategory.description_en: data.description_en,
        ForumCategory.description_ja: data.description_ja,
        ForumCategory.colour: data.colour,
        ForumCategory.position: data.position,
        ForumCategory.audience: data.audience,
        ForumCategory.tiers: list(data.tiers),
        ForumCategory.can_start: data.can_start,
        ForumCategory.can_reply: data.can_reply,
        ForumCategory.qa: data.qa,
    }
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        tx.on_commit(queries.clear_cache)
        clash = ForumCategory.exists().where(ForumCategory.slug == data.slug)
        if category_id is not None:
            clash = clash.where(ForumCategory.id != category_id)
        if await clash:
            raise Invalid({"slug": _("Another category already uses this slug.")})
        if category_id is None:
            rows = await ForumCategory.insert(
                ForumCategory(**{column._meta.name: value for column, value in values.items()}, created_at=utcnow())
            ).returning(ForumCategory.id)
            return int(rows[0]["id"])
        before = await get_category(category_id)
        if before is None:
            raise NotFound
        await ForumCategory.update(values).where(ForumCategory.id == category_id)
        after = {column._meta.name: value for column, value in values.items()}
        if any(before[name] != after[name] for name in _INDEXED):
            await enqueue_resync(category_id)
    return category_id


async def get_category(category_id: int) -> dict[str, Any] | None:
    """The stored row, uncached (the admin pages and the actions that change it)."""
    return await ForumCategory.select().where(ForumCategory.id == category_id).output(load_json=True).first()


async def list_categories() -> list[dict[str, Any]]:
    """Every category in display order, uncached, with `threads`: every thread row it holds
    (deleted ones too: they are what keeps a category from being deleted)."""
    rows = (
        await ForumCategory.select().order_by(ForumCategory.position).order_by(ForumCategory.id).output(load_json=True)
    )
    counts: dict[int, int] = {}
    for row in await ForumThread.select(ForumThread.category, Count(alias="n")).group_by(ForumThread.category):
        counts[int(row["category"])] = int(row["n"])
    for row in rows:
        row["threads"] = counts.get(row["id"], 0)
    return rows


async def move_category(actor: Actor, category_id: int, step: int) -> None:
    """Move a category one place up (step -1) or down (+1) in the display order; every
    position is renumbered 10, 20, 30... so later moves never meet equal positions."""
    ensure(policy.can_administer_forum(actor))
    if step not in (-1, 1):
        raise Invalid({"direction": _("Choose up or down.")})
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        tx.on_commit(queries.clear_cache)
        rows = (
            await ForumCategory.select(ForumCategory.id, ForumCategory.position)
            .order_by(ForumCategory.position)
            .order_by(ForumCategory.id)
        )
        order = [row["id"] for row in rows]
        if category_id not in order:
            raise NotFound
        index = order.index(category_id)
        other = index + step
        if 0 <= other < len(order):
            order[index], order[other] = order[other], order[index]
        current = {row["id"]: row["position"] for row in rows}
        for number, cid in enumerate(order, start=1):
            if current[cid] != number * POSITION_STEP:
                await ForumCategory.update({ForumCategory.position: number * POSITION_STEP}).where(
                    ForumCategory.id == cid
                )


async def delete_category(actor: Actor, category_id: int) -> None:
    """Delete an empty category; one that holds threads raises CategoryInUse (409)."""
    ensure(policy.can_administer_forum(actor))
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        tx.on_commit(queries.clear_cache)
        # Touching the row first: on PostgreSQL its lock makes a concurrent new thread (whose
        # foreign key must share-lock this row) wait for us and then fail, not slip in between.
        touched = (
            await ForumCategory.update({ForumCategory.position: ForumCategory.position})
            .where(ForumCategory.id == category_id)
            .returning(ForumCategory.id)
        )
        if not touched:
            raise NotFound
        threads = await ForumThread.count().where(ForumThread.category == category_id)
        if threads:
            raise CategoryInUse(threads)
        await ForumCategory.delete().where(ForumCategory.id == category_id)


# Re-indexing after an audience change ----------------------------------------------------------


async def enqueue_resync(category_id: int) -> None:
    """Inside the changing transaction: queue the walk over the category's threads and replies."""
    change = secrets.token_hex(8)
    await _enqueue_step(category_id, change, "thread", 0)


async def _enqueue_step(category_id: int, change: str, kind: str, after: int) -> None:
    await jobs.enqueue(
        RESYNC_KIND,
        {"category": category_id, "change": change, "kind": kind, "after": after},
        key=f"{RESYNC_KIND}:{category_id}:{change}:{kind}:{after}",
        max_attempts=jobs.FOREVER,
    )


@jobs.handler(RESYNC_KIND, retry_cap_seconds=15)
async def _resync_step(job: jobs.ClaimedJob) -> None:
    """One batch: queue a search sync for the next RESYNC_BATCH threads (or replies) of the
    category, then the job for the batch after it. Rerunning a step only queues syncs again."""
    category_id = int(job.payload["category"])
    change = str(job.payload["change"])
    kind = str(job.payload["kind"])
    after = int(job.payload["after"])
    # This process (the worker) must judge subscribers and index with the new audience.
    queries.clear_cache()
    cache.clear()
    async with atomic():
        if kind == "thread":
            rows = (
                await ForumThread.select(ForumThread.id)
                .where((ForumThread.category == category_id) & (ForumThread.id > after))
                .order_by(ForumThread.id)
                .limit(RESYNC_BATCH)
            )
        else:
            rows = (
                await ForumPost.select(ForumPost.id)
                .where((ForumPost.thread.category == category_id) & (ForumPost.id > after) & (ForumPost.number > 1))
                .order_by(ForumPost.id)
                .limit(RESYNC_BATCH)
            )
        for row in rows:
            await enqueue_sync(kind, row["id"])
        if len(rows) == RESYNC_BATCH:
            await _enqueue_step(category_id, change, kind, rows[-1]["id"])
        elif kind == "thread":
            await _enqueue_step(category_id, change, "post", 0)
