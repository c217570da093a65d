"""JSON API bodies for the forum."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Body = Annotated[str, msgspec.Meta(max_length=70_000)]  # the renderer's own limit (64 KiB) answers 413
Tags = Annotated[list[Annotated[str, msgspec.Meta(max_length=30)]], msgspec.Meta(max_length=5)]


class ThreadCreate(msgspec.Struct, forbid_unknown_fields=True):
    category: Annotated[str, msgspec.Meta(max_length=80)]  # the category's slug
    title: Title
    body: Body
    tags: Tags = msgspec.field(default_factory=list)


class PostCreate(msgspec.Struct, forbid_unknown_fields=True):
    body: Body
    reply_to: int | None = None  # the number of the post answered (1 = the first post)


class PostUpdate(msgspec.Struct, forbid_unknown_fields=True):
    body: Body
    version: int  # the version you read: a newer stored version answers 409


class PostOut(msgspec.Struct):
    id: int
    thread_id: int
    number: int
    author_id: int | None
    author_name: str
    author_username: str | None
    body: str  # Markdown source ("" when deleted)
    body_html: str
    reply_to: int | None
    reactions: dict[str, int]
    version: int
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    accepted: bool
    url: str


class ThreadSummary(msgspec.Struct):
    id: int
    title: str
    url: str
    category: str
    tags: list[str]
    author_name: str
    created_at: datetime
    last_posted_at: datetime
    post_count: int
    reply_count: int
    solved: bool
    locked: bool
    pinned: bool


class ThreadList(msgspec.Struct):
    items: list[ThreadSummary]
    next_cursor: str | None


class ThreadOut(msgspec.Struct):
    id: int
    title: str
    url: str
    category: str
    tags: list[str]
    author_id: int | None
    author_name: str
    created_at: datetime
    last_posted_at: datetime
    post_count: int
    solved: bool
    locked: bool
    accepted_post_id: int | None
    page: int
    pages: int
    posts: list[PostOut]


class ConflictOut(msgspec.Struct):
    status_code: int
    detail: str
    current_version: int
    current_body: str


class ReactionsOut(msgspec.Struct):
    post_id: int
    reactions: dict[str, int]
