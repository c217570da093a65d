"""The one Meilisearch client, created lazily, with compression off (see CONVENTIONS.md)."""

from __future__ import annotations

import httpx

from server.settings import get_settings

HEALTH_TIMEOUT_SECONDS = 1.0


async def search_status() -> str:
    """`ok` when Meilisearch answers its health check, else `degraded` (the DB answers)."""
    settings = get_settings()
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS, headers={"Accept-Encoding": "identity"}) as client:
            response = await client.get(f"{settings.meili_url}/health")
        return "ok" if response.status_code == 200 and response.json().get("status") == "available" else "degraded"
    except (httpx.HTTPError, ValueError):
        return "degraded"
