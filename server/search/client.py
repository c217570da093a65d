"""The HTTP client for Meilisearch, shared per process, with compression off.

Creating an httpx client builds an SSL context (tens of milliseconds), so one client is kept;
`Accept-Encoding: identity` avoids a delayed-ACK stall on compressed replies (CONVENTIONS.md).
"""

from __future__ import annotations

import asyncio

import httpx

from server.settings import get_settings

HEALTH_TIMEOUT_SECONDS = 1.0
# (event loop, client): a client belongs to the loop that made it. Litestar's test client runs
# the app's lifespan on another loop than its requests, so never close another loop's client.
_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None


def http_client() -> httpx.AsyncClient:
    global _client
    loop = asyncio.get_running_loop()
    if _client is None or _client[0] is not loop or _client[1].is_closed:
        _client = (loop, httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS, headers={"Accept-Encoding": "identity"}))
    return _client[1]


async def close_http_client() -> None:
    global _client
    if _client is not None and _client[0] is asyncio.get_running_loop():
        await _client[1].aclose()
        _client = None


async def search_status(url: str | None = None) -> str:
    """`ok` when Meilisearch answers its health check, else `degraded` (the DB answers)."""
    url = url or get_settings().meili_url
    try:
        response = await http_client().get(f"{url}/health")
        return "ok" if response.status_code == 200 and response.json().get("status") == "available" else "degraded"
    except (httpx.HTTPError, ValueError):
        return "degraded"
