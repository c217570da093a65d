"""JSON API bodies for help-center articles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Body = Annotated[str, msgspec.Meta(max_length=70_000)]  # the renderer's own limit (64 KiB) answers 413
Slug = Annotated[str, msgspec.Meta(max_length=120)]
Labels = Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=20)]
Locale = Annotated[str, msgspec.Meta(max_length=5)]


class ArticleSummary(msgspec.Struct):
    id: int
    slug: str
    url: str
    category: str
    section: str
    locale: str
    title: str
    status: str
    updated_at: datetime


class ArticleList(msgspec.Struct):
    items: list[ArticleSummary]
    total: int
    limit: int
    offset: int


class ArticleOut(msgspec.Struct):
    id: int
    slug: str
    url: str
    category: str
    section: str
    locale: str  # the language shown: the one asked for, or the other when it has no text (fallback)
    fallback: bool
    locales: list[str]
    title: str
    body: str  # Markdown source
    body_html: str  # sanitised HTML
    status: str
    version: int  # send it back with PATCH: a newer stored version answers 409
    visibility: str  # the article's own, or "inherit"
    effective_visibility: str
    tiers: list[str]
    tags: list[str]
    updated_at: datetime
    views: int  # these three are 0 unless the caller may see article feedback (staff)
    helpful_yes: int
    helpful_no: int


class ArticleCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    body: Body
    section: Slug  # the section's slug; the category follows from it
    locale: Locale = "en"
    status: str = "draft"
    visibility: str = "inherit"
    tiers: Labels = msgspec.field(default_factory=list)
    tags: Labels = msgspec.field(default_factory=list)
    slug: Slug = ""
    position: int = 0


class ArticleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    version: int  # of the translation in `locale` you started from (0 to add a translation)
    locale: Locale = "en"
    title: Title | UnsetType = UNSET
    body: Body | UnsetType = UNSET
    section: Slug | UnsetType = UNSET
    status: str | UnsetType = UNSET
    visibility: str | UnsetType = UNSET
    tiers: Labels | UnsetType = UNSET
    tags: Labels | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    position: int | UnsetType = UNSET


class ConflictOut(msgspec.Struct):
    status_code: int
    detail: str
    current_version: int
    current_title: str
    current_body: str
