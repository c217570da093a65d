"""The demo Help Center loads through the services, completely, and only once."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.accounts.auth import load_actor
from server.accounts.tables import User
from server.jobs import Job
from server.kb import services
from server.kb.demo_loader import AUTHOR_EMAIL, read_articles, split_front_matter
from server.kb.tables import KbArticle, KbCategory, KbRevision, KbSection, KbTranslation
from server.policy import Actor
from server.seed import seed


async def counts() -> tuple[int, ...]:
    return (
        await KbCategory.count(),
        await KbSection.count(),
        await KbArticle.count(),
        await KbTranslation.count(),
        await KbRevision.count(),
        await Job.count(),
    )


def test_front_matter_is_split_from_the_body() -> None:
    meta, body = split_front_matter('+++\ntitle = "T"\ntags = ["a"]\n+++\n\nBody\n')
    assert meta == {"title": "T", "tags": ["a"]} and body == "Body\n"


async def test_seed_loads_every_demo_article_in_both_languages_once(client: AsyncTestClient) -> None:
    await seed(("help",))
    demo = read_articles()
    assert len(demo) >= 20
    articles = await KbArticle.select(KbArticle.id, KbArticle.slug, KbArticle.author.email.as_alias("author"))
    assert sorted(a["slug"] for a in articles) == sorted(a.slug for a in demo)
    assert {a["author"] for a in articles} == {AUTHOR_EMAIL}
    translations = await KbTranslation.select(KbTranslation.locale, KbTranslation.status)
    assert len(translations) == 2 * len(demo)
    assert {(t["locale"], t["status"]) for t in translations} == {("en", "published"), ("ja", "published")}
    overrides = {a.slug: a.texts["en"][0]["visibility"] for a in demo if "visibility" in a.texts["en"][0]}
    stored = {
        r["slug"]: r["effective_visibility"]
        for r in await KbArticle.select(KbArticle.slug, KbArticle.effective_visibility)
    }
    assert overrides and all(stored[slug] == visibility for slug, visibility in overrides.items())

    before = await counts()
    await seed(("help",))
    assert await counts() == before

    first = demo[0]
    response = await client.get(f"/help/articles/{first.slug}")  # the links in the demo bodies use slugs
    assert response.status_code == 200 and first.texts["en"][0]["title"] in response.text


async def test_an_edit_made_in_the_app_survives_a_second_load() -> None:
    await seed(("help",))
    admin_row = await User.select(User.id).where(User.email == AUTHOR_EMAIL).first()
    admin: Actor | None = await load_actor(admin_row["id"])
    assert admin is not None
    article = await KbArticle.select(KbArticle.id).order_by(KbArticle.id).first()
    current = (
        await KbTranslation.select(KbTranslation.version, KbTranslation.body_md)
        .where((KbTranslation.article == article["id"]) & (KbTranslation.locale == "en"))
        .first()
    )
    text = services.TextInput("Edited in the app", current["body_md"], version=current["version"])
    await services.update_article(admin, article["id"], "en", text=text)
    await seed(("help",))
    row = (
        await KbTranslation.select(KbTranslation.title)
        .where((KbTranslation.article == article["id"]) & (KbTranslation.locale == "en"))
        .first()
    )
    assert row["title"] == "Edited in the app"
