"""Realtime: channel names, publish-after-commit and the `/live` websocket.

Features call only what is exported here; they never talk to Litestar channels directly.

- A *topic kind* ("thread", "user", "ticket", "desk") is registered once with an `authorize`
  coroutine: given the subscribing actor and the object id it returns the actor's *audience
  group* for that object ("reader", "staff", "self", ...) or None to refuse the subscription.
- An *event name* ("post.created") is registered once with a `render` coroutine that turns the
  stored payload into the HTML fragment (htmx out-of-band swaps) for one audience group and one
  locale ("" sends that group nothing). Fan-out renders once per (group, locale) present among a
  process's subscribers, never per connection.
- `publish(tx, channel, event, payload)` is called inside `atomic()`: the event is stored in the
  same transaction (so a reconnecting client can catch up from its last event id) and broadcast
  after commit; a rollback sends nothing. `publish_ephemeral` is for what is not worth keeping.
- Typing ("N people are replying"): pages send pings (static/js/live.js); each subscriber gets
  the count of *other* people typing in the last few seconds, rendered by `register_typing`'s
  renderer for the kind or the default one into `#live-typing-<kind>-<id>`.

Registration happens at import time in modules listed in server/features.py, so the web
process (which renders) and the worker (which may publish) both know every topic and event.
Design notes: docs/DECISIONS.md ("Realtime").
"""

from __future__ import annotations

from server.realtime.bus import channels_plugin
from server.realtime.hub import default_typing_indicator, typing_element_id
from server.realtime.publishing import SentEvent, capture, current_event_id, publish, publish_ephemeral, purge
from server.realtime.registry import (
    Authorize,
    Render,
    TypingRender,
    channel_name,
    parse_channel,
    register_event,
    register_topic,
    register_typing,
)

__all__ = [
    "Authorize",
    "Render",
    "SentEvent",
    "TypingRender",
    "capture",
    "channel_name",
    "channels_plugin",
    "current_event_id",
    "default_typing_indicator",
    "parse_channel",
    "publish",
    "publish_ephemeral",
    "purge",
    "register_event",
    "register_topic",
    "register_typing",
    "typing_element_id",
]
