"""Account pages (sign up, sign in, verify, reset, profile, tokens) and the token API."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from litestar import Request, Router, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from server import ratelimit
from server.accounts import services
from server.accounts.auth import LOCALE_COOKIE, SESSION_COOKIE, CurrentActor
from server.accounts.links import LinkError
from server.accounts.schemas import MeResponse, TokenRequest, TokenResponse
from server.accounts.tables import EMAIL_NOTIFY_MODES, ApiToken, Membership, User
from server.errors import Invalid
from server.i18n import LOCALES, _, get_locale
from server.policy import ensure_signed_in
from server.settings import get_settings
from server.web.flash import flash
from server.web.forms import checked, form_data
from server.web.render import page, redirect, safe_next

TIME_ZONES = sorted(available_timezones())


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _session_cookie(token: str) -> Cookie:
    settings = get_settings()
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_days * 86400,
    )


def _link_error_message(error: LinkError) -> str:
    return {
        "expired": _("This link has expired. Ask for a new one."),
        "used": _("This link has already been used. Ask for a new one if you still need it."),
    }.get(error.reason, _("This link is not valid. Check that you copied the whole address."))


# Sign up ------------------------------------------------------------------------------------


@get("/signup", name="signup")
async def signup_form(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    if actor.is_authenticated:
        return redirect("/")
    return page(request, "accounts/signup.html")


@post("/signup")
async def signup(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_data(request)
    await ratelimit.hit(ratelimit.SIGNUP, f"ip:{_client_ip(request)}")
    try:
        await services.sign_up(
            values.get("email", ""), values.get("password", ""), values.get("display_name", ""), locale=get_locale()
        )
    except Invalid as exc:
        values.pop("password", None)
        return page(request, "accounts/signup.html", {"errors": exc.errors, "values": values}, status_code=422)
    flash(
        request,
        _("Almost there: we sent you an email. Open its link to confirm your address, then sign in."),
        "success",
    )
    return redirect("/login")


# Email verification --------------------------------------------------------------------------


@get("/verify-email")
async def verify_email_form(request: Request[Any, Any, Any], token: FromQuery[str] = "") -> Template:
    # GET only shows the button: mail scanners that prefetch links must not use them up.
    return page(request, "accounts/verify_email.html", {"token": token})


@post("/verify-email")
async def verify_email(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_data(request)
    try:
        await services.verify_email(values.get("token", ""))
    except LinkError as exc:
        return page(request, "accounts/link_error.html", {"message": _link_error_message(exc)}, status_code=400)
    flash(request, _("Your email address is confirmed. Welcome!"), "success")
    return redirect("/login" if not request.cookies.get(SESSION_COOKIE) else "/")


@post("/verify-email/resend")
async def resend_verification(request: Request[Any, Any, Any], actor: CurrentActor) -> Redirect:
    ensure_signed_in(actor)
    await ratelimit.hit(ratelimit.RESET, f"user:{actor.user_id}")
    await services.resend_verification(actor)
    flash(request, _("We sent a new confirmation email."), "success")
    return redirect("/profile")


# Sign in / out ----------------------------------------------------------------------------


@get("/login", name="login")
async def login_form(
    request: Request[Any, Any, Any], actor: CurrentActor, next: FromQuery[str] = "/"
) -> Template | Redirect:
    if actor.is_authenticated:
        return redirect(safe_next(next))
    return page(request, "accounts/login.html", {"values": {"next": safe_next(next)}})


@post("/login")
async def login(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_data(request)
    email = services.normalise_email(values.get("email", ""))
    await ratelimit.hit(ratelimit.LOGIN, f"ip:{_client_ip(request)}")
    await ratelimit.hit(ratelimit.LOGIN, f"email:{email}")
    user_id = await services.authenticate(email, values.get("password", ""))
    if user_id is None:
        return page(
            request,
            "accounts/login.html",
            {
                "errors": {"form": _("The email or password is not right.")},
                "values": {"email": email, "next": safe_next(values.get("next"))},
            },
            status_code=422,
        )
    token = await services.start_session(
        user_id,
        ip=_client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    response = redirect(safe_next(values.get("next")))
    response.cookies.append(_session_cookie(token))
    return response


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    if token := request.cookies.get(SESSION_COOKIE):
        await services.end_session(token)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# Password reset ----------------------------------------------------------------------------


@get("/forgot-password")
async def forgot_password_form(request: Request[Any, Any, Any]) -> Template:
    return page(request, "accounts/forgot_password.html")


@post("/forgot-password")
async def forgot_password(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_data(request)
    await ratelimit.hit(ratelimit.RESET, f"ip:{_client_ip(request)}")
    try:
        await services.request_password_reset(values.get("email", ""))
    except Invalid as exc:
        return page(request, "accounts/forgot_password.html", {"errors": exc.errors, "values": values}, status_code=422)
    flash(request, _("If an account uses that address, we sent it a link to choose a new password."), "success")
    return redirect("/login")


@get("/reset-password")
async def reset_password_form(request: Request[Any, Any, Any], token: FromQuery[str] = "") -> Template:
    try:
        await services.check_reset_link(token)
    except LinkError as exc:
        return page(request, "accounts/link_error.html", {"message": _link_error_message(exc)}, status_code=400)
    return page(request, "accounts/reset_password.html", {"values": {"token": token}})


@post("/reset-password")
async def reset_password(request: Request[Any, Any, Any]) -> Template | Redirect:
    values = await form_data(request)
    token = values.get("token", "")
    await ratelimit.hit(ratelimit.RESET, f"ip:{_client_ip(request)}")
    try:
        await services.reset_password(token, values.get("password", ""))
    except Invalid as exc:
        return page(
            request, "accounts/reset_password.html", {"errors": exc.errors, "values": {"token": token}}, status_code=422
        )
    except LinkError as exc:
        return page(request, "accounts/link_error.html", {"message": _link_error_message(exc)}, status_code=400)
    flash(request, _("Your password has been changed. Sign in with the new one."), "success")
    return redirect("/login")


# Locale ------------------------------------------------------------------------------------


@post("/locale")
async def switch_locale(request: Request[Any, Any, Any], actor: CurrentActor) -> Redirect:
    values = await form_data(request)
    locale = values.get("locale", "")
    if locale not in LOCALES:
        raise Invalid({"locale": _("Choose a language from the list.")})
    await services.set_locale(actor, locale)
    response = redirect(safe_next(values.get("next")))
    response.cookies.append(
        Cookie(key=LOCALE_COOKIE, value=locale, path="/", samesite="lax", max_age=365 * 86400, httponly=True)
    )
    return response


# Profile and tokens ----------------------------------------------------------------------


async def _profile_context(actor: CurrentActor) -> dict[str, Any]:
    user = await User.select().where(User.id == actor.user_id).output(load_json=True).first()
    tokens = (
        await ApiToken.select()
        .where((ApiToken.user == actor.user_id) & ApiToken.revoked_at.is_null())
        .order_by(ApiToken.id)
    )
    prefs = {"email": "immediate", "mentions": True, "ticket_updates": True, **(user["notification_prefs"] or {})}
    memberships = (
        await Membership.select(
            Membership.organisation.id.as_alias("id"),
            Membership.organisation.name.as_alias("name"),
            Membership.is_org_admin,
        )
        .where(Membership.user == actor.user_id)
        .order_by(Membership.organisation.name)
    )
    return {
        "user": user,
        "tokens": tokens,
        "memberships": memberships,
        "time_zones": TIME_ZONES,
        "email_modes": EMAIL_NOTIFY_MODES,
        "values": {
            "display_name": user["display_name"],
            "locale": user["locale"],
            "time_zone": user["time_zone"],
            "email_mode": prefs["email"],
            "mentions": prefs["mentions"],
            "ticket_updates": prefs["ticket_updates"],
        },
    }


@get("/profile", name="profile")
async def profile(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    return page(request, "accounts/profile.html", await _profile_context(actor))


@post("/profile")
async def save_profile(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    ensure_signed_in(actor)
    values = await form_data(request)
    try:
        await services.update_profile(
            actor,
            display_name=values.get("display_name", ""),
            locale=values.get("locale", ""),
            time_zone=values.get("time_zone", ""),
            email_mode=values.get("email_mode", ""),
            mentions=checked(values, "mentions"),
            ticket_updates=checked(values, "ticket_updates"),
        )
    except Invalid as exc:
        context = await _profile_context(actor)
        context.update(
            errors=exc.errors,
            values={
                **values,
                "mentions": checked(values, "mentions"),
                "ticket_updates": checked(values, "ticket_updates"),
            },
        )
        return page(request, "accounts/profile.html", context, status_code=422)
    response = redirect("/profile")
    response.cookies.append(
        Cookie(key=LOCALE_COOKIE, value=values["locale"], path="/", samesite="lax", max_age=365 * 86400, httponly=True)
    )
    flash(request, _("Your profile is saved."), "success")
    return response


@post("/profile/tokens")
async def create_token(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    values = await form_data(request)
    context = await _profile_context(actor)
    try:
        token = await services.create_api_token(actor, values.get("name", ""))
    except Invalid as exc:
        context["errors"] = exc.errors
        return page(request, "accounts/profile.html", context, status_code=422)
    context = await _profile_context(actor)
    context["new_token"] = token  # shown once, never stored in clear
    return page(request, "accounts/profile.html", context)


@post("/profile/tokens/{token_id:int}/revoke")
async def revoke_token(request: Request[Any, Any, Any], actor: CurrentActor, token_id: FromPath[int]) -> Redirect:
    ensure_signed_in(actor)
    await services.revoke_api_token(actor, token_id)
    flash(request, _("The token is revoked."), "success")
    return redirect("/profile")


# JSON API ------------------------------------------------------------------------------------


@post("/api/v1/auth/token", status_code=201, tags=["auth"])
async def api_token(request: Request[Any, Any, Any], data: JSONBody[TokenRequest]) -> TokenResponse:
    """Exchange an email and password for a personal API token (Bearer)."""
    await ratelimit.hit(ratelimit.TOKEN, f"ip:{_client_ip(request)}")
    await ratelimit.hit(ratelimit.TOKEN, f"email:{services.normalise_email(data.email)}")
    token = await services.issue_api_token_for_login(data.email, data.password, data.name)
    if token is None:
        raise NotAuthorizedException(detail=_("The email or password is not right."))
    return TokenResponse(token=token)


@get("/api/v1/me", tags=["auth"])
async def api_me(actor: CurrentActor) -> MeResponse:
    """The account behind the Bearer token."""
    ensure_signed_in(actor)
    return MeResponse(
        id=actor.user_id or 0,
        email=actor.email,
        display_name=actor.display_name,
        locale=actor.locale,
        time_zone=actor.time_zone,
        roles=sorted(actor.roles),
        email_verified=actor.email_verified,
    )


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        signup_form,
        signup,
        verify_email_form,
        verify_email,
        resend_verification,
        login_form,
        login,
        logout,
        forgot_password_form,
        forgot_password,
        reset_password_form,
        reset_password,
        switch_locale,
        profile,
        save_profile,
        create_token,
        revoke_token,
    ],
)
api_router = Router(path="/", route_handlers=[api_token, api_me])
