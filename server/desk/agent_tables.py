"""Tables of the agents' own workspace: saved views of the queue, and who is looking at which
ticket right now (presence, for collision detection)."""

from piccolo.columns import JSON, ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.accounts.tables import User
from server.desk.tables import DeskGroup, Ticket


class DeskSavedView(Table, tablename="desk_saved_view"):
    """An agent's named list: filters, sort and visible columns. Private to its owner, or shared
    with one of the owner's groups (`team`)."""

    owner = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=80)
    team = ForeignKey(DeskGroup, on_delete=OnDelete.set_null, null=True, index=True)
    # {"status": [...], "priority": [...], "assignee": "me"|"none"|"<id>", "team": "mine"|"none"|"<id>",
    #  "tags": [...], "channel": [...]}
    filters = JSON(default={})
    sort = Varchar(length=20, default="-updated")
    columns = JSON(default=[])
    created_at = Timestamptz()
    updated_at = Timestamptz()


class DeskTicketViewer(Table, tablename="desk_ticket_viewer"):
    """An agent with the ticket open: refreshed by the page's heartbeat, gone when it stops."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    seen_at = Timestamptz(index=True)
