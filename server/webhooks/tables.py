"""Webhook tables: endpoints, the events they were sent, and every delivery attempt."""

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.accounts.tables import User

# Delivery outcomes: a row is written `sending` before the request goes out and updated after,
# so an attempt cut short by a dying worker stays visible (and is marked `interrupted` when the
# job runs again).
SENDING, DELIVERED, FAILED, INTERRUPTED = "sending", "delivered", "failed", "interrupted"
OUTCOMES = (SENDING, DELIVERED, FAILED, INTERRUPTED)


class WebhookEndpoint(Table, tablename="webhook_endpoint"):
    """Where events are posted. The secret signs every request (HMAC-SHA256)."""

    url = Varchar(length=500)
    description = Varchar(length=200, default="")
    events = JSON(default=[])  # the event names this endpoint receives
    active = Boolean(default=True)
    secret = Varchar(length=100)
    created_by = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WebhookEvent(Table, tablename="webhook_event"):
    """One event as it is sent: `body` is the exact JSON text, so a retry or a redelivery sends
    the same bytes with the same id."""

    uid = Varchar(length=40, unique=True)  # the public id: Kizuna-Webhook-Id and the body's "id"
    event = Varchar(length=40, index=True)
    body = Text()
    created_at = Timestamptz(index=True)


class WebhookDelivery(Table, tablename="webhook_delivery"):
    """One attempt to deliver one event to one endpoint."""

    endpoint = ForeignKey(WebhookEndpoint, on_delete=OnDelete.cascade, index=True)
    event = ForeignKey(WebhookEvent, on_delete=OnDelete.cascade, index=True)
    job_id = Integer(null=True, default=None, index=True)
    attempt = Integer(default=1)  # the try of its job (a redelivery is a new job: 1 again)
    redelivery = Boolean(default=False)
    outcome = Varchar(length=12, default=SENDING)
    status_code = Integer(null=True, default=None)
    response_excerpt = Text(default="")  # at most 1 KiB of the response body
    error = Text(default="")
    duration_ms = Integer(default=0)
    created_at = Timestamptz(index=True)
