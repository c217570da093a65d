"""The webhook fixtures (an admin, a running receiver) for the write-path tests."""

from tests.webhooks.conftest import admin, quick_password_hashing, receiver  # noqa: F401
