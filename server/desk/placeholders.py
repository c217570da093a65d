"""Macro placeholders: `{{requester.first_name}}` and friends, replaced by plain substitution.

Macros are written by admins, but the values come from customers (a display name can hold
anything), so nothing here is a template language: a known name is replaced by its value with
Markdown punctuation escaped, an unknown one is left as written for the agent to see.
"""

from __future__ import annotations

import re
import string

PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)*)\s*\}\}")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
NAMES = (
    "requester.first_name",
    "requester.name",
    "requester.email",
    "organisation.name",
    "ticket.id",
    "ticket.subject",
    "agent.first_name",
    "agent.name",
)
_PUNCTUATION = set(string.punctuation)


def first_name(display_name: str) -> str:
    """The first word of a Western name; a Japanese name is used whole (family name first)."""
    name = display_name.strip()
    if not name or JAPANESE.search(name):
        return name
    return name.split()[0]


def escape_markdown(value: str) -> str:
    """Backslash every ASCII punctuation character, so a value is only ever text."""
    value = " ".join(value.split())  # no line breaks: a value cannot start a block
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in value)


def render(body: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return escape_markdown(values[name])

    return PLACEHOLDER_RE.sub(replace, body)
