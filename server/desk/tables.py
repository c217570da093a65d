"""Ticket desk tables: groups (teams), tickets and their conversation, custom fields, attachments,
macros, API idempotency keys and the web form's deflection events."""

from piccolo.columns import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.accounts.tables import Organisation, User

# Channels a ticket can arrive through. `web` and `api` are built; the others plug in later
# (their adapters call `services.open_ticket` with their channel and `channel_ref`).
CHANNELS = ("web", "email", "chat", "api", "forum")
STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
UNSOLVED = ("new", "open", "pending", "on_hold")
PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_TYPES = ("question", "incident", "problem", "task")
MESSAGE_KINDS = ("public", "internal", "system")
FIELD_TYPES = ("text", "number", "select", "checkbox", "date")


class DeskGroup(Table, tablename="desk_group"):
    """A team of agents that tickets are routed to."""

    name = Varchar(length=80, unique=True)
    description = Text(default="")
    lead = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()


class DeskGroupMember(Table, tablename="desk_group_member"):
    """An agent in a group; services keep (group, user) unique."""

    team = ForeignKey(DeskGroup, on_delete=OnDelete.cascade, index=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)


class Ticket(Table, tablename="ticket"):
    subject = Varchar(length=200)
    # Columns led by an index of their own elsewhere have none here: requester, organisation,
    # status, team and assignee lead the (…, updated_at) indexes of the views, sla_due_at leads
    # (sla_due_at, sla_at_risk_at) (migrations). Each index is one more B-tree write per insert.
    requester = ForeignKey(User, on_delete=OnDelete.restrict)
    organisation = ForeignKey(Organisation, on_delete=OnDelete.set_null, null=True)
    channel = Varchar(length=10, default="web")
    channel_ref = Varchar(length=200, default="")  # the channel's own id (mail thread, chat session)
    status = Varchar(length=10, default="new")
    priority = Varchar(length=10, default="normal")
    ticket_type = Varchar(length=10, default="question")
    team = ForeignKey(DeskGroup, on_delete=OnDelete.set_null, null=True)
    assignee = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    tags = JSON(default=[])
    version = Integer(default=1)  # optimistic lock: a change names the version it started from
    created_at = Timestamptz(index=True)
    updated_at = Timestamptz(index=True)
    solved_at = Timestamptz(null=True, default=None, index=True)
    closed_at = Timestamptz(null=True, default=None)
    first_replied_at = Timestamptz(null=True, default=None)
    merged_into = ForeignKey("self", on_delete=OnDelete.set_null, null=True, index=True)
    parent = ForeignKey("self", on_delete=OnDelete.set_null, null=True, index=True)
    locale = Varchar(length=5, default="en")  # the requester's language when it was opened
    # SLA (server/desk/sla.py): the earliest due instant and at-risk instant of the running targets,
    # NULL when no clock runs; the "SLA at risk or breached" view filters and sorts on them.
    sla_due_at = Timestamptz(null=True, default=None)
    sla_at_risk_at = Timestamptz(null=True, default=None, index=True)


class TicketMessage(Table, tablename="ticket_message"):
    """One entry of the conversation: a public reply, an internal note or a system event."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    kind = Varchar(length=10, default="public")
    body_md = Text(default="")
    body_html = Text(default="")
    # System events: {"changes": [{"field", "from", "to"}], "version": n} or {"event": "merged", ...};
    # described in the reader's language when shown.
    event = JSON(default={})
    channel = Varchar(length=10, default="web")
    created_at = Timestamptz(index=True)


class TicketFollower(Table, tablename="ticket_follower"):
    """People copied on a ticket (CCs); services keep (ticket, user) unique."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    created_at = Timestamptz()


class TicketLink(Table, tablename="ticket_link"):
    """Two related tickets (stored once, lower id first). Parent/child is `Ticket.parent`."""

    source = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    target = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    created_at = Timestamptz()


class DeskField(Table, tablename="desk_field"):
    """An admin-defined ticket field."""

    key = Varchar(length=40, unique=True)
    label_en = Varchar(length=80)
    label_ja = Varchar(length=80, default="")
    field_type = Varchar(length=10, default="text")
    options = JSON(default=[])  # choices of a `select`
    customer_editable = Boolean(default=False)  # asked on the web form, shown to the requester
    position = Integer(default=0)
    active = Boolean(default=True)


class TicketFieldValue(Table, tablename="ticket_field_value"):
    """A custom field's value on a ticket, as text; services keep (ticket, field) unique."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    field = ForeignKey(DeskField, on_delete=OnDelete.cascade, index=True)
    value = Text(default="")


class TicketAttachment(Table, tablename="ticket_attachment"):
    """A file stored under DATA_DIR; readable by whoever may read its message."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    message = ForeignKey(TicketMessage, on_delete=OnDelete.cascade, null=True, index=True)
    uploader = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    filename = Varchar(length=200)
    content_type = Varchar(length=100)
    size_bytes = Integer()
    storage_key = Varchar(length=80, unique=True)
    sha256 = Varchar(length=64)
    created_at = Timestamptz()


class DeskMacro(Table, tablename="desk_macro"):
    """A canned reply with placeholders ({{requester.first_name}}) that may also set fields."""

    name = Varchar(length=120)
    body_md = Text(default="")
    internal = Boolean(default=False)  # adds an internal note instead of a public reply
    # {"status", "priority", "ticket_type", "team", "assignee", "add_tags", "remove_tags"}
    actions = JSON(default={})
    position = Integer(default=0)
    active = Boolean(default=True)
    created_at = Timestamptz()


class DeskIdempotencyKey(Table, tablename="desk_idempotency_key"):
    """The first result of an API POST, replayed when the same user retries with the same key."""

    lookup = Varchar(length=260, unique=True)  # "<user id>:<Idempotency-Key>"
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    fingerprint = Varchar(length=64)  # of method, path and body: a different request is a 422
    status_code = Integer(default=0)
    response = JSON(default={})
    created_at = Timestamptz(index=True)


class DeflectionEvent(Table, tablename="desk_deflection_event"):
    """What the web form showed and what the customer did: `shown` (suggestions), `click`,
    `left` (without submitting) and `submitted`. One form visit shares one `visit` id."""

    visit = Varchar(length=32, index=True)
    kind = Varchar(length=10)
    user = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    query = Varchar(length=200, default="")
    docs = JSON(default=[])  # ["kb:12", "thread:3"]
    ticket = ForeignKey(Ticket, on_delete=OnDelete.set_null, null=True, index=True)
    created_at = Timestamptz(index=True)
