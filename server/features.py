"""Importing this module registers every feature's job handlers and search document types.

The web app and the worker both import it, so a job enqueued by one is understood by the other.
"""

from server import mail  # noqa: F401 - mail.send
from server.channels.chat import services as chat_services  # noqa: F401 - chat topics, chat.mirror
from server.channels.email import outbound as email_outbound  # noqa: F401 - mail.ticket
from server.channels.email import processing as email_inbound  # noqa: F401 - email.inbound, email.inbound_sweep
from server.desk import csat as desk_csat  # noqa: F401 - desk.csat_remind
from server.desk import deflection as desk_deflection  # noqa: F401 - desk.deflection_prune
from server.desk import idempotency as desk_idempotency  # noqa: F401 - desk.idempotency_prune
from server.desk import search as desk_search  # noqa: F401 - the "ticket" search document type
from server.desk import services as desk_services  # noqa: F401 - desk.auto_close
from server.desk import sla as desk_sla  # noqa: F401 - desk.sla_check, desk.sla_recompute
from server.forum import categories as forum_categories  # noqa: F401 - forum.category_resync
from server.forum import live as forum_live  # noqa: F401 - the "thread" realtime topic, notification targets
from server.forum import search as forum_search  # noqa: F401 - the "thread" and "post" search types
from server.kb import search as kb_search  # noqa: F401 - the "kb" search document type
from server.notifications import digest as notification_digest  # noqa: F401 - notifications.digest
from server.notifications import fanout as notification_fanout  # noqa: F401 - notifications.fan_out
from server.notifications import live as notification_live  # noqa: F401 - the "user" topic, bell event
from server.realtime import publishing as realtime_publishing  # noqa: F401 - realtime.purge
from server.search import sync  # noqa: F401 - search.sync, search.settings
from server.webhooks import delivery as webhook_delivery  # noqa: F401 - webhooks.deliver, webhooks.prune_log
