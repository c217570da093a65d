"""Helpers that the portal, the desk and the admin pages share: uploads, and system events
described in the reader's language."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile

from server.desk import fields
from server.desk.attachments import MAX_FILE_BYTES, MAX_FILES, Upload
from server.errors import Invalid
from server.i18n import _


async def uploads_from(request: Request[Any, Any, Any], name: str = "attachments") -> list[Upload]:
    """The files of a multipart form (empty file inputs are skipped)."""
    form = await request.form()
    files = [v for v in form.getall(name) if isinstance(v, UploadFile) and v.filename] if name in form else []
    if len(files) > MAX_FILES:
        raise Invalid({"attachments": _("Attach at most %(n)s files.", n=MAX_FILES)})
    uploads = []
    for upload in files:
        data = await upload.read(MAX_FILE_BYTES + 1)
        uploads.append(Upload(upload.filename, data))
    return uploads


def _value(field: str, value: Any, name: str = "") -> str:
    if value in (None, "", []):
        return "—"
    if field == "status":
        return fields.status_labels().get(value, value)
    if field == "priority":
        return fields.priority_labels().get(value, value)
    if field == "ticket_type":
        return fields.type_labels().get(value, value)
    if field == "tags":
        return ", ".join(value)
    if field == "parent":
        return f"#{value}"
    if field in ("team", "assignee"):
        return name or f"#{value}"
    if value == "1" and field.startswith("cf:"):
        return "✓"
    return str(value)


def describe_event(event: dict[str, Any], field_names: dict[str, str] | None = None) -> list[str]:
    """One line per change of a system event, in the current locale."""
    labels = {**fields.field_labels(), **(field_names or {})}
    if "changes" in event:
        lines = []
        for change in event["changes"]:
            field = change.get("field", "")
            label = labels.get(field, field.removeprefix("cf:"))
            before = _value(field, change.get("from"), change.get("from_name", ""))
            after = _value(field, change.get("to"), change.get("to_name", ""))
            lines.append(_("%(field)s: %(before)s → %(after)s", field=label, before=before, after=after))
        return lines
    kind = event.get("event")
    other = event.get("other")
    if kind == "merged_into":
        return [_("Merged into #%(id)s.", id=other)]
    if kind == "merged_from":
        return [_("Ticket #%(id)s was merged into this one.", id=other)]
    if kind == "linked":
        return [_("Linked to #%(id)s as related.", id=other)]
    if kind == "unlinked":
        return [_("No longer related to #%(id)s.", id=other)]
    if kind == "sla_breached":
        from server.desk.sla import describe_breach

        return [describe_breach(event)]
    if kind == "cc_added":
        return [_("%(email)s was copied on this ticket.", email=event.get("email", ""))]
    if kind == "mail_bounced":  # server/channels/email/processing.py
        email, reason = event.get("email", ""), event.get("reason", "")
        return [_("Mail to %(email)s bounced: %(reason)s", email=email, reason=reason)]
    return [_("Updated.")]


def field_names(definitions: list[dict[str, Any]], locale: str) -> dict[str, str]:
    return {f"cf:{d['key']}": fields.field_label(d, locale) for d in definitions}
