"""The knowledge-base rules in `policy`: the SQL scope says exactly what the audience rule says."""

from __future__ import annotations

import itertools

import pytest

from server import policy
from server.policy import ANONYMOUS, Actor

CUSTOMER = Actor(user_id=1, roles=frozenset({"customer"}), org_ids=frozenset({7}))
AGENT = Actor(user_id=2, roles=frozenset({"agent"}))
ADMIN = Actor(user_id=3, roles=frozenset({"admin"}))
MODERATOR = Actor(user_id=4, roles=frozenset({"moderator"}))

CONTENT = [
    ("public", []),
    ("signed_in", []),
    ("members", []),
    ("members", ["gold"]),
    ("members", ["gold", "silver"]),
    ("internal", []),
]
AUDIENCES = [
    ["public"],
    ["public", "signed_in", "user:1"],
    ["public", "signed_in", "members", "tier:gold"],
    ["public", "signed_in", "tier:silver"],
    ["public", "signed_in", "members"],
    ["tier:gold"],
    [],
]


def scope_allows(scope: policy.VisibilityScope, visibility: str, tiers: list[str]) -> bool:
    """How queries.readable() turns the scope into SQL, written out in Python."""
    if visibility == "members" and tiers:
        return bool(scope.tiers & set(tiers))
    return visibility in scope.levels


@pytest.mark.parametrize(("audience", "content"), list(itertools.product(AUDIENCES, CONTENT)))
def test_visibility_scope_agrees_with_the_audience_rule(audience: list[str], content: tuple[str, list[str]]) -> None:
    visibility, tiers = content
    expected = bool(set(policy.audience_for_visibility(visibility, tiers)) & set(audience))
    scope = policy.visibility_scope(audience)
    assert scope is not None
    assert scope_allows(scope, visibility, tiers) is expected


def test_staff_have_no_scope_limit() -> None:
    assert policy.visibility_scope(policy.content_audience(AGENT)) is None
    assert policy.visibility_scope(policy.content_audience(MODERATOR)) is None


@pytest.mark.parametrize(
    ("actor", "readable"),
    [
        (ANONYMOUS, {"public"}),
        (CUSTOMER, {"public", "signed_in"}),
        (AGENT, {"public", "signed_in", "members", "internal"}),
        (MODERATOR, {"public", "signed_in", "members", "internal"}),
    ],
)
def test_who_reads_which_visibility(actor: Actor, readable: set[str]) -> None:
    assert {v for v in ("public", "signed_in", "members", "internal") if policy.can_read_kb(actor, v)} == readable


def test_only_agents_and_admins_edit_and_see_drafts_and_feedback() -> None:
    for actor, allowed in [(ANONYMOUS, False), (CUSTOMER, False), (MODERATOR, False), (AGENT, True), (ADMIN, True)]:
        assert policy.can_edit_kb(actor) is allowed
        assert policy.can_see_kb_drafts(actor) is allowed
        assert policy.can_see_article_feedback(actor) is allowed
