"""Notifications: who follows what (subscriptions) and what each person was told (notifications).

The email mode (immediate / daily / off) and the "mentions" switch live in the user's
`notification_prefs` (accounts), which the profile page already edits: one source of truth.
"""

from __future__ import annotations

from piccolo.columns import Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.accounts.tables import User


class NotificationSubscription(Table, tablename="notification_subscription"):
    """One row per (user, target); `unique_key` = "user:kind:id" keeps it one (SQLite cannot add
    a composite UNIQUE later). `chosen_by_user` rows are never changed by automatic subscribing."""

    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    target_kind = Varchar(length=32)
    target_id = Integer(index=True)
    level = Varchar(length=10, default="normal")
    chosen_by_user = Boolean(default=False)
    unique_key = Varchar(length=80, unique=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Notification(Table, tablename="notification"):
    """What one recipient was told about one activity. `dedupe_key` ("<activity key>:<recipient>")
    makes a retried fan-out job a no-op. A partial index on unread rows keeps the bell's count cheap."""

    recipient = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=40)  # the activity's kind: "post.created", ...
    reason = Varchar(length=16)  # why this recipient: mention, reply, direct, watching
    actor = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    target_kind = Varchar(length=32)
    target_id = Integer()
    object_id = Integer(null=True, default=None)
    url = Varchar(length=500, default="")
    title = Varchar(length=300, default="")
    excerpt = Text(default="")
    dedupe_key = Varchar(length=200, unique=True)
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)
    emailed_at = Timestamptz(null=True, default=None)  # an immediate mail was queued
    digest_pending = Boolean(default=False)  # waits for the recipient's daily digest
    digested_at = Timestamptz(null=True, default=None)
