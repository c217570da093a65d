"""Organisations: admins create and edit them with segment attributes and manage members;
org admins manage their own organisation; others see it, or not even that."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from server.accounts.tables import Membership, Organisation
from server.policy import Actor
from tests.conftest import post_form
from tests.factories import login, make_org, make_user

ACME = {
    "name": "Acme Robotics",
    "slug": "acme-robotics",
    "size": "51-200",
    "industry": "Manufacturing",
    "plan": "business",
}


async def create_org(client: AsyncTestClient, **overrides: str):  # noqa: ANN201
    return await post_form(client, "/admin/organisations/new", {**ACME, **overrides})


async def membership(user_id: int | None, org_id: int) -> dict | None:
    return await Membership.select().where((Membership.user == user_id) & (Membership.organisation == org_id)).first()


async def test_admin_creates_an_organisation_with_segments(admin_client: AsyncTestClient) -> None:
    response = await create_org(admin_client)

    assert response.status_code == 200 and "Organisation saved." in response.text
    org = await Organisation.select().where(Organisation.slug == "acme-robotics").first()
    assert {k: org[k] for k in ACME} == ACME
    assert response.url.path == f"/admin/organisations/{org['id']}"
    listing = await admin_client.get("/admin/organisations")
    assert "Acme Robotics" in listing.text and "Manufacturing" in listing.text


async def test_admin_edits_an_organisation(admin_client: AsyncTestClient) -> None:
    org_id = await make_org("globex", "Globex")
    page = f"/admin/organisations/{org_id}"

    response = await post_form(
        admin_client,
        page,
        {"name": "Globex Corporation", "slug": "globex", "size": "1000+", "industry": "Energy", "plan": "enterprise"},
    )

    assert response.status_code == 200
    org = await Organisation.select().where(Organisation.id == org_id).first()
    assert (org["name"], org["size"], org["industry"], org["plan"]) == (
        "Globex Corporation",
        "1000+",
        "Energy",
        "enterprise",
    )


async def test_duplicate_slug_is_422_and_keeps_the_values(admin_client: AsyncTestClient) -> None:
    await make_org("acme-robotics", "The First Acme")

    response = await create_org(admin_client, name="Second Acme")

    assert response.status_code == 422
    assert "Another organisation already uses this slug." in response.text
    assert 'value="Second Acme"' in response.text
    assert '<option value="51-200" selected>' in response.text
    assert await Organisation.count() == 1


async def test_renaming_onto_another_slug_is_422(admin_client: AsyncTestClient) -> None:
    await make_org("initech", "Initech")
    other = await make_org("globex", "Globex")

    response = await post_form(admin_client, f"/admin/organisations/{other}", {**ACME, "slug": "initech"})

    assert response.status_code == 422
    assert (await Organisation.select(Organisation.slug).where(Organisation.id == other).first())["slug"] == "globex"


async def test_invalid_segments_are_422(admin_client: AsyncTestClient) -> None:
    response = await create_org(admin_client, slug="No Spaces!", size="huge", plan="platinum", name="")

    assert response.status_code == 422
    assert "Use 3–80 lower-case letters, digits and hyphens." in response.text
    assert response.text.count("Choose an option from the list.") == 2
    assert await Organisation.count() == 0


async def test_admin_adds_members_and_makes_org_admins(admin_client: AsyncTestClient, customer: Actor) -> None:
    org_id = await make_org()
    page = f"/admin/organisations/{org_id}"
    form = await admin_client.get(page)
    assert f'action="/organisations/{org_id}/members"' in form.text

    added = await post_form(admin_client, f"/organisations/{org_id}/members", {"email": customer.email}, page=page)
    assert added.status_code == 200
    assert (await membership(customer.user_id, org_id))["is_org_admin"] is False

    await post_form(
        admin_client,
        f"/organisations/{org_id}/members",
        {"email": customer.email.upper(), "is_org_admin": "on"},
        page=page,
    )
    row = await membership(customer.user_id, org_id)
    assert row["is_org_admin"] is True
    assert await Membership.count() == 1  # promoted, not added twice
    assert customer.email in (await admin_client.get(page)).text


async def test_adding_an_unknown_email_is_422(admin_client: AsyncTestClient) -> None:
    org_id = await make_org()

    response = await post_form(
        admin_client,
        f"/organisations/{org_id}/members",
        {"email": "ghost@example.test"},
        page=f"/organisations/{org_id}",
    )

    assert response.status_code == 422
    assert "No account uses this email address." in response.text
    assert 'value="ghost@example.test"' in response.text
    assert await Membership.count() == 0


async def test_org_admin_manages_their_own_members(client: AsyncTestClient) -> None:
    org_id = await make_org()
    boss = await make_user(org="acme-corp", org_admin=True, name="Olga Orgadmin")
    newcomer = await make_user(name="Nina Newcomer")
    page = f"/organisations/{org_id}"
    await login(client, boss.email)

    shown = await client.get(page)
    assert shown.status_code == 200 and "Add member" in shown.text

    await post_form(client, f"{page}/members", {"email": newcomer.email}, page=page)
    assert await membership(newcomer.user_id, org_id) is not None
    listing = await client.get(page)
    assert "Nina Newcomer" in listing.text

    removed = await post_form(client, f"{page}/members/{newcomer.user_id}/remove", {}, page=page)
    assert removed.status_code == 200 and "Member removed." in removed.text
    assert await membership(newcomer.user_id, org_id) is None


async def test_org_admin_cannot_manage_another_organisation(client: AsyncTestClient) -> None:
    await make_org()
    other_id = await make_org("globex", "Globex")
    boss = await make_user(org="acme-corp", org_admin=True)
    await login(client, boss.email)

    assert (await client.get(f"/organisations/{other_id}")).status_code == 404
    refused = await post_form(client, f"/organisations/{other_id}/members", {"email": boss.email}, page="/profile")
    assert refused.status_code == 404
    assert await membership(boss.user_id, other_id) is None


async def test_customer_of_another_org_gets_404(client: AsyncTestClient) -> None:
    org_id = await make_org()
    await make_org("globex", "Globex")
    outsider = await make_user(org="globex")
    await login(client, outsider.email)

    response = await client.get(f"/organisations/{org_id}")

    assert response.status_code == 404
    assert "Acme Corp" not in response.text
    assert (await client.get("/organisations/999999")).status_code == 404  # same answer as missing


async def test_plain_member_sees_but_cannot_manage(client: AsyncTestClient) -> None:
    org_id = await make_org()
    colleague = await make_user(org="acme-corp", name="Carl Colleague")
    member = await make_user(org="acme-corp", name="Mia Member")
    page = f"/organisations/{org_id}"
    await login(client, member.email)

    shown = await client.get(page)
    assert shown.status_code == 200
    assert "Carl Colleague" in shown.text and "Acme Corp" in shown.text
    assert "Add member" not in shown.text and not re.search(r'action="[^"]*/remove"', shown.text)

    add = await post_form(client, f"{page}/members", {"email": member.email, "is_org_admin": "on"}, page=page)
    remove = await post_form(client, f"{page}/members/{colleague.user_id}/remove", {}, page=page)

    assert add.status_code == 403 and remove.status_code == 403
    assert (await membership(member.user_id, org_id))["is_org_admin"] is False
    assert await membership(colleague.user_id, org_id) is not None
