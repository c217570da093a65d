"""Importing this module registers every feature's job handlers and search document types.

The web app and the worker both import it, so a job enqueued by one is understood by the other.
"""

from server import mail  # noqa: F401 - mail.send
from server.kb import search as kb_search  # noqa: F401 - the "kb" search document type
from server.search import sync  # noqa: F401 - search.sync, search.settings
