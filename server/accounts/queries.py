"""Reads of accounts shared by admin pages, organisation pages and the API."""

from __future__ import annotations

from typing import Any

from server.accounts.tables import Membership, Organisation, User, UserRole

PAGE_SIZE = 50


async def roles_by_user(user_ids: list[int]) -> dict[int, list[str]]:
    if not user_ids:
        return {}
    rows = await UserRole.select(UserRole.user, UserRole.role).where(UserRole.user.is_in(user_ids))
    result: dict[int, list[str]] = {uid: [] for uid in user_ids}
    for row in rows:
        result[row["user"]].append(row["role"])
    return {uid: sorted(roles) for uid, roles in result.items()}


async def list_users(query: str = "", page: int = 1) -> tuple[list[dict[str, Any]], bool]:
    select = User.select(
        User.id, User.email, User.display_name, User.is_active, User.email_verified_at, User.created_at
    ).order_by(User.id)
    if query:
        pattern = f"%{query.strip().lower()}%"
        select = select.where(User.email.ilike(pattern) | User.display_name.ilike(pattern))
    page = max(1, min(page, 100_000))
    rows = await select.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
    roles = await roles_by_user([r["id"] for r in rows[:PAGE_SIZE]])
    users = [{**r, "roles": roles.get(r["id"], [])} for r in rows[:PAGE_SIZE]]
    return users, len(rows) > PAGE_SIZE


async def get_user(user_id: int) -> dict[str, Any] | None:
    user = (
        await User.select(
            User.id,
            User.email,
            User.display_name,
            User.locale,
            User.time_zone,
            User.is_active,
            User.email_verified_at,
            User.created_at,
        )
        .where(User.id == user_id)
        .first()
    )
    if user is None:
        return None
    user["roles"] = (await roles_by_user([user_id]))[user_id]
    user["organisations"] = await Membership.select(
        Membership.organisation.id, Membership.organisation.name, Membership.is_org_admin
    ).where(Membership.user == user_id)
    return user


async def list_organisations() -> list[dict[str, Any]]:
    orgs = await Organisation.select().order_by(Organisation.name)
    counts = await Membership.select(Membership.organisation).where(
        Membership.organisation.is_in([o["id"] for o in orgs] or [0])
    )
    per_org: dict[int, int] = {}
    for row in counts:
        per_org[row["organisation"]] = per_org.get(row["organisation"], 0) + 1
    return [{**o, "member_count": per_org.get(o["id"], 0)} for o in orgs]


async def get_organisation(org_id: int) -> dict[str, Any] | None:
    org = await Organisation.select().where(Organisation.id == org_id).first()
    if org is None:
        return None
    org["members"] = (
        await Membership.select(
            Membership.user.id,
            Membership.user.email,
            Membership.user.display_name,
            Membership.is_org_admin,
        )
        .where(Membership.organisation == org_id)
        .order_by(Membership.user.display_name)
    )
    return org
