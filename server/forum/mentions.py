"""@mentions: find handles in Markdown, resolve them to users who may read the thread, and mark
them in the stored HTML."""

from __future__ import annotations

import html
import re
from typing import Any

from server import policy
from server.accounts.auth import load_actor
from server.accounts.tables import User

MAX_MENTIONS = 20
HANDLE = r"[a-z0-9](?:[a-z0-9._-]{0,28}[a-z0-9])?"
MENTION_RE = re.compile(rf"(?<![\w@/.])@({HANDLE})", re.IGNORECASE)
_FENCED = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_TAG = re.compile(r"(<[^>]+>)")


def handles_in(body_md: str) -> list[str]:
    """Distinct handles mentioned outside code, in order of first mention, lower-cased."""
    text = _INLINE_CODE.sub(" ", _FENCED.sub(" ", body_md))
    found: list[str] = []
    for match in MENTION_RE.finditer(text):
        handle = match.group(1).lower()
        if handle not in found:
            found.append(handle)
        if len(found) >= MAX_MENTIONS:
            break
    return found


async def resolve(handles: list[str]) -> dict[str, int]:
    """handle -> user id, active users only (the oldest account when two ever shared one)."""
    if not handles:
        return {}
    rows = (
        await User.select(User.id, User.username)
        .where(User.username.is_in(handles) & (User.is_active == True))  # noqa: E712 - SQL
        .order_by(User.id)
    )
    found: dict[str, int] = {}
    for row in rows:
        found.setdefault(row["username"], row["id"])
    return found


async def readers(
    handles: list[str], category: dict[str, Any], thread: dict[str, Any], exclude: int | None
) -> dict[str, int]:
    """The mentioned users who may read the thread (nobody learns of a thread they cannot see)."""
    found = {}
    for handle, user_id in (await resolve(handles)).items():
        if user_id == exclude:
            continue
        actor = await load_actor(user_id)
        if actor is not None and policy.can_read_forum_thread(actor, category, thread):
            found[handle] = user_id
    return found


def link_mentions(body_html: str, known: set[str]) -> str:
    """Wrap known @handles in the sanitised HTML (text outside code and links only)."""
    if not known:
        return body_html
    parts = _TAG.split(body_html)
    depth = 0  # inside <code>, <pre> or <a>
    for i, part in enumerate(parts):
        if i % 2:  # a tag
            name = part[1:].lstrip("/").split(None, 1)[0].rstrip(">").lower() if len(part) > 2 else ""
            if name in ("code", "pre", "a"):
                depth += -1 if part.startswith("</") else 1
            continue
        if depth > 0 or "@" not in part:
            continue

        def wrap(match: re.Match[str]) -> str:
            handle = match.group(1).lower()
            if handle not in known:
                return match.group(0)
            return f'<span class="mention">@{html.escape(handle)}</span>'

        parts[i] = MENTION_RE.sub(wrap, part)
    return "".join(parts)
