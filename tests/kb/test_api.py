"""The articles JSON API: reading by audience, writing by editors, 409 on stale versions."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.accounts.services import create_api_token
from server.kb.tables import KbArticle
from server.markdown import MAX_SOURCE_BYTES
from server.policy import Actor
from tests.kb.conftest import Place
from tests.kb.factories import make_article, make_section, translate

API = "/api/v1/kb/articles"


async def bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_api_token(actor, 'tests')}"}


async def titles(client: AsyncTestClient, headers: dict[str, str] | None = None, **params: str) -> list[str]:
    response = await client.get(API, params=params, headers=headers or {})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(body["items"])
    return sorted(item["title"] for item in body["items"])


async def test_readers_get_only_what_they_may_read(
    client: AsyncTestClient, editor: Actor, customer: Actor, place: Place
) -> None:
    public = await make_article(editor, place.section_id, "Public")
    ids = {
        v: await make_article(editor, place.section_id, v.title(), visibility=v)
        for v in ("signed_in", "members", "internal")
    }
    draft = await make_article(editor, place.section_id, "Draft", status="draft")
    assert await titles(client) == ["Public"]
    assert await titles(client, await bearer(customer)) == ["Public", "Signed_In"]
    assert await titles(client, await bearer(editor)) == ["Draft", "Internal", "Members", "Public", "Signed_In"]
    for article_id in (*ids.values(), draft, 999):
        assert (await client.get(f"{API}/{article_id}")).status_code == 404
    response = await client.get(f"{API}/{public}")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("title", "locale", "fallback", "status", "version", "visibility", "category")} == {
        "title": "Public",
        "locale": "en",
        "fallback": False,
        "status": "published",
        "version": 1,
        "visibility": "inherit",
        "category": "basics",
    }
    assert body["url"] == f"/help/articles/{public}-public?lang=en" and "<h2" in body["body_html"]


async def test_list_filters_pages_and_checks_the_locale(client: AsyncTestClient, editor: Actor, place: Place) -> None:
    other = await make_section(editor, place.category_id, "second")
    for n in range(3):
        await make_article(editor, place.section_id, f"First {n}", position=n)
    japanese = await make_article(editor, other, "Second")
    await translate(editor, japanese, "二番目")
    assert await titles(client, section="second") == ["Second"]
    assert await titles(client, section="second", locale="ja") == ["二番目"]
    page = (await client.get(API, params={"limit": "2", "offset": "1"})).json()
    assert page["total"] == 4 and [i["title"] for i in page["items"]] == ["First 1", "First 2"]
    assert (await client.get(API, params={"locale": "fr"})).status_code == 422
    assert (await client.get(f"{API}/{japanese}", params={"locale": "xx"})).status_code == 422


async def test_a_missing_translation_falls_back(client: AsyncTestClient, editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "English only")
    body = (await client.get(f"{API}/{article_id}", params={"locale": "ja"})).json()
    assert (body["locale"], body["fallback"], body["locales"], body["title"]) == ("en", True, ["en"], "English only")


async def test_writing_needs_an_editor(client: AsyncTestClient, customer: Actor, place: Place) -> None:
    data = {"title": "Hi", "body": "Text", "section": "first-steps"}
    assert (await client.post(API, json=data)).status_code == 401
    assert (await client.post(API, json=data, headers=await bearer(customer))).status_code == 403
    assert await KbArticle.count() == 0


async def test_create_update_conflict_and_delete(client: AsyncTestClient, editor: Actor, place: Place) -> None:
    auth = await bearer(editor)
    data = {"title": "Webhooks", "body": "## Sign\n\nVerify it.", "section": "first-steps", "status": "published"}
    created = await client.post(API, json={**data, "tags": ["API", "hooks"]}, headers=auth)
    assert created.status_code == 201
    article = created.json()
    assert (article["slug"], article["version"], article["tags"]) == ("webhooks", 1, ["api", "hooks"])
    path = f"{API}/{article['id']}"

    changed = await client.patch(path, json={"version": 1, "body": "## Sign\n\nVerify the signature."}, headers=auth)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = await client.patch(path, json={"version": 1, "title": "Mine"}, headers=auth)
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2 and stale.json()["current_body"].endswith("Verify the signature.")
    assert (await client.get(path)).json()["title"] == "Webhooks"

    internal = await client.patch(path, json={"version": 2, "visibility": "internal"}, headers=auth)
    assert internal.json()["effective_visibility"] == "internal"
    assert (await client.get(path)).status_code == 404  # anonymous
    await client.patch(path, json={"version": 2, "visibility": "inherit", "status": "draft"}, headers=auth)
    assert (await client.get(path)).status_code == 404
    ja = await client.patch(path, json={"version": 0, "locale": "ja", "title": "Webhook", "body": "本文"}, headers=auth)
    assert ja.status_code == 200 and ja.json()["locale"] == "ja" and ja.json()["status"] == "draft"

    assert (await client.delete(path)).status_code == 401
    assert (await client.delete(path, headers=auth)).status_code == 204
    assert (await client.get(path, headers=auth)).status_code == 404
    assert (await client.delete(path, headers=auth)).status_code == 404


async def test_bad_input_gets_clear_errors(client: AsyncTestClient, editor: Actor, place: Place) -> None:
    auth = await bearer(editor)
    base = {"title": "T", "body": "B", "section": "first-steps"}
    unknown_section = await client.post(API, json={**base, "section": "nope"}, headers=auth)
    assert unknown_section.status_code == 422 and "section" in unknown_section.json()["errors"]
    bad_visibility = await client.post(API, json={**base, "visibility": "secret"}, headers=auth)
    assert bad_visibility.status_code == 422
    assert (await client.post(API, json={**base, "locale": "fr"}, headers=auth)).status_code == 422
    assert (await client.post(API, json={**base, "extra": 1}, headers=auth)).status_code == 400
    too_big = await client.post(API, json={**base, "body": "x" * (MAX_SOURCE_BYTES + 1)}, headers=auth)
    assert too_big.status_code == 413 and "64 KiB" in too_big.json()["detail"]
    article_id = await make_article(editor, place.section_id)
    missing_version = await client.patch(f"{API}/{article_id}", json={"title": "x"}, headers=auth)
    assert missing_version.status_code == 400
    assert await KbArticle.count() == 1


async def test_the_api_is_in_the_openapi_schema(client: AsyncTestClient) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert set(paths[API]) == {"get", "post"}
    assert set(paths[API + "/{article_id}"]) == {"get", "patch", "delete"}


async def test_feedback_scores_are_for_staff_only(
    client: AsyncTestClient, editor: Actor, customer: Actor, place: Place
) -> None:
    from server.kb.services import record_feedback

    article = await make_article(editor, place.section_id, "Scored")
    await record_feedback(customer, f"user:{customer.user_id}", article, "en", helpful=False, comment="meh")
    anonymous = (await client.get(f"{API}/{article}")).json()
    assert (anonymous["helpful_yes"], anonymous["helpful_no"]) == (0, 0)
    staff = (await client.get(f"{API}/{article}", headers=await bearer(editor))).json()
    assert staff["helpful_no"] == 1
