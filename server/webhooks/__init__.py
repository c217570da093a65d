"""Outbound webhooks: admin-configured endpoints that receive signed JSON events.

Services call `emit(...)` (server/webhooks/services.py) inside their own transaction; it
queues one delivery job per matching endpoint, so nothing is sent before commit and nothing is
lost after it. See docs/WEBHOOKS.md.
"""
