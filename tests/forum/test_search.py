"""Threads and replies in search: documents, audience, the SQL fallback, and the real index."""

from __future__ import annotations

import pytest

from server import jobs
from server.forum import services
from server.forum.search import posts, threads
from server.policy import ANONYMOUS, Actor
from server.search import registry
from server.search.query import search
from server.search.sync import wait_until_idle
from tests.conftest import fresh_indexes
from tests.factories import make_user
from tests.forum.factories import make_category, make_thread, reply


def test_types_are_registered() -> None:
    assert registry.get("thread") is threads and registry.get("post") is posts
    assert threads.facet_fields == ("category", "tags", "solved")


async def test_documents_carry_the_category_audience(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category, "Exporting a timeline", "Is there a **PDF** export?", ["export"])
    answer = await reply(helper, thread_id, "Yes: File → Export → PDF")
    await services.accept_answer(asker, answer["id"])
    (doc,) = (await threads.build([thread_id]))[thread_id]
    assert (doc.title, doc.locale, doc.audience) == ("Exporting a timeline", "en", ["public"])
    assert "PDF export" in doc.text and "<" not in doc.text
    assert doc.url == f"/community/t/{thread_id}-exporting-a-timeline"
    assert doc.facets == {"category": "Questions EN", "tags": ["export"], "solved": "yes"}
    (post_doc,) = (await posts.build([answer["id"]]))[answer["id"]]
    assert post_doc.url == f"/community/t/{thread_id}/2" and post_doc.facets["solved"] == "yes"
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    members = await make_category("insiders", audience="signed_in")
    agent = await make_user("agent")
    staff_thread = await make_thread(agent, staff, "Staff only notes")
    member_thread = await make_thread(asker, members, "Members only notes")
    assert (await threads.build([staff_thread]))[staff_thread][0].audience == ["staff"]
    assert (await threads.build([member_thread]))[member_thread][0].audience == ["signed_in"]
    await services.delete_post(helper, answer["id"])
    assert await posts.build([answer["id"]]) == {answer["id"]: []}


async def test_sql_fallback_respects_audience(asker: Actor, qa_category: int) -> None:
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    agent = await make_user("agent")
    await make_thread(asker, qa_category, "Timeline colours question")
    await make_thread(agent, staff, "Timeline escalation notes")
    found, total = await threads.db_search("timeline", ["public"], None, {}, 10)
    assert [d.title for d in found] == ["Timeline colours question"] and total == 1
    found, total = await threads.db_search("timeline", None, None, {}, 10)
    assert total == 2


@pytest.fixture
async def forum_index(meili_server: str) -> None:
    await fresh_indexes(("thread", "post"))


async def test_federated_search_finds_threads_and_replies_by_audience(
    forum_index: None, asker: Actor, helper: Actor, qa_category: int
) -> None:
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    agent = await make_user("agent")
    public = await make_thread(asker, qa_category, "Gantt chart printing", "Printing a gantt chart cuts columns")
    await reply(helper, public, "Switch the gantt export to landscape")
    await make_thread(agent, staff, "Gantt escalation for Acme", "Internal gantt notes")
    jp = await make_thread(asker, qa_category, "ガントチャートの印刷について", "印刷すると列が切れます")
    await jobs.run_pending("test")
    await wait_until_idle(timeout_seconds=60)

    anonymous = await search(ANONYMOUS, "gantt", types=["thread", "post"])
    titles = {(h.type, h.plain_title) for h in anonymous.hits}
    assert ("thread", "Gantt chart printing") in titles and ("post", "Gantt chart printing") in titles
    assert not any("escalation" in t for _type, t in titles) and not anonymous.degraded
    staff_view = await search(agent, "gantt", types=["thread"])
    assert "Gantt escalation for Acme" in {h.plain_title for h in staff_view.hits}
    japanese = await search(ANONYMOUS, "ガントチャート", types=["thread"])
    assert japanese.hits and japanese.hits[0].pk == jp and japanese.hits[0].locale == "ja"
    everything = await search(ANONYMOUS, "gantt")  # the federated search over every type
    assert {"thread", "post"} <= {h.type for h in everything.hits}
