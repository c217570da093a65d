"""Reading HTML form posts into plain values."""

from __future__ import annotations

from typing import Any

from litestar import Request


async def form_data(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Text fields of an urlencoded or multipart form, stripped of the CSRF token."""
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key == "_csrf_token" or not isinstance(value, str):
            continue
        values[key] = value
    return values


async def form_list(request: Request[Any, Any, Any], key: str) -> list[str]:
    form = await request.form()
    return [v for v in form.getall(key) if isinstance(v, str)] if key in form else []


def checked(values: dict[str, str], key: str) -> bool:
    return values.get(key) in {"on", "1", "true", "yes"}
