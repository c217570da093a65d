"""Inbound mail: every raw message as it arrived (stored before anything else looks at it),
and the addresses our outbound mail bounced from."""

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.desk.tables import Ticket, TicketMessage

# pending: stored, waiting for the worker; done: a ticket or a reply was made (or a bounce
# recorded); ignored: auto-reply, bulk, our own mail, a duplicate; quarantined: over a limit or
# unusable, kept for an admin; failed: processing raised, an admin may retry.
INBOUND_STATUSES = ("pending", "done", "ignored", "quarantined", "failed")


class InboundMail(Table, tablename="inbound_mail"):
    """One received message. The raw bytes live in a file under DATA_DIR/mail-in named by
    `storage_key`, written and fsynced before this row commits."""

    storage_key = Varchar(length=80)  # "<sha256>" (a truncated over-size message: "<sha256>.head")
    sha256 = Varchar(length=64, index=True)  # of the whole message as received
    size_bytes = Integer()  # of the whole message, even when only its head is kept
    truncated = Boolean(default=False)  # only the first bytes are kept (over the size limit)
    received_at = Timestamptz(index=True)
    source = Varchar(length=8)  # "smtp" or "http"
    envelope_from = Varchar(length=998, default="")
    envelope_to = JSON(default=[])
    message_id = Varchar(length=998, default="", index=True)  # the header, angle brackets kept
    from_address = Varchar(length=254, default="")  # filled in when parsed
    subject = Varchar(length=200, default="")  # filled in when parsed (cut)
    status = Varchar(length=12, default="pending", index=True)
    reason = Text(default="")
    retries = Integer(default=0)  # admin retries: each one is a new processing job
    attempts = Integer(default=0)  # processing runs started (a message that kills the worker fails)
    ticket = ForeignKey(Ticket, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    ticket_message = ForeignKey(TicketMessage, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    processed_at = Timestamptz(null=True, default=None)


class MailBounce(Table, tablename="mail_bounce"):
    """An address a delivery failure report named: mail to it bounces. Its rows are removed when
    the address writes to us again (server/channels/email/bounces.py)."""

    address = Varchar(length=254, index=True)
    ticket = ForeignKey(Ticket, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    inbound = ForeignKey(InboundMail, on_delete=OnDelete.set_null, null=True, default=None)
    reason = Text(default="")
    created_at = Timestamptz()
