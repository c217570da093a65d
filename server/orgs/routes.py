"""Organisation pages for their members; org admins manage who belongs."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import policy, ratelimit
from server.accounts import queries, services
from server.accounts.auth import CurrentActor
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import checked, form_data
from server.web.render import page, redirect


async def _visible_org(actor: CurrentActor, org_id: FromPath[int]) -> dict[str, Any]:
    ensure_signed_in(actor)
    if not policy.can_view_organisation(actor, org_id):
        raise NotFound  # an organisation you cannot see looks like one that does not exist
    org = await queries.get_organisation(org_id)
    if org is None:
        raise NotFound
    return org


@get("/organisations/{org_id:int}")
async def organisation(request: Request[Any, Any, Any], actor: CurrentActor, org_id: FromPath[int]) -> Template:
    org = await _visible_org(actor, org_id)
    return page(
        request,
        "orgs/organisation.html",
        {
            "org": org,
            "can_manage": policy.can_manage_organisation_members(actor, org_id),
        },
    )


@post("/organisations/{org_id:int}/members")
async def add_member(
    request: Request[Any, Any, Any], actor: CurrentActor, org_id: FromPath[int]
) -> Template | Redirect:
    org = await _visible_org(actor, org_id)
    ensure(policy.can_manage_organisation_members(actor, org_id))
    values = await form_data(request)
    await ratelimit.hit(ratelimit.ORG_MEMBERS, f"user:{actor.user_id}")
    try:
        await services.add_member(actor, org_id, values.get("email", ""), checked(values, "is_org_admin"))
    except Invalid as exc:
        return page(
            request,
            "orgs/organisation.html",
            {
                "org": org,
                "can_manage": True,
                "errors": exc.errors,
                "values": values,
            },
            status_code=422,
        )
    flash(request, _("Member saved."), "success")
    return redirect(f"/organisations/{org_id}")


@post("/organisations/{org_id:int}/members/{user_id:int}/remove")
async def remove_member(
    request: Request[Any, Any, Any], actor: CurrentActor, org_id: FromPath[int], user_id: FromPath[int]
) -> Redirect:
    await _visible_org(actor, org_id)
    ensure(policy.can_manage_organisation_members(actor, org_id))
    await services.remove_member(actor, org_id, user_id)
    flash(request, _("Member removed."), "success")
    return redirect(f"/organisations/{org_id}")


router = Router(path="/", route_handlers=[organisation, add_member, remove_member], include_in_schema=False)
