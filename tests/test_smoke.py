"""The shell answers and health reports its parts."""

from litestar.testing import AsyncTestClient


async def test_home_renders_nav(client: AsyncTestClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    for label in ("Help Center", "Community", "Guides", "Perks", "My tickets"):
        assert label in response.text
    assert "Desk" not in response.text  # anonymous visitors get no staff areas


async def test_healthz_reports_db_search_worker(client: AsyncTestClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["db"] == "ok"
    assert body["search"] == "degraded"  # no Meilisearch at MEILI_URL in this test
    assert body["worker"] == "down"


async def test_unknown_page_is_a_friendly_404(client: AsyncTestClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert "Traceback" not in response.text
