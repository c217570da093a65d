"""The article editor for agents and admins: write and translate with a live preview, publish,
browse revisions, compare any two and restore one."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.errors import Invalid, NotFound
from server.i18n import LOCALES, _, get_locale
from server.kb import fields, queries
from server.kb.diff import diff_lines
from server.kb.search import article_url
from server.kb.services import (
    ArticleSettings,
    EditConflict,
    TextInput,
    create_article,
    delete_article,
    restore_revision,
    update_article,
)
from server.kb.tables import VISIBILITIES, KbRevision
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge, render
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect

ACTION_STATUS = {"publish": "published", "draft": "draft", "save": None}


def _editor(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_edit_kb(actor))


def _lang(lang: str) -> str:
    if lang and lang not in LOCALES:
        raise Invalid({"lang": _("Choose a language from the list.")})
    return lang or get_locale()


def _too_large() -> dict[str, str]:
    return {"body": _("The text is longer than %(n)s KiB. Split it into several articles.", n=MAX_SOURCE_BYTES // 1024)}


async def _choices() -> dict[str, Any]:
    locale = get_locale()
    categories = {c["id"]: fields.localized(c, "name", locale) for c in await queries.categories()}
    sections = [
        {"id": s["id"], "label": f"{categories.get(s['category'], '?')} › {fields.localized(s, 'name', locale)}"}
        for s in await queries.sections()
    ]
    return {"sections": sections, "visibilities": VISIBILITIES, "locales": LOCALES}


def _settings(values: dict[str, str]) -> ArticleSettings:
    return ArticleSettings(
        section_id=fields.int_or(values.get("section"), 0),
        slug=values.get("slug", ""),
        visibility=values.get("visibility") or None,
        tiers=fields.split_labels(values.get("tiers", "")),
        tags=fields.split_labels(values.get("tags", "")),
        position=fields.int_or(values.get("position"), 0),
    )


def _text(values: dict[str, str]) -> TextInput:
    return TextInput(
        title=values.get("title", ""),
        body_md=values.get("body", ""),
        version=fields.int_or(values.get("version"), 0),
        note=values.get("note", ""),
    )


def _values(article: dict[str, Any], translation: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "section": article["section_id"],
        "slug": article["slug"],
        "visibility": article["visibility"] or "",
        "tiers": ", ".join(article["tiers"]),
        "tags": ", ".join(article["tags"]),
        "position": article["position"],
        "title": translation["title"] if translation else "",
        "body": translation["body_md"] if translation else "",
        "version": translation["version"] if translation else 0,
    }


async def _edit_page(
    request: Request[Any, Any, Any], article_id: int, locale: str, status_code: int = 200, **extra: Any
) -> Template:
    article = await queries.get_article(article_id)
    if article is None:
        raise NotFound
    found = await queries.translations(article_id)
    translation = found.get(locale)
    other = next((found[loc] for loc in LOCALES if loc != locale and loc in found), None)
    values = {**_values(article, translation), **extra.pop("values", {})}
    context = {
        "article": article,
        "translation": translation,
        "other": other,
        "locale": locale,
        "translations": found,
        "values": values,
        "url": article_url(article_id, article["slug"], locale),
        **await _choices(),
        **extra,
    }
    return page(request, "kb/editor.html", context, status_code=status_code)


@get("/help/manage/articles/new")
async def new_article(request: Request[Any, Any, Any], actor: CurrentActor, section: FromQuery[int] = 0) -> Template:
    _editor(actor)
    values = {"section": section, "locale": get_locale(), "version": 0}
    return page(request, "kb/editor.html", {"article": None, "values": values, **await _choices()})


@post("/help/manage/articles/new")
async def create(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _editor(actor)
    values = await form_data(request)
    locale = _lang(values.get("locale", ""))
    status = "published" if values.get("action") == "publish" else "draft"
    try:
        article_id = await create_article(actor, _settings(values), locale, _text(values), status=status)
    except (Invalid, MarkdownTooLarge) as exc:
        too_large = isinstance(exc, MarkdownTooLarge)
        errors = _too_large() if too_large else exc.errors  # type: ignore[union-attr]
        context = {"article": None, "values": values, "errors": errors, **await _choices()}
        return page(request, "kb/editor.html", context, status_code=413 if too_large else 422)
    flash(request, _("The article is saved."), "success")
    return redirect(f"/help/manage/articles/{article_id}?lang={locale}")


@get("/help/manage/articles/{article_id:int}")
async def edit_article(
    request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int], lang: FromQuery[str] = ""
) -> Template:
    _editor(actor)
    return await _edit_page(request, article_id, _lang(lang))


@post("/help/manage/articles/{article_id:int}")
async def save_article(
    request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int], lang: FromQuery[str] = ""
) -> Template | Redirect:
    _editor(actor)
    locale = _lang(lang)
    values = await form_data(request)
    text = _text(values)
    try:
        await update_article(
            actor,
            article_id,
            locale,
            settings=_settings(values),
            text=text,
            status=ACTION_STATUS.get(values.get("action", "")),
        )
    except EditConflict as exc:
        return await _conflict_page(request, article_id, locale, values, exc)
    except MarkdownTooLarge:
        return await _edit_page(request, article_id, locale, 413, values=values, errors=_too_large())
    except Invalid as exc:
        return await _edit_page(request, article_id, locale, 422, values=values, errors=exc.errors)
    flash(request, _("The article is saved."), "success")
    return redirect(f"/help/manage/articles/{article_id}?lang={locale}")


async def _conflict_page(
    request: Request[Any, Any, Any], article_id: int, locale: str, values: dict[str, Any], exc: EditConflict
) -> Template:
    """409: what is stored now against what the editor sent, and the form to try again."""
    current = exc.current
    mine = {**values, "version": current["version"]}  # saving again knowingly replaces the current text
    extra = {
        "conflict": current,
        "title_changed": current["title"] != values.get("title", ""),
        "diff": diff_lines(current["body_md"], values.get("body", "")),
    }
    return await _edit_page(request, article_id, locale, 409, values=mine, **extra)


@post("/help/manage/preview")
async def preview(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _editor(actor)
    values = await form_data(request)
    try:
        html, error = render(values.get("body", "")), ""
    except MarkdownTooLarge:
        html, error = "", _too_large()["body"]
    return page(request, "kb/_preview.html", {"html": html, "error": error})


@post("/help/manage/articles/{article_id:int}/status")
async def set_status(request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int]) -> Redirect:
    _editor(actor)
    values = await form_data(request)
    locale = _lang(values.get("lang", ""))
    status = "published" if values.get("status") == "published" else "draft"
    await update_article(actor, article_id, locale, status=status)
    flash(
        request,
        _("The article is published.") if status == "published" else _("The article is now a draft."),
        "success",
    )
    return redirect(f"/help/manage/articles/{article_id}?lang={locale}")


@post("/help/manage/articles/{article_id:int}/delete")
async def delete(request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int]) -> Redirect:
    _editor(actor)
    await delete_article(actor, article_id)
    flash(request, _("The article is deleted."), "success")
    return redirect("/help/manage")


async def _revisions(article_id: int, locale: str) -> list[dict[str, Any]]:
    return (
        await KbRevision.select(
            KbRevision.number,
            KbRevision.title,
            KbRevision.body_md,
            KbRevision.created_at,
            KbRevision.note,
            KbRevision.author.display_name.as_alias("author_name"),
        )
        .where((KbRevision.translation.article == article_id) & (KbRevision.translation.locale == locale))
        .order_by(KbRevision.number, ascending=False)
    )


@get("/help/manage/articles/{article_id:int}/revisions")
async def revisions(
    request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int], lang: FromQuery[str] = ""
) -> Template:
    _editor(actor)
    locale = _lang(lang)
    found = await _revisions(article_id, locale)
    if not found:
        raise NotFound
    translation = (await queries.translations(article_id))[locale]
    context = {"article_id": article_id, "locale": locale, "revisions": found, "translation": translation}
    return page(request, "kb/revisions.html", context)


@get("/help/manage/articles/{article_id:int}/diff")
async def compare(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    article_id: FromPath[int],
    a: FromQuery[int] = 0,
    b: FromQuery[int] = 0,
    lang: FromQuery[str] = "",
) -> Template:
    """Revision `a` against revision `b`; without them, the latest against the one before."""
    _editor(actor)
    locale = _lang(lang)
    found = await _revisions(article_id, locale)  # newest first
    by_number = {r["number"]: r for r in found}
    if found and not a and not b:
        b, a = found[0]["number"], found[min(1, len(found) - 1)]["number"]
    if a not in by_number or b not in by_number:
        raise NotFound
    old, new = by_number[min(a, b)], by_number[max(a, b)]
    context = {
        "article_id": article_id,
        "locale": locale,
        "old": old,
        "new": new,
        "title_diff": diff_lines(old["title"], new["title"], context=0),
        "diff": diff_lines(old["body_md"], new["body_md"]),
    }
    return page(request, "kb/diff.html", context)


@post("/help/manage/articles/{article_id:int}/revisions/{number:int}/restore")
async def restore(
    request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int], number: FromPath[int]
) -> Template | Redirect:
    _editor(actor)
    values = await form_data(request)
    locale = _lang(values.get("lang", ""))
    try:
        await restore_revision(actor, article_id, locale, number, fields.int_or(values.get("version"), 0))
    except EditConflict as exc:
        rows = await KbRevision.select(KbRevision.title, KbRevision.body_md).where(
            (KbRevision.translation.article == article_id)
            & (KbRevision.translation.locale == locale)
            & (KbRevision.number == number)
        )
        restored = {"title": rows[0]["title"], "body": rows[0]["body_md"]} if rows else {}
        return await _conflict_page(request, article_id, locale, restored, exc)
    flash(request, _("Revision %(number)s is restored as a new revision.", number=number), "success")
    return redirect(f"/help/manage/articles/{article_id}/revisions?lang={locale}")


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        new_article,
        create,
        edit_article,
        save_article,
        preview,
        set_status,
        delete,
        revisions,
        compare,
        restore,
    ],
)
