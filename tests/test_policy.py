"""The policy's predicates and audiences for each role, on hand-built actors and on loaded ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from server import policy
from server.accounts import services
from server.accounts.auth import load_actor
from server.policy import ANONYMOUS, Actor
from tests.factories import make_org, make_user

ORG_A, ORG_B = 10, 20
ACTORS: dict[str, Actor] = {
    "anonymous": ANONYMOUS,
    "customer": Actor(user_id=1, roles=frozenset({"customer"}), org_ids=frozenset({ORG_A})),
    "another_customer": Actor(user_id=2, roles=frozenset({"customer"}), org_ids=frozenset({ORG_B})),
    "org_admin": Actor(
        user_id=3, roles=frozenset({"customer"}), org_ids=frozenset({ORG_A}), admin_org_ids=frozenset({ORG_A})
    ),
    "agent": Actor(user_id=4, roles=frozenset({"customer", "agent"})),
    "moderator": Actor(user_id=5, roles=frozenset({"customer", "moderator"})),
    "admin": Actor(user_id=6, roles=frozenset({"customer", "admin"})),
}

# predicate over an actor -> the roles for which it holds
PREDICATES: dict[str, tuple[Callable[[Actor], bool], set[str]]] = {
    "view organisation A": (
        lambda a: policy.can_view_organisation(a, ORG_A),
        {"customer", "org_admin", "agent", "moderator", "admin"},
    ),
    "view organisation B": (
        lambda a: policy.can_view_organisation(a, ORG_B),
        {"another_customer", "agent", "moderator", "admin"},
    ),
    "manage members of A": (lambda a: policy.can_manage_organisation_members(a, ORG_A), {"org_admin", "admin"}),
    "manage members of B": (lambda a: policy.can_manage_organisation_members(a, ORG_B), {"admin"}),
    "edit own profile": (
        lambda a: a.user_id is not None and policy.can_edit_profile(a, a.user_id),
        set(ACTORS) - {"anonymous"},
    ),
    "edit the customer's profile": (lambda a: policy.can_edit_profile(a, 1), {"customer"}),
    "manage the customer's tokens": (lambda a: policy.can_manage_tokens(a, 1), {"customer"}),
    "use the desk": (policy.can_use_desk, {"agent", "admin"}),
    "moderate": (policy.can_moderate, {"moderator", "admin"}),
    "administer": (policy.can_administer, {"admin"}),
    "read captured mail": (policy.can_view_captured_mail, {"admin"}),
    "is staff": (lambda a: a.is_staff, {"agent", "moderator", "admin"}),
    "edit the help center": (policy.can_edit_kb, {"agent", "admin"}),
    "see help-center drafts": (policy.can_see_kb_drafts, {"agent", "admin"}),
    "see article feedback": (policy.can_see_article_feedback, {"agent", "admin"}),
    "administer search": (policy.can_administer_search, {"admin"}),
    "read signed-in articles": (lambda a: policy.can_read_kb(a, "signed_in"), set(ACTORS) - {"anonymous"}),
    "read internal articles": (lambda a: policy.can_read_kb(a, "internal"), {"agent", "moderator", "admin"}),
}


@pytest.mark.parametrize("name", PREDICATES)
def test_predicate_holds_for_exactly_these_roles(name: str) -> None:
    predicate, allowed = PREDICATES[name]
    holds = {role for role, actor in ACTORS.items() if predicate(actor)}
    assert holds == allowed


@pytest.mark.parametrize(
    ("role", "audience"),
    [
        ("anonymous", ["public"]),
        ("customer", ["public", "signed_in", f"org:{ORG_A}", "user:1"]),
        ("another_customer", ["public", "signed_in", f"org:{ORG_B}", "user:2"]),
        ("org_admin", ["public", "signed_in", f"org:{ORG_A}", "user:3"]),
        ("agent", ["public", "signed_in", "user:4", "staff"]),
        ("moderator", ["public", "signed_in", "user:5", "staff"]),
        ("admin", ["public", "signed_in", "user:6", "staff"]),
    ],
)
def test_search_audience(role: str, audience: list[str]) -> None:
    assert policy.search_audience(ACTORS[role]) == audience


@pytest.mark.parametrize("role", ACTORS)
def test_content_filters_follow_the_search_audience(role: str) -> None:
    """Staff read everything (no filter); everyone else exactly their audience labels."""
    actor = ACTORS[role]
    if actor.is_staff:
        assert policy.content_audience(actor) is None
        assert policy.meili_audience_filter(actor) is None
        return
    labels = policy.search_audience(actor)
    assert policy.content_audience(actor) == labels
    assert policy.meili_audience_filter(actor) == "audience IN [" + ", ".join(f'"{x}"' for x in labels) + "]"


def test_search_audience_lists_every_organisation_in_order() -> None:
    member = Actor(user_id=7, org_ids=frozenset({ORG_B, ORG_A}))
    assert policy.search_audience(member) == ["public", "signed_in", f"org:{ORG_A}", f"org:{ORG_B}", "user:7"]


def test_ensure_raises_403_only_when_not_allowed() -> None:
    policy.ensure(True)
    with pytest.raises(PermissionDeniedException) as raised:
        policy.ensure(False)
    assert raised.value.status_code == 403


def test_ensure_signed_in_raises_401_for_anonymous_only() -> None:
    with pytest.raises(NotAuthorizedException) as raised:
        policy.ensure_signed_in(ANONYMOUS)
    assert raised.value.status_code == 401
    for role, actor in ACTORS.items():
        if role != "anonymous":
            policy.ensure_signed_in(actor)


async def test_actors_loaded_from_the_database_get_the_same_answers() -> None:
    """The predicates see what `load_actor` builds: roles, memberships and org-admin rights."""
    org_a = await make_org("acme-corp", "Acme Corp")
    org_b = await make_org("globex", "Globex")
    org_admin = await make_user(org="acme-corp", org_admin=True)
    member_b = await make_user(org="globex")
    admin = await make_user("admin")
    deactivated = await make_user("agent")

    assert policy.can_manage_organisation_members(org_admin, org_a)
    assert not policy.can_manage_organisation_members(org_admin, org_b)
    assert not policy.can_view_organisation(member_b, org_a)
    assert policy.search_audience(member_b) == ["public", "signed_in", f"org:{org_b}", f"user:{member_b.user_id}"]
    assert policy.can_administer(admin) and policy.can_use_desk(admin) and policy.can_moderate(admin)
    assert policy.can_manage_organisation_members(admin, org_b)

    await services.admin_set_active(admin, deactivated.user_id or 0, False)
    assert await load_actor(deactivated.user_id or 0) is None  # a deactivated account acts as nobody
