"""Links between community threads/posts and the tickets made from them."""

from piccolo.columns import ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.accounts.tables import User
from server.desk.tables import Ticket, TicketMessage
from server.forum.tables import ForumPost, ForumThread


class ForumTicketLink(Table, tablename="forum_ticket_link"):
    """A ticket opened from a thread (`post` empty) or from one post of it. `source` is the
    ticket's channel_ref ("thread:<id>" / "post:<id>"), unique: one conversion each."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    thread = ForeignKey(ForumThread, on_delete=OnDelete.cascade, index=True)
    post = ForeignKey(ForumPost, on_delete=OnDelete.cascade, null=True, default=None)
    source = Varchar(length=40, unique=True)
    created_by = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz()


class ForumTicketReply(Table, tablename="forum_ticket_reply"):
    """A ticket reply that was posted back to the thread, as forum post `post` (once per reply)."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    message = ForeignKey(TicketMessage, on_delete=OnDelete.cascade, unique=True)
    post = ForeignKey(ForumPost, on_delete=OnDelete.cascade)
    created_by = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz()
