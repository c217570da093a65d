"""Admin pages for groups, custom fields and macros."""

from __future__ import annotations

import httpx

from server.desk.tables import DeskField, DeskGroup, DeskGroupMember, DeskMacro
from tests.conftest import post_form
from tests.desk.conftest import People
from tests.factories import login


async def test_admin_manages_groups_fields_and_macros(client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.admin.email)
    assert (await client.get("/admin/desk")).status_code == 200
    bad = await post_form(client, "/admin/desk/groups/new", {"name": "", "members": [str(people.customer.user_id)]})
    assert bad.status_code == 422 and "Groups are made of agents." in bad.text
    made = await post_form(
        client,
        "/admin/desk/groups/new",
        {"name": "Tier 2", "lead": str(people.agent.user_id), "members": [str(people.agent2.user_id)]},
    )
    assert made.status_code == 200 and "Tier 2" in made.text
    group = await DeskGroup.select().where(DeskGroup.name == "Tier 2").first()
    assert group and group["lead"] == people.agent.user_id
    assert await DeskGroupMember.count().where(DeskGroupMember.team == group["id"]) == 2
    assert (await client.get(f"/admin/desk/groups/{group['id']}")).status_code == 200

    field = await post_form(
        client,
        "/admin/desk/fields/new",
        {
            "key": "os",
            "label_en": "Operating system",
            "label_ja": "OS",
            "field_type": "select",
            "options": "macOS\nWindows\n",
            "active": "on",
            "customer_editable": "on",
        },
    )
    assert field.status_code == 200
    row = await DeskField.select().where(DeskField.key == "os").output(load_json=True).first()
    assert row and row["options"] == ["macOS", "Windows"] and row["customer_editable"]
    clash = await post_form(client, "/admin/desk/fields/new", {"key": "os", "label_en": "Again", "field_type": "text"})
    assert clash.status_code == 422 and "Another field already uses this key." in clash.text
    assert (await client.get(f"/admin/desk/fields/{row['id']}")).status_code == 200
    assert "Operating system" in (await client.get("/support/new")).text

    macro = await post_form(
        client,
        "/admin/desk/macros/new",
        {
            "name": "Close politely",
            "body_md": "Bye {{requester.first_name}}",
            "status": "solved",
            "team": str(group["id"]),
            "add_tags": "done",
            "active": "on",
        },
    )
    assert macro.status_code == 200
    saved = await DeskMacro.select().where(DeskMacro.name == "Close politely").output(load_json=True).first()
    assert saved and saved["actions"] == {"status": "solved", "team": group["id"], "add_tags": ["done"]}
    assert (await client.get(f"/admin/desk/macros/{saved['id']}")).status_code == 200
    junk = await post_form(client, "/admin/desk/macros/new", {"name": "Junk", "team": "abc", "position": "x"})
    assert junk.status_code == 422
    deleted = await post_form(client, f"/admin/desk/macros/{saved['id']}/delete", {}, page="/admin/desk")
    assert deleted.status_code == 200 and await DeskMacro.count() == 0
    await post_form(client, f"/admin/desk/groups/{group['id']}/delete", {}, page="/admin/desk")
    assert await DeskGroup.count() == 0
