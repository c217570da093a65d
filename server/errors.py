"""Domain errors that services raise and routes turn into responses."""

from __future__ import annotations


class Invalid(Exception):
    """Input that fails validation; `errors` maps field name to a translated message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotFound(Exception):
    """The object does not exist or the actor may not know that it does (same answer)."""
