"""Admin pages: users and roles, organisations, captured mail, dead jobs."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import jobs, mailsink, policy
from server.accounts import queries, services
from server.accounts.auth import CurrentActor
from server.accounts.tables import ORG_PLANS, ORG_SIZES, ROLES
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import checked, form_data, form_list
from server.web.render import page, redirect


def _admin_only(actor: CurrentActor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_administer(actor))


@get("/admin")
async def dashboard(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin_only(actor)
    dead = await jobs.Job.count().where(jobs.Job.status == jobs.DEAD)
    return page(request, "admin/dashboard.html", {"dead_jobs": dead})


# Users ---------------------------------------------------------------------------------------


@get("/admin/users")
async def users(
    request: Request[Any, Any, Any], actor: CurrentActor, q: FromQuery[str] = "", page_no: FromQuery[int] = 1
) -> Template:
    _admin_only(actor)
    rows, more = await queries.list_users(q, max(page_no, 1))
    name = "admin/_user_rows.html" if getattr(request, "htmx", False) else "admin/users.html"
    return page(request, name, {"users": rows, "q": q, "page_no": page_no, "more": more})


async def _user_page(request: Request[Any, Any, Any], user_id: FromPath[int], **extra: Any) -> Template:
    user = await queries.get_user(user_id)
    if user is None:
        raise NotFound
    return page(
        request,
        "admin/user.html",
        {"user": user, "all_roles": ROLES, **extra},
        status_code=422 if extra.get("errors") else 200,
    )


@get("/admin/users/{user_id:int}")
async def user_detail(request: Request[Any, Any, Any], actor: CurrentActor, user_id: FromPath[int]) -> Template:
    _admin_only(actor)
    return await _user_page(request, user_id)


@post("/admin/users/{user_id:int}/roles")
async def user_roles(
    request: Request[Any, Any, Any], actor: CurrentActor, user_id: FromPath[int]
) -> Template | Redirect:
    _admin_only(actor)
    try:
        await services.admin_set_roles(actor, user_id, await form_list(request, "roles"))
    except Invalid as exc:
        return await _user_page(request, user_id, errors=exc.errors)
    flash(request, _("Roles saved."), "success")
    return redirect(f"/admin/users/{user_id}")


@post("/admin/users/{user_id:int}/active")
async def user_active(
    request: Request[Any, Any, Any], actor: CurrentActor, user_id: FromPath[int]
) -> Template | Redirect:
    _admin_only(actor)
    values = await form_data(request)
    try:
        await services.admin_set_active(actor, user_id, checked(values, "is_active"))
    except Invalid as exc:
        return await _user_page(request, user_id, errors=exc.errors)
    flash(request, _("Account status saved."), "success")
    return redirect(f"/admin/users/{user_id}")


# Organisations --------------------------------------------------------------------------


def _org_form(
    request: Request[Any, Any, Any],
    org: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> Template:
    return page(
        request,
        "admin/organisation_form.html",
        {
            "org": org,
            "values": values,
            "errors": errors or {},
            "sizes": ORG_SIZES,
            "plans": ORG_PLANS,
        },
        status_code=422 if errors else 200,
    )


@get("/admin/organisations")
async def organisations(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin_only(actor)
    return page(request, "admin/organisations.html", {"orgs": await queries.list_organisations()})


@get("/admin/organisations/new")
async def organisation_new(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin_only(actor)
    return _org_form(request, None, {"size": ORG_SIZES[0], "plan": ORG_PLANS[0]})


@get("/admin/organisations/{org_id:int}")
async def organisation_edit(request: Request[Any, Any, Any], actor: CurrentActor, org_id: FromPath[int]) -> Template:
    _admin_only(actor)
    org = await queries.get_organisation(org_id)
    if org is None:
        raise NotFound
    return _org_form(request, org, org)


async def _save_org(request: Request[Any, Any, Any], actor: CurrentActor, org_id: int | None) -> Template | Redirect:
    _admin_only(actor)
    org = await queries.get_organisation(org_id) if org_id is not None else None
    if org_id is not None and org is None:
        raise NotFound
    values = await form_data(request)
    try:
        saved = await services.save_organisation(
            actor,
            org_id,
            name=values.get("name", ""),
            slug=values.get("slug", ""),
            size=values.get("size", ""),
            industry=values.get("industry", ""),
            plan=values.get("plan", ""),
        )
    except Invalid as exc:
        return _org_form(request, org, values, exc.errors)
    flash(request, _("Organisation saved."), "success")
    return redirect(f"/admin/organisations/{saved}")


@post("/admin/organisations/new")
async def organisation_create(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    return await _save_org(request, actor, None)


@post("/admin/organisations/{org_id:int}")
async def organisation_update(
    request: Request[Any, Any, Any], actor: CurrentActor, org_id: FromPath[int]
) -> Template | Redirect:
    return await _save_org(request, actor, org_id)


# Captured mail and jobs ----------------------------------------------------------------


@get("/admin/mail")
async def captured_mail(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    ensure(policy.can_view_captured_mail(actor))
    return page(request, "admin/mail.html", {"messages": mailsink.list_captured()})


@get("/admin/mail/{name:str}")
async def captured_mail_detail(request: Request[Any, Any, Any], actor: CurrentActor, name: FromPath[str]) -> Template:
    ensure_signed_in(actor)
    ensure(policy.can_view_captured_mail(actor))
    message = mailsink.read_captured(name)
    if message is None:
        raise NotFound
    return page(request, "admin/mail_message.html", {"message": message})


@get("/admin/jobs")
async def dead_jobs(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin_only(actor)
    rows = await jobs.Job.select().where(jobs.Job.status == jobs.DEAD).order_by(jobs.Job.id, ascending=False).limit(200)
    return page(request, "admin/jobs.html", {"jobs": rows})


@post("/admin/jobs/{job_id:int}/retry")
async def retry_job(request: Request[Any, Any, Any], actor: CurrentActor, job_id: FromPath[int]) -> Redirect:
    _admin_only(actor)
    if not await jobs.retry_dead(job_id):
        raise NotFound
    flash(request, _("The job is queued again."), "success")
    return redirect("/admin/jobs")


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        dashboard,
        users,
        user_detail,
        user_roles,
        user_active,
        organisations,
        organisation_new,
        organisation_edit,
        organisation_create,
        organisation_update,
        captured_mail,
        captured_mail_detail,
        dead_jobs,
        retry_job,
    ],
)
