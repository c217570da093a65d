"""`python -m server ...` run as real processes against the test database (they inherit the
environment conftest set up: DATABASE_URL, DATA_DIR, SMTP_URL)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from server.__main__ import build_parser
from server.accounts.services import authenticate
from server.accounts.tables import Membership, Organisation, User, UserRole
from server.db import engine
from server.seed import DEMO_PASSWORD, USERS
from tests.factories import make_org


async def run_cli(*args: str) -> tuple[int, str, str]:
    # Async so the session loop (and the SMTP sink on it) keeps running meanwhile.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def subcommands() -> list[str]:
    parser = build_parser()
    [sub] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return list(sub.choices)


async def test_help_for_the_program_and_every_command() -> None:
    commands = subcommands()
    assert {"serve", "worker", "migrate", "seed", "createuser"} <= set(commands)
    code, out, err = await run_cli("--help")
    assert code == 0, err
    assert all(command in out for command in commands)
    results = await asyncio.gather(*(run_cli(command, "--help") for command in commands))
    for command, (code, out, err) in zip(commands, results, strict=True):
        assert code == 0, (command, err)
        assert f"python -m server {command}" in out, command


async def test_unknown_command_fails() -> None:
    code, _out, err = await run_cli("no-such-command")
    assert code != 0
    assert "invalid choice" in err


async def test_createuser_makes_a_verified_user_with_roles_and_membership() -> None:
    org_id = await make_org("acme-corp")
    code, out, err = await run_cli(
        "createuser",
        "--email",
        "New.Agent@Example.test",
        "--password",
        "a long enough password",
        "--role",
        "agent",
        "--role",
        "moderator",
        "--org",
        "acme-corp",
    )
    assert code == 0, err
    assert "new.agent@example.test" in out.lower()

    user = await User.select().where(User.email == "new.agent@example.test").first()
    assert user is not None
    assert user["email_verified_at"] is not None
    assert user["is_active"]
    roles = await UserRole.select(UserRole.role).where(UserRole.user == user["id"])
    assert sorted(row["role"] for row in roles) == ["agent", "customer", "moderator"]
    memberships = await Membership.select().where(Membership.user == user["id"])
    assert [(m["organisation"], m["is_org_admin"]) for m in memberships] == [(org_id, False)]
    assert await authenticate("new.agent@example.test", "a long enough password") == user["id"]


async def test_createuser_refuses_a_duplicate_email() -> None:
    args = ("createuser", "--email", "dup@example.test", "--password", "a long enough password")
    code, _out, err = await run_cli(*args)
    assert code == 0, err
    code, _out, err = await run_cli(*args[:2], "DUP@example.test", *args[3:])
    assert code != 0
    assert "already exists" in err
    assert "Traceback" not in err
    assert await User.count().where(User.email == "dup@example.test") == 1


async def test_createuser_with_unknown_org_creates_nothing() -> None:
    code, _out, err = await run_cli(
        "createuser", "--email", "lost@example.test", "--password", "a long enough password", "--org", "nowhere"
    )
    assert code != 0
    assert "nowhere" in err and "Traceback" not in err
    assert await User.count() == 0  # the half-made user was rolled back
    assert await UserRole.count() == 0


async def test_createuser_rejects_an_unknown_role() -> None:
    code, _out, err = await run_cli(
        "createuser", "--email", "x@example.test", "--password", "a long enough password", "--role", "root"
    )
    assert code == 2
    assert "invalid choice" in err
    assert await User.count() == 0


def _forum_demo_members() -> list[dict[str, str]]:
    import tomllib

    from server.forum.demo_loader import DEMO_DIR

    path = DEMO_DIR / "users.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")).get("user", []) if path.exists() else []


async def test_seed_is_idempotent_and_prints_the_logins() -> None:
    # The people and the community's members; each part's own loader test covers its content.
    code, out, err = await run_cli("seed", "--only", "forum")
    assert code == 0, err
    assert DEMO_PASSWORD in out
    assert "admin@lumenfold.example" in out
    counts = (await User.count(), await Organisation.count(), await Membership.count(), await UserRole.count())
    assert counts[0] == len(USERS) + len(_forum_demo_members())  # the community's members too

    code, out, err = await run_cli("seed", "--only", "forum")
    assert code == 0, err
    assert DEMO_PASSWORD in out
    assert (await User.count(), await Organisation.count(), await Membership.count(), await UserRole.count()) == counts
    assert await authenticate("admin@lumenfold.example", DEMO_PASSWORD) is not None
    code, _out, err = await run_cli("seed", "--only", "nonsense")
    assert code == 2 and "unknown part" in err


async def test_migrate_again_is_a_no_op() -> None:
    db = engine()
    before = await db.run_ddl("SELECT name FROM migration ORDER BY id")
    assert before  # the session's database was migrated through this same command
    for _ in range(2):
        code, _out, err = await run_cli("migrate")
        assert code == 0, err
    assert await db.run_ddl("SELECT name FROM migration ORDER BY id") == before


async def test_several_web_processes_need_redis() -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        env={**env, "WEB_CONCURRENCY": "2"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _out, err = await proc.communicate()
    assert proc.returncode == 2
    assert "2 web processes need REDIS_URL" in err.decode()
