"""Actions on the help center's structure: categories and sections.

A category's visibility is inherited by every article that has none of its own, so changing it
(or moving a section to another category) rewrites those articles' effective visibility and
queues each of them for search, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server import policy
from server.db import atomic
from server.errors import Invalid, NotFound
from server.i18n import _
from server.kb import cache, fields
from server.kb.tables import KbArticle, KbCategory, KbSection
from server.policy import Actor, ensure
from server.search.sync import enqueue_sync


@dataclass
class CategoryInput:
    slug: str
    name_en: str
    name_ja: str
    description_en: str = ""
    description_ja: str = ""
    position: int = 0
    visibility: str = "public"
    tiers: list[str] = field(default_factory=list)


@dataclass
class SectionInput:
    category_id: int
    slug: str
    name_en: str
    name_ja: str
    description_en: str = ""
    description_ja: str = ""
    position: int = 0


def _check_names(data: CategoryInput | SectionInput, errors: dict[str, str]) -> None:
    fields.check_slug(data.slug, errors, max_chars=80)
    fields.check_name("name_en", data.name_en, errors)
    fields.check_name("name_ja", data.name_ja, errors)
    fields.check_description("description_en", data.description_en, errors)
    fields.check_description("description_ja", data.description_ja, errors)


def _strip(data: CategoryInput | SectionInput) -> None:
    data.slug = data.slug.strip().lower()
    for key in ("name_en", "name_ja", "description_en", "description_ja"):
        setattr(data, key, getattr(data, key).strip())


async def refresh_inherited(section_ids: list[int]) -> None:
    """Recompute the effective visibility of the articles in these sections that inherit it.
    Call inside the writing transaction."""
    if not section_ids:
        return
    rows = (
        await KbArticle.select(
            KbArticle.id,
            KbArticle.section.category.visibility.as_alias("category_visibility"),
            KbArticle.section.category.tiers.as_alias("category_tiers"),
        )
        .where(KbArticle.section.is_in(section_ids) & KbArticle.visibility.is_null())
        .output(load_json=True)
    )
    for row in rows:
        visibility, tiers = fields.effective_visibility(None, [], row["category_visibility"], row["category_tiers"])
        await KbArticle.update({KbArticle.effective_visibility: visibility, KbArticle.effective_tiers: tiers}).where(
            KbArticle.id == row["id"]
        )


async def resync_sections(section_ids: list[int]) -> None:
    """Queue every article of these sections for search (their facets or audience changed)."""
    if not section_ids:
        return
    for row in await KbArticle.select(KbArticle.id).where(KbArticle.section.is_in(section_ids)):
        await enqueue_sync("kb", row["id"])


async def save_category(actor: Actor, category_id: int | None, data: CategoryInput) -> int:
    """Create (category_id None) or update a category."""
    ensure(policy.can_edit_kb(actor))
    _strip(data)
    errors: dict[str, str] = {}
    _check_names(data, errors)
    fields.check_visibility(data.visibility, errors, inherit_ok=False)
    data.tiers = fields.clean_labels(data.tiers, "tiers", errors) if data.visibility == "members" else []
    if errors:
        raise Invalid(errors)
    values = {
        KbCategory.slug: data.slug,
        KbCategory.name_en: data.name_en,
        KbCategory.name_ja: data.name_ja,
        KbCategory.description_en: data.description_en,
        KbCategory.description_ja: data.description_ja,
        KbCategory.position: data.position,
        KbCategory.visibility: data.visibility,
        KbCategory.tiers: data.tiers,
    }
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        clash = KbCategory.exists().where(KbCategory.slug == data.slug)
        if category_id is not None:
            clash = clash.where(KbCategory.id != category_id)
        if await clash:
            raise Invalid({"slug": _("Another category already uses this slug.")})
        if category_id is None:
            rows = await KbCategory.insert(KbCategory(**{c._meta.name: v for c, v in values.items()})).returning(
                KbCategory.id
            )
            return rows[0]["id"]
        watched = (KbCategory.visibility, KbCategory.tiers, KbCategory.name_en, KbCategory.name_ja)
        before = await KbCategory.select(*watched).where(KbCategory.id == category_id).output(load_json=True).first()
        if before is None:
            raise NotFound
        await KbCategory.update(values).where(KbCategory.id == category_id)
        if any(before[column._meta.name] != values[column] for column in watched):
            sections = [s["id"] for s in await KbSection.select(KbSection.id).where(KbSection.category == category_id)]
            await refresh_inherited(sections)
            await resync_sections(sections)
        return category_id


async def save_section(actor: Actor, section_id: int | None, data: SectionInput) -> int:
    """Create (section_id None) or update a section; moving it re-inherits its articles."""
    ensure(policy.can_edit_kb(actor))
    _strip(data)
    errors: dict[str, str] = {}
    _check_names(data, errors)
    if errors:
        raise Invalid(errors)
    values = {
        KbSection.category: data.category_id,
        KbSection.slug: data.slug,
        KbSection.name_en: data.name_en,
        KbSection.name_ja: data.name_ja,
        KbSection.description_en: data.description_en,
        KbSection.description_ja: data.description_ja,
        KbSection.position: data.position,
    }
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        if not await KbCategory.exists().where(KbCategory.id == data.category_id):
            raise Invalid({"category": _("Choose a category from the list.")})
        clash = KbSection.exists().where(KbSection.slug == data.slug)
        if section_id is not None:
            clash = clash.where(KbSection.id != section_id)
        if await clash:
            raise Invalid({"slug": _("Another section already uses this slug.")})
        if section_id is None:
            rows = await KbSection.insert(KbSection(**{c._meta.name: v for c, v in values.items()})).returning(
                KbSection.id
            )
            return rows[0]["id"]
        watched = (KbSection.category, KbSection.name_en, KbSection.name_ja)
        before = await KbSection.select(*watched).where(KbSection.id == section_id).first()
        if before is None:
            raise NotFound
        await KbSection.update(values).where(KbSection.id == section_id)
        if before["category"] != data.category_id:
            await refresh_inherited([section_id])
        if any(before[column._meta.name] != values[column] for column in watched):
            await resync_sections([section_id])
        return section_id
