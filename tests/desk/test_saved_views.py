"""Agents' saved views: filters, sort and columns, private or shared with a group, live counts,
and who may read, change or delete them."""

from __future__ import annotations

import re

import httpx
import pytest
from litestar.exceptions import PermissionDeniedException

from server.desk import saved_views, services
from server.desk.agent_tables import DeskSavedView
from server.errors import Invalid, NotFound
from tests.conftest import csrf_token, post_form
from tests.desk.conftest import People
from tests.desk.factories import make_group, make_ticket
from tests.factories import login


def spec(query: str) -> saved_views.ViewSpec:
    return saved_views.spec_from_query(query)


async def _tickets(people: People) -> dict[str, int]:
    group = await make_group("Billing", [people.agent, people.agent2])
    urgent = await make_ticket(people.customer, "Invoice wrong", priority="urgent", tags=["billing", "vip_1"])
    normal = await make_ticket(people.colleague, "Export slow", tags=["export"])
    api = await make_ticket(people.outsider, "API 500", channel="api", tags=["billing"])
    await services.update_ticket(people.agent, urgent, 1, {"assignee": people.agent.user_id, "team": group})
    await services.update_ticket(people.agent, api, 1, {"status": "pending"})
    return {"group": group, "urgent": urgent, "normal": normal, "api": api}


async def test_filters_sort_and_columns_select_tickets(people: People) -> None:
    t = await _tickets(people)

    async def ids(query: str) -> list[int]:
        rows, _cursor = await saved_views.list_spec(people.agent, spec(query))
        return [r["id"] for r in rows]

    assert await ids("") == [t["api"], t["urgent"], t["normal"]]  # most recently updated first
    assert await ids("sort=created") == [t["urgent"], t["normal"], t["api"]]
    assert await ids("tags=billing") == [t["api"], t["urgent"]]
    assert await ids("tags=billing&tags=vip_1") == [t["urgent"]]
    assert await ids("tags=vip") == []  # whole tags only; "_" is not a wildcard
    assert await ids("tags=vipx1") == []
    assert await ids("status=new&status=open") == [t["urgent"], t["normal"]]
    assert await ids("priority=urgent") == [t["urgent"]]
    assert await ids("channel=api") == [t["api"]]
    assert await ids("assignee=me") == [t["urgent"]]
    assert await ids("assignee=none&sort=created") == [t["normal"], t["api"]]
    assert await ids(f"assignee={people.agent.user_id}") == [t["urgent"]]
    assert await ids("team=mine") == [t["urgent"]]
    assert await ids(f"team={t['group']}") == [t["urgent"]]
    assert await ids("team=none&status=pending") == [t["api"]]
    # "me" is whoever looks: Ben sees no ticket of his own in the same view.
    rows, _cursor = await saved_views.list_spec(people.agent2, spec("assignee=me"))
    assert rows == []
    parsed = spec("status=bogus&priority=high&col=tags&col=nope&col=id&sort=sideways&assignee=x")
    assert parsed.filters == {"priority": ["high"]} and parsed.columns == ["tags", "id"] and parsed.sort == "-updated"
    assert spec(parsed.query()) == parsed


async def test_saved_views_are_private_or_shared_with_a_group(people: People) -> None:
    t = await _tickets(people)
    mine = await saved_views.save_view(people.agent, None, "My urgent", None, spec("priority=urgent&col=id&col=tags"))
    shared = await saved_views.save_view(people.agent, None, "Billing queue", t["group"], spec("tags=billing"))
    assert [v["name"] for v in await saved_views.visible_views(people.agent)] == ["Billing queue", "My urgent"]
    assert [v["name"] for v in await saved_views.visible_views(people.agent2)] == ["Billing queue"]
    assert await saved_views.visible_views(people.admin) == []  # not in the group
    assert await saved_views.visible_views(people.customer) == []
    with pytest.raises(NotFound):
        await saved_views.access_view(people.agent2, mine)
    with pytest.raises(NotFound):
        await saved_views.access_view(people.customer, shared)
    nav = {v["name"]: v for v in await saved_views.nav_entries(people.agent2)}
    assert nav["Billing queue"]["count"] == 2 and nav["Billing queue"]["shared"] and not nav["Billing queue"]["mine"]
    # Only the owner changes or deletes a view; a shared view is read-only to the group.
    with pytest.raises(PermissionDeniedException):
        await saved_views.save_view(people.agent2, shared, "Mine now", None, spec(""))
    with pytest.raises(PermissionDeniedException):
        await saved_views.delete_view(people.agent2, shared)
    with pytest.raises(Invalid) as bad:
        await saved_views.save_view(people.agent2, None, " ", t["group"] + 99, spec(""))
    assert set(bad.value.errors) == {"name", "team"}
    with pytest.raises(PermissionDeniedException):
        await saved_views.save_view(people.customer, None, "Sneaky", None, spec(""))
    await saved_views.save_view(people.agent, shared, "Billing (all)", None, spec("tags=billing&status=pending"))
    row = await saved_views.access_view(people.agent, shared)
    assert (
        row["name"] == "Billing (all)"
        and row["team"] is None
        and row["filters"] == {"status": ["pending"], "tags": ["billing"]}
    )
    await saved_views.delete_view(people.agent, mine)
    assert await DeskSavedView.count() == 1


async def test_views_through_the_desk_pages(client: httpx.AsyncClient, people: People) -> None:
    t = await _tickets(people)
    await login(client, people.agent.email)
    listing = await client.get("/desk/list?tags=billing&col=id&col=subject&col=tags&sort=created")
    assert listing.status_code == 200 and "Invoice wrong" in listing.text and "Export slow" not in listing.text
    assert '<span class="desk-tag">vip_1</span>' in listing.text and "<th>Requester</th>" not in listing.text
    query = re.search(r'name="query" value="([^"]+)"', listing.text)
    assert query
    bad = await post_form(client, "/desk/views", {"name": "", "query": query.group(1)}, page="/desk/list")
    assert bad.status_code == 422 and "Give the view a name" in bad.text
    saved = await post_form(
        client,
        "/desk/views",
        {"name": "Billing", "team": str(t["group"]), "query": query.group(1).replace("&amp;", "&")},
        page="/desk/list",
    )
    assert saved.status_code == 200 and "View saved." in saved.text
    view_id = int(str(saved.url).rsplit("/", 1)[1])
    assert 'aria-current="page">Billing' in saved.text and "Export slow" not in saved.text
    home = await client.get("/desk")
    assert f'href="/desk/views/{view_id}"' in home.text and 'data-live-channel="desk:0"' in home.text
    nav = await client.get("/desk/nav", headers={"HX-Request": "true"})
    assert re.search(r"Billing.*?<span class=\"desk-count\">2</span>", nav.text, re.S)
    partial = await client.get(f"/desk/views/{view_id}", headers={"HX-Request": "true", "HX-Target": "desk-list"})
    assert partial.text.lstrip().startswith('<div id="desk-list"') and "Invoice wrong" in partial.text
    edit = await client.get(f"/desk/list?{query.group(1).replace('&amp;', '&')}&edit={view_id}")
    assert "Save changes" in edit.text
    changed = await post_form(
        client,
        f"/desk/views/{view_id}",
        {"name": "Billing urgent", "query": "tags=billing&priority=urgent"},
        page=f"/desk/views/{view_id}",
    )
    assert changed.status_code == 200 and "Billing urgent" in changed.text and "API 500" not in changed.text
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
    await login(client, people.agent2.email)
    assert (await client.get(f"/desk/views/{view_id}")).status_code == 404  # private again
    denied = await post_form(client, f"/desk/views/{view_id}/delete", {}, page="/desk")
    assert denied.status_code == 404
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
    await login(client, people.customer.email)
    assert (await client.get("/desk/list")).status_code == 403
    assert (await client.get(f"/desk/views/{view_id}")).status_code == 403
    assert (await post_form(client, "/desk/views", {"name": "x"}, page="/")).status_code == 403
