"""Names, checks and conversions for ticket input, shared by services, pages and the API."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from server.desk.tables import CHANNELS, FIELD_TYPES, PRIORITIES, STATUSES, TICKET_TYPES
from server.errors import Invalid
from server.i18n import _, pgettext

MAX_SUBJECT_CHARS = 200
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_FIELD_TEXT_CHARS = 500
TAG_RE = re.compile(r"^[\w][\w.+#-]{0,39}$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def status_labels() -> dict[str, str]:
    return {
        "new": _("New"),
        "open": _("Open"),
        "pending": _("Pending"),
        "on_hold": _("On hold"),
        "solved": _("Solved"),
        "closed": _("Closed"),
    }


# What a requester reads (portal pages and their live updates; the API keeps the real values):
# "on hold" is the team's own state and "new" only means nobody has answered yet, so both read
# "Open"; "pending" waits for the requester, so it says so. As Zendesk shows its end users.
CUSTOMER_STATUS = {"new": "open", "on_hold": "open"}


def customer_status_labels() -> dict[str, str]:
    """Each status's label for the requester, keyed by the real status (see CUSTOMER_STATUS)."""
    labels = status_labels() | {"pending": _("Awaiting your reply")}
    return {status: labels[CUSTOMER_STATUS.get(status, status)] for status in STATUSES}


def requester_status_context() -> dict[str, Any]:
    """What desk/_status.html needs to show the requester's status names and colours."""
    return {"statuses": customer_status_labels(), "status_css": CUSTOMER_STATUS}


def priority_labels() -> dict[str, str]:
    return {"low": _("Low"), "normal": _("Normal"), "high": _("High"), "urgent": _("Urgent")}


def type_labels() -> dict[str, str]:
    return {"question": _("Question"), "incident": _("Incident"), "problem": _("Problem"), "task": _("Task")}


def channel_labels() -> dict[str, str]:
    return {
        "web": _("Web form"),
        "email": pgettext("channel", "Email"),
        "chat": _("Chat"),
        "api": _("API"),
        "forum": _("Forum"),
    }


def field_type_labels() -> dict[str, str]:
    return {
        "text": _("Text"),
        "number": _("Number"),
        "select": _("Drop-down"),
        "checkbox": _("Checkbox"),
        "date": _("Date"),
    }


def field_labels() -> dict[str, str]:
    """Names of the ticket's own fields, for system events and conflicts."""
    return {
        "status": _("Status"),
        "priority": _("Priority"),
        "ticket_type": _("Type"),
        "team": _("Group"),
        "assignee": _("Assignee"),
        "tags": _("Tags"),
        "parent": _("Parent ticket"),
    }


def check_subject(subject: str, errors: dict[str, str]) -> str:
    subject = " ".join(subject.split())
    if not subject:
        errors["subject"] = _("Write a subject.")
    elif len(subject) > MAX_SUBJECT_CHARS:
        errors["subject"] = _("Keep the subject under %(n)s characters.", n=MAX_SUBJECT_CHARS)
    return subject


def check_choice(name: str, value: str, allowed: tuple[str, ...], errors: dict[str, str]) -> None:
    if value not in allowed:
        errors[name] = _("Choose a value from the list.")


def check_status(value: str, errors: dict[str, str]) -> None:
    check_choice("status", value, STATUSES, errors)


def check_priority(value: str, errors: dict[str, str]) -> None:
    check_choice("priority", value, PRIORITIES, errors)


def check_type(value: str, errors: dict[str, str]) -> None:
    check_choice("ticket_type", value, TICKET_TYPES, errors)


def check_channel(value: str) -> None:
    if value not in CHANNELS:
        raise ValueError(f"unknown channel {value!r}")


def clean_tags(tags: list[str] | str, errors: dict[str, str]) -> list[str]:
    """Tags are lower-case words; a string is split on commas and spaces."""
    if isinstance(tags, str):
        tags = re.split(r"[,\s]+", tags)
    cleaned = list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
    if len(cleaned) > MAX_TAGS or any(not TAG_RE.match(t) for t in cleaned):
        errors["tags"] = _(
            "Use at most %(n)s tags of letters, digits, and . + # - (up to 40 characters each).", n=MAX_TAGS
        )
    return cleaned


def check_field_key(key: str, errors: dict[str, str]) -> None:
    if not KEY_RE.match(key):
        errors["key"] = _("Use lower-case letters, digits and underscores, starting with a letter.")


def check_field_type(value: str, errors: dict[str, str]) -> None:
    check_choice("field_type", value, FIELD_TYPES, errors)


def clean_field_value(definition: dict[str, Any], raw: Any, errors: dict[str, str]) -> str:
    """A custom field's value as stored text ("" means empty); errors under `cf_<key>`."""
    name = f"cf_{definition['key']}"
    kind = definition["field_type"]
    if raw is None:
        return ""
    if kind == "checkbox":
        if isinstance(raw, bool):
            return "1" if raw else ""
        return "1" if str(raw).strip().lower() in {"1", "on", "true", "yes"} else ""
    text = str(raw).strip()
    if not text:
        return ""
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            errors[name] = _("Enter a number.")
            return ""
        if number != number or abs(number) > 1e15:  # NaN or absurd
            errors[name] = _("Enter a number.")
            return ""
        return str(int(number)) if number == int(number) else str(number)
    if kind == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            errors[name] = _("Use dates like 2026-12-31.")
            return ""
    if kind == "select":
        if text not in definition.get("options", []):
            errors[name] = _("Choose a value from the list.")
            return ""
        return text
    if len(text) > MAX_FIELD_TEXT_CHARS:
        errors[name] = _("Keep it under %(n)s characters.", n=MAX_FIELD_TEXT_CHARS)
        return ""
    return text


def field_label(definition: dict[str, Any], locale: str) -> str:
    return (definition.get("label_ja") if locale == "ja" else "") or definition["label_en"]


def raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise Invalid(errors)
