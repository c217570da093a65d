"""Help-center objects for tests, made through the real services."""

from __future__ import annotations

from server.kb import services, structure
from server.policy import Actor

BODY = "Intro paragraph about boards.\n\n## Set up a board\n\nPick columns.\n\n## Share it\n\nInvite people.\n"


async def make_category(editor: Actor, slug: str = "basics", visibility: str = "public", **extra: object) -> int:
    data = structure.CategoryInput(
        slug=slug, name_en=f"{slug.title()} EN", name_ja=f"{slug} 日本語", visibility=visibility, **extra
    )  # type: ignore[arg-type]
    return await structure.save_category(editor, None, data)


async def make_section(editor: Actor, category_id: int, slug: str = "first-steps", position: int = 0) -> int:
    data = structure.SectionInput(
        category_id=category_id, slug=slug, name_en=f"{slug.title()} EN", name_ja=f"{slug} 日本語", position=position
    )
    return await structure.save_section(editor, None, data)


async def make_article(
    editor: Actor,
    section_id: int,
    title: str = "Kanban boards",
    body: str = BODY,
    *,
    locale: str = "en",
    status: str = "published",
    visibility: str | None = None,
    tiers: list[str] | None = None,
    tags: list[str] | None = None,
    slug: str = "",
    position: int = 0,
) -> int:
    settings = services.ArticleSettings(
        section_id=section_id,
        slug=slug,
        visibility=visibility,
        tiers=tiers or [],
        tags=tags or [],
        position=position,
    )
    return await services.create_article(editor, settings, locale, services.TextInput(title, body), status=status)


async def translate(
    editor: Actor, article_id: int, title: str, body: str = BODY, locale: str = "ja", status: str = "published"
) -> None:
    text = services.TextInput(title, body, version=0)
    await services.update_article(editor, article_id, locale, text=text, status=status)
