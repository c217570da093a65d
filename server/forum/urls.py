"""Addresses of forum pages (shared by services, pages, search and notifications)."""

from __future__ import annotations


def thread_url(thread_id: int, slug: str, number: int | None = None) -> str:
    """The thread's address; with `number` > 1 the address that jumps to that post."""
    if number and number > 1:
        return f"/community/t/{thread_id}/{number}"
    return f"/community/t/{thread_id}-{slug}" if slug else f"/community/t/{thread_id}"


def page_url(thread_id: int, slug: str, page: int) -> str:
    base = thread_url(thread_id, slug)
    return base if page <= 1 else f"{base}?page={page}"
