"""Loads the demo Help Center (server/kb/demo/) through the knowledge-base services.

Idempotent: categories, sections and articles are matched by slug and only the missing ones
are created, so running the seed again changes nothing and keeps edits made in the app.
Articles are written by the demo admin and published in English and Japanese.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.accounts.auth import load_actor
from server.accounts.tables import User
from server.db import atomic
from server.kb import services, structure
from server.kb.tables import KbArticle, KbCategory, KbSection
from server.policy import Actor

DEMO_DIR = Path(__file__).resolve().parent / "demo"
AUTHOR_EMAIL = "admin@lumenfold.example"
FILE_NAME = re.compile(r"^(?P<nn>\d{2})-(?P<slug>[a-z0-9-]+)\.(?P<lang>en|ja)\.md$")


@dataclass
class DemoArticle:
    slug: str
    number: str
    texts: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)  # locale -> (meta, body)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """TOML front matter between two `+++` lines, then the Markdown body."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "+++":
        raise ValueError("front matter must start with a +++ line")
    end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    return tomllib.loads("\n".join(lines[1:end])), "\n".join(lines[end + 1 :]).strip() + "\n"


def read_articles(directory: Path = DEMO_DIR / "articles") -> list[DemoArticle]:
    found: dict[str, DemoArticle] = {}
    for path in sorted(directory.glob("*.md")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"unexpected demo article file name: {path.name}")
        article = found.setdefault(match["slug"], DemoArticle(match["slug"], match["nn"]))
        article.texts[match["lang"]] = split_front_matter(path.read_text(encoding="utf-8"))
    return sorted(found.values(), key=lambda a: a.number)


async def _author() -> Actor:
    row = await User.select(User.id).where(User.email == AUTHOR_EMAIL).first()
    actor = await load_actor(row["id"]) if row else None
    if actor is None:
        raise RuntimeError(f"the demo author {AUTHOR_EMAIL} must exist before the help center is loaded")
    return actor


async def _load_structure(author: Actor) -> dict[str, int]:
    """Section slug -> id, creating what is missing."""
    data = tomllib.loads((DEMO_DIR / "structure.toml").read_text(encoding="utf-8"))
    section_ids: dict[str, int] = {}
    for category in data["categories"]:
        row = await KbCategory.select(KbCategory.id).where(KbCategory.slug == category["slug"]).first()
        category_id = (
            row["id"]
            if row
            else await structure.save_category(
                author,
                None,
                structure.CategoryInput(**{k: v for k, v in category.items() if k != "sections"}),
            )
        )
        for section in category.get("sections", []):
            row = await KbSection.select(KbSection.id).where(KbSection.slug == section["slug"]).first()
            section_ids[section["slug"]] = (
                row["id"]
                if row
                else await structure.save_section(
                    author, None, structure.SectionInput(category_id=category_id, **section)
                )
            )
    return section_ids


async def _load_article(author: Actor, article: DemoArticle, section_ids: dict[str, int]) -> None:
    first_locale = "en" if "en" in article.texts else next(iter(article.texts))
    meta, body = article.texts[first_locale]
    tags = [tag for meta_, _body in article.texts.values() for tag in meta_.get("tags", [])]
    settings = services.ArticleSettings(
        section_id=section_ids[meta["section"]],
        slug=article.slug,
        visibility=meta.get("visibility"),
        tiers=list(meta.get("tiers", [])),
        tags=tags,
        position=int(meta.get("position", 0)),
    )
    async with atomic():
        article_id = await services.create_article(
            author, settings, first_locale, services.TextInput(meta["title"], body), status="published"
        )
        for locale, (other_meta, other_body) in article.texts.items():
            if locale != first_locale:
                text = services.TextInput(other_meta["title"], other_body)
                await services.update_article(author, article_id, locale, text=text, status="published")


async def load_demo_help_center() -> int:
    """Create the demo categories, sections and articles that are missing; returns how many
    articles were added."""
    author = await _author()
    section_ids = await _load_structure(author)
    existing = {row["slug"] for row in await KbArticle.select(KbArticle.slug)}
    added = 0
    for article in read_articles():
        if article.slug not in existing:
            await _load_article(author, article, section_ids)
            added += 1
    return added
