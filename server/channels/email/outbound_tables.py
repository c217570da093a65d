"""Outbound ticket mail: one row per (mail, recipient), the state agents see on the ticket."""

from piccolo.columns import Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.desk.tables import Ticket, TicketMessage

# queued: waiting for the worker; sent: the SMTP server accepted it; retrying: the last try
# failed and the worker will try again (with backoff); failed: no tries left; skipped: not sent
# on purpose, `last_error` says why ("bouncing": the address bounces).
DELIVERY_STATUSES = ("queued", "sent", "retrying", "failed", "skipped")


class MailDelivery(Table, tablename="mail_delivery"):
    """One outgoing mail about a ticket to one recipient. `key` is its idempotency key (also
    the job's): queuing the same mail again is a no-op, and the worker never sends a row that
    is already `sent`."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    # The public reply it carries; NULL for automatic mail (acknowledgement, CSAT, notices).
    ticket_message = ForeignKey(TicketMessage, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    recipient = Varchar(length=320)
    message_id = Varchar(length=998)  # with its angle brackets, as in the header
    key = Varchar(length=200, unique=True)
    template = Varchar(length=64, default="")
    automatic = Boolean(default=True)
    status = Varchar(length=10, default="queued")
    attempts = Integer(default=0)
    last_error = Text(default="")
    created_at = Timestamptz()
    updated_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
