"""Desk objects for tests, made through the real services."""

from __future__ import annotations

from typing import Any

from server.desk import queries, services
from server.policy import Actor

ADMIN = Actor(roles=frozenset({"admin"}))


async def make_ticket(
    requester: Actor, subject: str = "Export fails", body: str = "The CSV export stops.", **kw: Any
) -> int:
    return await services.open_ticket(requester, subject, body, **kw)


async def make_group(name: str = "Tier 1", members: list[Actor] | None = None, lead: Actor | None = None) -> int:
    group_id = await services.save_group(
        ADMIN, None, name, "", lead.user_id if lead else None, [m.user_id for m in members or [] if m.user_id]
    )
    queries.clear_reference_cache()  # as the admin routes do after a save
    return group_id


async def make_field(key: str = "plan_code", field_type: str = "text", **kw: Any) -> int:
    data = {"key": key, "label_en": key.replace("_", " ").title(), "label_ja": key, "field_type": field_type, **kw}
    field_id = await services.save_field(ADMIN, None, data)
    queries.clear_reference_cache()
    return field_id


async def make_macro(name: str = "Thanks", body: str = "Hi {{requester.first_name}}, thanks!", **kw: Any) -> int:
    macro_id = await services.save_macro(ADMIN, None, {"name": name, "body_md": body, **kw})
    queries.clear_reference_cache()
    return macro_id
