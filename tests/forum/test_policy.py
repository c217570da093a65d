"""The forum's policy predicates, case by case."""

from __future__ import annotations

from server import policy
from server.policy import ANONYMOUS, Actor

CUSTOMER = Actor(user_id=1, roles=frozenset({"customer"}))
OTHER = Actor(user_id=2, roles=frozenset({"customer"}))
AGENT = Actor(user_id=3, roles=frozenset({"customer", "agent"}))
MODERATOR = Actor(user_id=4, roles=frozenset({"customer", "moderator"}))


def category(audience: str = "public", start: str = "signed_in", reply: str = "signed_in", qa: bool = False) -> dict:
    return {"id": 1, "audience": audience, "tiers": [], "can_start": start, "can_reply": reply, "qa": qa}


THREAD = {"id": 1, "author_id": 1, "locked": False, "hidden": False, "deleted_at": None}


def test_reading_follows_the_audience() -> None:
    cases = {
        "public": [True, True, True, True],
        "signed_in": [False, True, True, True],
        "members": [False, False, True, True],
        "staff": [False, False, True, True],
    }
    for audience, expected in cases.items():
        got = [policy.can_read_forum_category(a, category(audience)) for a in (ANONYMOUS, CUSTOMER, AGENT, MODERATOR)]
        assert got == expected, audience
    assert policy.forum_audience("staff") == ["staff"] and policy.forum_audience("members", ["gold"]) == ["tier:gold"]


def test_starting_and_replying() -> None:
    assert not policy.can_start_forum_thread(ANONYMOUS, category())
    assert policy.can_start_forum_thread(CUSTOMER, category())
    assert not policy.can_start_forum_thread(CUSTOMER, category(start="staff"))
    assert policy.can_start_forum_thread(AGENT, category(start="staff"))
    assert policy.can_reply_forum(CUSTOMER, category(), THREAD)
    assert not policy.can_reply_forum(CUSTOMER, category(reply="staff"), THREAD)
    locked = {**THREAD, "locked": True}
    assert not policy.can_reply_forum(CUSTOMER, category(), locked)
    assert policy.can_reply_forum(MODERATOR, category(), locked)
    hidden = {**THREAD, "hidden": True}
    assert not policy.can_read_forum_thread(CUSTOMER, category(), hidden)
    assert policy.can_read_forum_thread(MODERATOR, category(), hidden)
    gone = {**THREAD, "deleted_at": "yesterday"}
    assert not policy.can_read_forum_thread(MODERATOR, category(), gone)


def test_editing_deleting_accepting_reacting() -> None:
    post = {"author_id": 1, "deleted_at": None}
    assert policy.can_edit_forum_post(CUSTOMER, THREAD, post)
    assert not policy.can_edit_forum_post(OTHER, THREAD, post)
    assert not policy.can_edit_forum_post(AGENT, THREAD, post)
    assert policy.can_edit_forum_post(MODERATOR, THREAD, post)
    assert not policy.can_edit_forum_post(CUSTOMER, {**THREAD, "locked": True}, post)
    assert not policy.can_delete_forum_post(CUSTOMER, THREAD, {**post, "deleted_at": "now"})
    assert policy.can_accept_forum_answer(CUSTOMER, category(qa=True), THREAD)
    assert not policy.can_accept_forum_answer(OTHER, category(qa=True), THREAD)
    assert policy.can_accept_forum_answer(MODERATOR, category(qa=True), THREAD)
    assert not policy.can_accept_forum_answer(CUSTOMER, category(qa=False), THREAD)
    assert not policy.can_react_forum(ANONYMOUS, category(), THREAD)
    assert policy.can_react_forum(OTHER, category(), THREAD)


def test_channel_groups_and_list_scope() -> None:
    assert policy.forum_channel_group(ANONYMOUS, category(), THREAD) == "reader"
    assert policy.forum_channel_group(AGENT, category(), THREAD) == "staff"
    assert policy.forum_channel_group(CUSTOMER, category("staff"), THREAD) is None
    cats = [{**category(a), "id": n} for n, a in enumerate(["public", "signed_in", "staff"], start=1)]
    assert policy.readable_forum_category_ids(ANONYMOUS, cats) == [1]
    assert policy.readable_forum_category_ids(CUSTOMER, cats) == [1, 2]
    assert policy.readable_forum_category_ids(MODERATOR, cats) == [1, 2, 3]
