"""The durable event log: what a reconnecting client catches up from (kept about a day)."""

from __future__ import annotations

from piccolo.columns import JSON, Timestamptz, Varchar
from piccolo.table import Table


class RealtimeEvent(Table, tablename="realtime_event"):
    channel = Varchar(length=80, index=True)
    event = Varchar(length=64)
    payload = JSON(default={})
    created_at = Timestamptz(index=True)
