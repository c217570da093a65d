"""What happened, as a feature describes it to the notifications package."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Who hears about which kind of activity, besides the people it names (mentioned, replied to,
# `recipient_user_ids`): watchers of the target, and of its parent (the category).
TARGET_WATCHER_KINDS = frozenset({"thread.created", "post.created", "answer.accepted"})
PARENT_WATCHER_KINDS = frozenset({"thread.created", "post.created"})


@dataclass(frozen=True)
class Activity:
    kind: str  # "thread.created", "post.created", "answer.accepted", "reaction.added", ...
    actor_id: int
    target_kind: str  # "thread"
    target_id: int
    parent_kind: str | None = None  # "category": watchers of the parent hear about it too
    parent_id: int | None = None
    url: str = ""
    title: str = ""
    excerpt: str = ""
    audience: list[str] = field(default_factory=list)  # the content's audience labels (policy)
    mentioned_user_ids: list[int] = field(default_factory=list)
    replied_to_user_id: int | None = None
    object_id: int | None = None  # the post, so a notification links to it
    # People the activity is about who are neither mentioned nor replied to: the author of a
    # post that got a reaction, the asker whose question got an accepted answer.
    recipient_user_ids: list[int] = field(default_factory=list)
    # What makes two activities the same one (a retried or repeated call notifies once).
    # Empty: kind, target, object and actor.
    key: str = ""

    @property
    def dedupe_key(self) -> str:
        if self.key:
            return self.key
        return f"{self.kind}:{self.target_kind}:{self.target_id}:{self.object_id or ''}:{self.actor_id}"

    def job_key(self, prefix: str) -> str:
        """The fan-out job's idempotency key: the activity and the people it names."""
        named = sorted({*self.mentioned_user_ids, *self.recipient_user_ids, self.replied_to_user_id or 0})
        digest = hashlib.sha256(f"{self.dedupe_key}|{named}".encode()).hexdigest()[:32]
        return f"{prefix}:{digest}"

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Activity:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})
