"""Admin pages for users: list and search (full page or htmx rows), roles, deactivation."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.accounts.tables import ApiToken
from server.policy import Actor
from tests.accounts.helpers import roles_of, session_count, user_by_email
from tests.conftest import post_form
from tests.factories import PASSWORD, login, make_user


async def test_admin_lists_and_searches_users(admin_client: AsyncTestClient, customer: Actor, admin: Actor) -> None:
    listing = await admin_client.get("/admin/users")
    assert listing.status_code == 200
    assert customer.email in listing.text and admin.email in listing.text

    found = await admin_client.get("/admin/users", params={"q": "CASEY"})
    assert customer.email in found.text
    assert admin.email not in found.text


async def test_htmx_search_returns_only_the_rows_partial(
    admin_client: AsyncTestClient, customer: Actor, admin: Actor
) -> None:
    response = await admin_client.get("/admin/users", params={"q": "casey"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="user-rows">')
    assert "<html" not in response.text and "site-header" not in response.text
    assert customer.email in response.text and admin.email not in response.text


async def test_non_admins_cannot_open_admin_pages(client: AsyncTestClient, customer: Actor) -> None:
    anonymous = await client.get("/admin/users", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")

    await login(client, customer.email)
    for path in ("/admin", "/admin/users", f"/admin/users/{customer.user_id}", "/admin/organisations"):
        assert (await client.get(path)).status_code == 403, path
    refused = await post_form(client, f"/admin/users/{customer.user_id}/roles", {"roles": ["admin"]}, page="/profile")
    assert refused.status_code == 403
    assert await roles_of(customer.user_id) == {"customer"}


async def test_admin_changes_roles(admin_client: AsyncTestClient, customer: Actor) -> None:
    page = f"/admin/users/{customer.user_id}"

    response = await post_form(admin_client, f"{page}/roles", {"roles": ["agent", "moderator", "bogus"]}, page=page)

    assert response.status_code == 200 and "Roles saved." in response.text
    assert await roles_of(customer.user_id) == {"customer", "agent", "moderator"}


async def test_admin_cannot_remove_own_admin_role(admin_client: AsyncTestClient, admin: Actor) -> None:
    page = f"/admin/users/{admin.user_id}"

    response = await post_form(admin_client, f"{page}/roles", {"roles": ["agent"]}, page=page)

    assert response.status_code == 422
    assert "You cannot remove your own admin role." in response.text
    assert await roles_of(admin.user_id) == {"customer", "admin"}


async def test_deactivating_a_user_ends_their_sessions_and_tokens(
    admin_client: AsyncTestClient, other_client: AsyncTestClient, customer: Actor
) -> None:
    await login(other_client, customer.email)
    token = (
        await other_client.post("/api/v1/auth/token", json={"email": customer.email, "password": PASSWORD})
    ).json()["token"]
    page = f"/admin/users/{customer.user_id}"

    response = await post_form(admin_client, f"{page}/active", {}, page=page)  # "Active" unticked

    assert response.status_code == 200 and "Account status saved." in response.text
    assert (await user_by_email(customer.email))["is_active"] is False
    assert await session_count(customer.user_id) == 0
    signed_out = await other_client.get("/profile", follow_redirects=False)
    assert signed_out.headers["location"].startswith("/login")
    assert (await other_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert await ApiToken.count().where(ApiToken.revoked_at.is_null()) == 0
    assert (await login(other_client, customer.email)).status_code == 422


async def test_admin_cannot_deactivate_themselves(admin_client: AsyncTestClient, admin: Actor) -> None:
    page = f"/admin/users/{admin.user_id}"

    response = await post_form(admin_client, f"{page}/active", {}, page=page)

    assert response.status_code == 422
    assert "You cannot deactivate your own account." in response.text
    assert (await user_by_email(admin.email))["is_active"] is True


async def test_reactivated_user_can_sign_in_again(admin_client: AsyncTestClient, other_client: AsyncTestClient) -> None:
    person = await make_user(name="Returning Person")
    page = f"/admin/users/{person.user_id}"
    await post_form(admin_client, f"{page}/active", {}, page=page)

    await post_form(admin_client, f"{page}/active", {"is_active": "on"}, page=page)

    assert (await login(other_client, person.email)).status_code == 200
