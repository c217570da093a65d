"""JSON API bodies for tickets and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Body = Annotated[str, msgspec.Meta(max_length=70_000)]  # the renderer's own limit (64 KiB) answers 413
Tags = Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=20)]
Choice = Annotated[str, msgspec.Meta(max_length=20)]


class TicketCreate(msgspec.Struct, forbid_unknown_fields=True):
    subject: Subject
    body: Body
    priority: Choice = "normal"
    tags: Tags = msgspec.field(default_factory=list)
    custom_fields: dict[str, Any] = msgspec.field(default_factory=dict)


class TicketUpdate(msgspec.Struct, forbid_unknown_fields=True):
    version: int  # the version you read: a newer stored version answers 409
    status: Choice | UnsetType = UNSET
    priority: Choice | UnsetType = UNSET
    type: Choice | UnsetType = UNSET
    group_id: int | None | UnsetType = UNSET
    assignee_id: int | None | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    custom_fields: dict[str, Any] | UnsetType = UNSET


class MessageCreate(msgspec.Struct, forbid_unknown_fields=True):
    body: Body
    internal: bool = False


class CsatOut(msgspec.Struct):
    rating: str  # "good", "bad", or "" when asked and not answered yet
    comment: str
    asked_at: datetime
    rated_at: datetime | None


class TicketOut(msgspec.Struct):
    id: int
    url: str
    subject: str
    status: str
    priority: str
    type: str
    channel: str
    requester_id: int
    requester_name: str
    organisation_id: int | None
    group_id: int | None  # these four are null for customers: the desk's internals are for agents
    assignee_id: int | None
    tags: list[str]
    custom_fields: dict[str, str]
    version: int  # send it back with PATCH
    created_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    merged_into: int | None
    csat: CsatOut | None = None  # the requester's satisfaction rating: agents, GET of one ticket


class TicketList(msgspec.Struct):
    items: list[TicketOut]
    next_cursor: str  # pass as `cursor` for the next page; empty on the last page


class MessageOut(msgspec.Struct):
    id: int
    kind: str  # "public" or (agents only) "internal"
    author_id: int | None
    author_name: str
    body: str
    body_html: str
    created_at: datetime
    attachments: list[str]  # download URLs


class MessageList(msgspec.Struct):
    items: list[MessageOut]


class ChangeOut(msgspec.Struct):
    by: str
    at: datetime
    changes: list[dict[str, Any]]


class ConflictOut(msgspec.Struct):
    status_code: int
    detail: str
    current: TicketOut
    changes: list[ChangeOut]
