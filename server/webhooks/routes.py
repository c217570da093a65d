"""Admin pages for webhooks: endpoints, their secret (shown once), the delivery log, test events
and redelivery. Admins only (`policy.can_manage_webhooks`)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.errors import Invalid
from server.i18n import _
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import checked, form_data, form_list
from server.web.render import page, redirect
from server.webhooks import services
from server.webhooks.tables import OUTCOMES


def _admin(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_manage_webhooks(actor))


def outcome_labels() -> dict[str, str]:
    labels = {
        "sending": _("Sending"),
        "delivered": _("Delivered"),
        "failed": _("Failed"),
        "interrupted": _("Interrupted"),
    }
    assert set(labels) == set(OUTCOMES)
    return labels


def _form_context(values: dict[str, Any], events: list[str]) -> dict[str, Any]:
    return {"values": values, "chosen_events": set(events), "event_names": services.EVENTS, **_labels()}


def _labels() -> dict[str, Any]:
    return {"event_labels": services.event_labels(), "outcomes": outcome_labels()}


@get("/admin/webhooks")
async def endpoints_page(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return page(request, "webhooks/endpoints.html", {"endpoints": await services.list_endpoints(), **_labels()})


@get("/admin/webhooks/new")
async def new_endpoint_page(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return page(request, "webhooks/new.html", _form_context({"active": True}, list(services.EVENTS[:4])))


@post("/admin/webhooks/new")
async def create_endpoint(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    values = await form_data(request)
    events = await form_list(request, "events")
    try:
        endpoint_id, secret = await services.save_endpoint(
            actor, None, values.get("url", ""), events, checked(values, "active"), values.get("description", "")
        )
    except Invalid as exc:
        context = {**_form_context({**values, "active": checked(values, "active")}, events), "errors": exc.errors}
        return page(request, "webhooks/new.html", context, status_code=422)
    # The secret is shown on this response only: no redirect, no cookie carries it.
    return await _endpoint_page(request, endpoint_id, new_secret=secret, created=True)


async def _endpoint_page(
    request: Request[Any, Any, Any],
    endpoint_id: int,
    *,
    before: int | None = None,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    events: list[str] | None = None,
    **extra: Any,
) -> Template:
    endpoint = await services.get_endpoint(endpoint_id)
    rows, older = await services.deliveries(endpoint_id, before)
    form_values = values or {
        "url": endpoint["url"],
        "description": endpoint["description"],
        "active": endpoint["active"],
    }
    endpoint.pop("secret", None)
    context = {
        "endpoint": endpoint,
        "deliveries": rows,
        "older": older,
        **_form_context(form_values, events if events is not None else endpoint["events"]),
        **extra,
    }
    return page(request, "webhooks/endpoint.html", context, status_code=status_code)


@get("/admin/webhooks/{endpoint_id:int}")
async def endpoint_page(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    endpoint_id: FromPath[int],
    before: FromQuery[int | None] = None,
) -> Template:
    _admin(actor)
    return await _endpoint_page(request, endpoint_id, before=before)


@post("/admin/webhooks/{endpoint_id:int}")
async def save_endpoint(
    request: Request[Any, Any, Any], actor: CurrentActor, endpoint_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    values = await form_data(request)
    events = await form_list(request, "events")
    try:
        await services.save_endpoint(
            actor, endpoint_id, values.get("url", ""), events, checked(values, "active"), values.get("description", "")
        )
    except Invalid as exc:
        form_values = {**values, "active": checked(values, "active")}
        return await _endpoint_page(
            request, endpoint_id, status_code=422, values=form_values, events=events, errors=exc.errors
        )
    flash(request, _("Webhook saved."), "success")
    return redirect(f"/admin/webhooks/{endpoint_id}")


@post("/admin/webhooks/{endpoint_id:int}/secret")
async def regenerate_secret(
    request: Request[Any, Any, Any], actor: CurrentActor, endpoint_id: FromPath[int]
) -> Template:
    _admin(actor)
    secret = await services.regenerate_secret(actor, endpoint_id)
    return await _endpoint_page(request, endpoint_id, new_secret=secret)


@post("/admin/webhooks/{endpoint_id:int}/test")
async def send_test(request: Request[Any, Any, Any], actor: CurrentActor, endpoint_id: FromPath[int]) -> Redirect:
    _admin(actor)
    uid = await services.send_test(actor, endpoint_id)
    flash(request, _("Test event %(id)s queued. Its delivery appears below.", id=uid), "success")
    return redirect(f"/admin/webhooks/{endpoint_id}")


@post("/admin/webhooks/{endpoint_id:int}/deliveries/{delivery_id:int}/redeliver")
async def redeliver(
    request: Request[Any, Any, Any], actor: CurrentActor, endpoint_id: FromPath[int], delivery_id: FromPath[int]
) -> Redirect:
    _admin(actor)
    uid = await services.redeliver(actor, endpoint_id, delivery_id)
    flash(request, _("Event %(id)s queued for redelivery.", id=uid), "success")
    return redirect(f"/admin/webhooks/{endpoint_id}")


@post("/admin/webhooks/{endpoint_id:int}/delete")
async def delete_endpoint(request: Request[Any, Any, Any], actor: CurrentActor, endpoint_id: FromPath[int]) -> Redirect:
    _admin(actor)
    await services.delete_endpoint(actor, endpoint_id)
    flash(request, _("Webhook deleted."), "success")
    return redirect("/admin/webhooks")


router = Router(
    path="/",
    route_handlers=[
        endpoints_page,
        new_endpoint_page,
        create_endpoint,
        endpoint_page,
        save_endpoint,
        regenerate_secret,
        send_test,
        redeliver,
        delete_endpoint,
    ],
)
