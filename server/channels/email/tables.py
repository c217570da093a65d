"""Mail threading references shared by inbound and outbound mail."""

from piccolo.columns import ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from server.desk.tables import Ticket, TicketMessage


class MailReference(Table, tablename="mail_reference"):
    """Every Message-ID seen (`in`) or sent (`out`) on a ticket: inbound threading matches
    In-Reply-To/References against it, outbound mail builds its References from it."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    ticket_message = ForeignKey(TicketMessage, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    message_id = Varchar(length=998, index=True)  # with its angle brackets, as in the header
    direction = Varchar(length=3)  # "in" or "out"
    created_at = Timestamptz()
