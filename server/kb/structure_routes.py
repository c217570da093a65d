"""The Help Center's management pages: the overview of every article, and the category and
section forms (name in both languages, description, visibility, order)."""

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
from server.kb.structure import CategoryInput, SectionInput, save_category, save_section
from server.kb.tables import VISIBILITIES, KbArticle, KbCategory, KbSection, KbTranslation
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect


def _editor(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_edit_kb(actor))


@get("/help/manage")
async def overview(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    """Every category, section and article with the state of each translation."""
    _editor(actor)
    locale = get_locale()
    states: dict[int, dict[str, str]] = {}
    titles: dict[int, dict[str, str]] = {}
    for row in await KbTranslation.select(
        KbTranslation.article, KbTranslation.locale, KbTranslation.status, KbTranslation.title
    ):
        states.setdefault(row["article"], {})[row["locale"]] = row["status"]
        titles.setdefault(row["article"], {})[row["locale"]] = row["title"]
    articles = await KbArticle.select(
        KbArticle.id, KbArticle.slug, KbArticle.section, KbArticle.visibility, KbArticle.effective_visibility
    ).order_by(KbArticle.position)
    by_section: dict[int, list[dict[str, Any]]] = {}
    for article in articles:
        names = titles.get(article["id"], {})
        shown = queries.pick_locale(list(names), locale)
        article["title"] = names[shown] if shown else article["slug"]
        article["states"] = states.get(article["id"], {})
        by_section.setdefault(article["section"], []).append(article)
    sections_by_category: dict[int, list[dict[str, Any]]] = {}
    for section in await queries.sections():
        section["name"] = fields.localized(section, "name", locale)
        section["articles"] = by_section.get(section["id"], [])
        sections_by_category.setdefault(section["category"], []).append(section)
    tree = [
        {**c, "name": fields.localized(c, "name", locale), "sections": sections_by_category.get(c["id"], [])}
        for c in await queries.categories()
    ]
    return page(request, "kb/manage.html", {"tree": tree, "locales": LOCALES})


# Categories ----------------------------------------------------------------------------------


def _category_input(values: dict[str, str]) -> CategoryInput:
    return CategoryInput(
        slug=values.get("slug", ""),
        name_en=values.get("name_en", ""),
        name_ja=values.get("name_ja", ""),
        description_en=values.get("description_en", ""),
        description_ja=values.get("description_ja", ""),
        position=fields.int_or(values.get("position"), 0),
        visibility=values.get("visibility", ""),
        tiers=fields.split_labels(values.get("tiers", "")),
    )


def _category_page(
    request: Request[Any, Any, Any],
    category_id: int | None,
    values: dict[str, Any],
    status_code: int = 200,
    **extra: Any,
) -> Template:
    context = {"category_id": category_id, "values": values, "visibilities": VISIBILITIES, **extra}
    return page(request, "kb/category_form.html", context, status_code=status_code)


@get("/help/manage/categories/new")
async def new_category(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _editor(actor)
    return _category_page(request, None, {"visibility": "public"})


@get("/help/manage/categories/{category_id:int}")
async def edit_category(request: Request[Any, Any, Any], actor: CurrentActor, category_id: FromPath[int]) -> Template:
    _editor(actor)
    row = await KbCategory.select().where(KbCategory.id == category_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    return _category_page(request, category_id, {**row, "tiers": ", ".join(row["tiers"])})


async def _post_category(request: Request[Any, Any, Any], actor: Actor, category_id: int | None) -> Template | Redirect:
    _editor(actor)
    values = await form_data(request)
    try:
        await save_category(actor, category_id, _category_input(values))
    except Invalid as exc:
        return _category_page(request, category_id, values, 422, errors=exc.errors)
    flash(request, _("The category is saved."), "success")
    return redirect("/help/manage")


@post("/help/manage/categories/new")
async def create_category(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    return await _post_category(request, actor, None)


@post("/help/manage/categories/{category_id:int}")
async def update_category(
    request: Request[Any, Any, Any], actor: CurrentActor, category_id: FromPath[int]
) -> Template | Redirect:
    return await _post_category(request, actor, category_id)


# Sections ------------------------------------------------------------------------------------


def _section_input(values: dict[str, str]) -> SectionInput:
    return SectionInput(
        category_id=fields.int_or(values.get("category"), 0),
        slug=values.get("slug", ""),
        name_en=values.get("name_en", ""),
        name_ja=values.get("name_ja", ""),
        description_en=values.get("description_en", ""),
        description_ja=values.get("description_ja", ""),
        position=fields.int_or(values.get("position"), 0),
    )


async def _section_page(
    request: Request[Any, Any, Any],
    section_id: int | None,
    values: dict[str, Any],
    status_code: int = 200,
    **extra: Any,
) -> Template:
    locale = get_locale()
    categories = [{"id": c["id"], "name": fields.localized(c, "name", locale)} for c in await queries.categories()]
    context = {"section_id": section_id, "values": values, "categories": categories, **extra}
    return page(request, "kb/section_form.html", context, status_code=status_code)


@get("/help/manage/sections/new")
async def new_section(request: Request[Any, Any, Any], actor: CurrentActor, category: FromQuery[int] = 0) -> Template:
    _editor(actor)
    return await _section_page(request, None, {"category": category})


@get("/help/manage/sections/{section_id:int}")
async def edit_section(request: Request[Any, Any, Any], actor: CurrentActor, section_id: FromPath[int]) -> Template:
    _editor(actor)
    row = await KbSection.select().where(KbSection.id == section_id).first()
    if row is None:
        raise NotFound
    return await _section_page(request, section_id, row)


async def _post_section(request: Request[Any, Any, Any], actor: Actor, section_id: int | None) -> Template | Redirect:
    _editor(actor)
    values = await form_data(request)
    try:
        await save_section(actor, section_id, _section_input(values))
    except Invalid as exc:
        return await _section_page(request, section_id, values, 422, errors=exc.errors)
    flash(request, _("The section is saved."), "success")
    return redirect("/help/manage")


@post("/help/manage/sections/new")
async def create_section(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    return await _post_section(request, actor, None)


@post("/help/manage/sections/{section_id:int}")
async def update_section(
    request: Request[Any, Any, Any], actor: CurrentActor, section_id: FromPath[int]
) -> Template | Redirect:
    return await _post_section(request, actor, section_id)


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        overview,
        new_category,
        edit_category,
        create_category,
        update_category,
        new_section,
        edit_section,
        create_section,
        update_section,
    ],
)
