"""Admin pages for forum categories: the list (order, audience, Q&A, threads), the new and edit
forms, moving a category up or down, and deleting an empty one.

htmx: the forms post with hx-post and get back only the form with its field errors (422), or an
HX-Redirect to the list; moving and deleting swap the list's table (a refused delete answers 409
with the reason above the table). Without JavaScript the same routes answer full pages.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.errors import Invalid, NotFound
from server.forum import categories
from server.forum.categories import CategoryInput, CategoryInUse
from server.i18n import _
from server.kb.fields import split_labels
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import checked, form_data
from server.web.render import page, redirect

LIST_URL = "/admin/community/categories"


def _admin(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_administer_forum(actor))


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return bool(getattr(request, "htmx", False))


def audience_labels() -> dict[str, str]:
    return {
        "public": _("Everyone, signed in or not"),
        "signed_in": _("Signed-in people"),
        "members": _("Members (of the tiers below)"),
        "staff": _("Staff only"),
    }


def poster_labels() -> dict[str, str]:
    return {"signed_in": _("Anyone who can read it and is signed in"), "staff": _("Staff only")}


# The list -------------------------------------------------------------------------------------


async def _list(
    request: Request[Any, Any, Any],
    *,
    partial: bool = False,
    problem: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Template:
    context = {
        "categories": await categories.list_categories(),
        "audiences": audience_labels(),
        "posters": poster_labels(),
        "problem": problem,
        "notice": notice,
    }
    name = "forum/admin/_category_table.html" if partial else "forum/admin/categories.html"
    return page(request, name, context, status_code=status_code)


@get(LIST_URL)
async def category_list(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return await _list(request, partial=_is_htmx(request))


@post(LIST_URL + "/{forum_category_id:int}/move")
async def move(request: Request[Any, Any, Any], actor: CurrentActor, forum_category_id: FromPath[int]) -> Template:
    _admin(actor)
    values = await form_data(request)
    step = {"up": -1, "down": 1}.get(values.get("direction", ""), 0)
    try:
        await categories.move_category(actor, forum_category_id, step)
    except Invalid as exc:
        return await _list(request, partial=_is_htmx(request), problem=exc.errors["direction"], status_code=422)
    if _is_htmx(request):
        return await _list(request, partial=True)
    return redirect(LIST_URL)  # type: ignore[return-value]


@post(LIST_URL + "/{forum_category_id:int}/delete")
async def delete(
    request: Request[Any, Any, Any], actor: CurrentActor, forum_category_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    try:
        await categories.delete_category(actor, forum_category_id)
    except CategoryInUse as exc:
        return await _list(request, partial=_is_htmx(request), problem=exc.message, status_code=409)
    if _is_htmx(request):
        return await _list(request, partial=True, notice=_("The category is deleted."))
    flash(request, _("The category is deleted."), "success")
    return redirect(LIST_URL)


# The forms ------------------------------------------------------------------------------------


def _form(
    request: Request[Any, Any, Any],
    category: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    context = {
        "category": category,
        "values": values,
        "errors": errors or {},
        "audiences": audience_labels(),
        "posters": poster_labels(),
    }
    partial = _is_htmx(request) and request.method == "POST"
    name = "forum/admin/_category_form.html" if partial else "forum/admin/category_form.html"
    return page(request, name, context, status_code=status_code)


def _parse(values: dict[str, str]) -> tuple[CategoryInput, dict[str, str]]:
    errors: dict[str, str] = {}
    raw_position = values.get("position", "").strip() or "0"
    try:
        position = int(raw_position)
    except ValueError:
        position = 0
        errors["position"] = _("Use a whole number from 0 to %(n)s.", n=categories.MAX_POSITION)
    data = CategoryInput(
        slug=values.get("slug", ""),
        name_en=values.get("name_en", ""),
        name_ja=values.get("name_ja", ""),
        description_en=values.get("description_en", ""),
        description_ja=values.get("description_ja", ""),
        colour=values.get("colour", ""),
        position=position,
        audience=values.get("audience", ""),
        tiers=split_labels(values.get("tiers", "")),
        can_start=values.get("can_start", ""),
        can_reply=values.get("can_reply", ""),
        qa=checked(values, "qa"),
    )
    return data, errors


@get(LIST_URL + "/new")
async def new_category(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    rows = await categories.list_categories()
    position = (max((row["position"] for row in rows), default=0) // 10 + 1) * 10
    values = {"colour": "#2f6fdf", "position": position, "audience": "public", "can_start": "signed_in"}
    return _form(request, None, {**values, "can_reply": "signed_in"})


@get(LIST_URL + "/{forum_category_id:int}")
async def edit_category(
    request: Request[Any, Any, Any], actor: CurrentActor, forum_category_id: FromPath[int]
) -> Template:
    _admin(actor)
    row = await categories.get_category(forum_category_id)
    if row is None:
        raise NotFound
    return _form(request, row, {**row, "tiers": ", ".join(row["tiers"] or [])})


async def _save(request: Request[Any, Any, Any], actor: Actor, category_id: int | None) -> Response[Any]:
    _admin(actor)
    category = None
    if category_id is not None:
        category = await categories.get_category(category_id)
        if category is None:
            raise NotFound
    values = await form_data(request)
    data, errors = _parse(values)
    errors = {**categories.check_category(data), **errors}
    try:
        if errors:
            raise Invalid(errors)
        await categories.save_category(actor, category_id, data)
    except Invalid as exc:
        return _form(request, category, {**values, "qa": checked(values, "qa")}, exc.errors, 422)
    flash(request, _("The category is saved."), "success")
    if _is_htmx(request):
        return Response(content="", status_code=200, headers={"HX-Redirect": LIST_URL})
    return redirect(LIST_URL)


@post(LIST_URL + "/new")
async def create_category(request: Request[Any, Any, Any], actor: CurrentActor) -> Response[Any]:
    return await _save(request, actor, None)


@post(LIST_URL + "/{forum_category_id:int}")
async def update_category(
    request: Request[Any, Any, Any], actor: CurrentActor, forum_category_id: FromPath[int]
) -> Response[Any]:
    return await _save(request, actor, forum_category_id)


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[category_list, new_category, create_category, edit_category, update_category, move, delete],
)
