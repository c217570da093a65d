"""Notification pages: the list behind the bell, email preferences, the subscription control,
and the unsubscribe page that signed links open without signing in."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor, load_actor
from server.accounts.links import LinkError
from server.accounts.tables import EMAIL_NOTIFY_MODES
from server.errors import Invalid, NotFound
from server.i18n import _
from server.notifications import registry, services, unsubscribe
from server.notifications.services import LEVELS
from server.web.flash import flash
from server.web.forms import checked, form_data
from server.web.render import page, redirect, safe_next


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return bool(getattr(request, "htmx", False))


def _int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**31 else None


def target_label(kind: str | None) -> str:
    labels = {"thread": _("this thread"), "category": _("this category"), "ticket": _("this ticket")}
    return labels.get(kind or "", _("this conversation"))


async def _unread(actor: CurrentActor) -> int:
    return await services.unread_count(actor.user_id or 0)


# The list behind the bell -------------------------------------------------------------------


@get("/notifications", name="notifications")
async def list_page(
    request: Request[Any, Any, Any], actor: CurrentActor, before: FromQuery[int | None] = None
) -> Template:
    policy.ensure_signed_in(actor)
    rows = await services.list_notifications(actor, before_id=before)
    context = {
        "notifications": rows,
        "next_before": rows[-1]["id"] if len(rows) == services.PAGE_SIZE else None,
        "unread": await _unread(actor),
    }
    if _is_htmx(request):
        return page(request, "notifications/_list.html", context)
    return page(request, "notifications/page.html", context)


@post("/notifications/{notification_id:int}/read")
async def mark_read(
    request: Request[Any, Any, Any], actor: CurrentActor, notification_id: FromPath[int]
) -> Template | Redirect:
    policy.ensure_signed_in(actor)
    await services.mark_read(actor, notification_id)
    if _is_htmx(request):
        context = {"n": await services.get_notification(actor, notification_id), "unread": await _unread(actor)}
        return page(request, "notifications/_marked.html", context)
    return redirect("/notifications")


@post("/notifications/{notification_id:int}/open")
async def open_notification(actor: CurrentActor, notification_id: FromPath[int]) -> Redirect:
    """Following a notification marks it read (a POST: GET never changes state)."""
    policy.ensure_signed_in(actor)
    url = await services.mark_read(actor, notification_id)
    return redirect(safe_next(url, "/notifications"))


@post("/notifications/read-all")
async def mark_all_read(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    policy.ensure_signed_in(actor)
    await services.mark_all_read(actor)
    if _is_htmx(request):
        rows = await services.list_notifications(actor)
        context = {"notifications": rows, "next_before": None, "unread": 0}
        return page(request, "notifications/_marked.html", context)
    flash(request, _("All notifications are marked as read."), "success")
    return redirect("/notifications")


# Preferences and subscriptions --------------------------------------------------------------


async def _preferences_context(actor: CurrentActor) -> dict[str, Any]:
    prefs = await services.preferences(actor.user_id or 0)
    subscriptions = await services.subscriptions_of(actor)
    for row in subscriptions:
        row["label"] = row["title"] or f"{target_label(row['target_kind'])} #{row['target_id']}"
    return {
        "email_modes": EMAIL_NOTIFY_MODES,
        "values": {"email_mode": prefs["email"], "mentions": bool(prefs.get("mentions", True))},
        "subscriptions": subscriptions,
    }


@get("/notifications/preferences")
async def preferences_page(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    policy.ensure_signed_in(actor)
    return page(request, "notifications/preferences.html", await _preferences_context(actor))


@post("/notifications/preferences")
async def save_preferences(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    policy.ensure_signed_in(actor)
    values = await form_data(request)
    try:
        await services.set_email_mode(actor, values.get("email_mode", ""), mentions=checked(values, "mentions"))
    except Invalid as exc:
        context = await _preferences_context(actor)
        context.update(errors=exc.errors, values={**values, "mentions": checked(values, "mentions")})
        return page(request, "notifications/preferences.html", context, status_code=422)
    flash(request, _("Your notification settings are saved."), "success")
    return redirect("/notifications/preferences")


@post("/notifications/subscriptions")
async def change_subscription(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    """The watch / track / normal / mute control: htmx gets the control back, a plain form a
    redirect to the page it was on."""
    policy.ensure_signed_in(actor)
    values = await form_data(request)
    kind, target_id, level = values.get("target_kind", ""), _int(values.get("target_id")), values.get("level", "")
    if not kind or not values.get("target_id"):
        raise Invalid({"target": _("Choose what to follow.")})
    if registry.get(kind) is None or target_id is None:
        raise NotFound
    context: dict[str, Any] = {"target_kind": kind, "target_id": target_id}
    try:
        await services.set_subscription(actor, kind, target_id, level)
    except Invalid as exc:
        current = await services.subscription_level(actor.user_id, kind, target_id)
        if _is_htmx(request):
            context.update(level=current, errors=exc.errors)
            return page(request, "notifications/_subscription.html", context, status_code=422)
        raise
    if _is_htmx(request):
        context["level"] = await services.subscription_level(actor.user_id, kind, target_id)
        return page(request, "notifications/_subscription.html", context)
    flash(request, _("Your notification level is saved."), "success")
    return redirect(safe_next(values.get("next"), "/notifications/preferences"))


# Unsubscribe links (no sign-in) -------------------------------------------------------------


def _link_error(request: Request[Any, Any, Any], error: LinkError) -> Template:
    if error.reason == "expired":
        message = _("This unsubscribe link has expired. Sign in to change your notification settings.")
    else:
        message = _("This unsubscribe link is not valid. Sign in to change your notification settings.")
    return page(request, "notifications/unsubscribe_error.html", {"message": message}, status_code=400)


async def _target_title(claims: unsubscribe.UnsubscribeClaims) -> str:
    """The followed target's title, only while its owner may still read it."""
    if claims.target_kind is None or claims.target_id is None:
        return ""
    owner = await load_actor(claims.user_id)
    if owner is None or not await registry.can_read(owner, claims.target_kind, claims.target_id):
        return ""
    described = await registry.describe(claims.target_kind, [claims.target_id])
    return described.get(claims.target_id, ("", ""))[0]


@get("/notifications/unsubscribe")
async def unsubscribe_page(request: Request[Any, Any, Any], token: FromQuery[str] = "") -> Template:
    """Shows what the link would do; only the POST below changes anything."""
    try:
        claims = unsubscribe.read_token(token)
    except LinkError as exc:
        return _link_error(request, exc)
    context = {
        "token": token,
        "claims": claims,
        "label": target_label(claims.target_kind),
        "title": await _target_title(claims),
    }
    return page(request, "notifications/unsubscribe.html", context)


@post("/notifications/unsubscribe", exclude_from_csrf=True)
async def unsubscribe_apply(request: Request[Any, Any, Any], token: FromQuery[str] = "") -> Template:
    """Apply a signed link: from the confirm page's form, or a mail client's one-click POST
    (RFC 8058, no cookies). The signed token is what authorises it, so no CSRF token is needed."""
    values = await form_data(request)
    token = values.get("token") or token
    try:
        claims = unsubscribe.read_token(token)
    except LinkError as exc:
        return _link_error(request, exc)
    has_target = claims.target_kind is not None and claims.target_id is not None
    action = values.get("action") or ("stop" if has_target else "all")
    if action not in ("stop", "mute", "all") or (action != "all" and not has_target):
        raise Invalid({"action": _("Choose what to stop.")})
    if action == "all":
        await services.stop_all_email(claims.user_id)
    else:
        level = "muted" if action == "mute" else "normal"
        await services.unsubscribe_by_link(claims.user_id, claims.target_kind or "", claims.target_id or 0, level)
    context = {"action": action, "label": target_label(claims.target_kind), "title": await _target_title(claims)}
    return page(request, "notifications/unsubscribed.html", context)


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        list_page,
        mark_read,
        open_notification,
        mark_all_read,
        preferences_page,
        save_preferences,
        change_subscription,
        unsubscribe_page,
        unsubscribe_apply,
    ],
)

__all__ = ["LEVELS", "router"]
