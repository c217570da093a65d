"""Chat sessions, their messages, and agents' availability."""

from __future__ import annotations

from piccolo.columns import Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.accounts.tables import User
from server.desk.tables import Ticket

STATUSES = ("waiting", "active", "ended")
SIDES = ("customer", "agent", "system")
AVAILABILITY = ("online", "away", "offline")


class ChatSession(Table):
    requester = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    anonymous = Boolean(default=False)  # started without signing in (name + email, a signed cookie)
    visitor_name = Varchar(length=80, default="")
    ticket = ForeignKey(Ticket, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    status = Varchar(length=10, default="waiting", index=True)
    agent = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    locale = Varchar(length=5, default="en")
    source_url = Varchar(length=300, default="")  # the page the widget was on, when known
    agent_seen_message_id = Integer(default=0)  # customer messages up to this id were shown to the agent
    created_at = Timestamptz()
    accepted_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    last_message_at = Timestamptz()


class ChatMessage(Table):
    session = ForeignKey(ChatSession, on_delete=OnDelete.cascade, index=True)
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    side = Varchar(length=10)
    body_md = Text(default="")
    body_html = Text(default="")
    client_ref = Varchar(length=40, default="")  # the sender's retry key: one message per ref
    ticket_message = Integer(null=True, default=None)  # its copy in the ticket (0: not mirrored)
    created_at = Timestamptz()


class ChatAgent(Table):
    user = ForeignKey(User, on_delete=OnDelete.cascade, unique=True, index=True)
    availability = Varchar(length=10, default="offline")
    capacity = Integer(default=3)
    seen_at = Timestamptz()  # the agent's chat pages were open then (online goes stale without it)
