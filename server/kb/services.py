"""Actions on help-center articles: write, translate, publish, restore, delete, and feedback.

Each action is one transaction that also queues the article for search (the outbox), so the
index follows every change that commits and none that does not. Text is stored as Markdown
source and sanitised HTML; every change of text is a numbered revision, and the translation's
`version` guards against saving over someone else's newer text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server import policy
from server.accounts.auth import utcnow
from server.db import atomic
from server.errors import Invalid, NotFound
from server.i18n import _
from server.kb import cache, fields, queries
from server.kb.tables import KbArticle, KbFeedback, KbRevision, KbSection, KbTranslation
from server.markdown import render
from server.policy import Actor, ensure
from server.search.sync import enqueue_sync

TRANSLATION_WITH_EDITOR = (
    *KbTranslation.all_columns(),
    KbTranslation.updated_by.display_name.as_alias("updated_by_name"),
)


class EditConflict(Exception):
    """The translation changed since the editor opened it; `current` is what is stored now."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__(f"translation is now at version {current['version']}")
        self.current = current


@dataclass
class ArticleSettings:
    section_id: int
    slug: str = ""
    visibility: str | None = None  # None: the category's
    tiers: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    position: int = 0


@dataclass
class TextInput:
    title: str
    body_md: str
    version: int = 0  # the version the edit started from; 0 for a new translation
    note: str = ""


async def _check_settings(settings: ArticleSettings, errors: dict[str, str], article_id: int | None) -> dict[str, Any]:
    """Validate in place; returns the section's category (for the inherited visibility)."""
    settings.slug = settings.slug.strip().lower()
    fields.check_slug(settings.slug, errors)
    fields.check_visibility(settings.visibility, errors, inherit_ok=True)
    settings.tiers = fields.clean_labels(settings.tiers, "tiers", errors) if settings.visibility == "members" else []
    settings.tags = fields.clean_labels(settings.tags, "tags", errors)
    category = (
        await KbSection.select(
            KbSection.category.visibility.as_alias("visibility"), KbSection.category.tiers.as_alias("tiers")
        )
        .where(KbSection.id == settings.section_id)
        .output(load_json=True)
        .first()
    )
    if category is None:
        errors["section"] = _("Choose a section from the list.")
    clash = KbArticle.exists().where(KbArticle.slug == settings.slug)
    if article_id is not None:
        clash = clash.where(KbArticle.id != article_id)
    if "slug" not in errors and await clash:
        errors["slug"] = _("Another article already uses this slug.")
    return category or {}


def _check_text(text: TextInput, errors: dict[str, str]) -> str:
    """Validate in place and render; MarkdownTooLarge propagates (the caller's 413)."""
    text.title = " ".join(text.title.split())
    text.note = text.note.strip()[: fields.MAX_NOTE_CHARS]
    fields.check_title(text.title, errors)
    if not text.body_md.strip():
        errors["body"] = _("Write the article's text.")
    return render(text.body_md)


async def _unique_slug(base: str) -> str:
    slug, n = base, 1
    while await KbArticle.exists().where(KbArticle.slug == slug):
        n += 1
        slug = f"{base[:110]}-{n}"
    return slug


async def create_article(
    actor: Actor, settings: ArticleSettings, locale: str, text: TextInput, *, status: str = "draft"
) -> int:
    """A new article with its first translation (revision 1)."""
    ensure(policy.can_edit_kb(actor))
    errors: dict[str, str] = {}
    fields.check_locale(locale, errors)
    fields.check_status(status, errors)
    html = _check_text(text, errors)
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        if not settings.slug.strip() and text.title.strip():
            settings.slug = await _unique_slug(fields.slugify(text.title))
        category = await _check_settings(settings, errors, None)
        if errors:
            raise Invalid(errors)
        visibility, tiers = fields.effective_visibility(
            settings.visibility, settings.tiers, category["visibility"], category["tiers"]
        )
        moment = utcnow()
        rows = await KbArticle.insert(
            KbArticle(
                section=settings.section_id,
                slug=settings.slug,
                visibility=settings.visibility,
                tiers=settings.tiers,
                effective_visibility=visibility,
                effective_tiers=tiers,
                tags=settings.tags,
                position=settings.position,
                author=actor.user_id,
                created_at=moment,
            )
        ).returning(KbArticle.id)
        article_id = rows[0]["id"]
        await _insert_translation(actor, article_id, locale, text, html, status)
        await enqueue_sync("kb", article_id)
    return article_id


async def _insert_translation(
    actor: Actor, article_id: int, locale: str, text: TextInput, html: str, status: str
) -> None:
    moment = utcnow()
    rows = await KbTranslation.insert(
        KbTranslation(
            article=article_id,
            locale=locale,
            title=text.title,
            body_md=text.body_md,
            body_html=html,
            status=status,
            published_at=moment if status == queries.PUBLISHED else None,
            updated_at=moment,
            updated_by=actor.user_id,
            version=1,
        )
    ).returning(KbTranslation.id)
    await _add_revision(actor, rows[0]["id"], text)


async def _add_revision(actor: Actor, translation_id: int, text: TextInput) -> None:
    last = (
        await KbRevision.select(KbRevision.number)
        .where(KbRevision.translation == translation_id)
        .order_by(KbRevision.number, ascending=False)
        .first()
    )
    await KbRevision.insert(
        KbRevision(
            translation=translation_id,
            number=(last["number"] if last else 0) + 1,
            title=text.title,
            body_md=text.body_md,
            author=actor.user_id,
            created_at=utcnow(),
            note=text.note,
        )
    )


async def update_article(
    actor: Actor,
    article_id: int,
    locale: str,
    *,
    settings: ArticleSettings | None = None,
    text: TextInput | None = None,
    status: str | None = None,
) -> None:
    """Change settings, the text of one translation (creating it if new) and/or its status.

    Raises EditConflict when `text.version` is not the stored version and the text differs.
    """
    ensure(policy.can_edit_kb(actor))
    errors: dict[str, str] = {}
    fields.check_locale(locale, errors)
    fields.check_status(status, errors)
    html = _check_text(text, errors) if text is not None else ""
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        existing = await KbArticle.select(KbArticle.slug).where(KbArticle.id == article_id).first()
        if existing is None:
            raise NotFound
        if settings is not None and not settings.slug.strip():
            settings.slug = existing["slug"]  # an emptied slug field keeps the address
        category = await _check_settings(settings, errors, article_id) if settings is not None else None
        if errors:
            raise Invalid(errors)
        if settings is not None and category is not None:
            await _save_settings(article_id, settings, category)
        current = (
            await KbTranslation.select(*TRANSLATION_WITH_EDITOR)
            .where((KbTranslation.article == article_id) & (KbTranslation.locale == locale))
            .first()
        )
        if current is None and text is not None:
            await _insert_translation(actor, article_id, locale, text, html, status or "draft")
        elif current is None and status is not None:
            raise Invalid({"locale": _("This article has no text in that language yet.")})
        elif current is not None:
            if text is not None:
                await _save_text(actor, current, text, html)
            if status is not None and status != current["status"]:
                await KbTranslation.update(
                    {
                        KbTranslation.status: status,
                        KbTranslation.published_at: utcnow() if status == queries.PUBLISHED else None,
                    }
                ).where(KbTranslation.id == current["id"])
        await enqueue_sync("kb", article_id)


async def _save_settings(article_id: int, settings: ArticleSettings, category: dict[str, Any]) -> None:
    visibility, tiers = fields.effective_visibility(
        settings.visibility, settings.tiers, category["visibility"], category["tiers"]
    )
    await KbArticle.update(
        {
            KbArticle.section: settings.section_id,
            KbArticle.slug: settings.slug,
            KbArticle.visibility: settings.visibility,
            KbArticle.tiers: settings.tiers,
            KbArticle.effective_visibility: visibility,
            KbArticle.effective_tiers: tiers,
            KbArticle.tags: settings.tags,
            KbArticle.position: settings.position,
        }
    ).where(KbArticle.id == article_id)


async def _save_text(actor: Actor, current: dict[str, Any], text: TextInput, html: str) -> None:
    if (text.title, text.body_md) == (current["title"], current["body_md"]):
        return  # nothing to overwrite, so no conflict either
    if text.version != current["version"]:
        raise EditConflict(current)
    # The version in the WHERE makes the check and the write one step: a concurrent save
    # between our read and this update leaves no row to update.
    updated = (
        await KbTranslation.update(
            {
                KbTranslation.title: text.title,
                KbTranslation.body_md: text.body_md,
                KbTranslation.body_html: html,
                KbTranslation.version: current["version"] + 1,
                KbTranslation.updated_at: utcnow(),
                KbTranslation.updated_by: actor.user_id,
            }
        )
        .where((KbTranslation.id == current["id"]) & (KbTranslation.version == text.version))
        .returning(KbTranslation.id)
    )
    if not updated:
        fresh = await KbTranslation.select(*TRANSLATION_WITH_EDITOR).where(KbTranslation.id == current["id"]).first()
        raise EditConflict(fresh or current)
    await _add_revision(actor, current["id"], text)


async def restore_revision(actor: Actor, article_id: int, locale: str, number: int, version: int) -> None:
    """Bring back an old revision's text as a new revision (history is never rewritten)."""
    ensure(policy.can_edit_kb(actor))
    revision = (
        await KbRevision.select(KbRevision.title, KbRevision.body_md)
        .where(
            (KbRevision.translation.article == article_id)
            & (KbRevision.translation.locale == locale)
            & (KbRevision.number == number)
        )
        .first()
    )
    if revision is None:
        raise NotFound
    note = _("Restored revision %(number)s", number=number)
    text = TextInput(title=revision["title"], body_md=revision["body_md"], version=version, note=note)
    await update_article(actor, article_id, locale, text=text)


async def delete_article(actor: Actor, article_id: int) -> None:
    ensure(policy.can_edit_kb(actor))
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        deleted = await KbArticle.delete().where(KbArticle.id == article_id).returning(KbArticle.id)
        if not deleted:
            raise NotFound
        await enqueue_sync("kb", article_id)  # the document builder finds nothing: removed


async def record_feedback(
    actor: Actor, voter_key: str, article_id: int, locale: str, helpful: bool, comment: str = ""
) -> None:
    """One vote per voter and article; voting again changes the vote (and the counters)."""
    comment = comment.strip()
    if len(comment) > fields.MAX_COMMENT_CHARS:
        raise Invalid({"comment": _("Keep the comment under %(n)s characters.", n=fields.MAX_COMMENT_CHARS)})
    async with atomic() as tx:
        tx.on_commit(cache.clear)
        await queries.access_article(actor, article_id)
        # Touch the article row first: on PostgreSQL this row lock serialises the votes on one
        # article, so a double click cannot insert two votes for one voter.
        await KbArticle.update({KbArticle.helpful_yes: KbArticle.helpful_yes}).where(KbArticle.id == article_id)
        existing = (
            await KbFeedback.select(KbFeedback.id, KbFeedback.helpful)
            .where((KbFeedback.article == article_id) & (KbFeedback.voter_key == voter_key))
            .first()
        )
        moment = utcnow()
        if existing is None:
            await KbFeedback.insert(
                KbFeedback(
                    article=article_id,
                    locale=locale,
                    voter_key=voter_key,
                    user=actor.user_id,
                    helpful=helpful,
                    comment=comment,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            counter = KbArticle.helpful_yes if helpful else KbArticle.helpful_no
            await KbArticle.update({counter: counter + 1}).where(KbArticle.id == article_id)
        else:
            changes: dict[Any, Any] = {KbFeedback.helpful: helpful, KbFeedback.updated_at: moment}
            if comment:
                changes[KbFeedback.comment] = comment
            await KbFeedback.update(changes).where(KbFeedback.id == existing["id"])
            if existing["helpful"] != helpful:
                gained = KbArticle.helpful_yes if helpful else KbArticle.helpful_no
                lost = KbArticle.helpful_no if helpful else KbArticle.helpful_yes
                await KbArticle.update({gained: gained + 1, lost: lost - 1}).where(KbArticle.id == article_id)
        await enqueue_sync("kb", article_id)  # helpfulness is part of the search ranking
