"""The shell answers and health reports its parts."""

from litestar.testing import AsyncTestClient

from server import jobs
from server.search.client import search_status
from tests.conftest import _free_port


async def test_home_renders_nav(client: AsyncTestClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    for label in ("Help Center", "Community", "Guides", "Perks", "My tickets"):
        assert label in response.text
    assert "Desk" not in response.text  # anonymous visitors get no staff areas


async def test_healthz_ok_with_meilisearch_and_worker(client: AsyncTestClient, meili_server: str) -> None:
    await jobs.beat("test-worker")
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "db": "ok", "search": "ok", "worker": "ok"}


async def test_healthz_without_worker_says_so(client: AsyncTestClient) -> None:
    body = (await client.get("/healthz")).json()
    assert body["db"] == "ok" and body["worker"] == "down"


async def test_search_degraded_when_meilisearch_unreachable() -> None:
    assert await search_status(f"http://127.0.0.1:{_free_port()}") == "degraded"


async def test_unknown_page_is_a_friendly_404(client: AsyncTestClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert "Traceback" not in response.text


async def test_security_headers_on_pages(client: AsyncTestClient) -> None:
    response = await client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert len(response.headers["x-request-id"]) >= 8
