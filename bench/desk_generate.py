"""A fixed-seed ticket desk for benchmarks: agents in groups, customers in organisations, SLA
policies, tickets with their conversations (English and Japanese) and SLA timers.

Rows go straight into the schema the app's migrations created, in bulk: PostgreSQL's COPY
(asyncpg `copy_records_to_table`) or SQLite `executemany` in large transactions. Nothing goes
through the ORM per row; column order, defaults and SQLite's value formats come from the Piccolo
tables themselves, so a column another feature adds gets its declared default.

The shape of the data follows a desk that has run for three years: ticket ids grow with time;
tickets of the last 30 days are spread over every status like the demo desk (server/desk/demo.py,
whose texts are reused), older ones are closed but for a few left pending or on hold. Messages
average five per ticket; every 500th ticket has exactly 20 (the ticket-page scenario). A quarter
of the requesters write in Japanese.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.table import Table

SEED = 20261204
SIZES = {"tiny": 200, "small": 10_000, "medium": 100_000, "large": 1_000_000}
AGENTS = 40
GROUP_NAMES = (
    "Tier 1 Support",
    "Tier 2 Support",
    "Billing",
    "Integrations",
    "Mobile",
    "Engineering escalations",
    "Enterprise accounts",
    "請求サポート",
)
RECENT_DAYS = 30
HISTORY_DAYS = 3 * 365
TWENTY_EVERY = 500  # every 500th ticket has exactly 20 messages
CHUNK = 20_000  # tickets per batch (and per SQLite transaction)
# (first reply, next reply, resolution) in minutes, 24/7
SLA_TARGETS = {
    "low": (1440, 2880, 10080),
    "normal": (480, 960, 4320),
    "high": (120, 240, 1440),
    "urgent": (30, 60, 480),
}
# Messages per ticket besides the 20-message ones: mean 5.0 (with them, ≈ 5.03).
MESSAGE_COUNTS = [(1, 6), (2, 10), (3, 14), (4, 16), (5, 15), (6, 12), (7, 10), (8, 7), (9, 5), (10, 5)]


@dataclass
class Generated:
    agent_id: int  # the bench agent (member of two groups)
    agent_email: str
    session_token: str  # a signed-in session of the bench agent (the `kz_session` cookie)
    api_token: str  # a Bearer token of the bench agent
    tickets: int
    messages: int
    twenty_ticket_id: int  # a ticket with exactly 20 messages
    first_ticket_id: int
    last_ticket_id: int


def _columns(table: type[Table]) -> list[str]:
    return [c._meta.db_column_name for c in table._meta.columns]


def _defaults(table: type[Table]) -> dict[str, Any]:
    values = {}
    for column in table._meta.columns:
        if column._meta.primary_key:
            continue
        values[column._meta.db_column_name] = column.get_default_value()
    return values


class Writer:
    """Appends rows to a table on SQLite or PostgreSQL, one call per batch."""

    def __init__(self, pg: Any = None, sqlite: sqlite3.Connection | None = None) -> None:
        self.pg = pg
        self.sqlite = sqlite

    async def max_id(self, table: type[Table]) -> int:
        name = table._meta.tablename
        if self.pg is not None:
            return int(await self.pg.fetchval(f"SELECT COALESCE(MAX(id), 0) FROM {name}"))  # noqa: S608
        assert self.sqlite is not None
        return int(self.sqlite.execute(f"SELECT COALESCE(MAX(id), 0) FROM {name}").fetchone()[0])  # noqa: S608

    async def write(self, table: type[Table], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        names = [n for n in _columns(table) if n != "id" or "id" in rows[0]]
        defaults = _defaults(table)
        json_columns = {c._meta.db_column_name for c in table._meta.columns if type(c).__name__ in ("JSON", "JSONB")}
        records = []
        for row in rows:
            record = []
            for name in names:
                value = row[name] if name in row else defaults[name]
                if name in json_columns and not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False)
                record.append(value)
            records.append(tuple(record))
        if self.pg is not None:
            await self.pg.copy_records_to_table(table._meta.tablename, records=records, columns=names)
        else:
            assert self.sqlite is not None
            marks = ", ".join("?" for _ in names)
            self.sqlite.executemany(
                f"INSERT INTO {table._meta.tablename} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608
                records,
            )

    async def finish(self, tables: list[type[Table]]) -> None:
        if self.pg is not None:
            for table in tables:
                name = table._meta.tablename
                await self.pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                    f"(SELECT GREATEST(MAX(id), 1) FROM {name}))"
                )
            for table in tables:
                await self.pg.execute(f"ANALYZE {table._meta.tablename}")
        else:
            assert self.sqlite is not None
            self.sqlite.commit()
            self.sqlite.execute("ANALYZE")
            self.sqlite.commit()


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _token(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(40)
    )


async def _generate(writer: Writer, size: int, seed: int, now: datetime) -> Generated:
    from server.accounts.auth import hash_token
    from server.accounts.tables import ApiToken, Membership, Organisation, Session, User, UserRole
    from server.desk import demo
    from server.desk.sla_tables import SlaPolicy, TicketSla
    from server.desk.tables import DeskGroup, DeskGroupMember, Ticket, TicketMessage
    from server.markdown import render

    rng = random.Random(seed)
    start = {t: await writer.max_id(t) + 1 for t in (User, Organisation, DeskGroup, Ticket, TicketMessage, TicketSla)}
    tag = f"{seed}-{start[User]}"  # unique names when generating twice into one database

    # People: agents, then customers (one per ten tickets, at least 50) in organisations.
    password = "!"  # noqa: S105 - not a hash: nobody signs in with a password here
    customers = max(50, size // 10)
    organisations = max(10, customers // 8)
    org_rows = [
        {
            "id": start[Organisation] + n,
            "name": f"Customer {n} Inc." if n % 4 else f"株式会社カスタマー{n}",
            "slug": f"bench-{tag}-org-{n}",
            "size": rng.choice(("1-10", "11-50", "51-200", "201-1000", "1000+")),
            "industry": rng.choice(("Logistics", "Healthcare", "Games", "Retail", "Software")),
            "plan": rng.choice(("free", "starter", "business", "enterprise")),
            "created_at": now - timedelta(days=HISTORY_DAYS + 30),
        }
        for n in range(organisations)
    ]
    await writer.write(Organisation, org_rows)
    users, roles, memberships = [], [], []
    agent_ids = [start[User] + n for n in range(AGENTS)]
    for n, user_id in enumerate(agent_ids):
        users.append(
            {
                "id": user_id,
                "email": f"agent{n}-{tag}@desk.bench.example",
                "password_hash": password,
                "display_name": f"Agent {n}" if n % 3 else f"担当者 {n}",
                "username": None,
                "locale": "ja" if n % 3 == 0 else "en",
                "email_verified_at": now,
                "created_at": now - timedelta(days=HISTORY_DAYS + 60),
            }
        )
        roles.append({"user": user_id, "role": "agent"})
    customer_ids = [start[User] + AGENTS + n for n in range(customers)]
    customer_org: dict[int, int | None] = {}
    customer_ja: dict[int, bool] = {}
    for n, user_id in enumerate(customer_ids):
        ja = rng.random() < 0.25
        customer_ja[user_id] = ja
        users.append(
            {
                "id": user_id,
                "email": f"customer{n}-{tag}@desk.bench.example",
                "password_hash": password,
                "display_name": f"顧客 {n}" if ja else f"Customer {n}",
                "username": None,
                "locale": "ja" if ja else "en",
                "email_verified_at": now,
                "created_at": now - timedelta(days=HISTORY_DAYS + 30),
            }
        )
        roles.append({"user": user_id, "role": "customer"})
        org = org_rows[rng.randrange(organisations)]["id"] if rng.random() < 0.7 else None
        customer_org[user_id] = org
        if org is not None:
            memberships.append({"user": user_id, "organisation": org, "is_org_admin": rng.random() < 0.05})
    for batch in range(0, len(users), CHUNK):
        await writer.write(User, users[batch : batch + CHUNK])
    await writer.write(UserRole, roles)
    await writer.write(Membership, memberships)

    # Groups: each agent in one to three; the bench agent (agent 0) in the first two.
    group_ids = [start[DeskGroup] + n for n in range(len(GROUP_NAMES))]
    await writer.write(
        DeskGroup,
        [
            {
                "id": group_id,
                "name": f"{name} ({tag})",
                "description": "",
                "lead": agent_ids[n],
                "created_at": now - timedelta(days=HISTORY_DAYS),
            }
            for n, (group_id, name) in enumerate(zip(group_ids, GROUP_NAMES, strict=True))
        ],
    )
    members: dict[int, list[int]] = {g: [] for g in group_ids}
    for n, agent_id in enumerate(agent_ids):
        chosen = group_ids[:2] if n == 0 else rng.sample(group_ids, rng.randint(1, 3))
        for group_id in chosen:
            members[group_id].append(agent_id)
    for group_id in group_ids:
        if not members[group_id]:
            members[group_id].append(agent_ids[1])
    await writer.write(DeskGroupMember, [{"team": g, "user": u} for g, people in members.items() for u in people])

    # The bench agent signs in (a session for pages, a token for the API).
    session_token, api_token = _token(rng, ""), _token(rng, "kzb_")
    await writer.write(
        Session,
        [
            {
                "token_hash": hash_token(session_token),
                "user": agent_ids[0],
                "created_at": now,
                "last_seen_at": now,
                "expires_at": now + timedelta(days=30),
            }
        ],
    )
    await writer.write(
        ApiToken,
        [
            {
                "user": agent_ids[0],
                "name": "bench",
                "token_hash": hash_token(api_token),
                "prefix": api_token[:8],
                "created_at": now,
            }
        ],
    )

    # SLA policies by priority (24/7), unless the database has some already.
    policy_ids: dict[str, int] = {}
    if writer.pg is not None:
        existing = await writer.pg.fetch("SELECT id, priority FROM desk_sla_policy WHERE tier IS NULL")
    else:
        assert writer.sqlite is not None
        existing = writer.sqlite.execute("SELECT id, priority FROM desk_sla_policy WHERE tier IS NULL").fetchall()
    for row in existing:
        policy_ids.setdefault(row[1], row[0])
    if not policy_ids:
        first_policy = await writer.max_id(SlaPolicy) + 1
        rows = []
        for n, (priority, (first, following, resolution)) in enumerate(SLA_TARGETS.items()):
            policy_ids[priority] = first_policy + n
            rows.append(
                {
                    "id": first_policy + n,
                    "name": f"{priority.title()} priority",
                    "priority": priority,
                    "first_reply_minutes": first,
                    "next_reply_minutes": following,
                    "resolution_minutes": resolution,
                    "created_at": now - timedelta(days=HISTORY_DAYS),
                }
            )
        await writer.write(SlaPolicy, rows)

    # Texts, rendered once.
    def rendered(texts: list[str]) -> list[tuple[str, str]]:
        return [(t, render(t)) for t in texts]

    opening = {
        False: [(s, b, render(b)) for s, b, _area in demo.EN],
        True: [(s, b, render(b)) for s, b, _area in demo.JA],
    }
    agent_replies = {False: rendered(demo.AGENT_REPLIES_EN), True: rendered(demo.AGENT_REPLIES_JA)}
    customer_replies = {False: rendered(demo.CUSTOMER_REPLIES_EN), True: rendered(demo.CUSTOMER_REPLIES_JA)}
    notes = rendered(demo.NOTES)
    tags_pool = ["billing", "bug", "export", "sso", "mobile", "refund", "vip", "jira", "slack", "timeline"]
    old_weights = [("closed", 985), ("pending", 5), ("on_hold", 5), ("solved", 5)]

    history_start = now - timedelta(days=HISTORY_DAYS)
    recent_start = now - timedelta(days=RECENT_DAYS)
    span = (now - history_start).total_seconds() - 3600
    message_id = start[TicketMessage]
    twenty = 0
    total_messages = 0
    first_ticket = start[Ticket]
    for chunk_start in range(0, size, CHUNK):
        tickets, messages, slas = [], [], []
        for n in range(chunk_start, min(chunk_start + CHUNK, size)):
            ticket_id = first_ticket + n
            created = history_start + timedelta(seconds=span * n / size + rng.uniform(0, 60))
            recent = created >= recent_start
            status = _pick(rng, demo.STATUS_WEIGHTS if recent else old_weights)
            priority = _pick(rng, demo.PRIORITY_WEIGHTS)
            requester = rng.choice(customer_ids)
            ja = customer_ja[requester]
            subject, body, body_html = rng.choice(opening[ja])
            team = rng.choice(group_ids) if status != "new" or rng.random() < 0.5 else None
            assignee = None
            if team is not None and (status != "new" or rng.random() < 0.3) and rng.random() < 0.9:
                assignee = rng.choice(members[team])
            if n % TWENTY_EVERY == (TWENTY_EVERY // 2) % size:  # one at least, however small
                count = 20
                twenty = twenty or ticket_id
            else:
                count = _pick(rng, MESSAGE_COUNTS)
            # The conversation: the opening message, then replies every ~2 hours (newest last).
            step = timedelta(minutes=rng.randint(20, 240))
            moment = created
            agent = assignee or rng.choice(agent_ids)
            for k in range(count):
                if k == 0:
                    author, kind, md, html, event = requester, "public", body, body_html, {}
                elif k == 1 and status != "new":
                    author, kind, md, html = agent, "system", "", ""
                    event = {"changes": [{"field": "status", "from": "new", "to": "open"}], "version": 2}
                elif k % 5 == 3:
                    md, html = rng.choice(notes)
                    author, kind, event = agent, "internal", {}
                elif k % 2 == 0:
                    md, html = rng.choice(agent_replies[ja])
                    author, kind, event = agent, "public", {}
                else:
                    md, html = rng.choice(customer_replies[ja])
                    author, kind, event = requester, "public", {}
                messages.append(
                    {
                        "id": message_id,
                        "ticket": ticket_id,
                        "author": author,
                        "kind": kind,
                        "body_md": md,
                        "body_html": html,
                        "event": event,
                        "channel": "web",
                        "created_at": moment,
                    }
                )
                message_id += 1
                if k < count - 1:
                    moment = min(moment + step, now - timedelta(seconds=1))
            total_messages += count
            updated = moment
            solved_at = updated if status in ("solved", "closed") else None
            closed_at = updated + timedelta(days=4) if status == "closed" else None
            if closed_at is not None and closed_at > now:
                closed_at = now
            due = at_risk = None
            if status in ("new", "open") and priority in policy_ids:
                first, following, _resolution = SLA_TARGETS.get(priority, SLA_TARGETS["normal"])
                minutes = first if count == 1 else following
                due = updated + timedelta(minutes=minutes)
                at_risk = due - timedelta(minutes=minutes * 0.25)
            tickets.append(
                {
                    "id": ticket_id,
                    "subject": subject,
                    "requester": requester,
                    "organisation": customer_org[requester],
                    "channel": "api" if rng.random() < 0.1 else "web",
                    "status": status,
                    "priority": priority,
                    "ticket_type": rng.choice(("question", "question", "incident", "problem", "task")),
                    "team": team,
                    "assignee": assignee,
                    "tags": rng.sample(tags_pool, rng.randint(0, 2)),
                    "version": 2 if count > 1 and status != "new" else 1,
                    "created_at": created,
                    "updated_at": updated,
                    "solved_at": solved_at,
                    "closed_at": closed_at,
                    "first_replied_at": created + step if count > 2 else None,
                    "locale": "ja" if ja else "en",
                    "sla_due_at": due,
                    "sla_at_risk_at": at_risk,
                }
            )
            if priority in policy_ids and (due is not None or status in ("pending", "on_hold")):
                slas.append(
                    {
                        "ticket": ticket_id,
                        "policy": policy_ids[priority],
                        "state": ("breached" if due <= now else "at_risk" if at_risk <= now else "ok")
                        if due is not None and at_risk is not None
                        else "paused",
                        "first_reply_due_at": due if count == 1 else None,
                        "next_reply_due_at": due if count > 1 else None,
                        "resolution_paused": due is None,
                        "computed_at": updated,
                    }
                )
        await writer.write(Ticket, tickets)
        await writer.write(TicketMessage, messages)
        await writer.write(TicketSla, slas)
        if writer.sqlite is not None:
            writer.sqlite.commit()
    await writer.finish([User, Organisation, DeskGroup, Ticket, TicketMessage, TicketSla, SlaPolicy])
    return Generated(
        agent_id=agent_ids[0],
        agent_email=users[0]["email"],
        session_token=session_token,
        api_token=api_token,
        tickets=size,
        messages=total_messages,
        twenty_ticket_id=twenty,
        first_ticket_id=first_ticket,
        last_ticket_id=first_ticket + size - 1,
    )


async def generate(size: int, seed: int = SEED, *, now: datetime | None = None) -> Generated:
    """Add `size` tickets (and everything around them) to the app's database (DATABASE_URL or
    DATA_DIR's SQLite file), already migrated. The caller's event loop; no Piccolo pool needed."""
    from piccolo.engine.postgres import PostgresEngine

    from server.db import engine

    moment = (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(microseconds=1)
    db = engine()
    if isinstance(db, PostgresEngine):
        import asyncpg

        config = {k: v for k, v in db.config.items() if v is not None}
        connection = await asyncpg.connect(**config)
        try:
            async with connection.transaction():
                made = await _generate(Writer(pg=connection), size, seed, moment)
            # What autovacuum would do soon: the visibility map lets counts read the index alone.
            await connection.execute("VACUUM (ANALYZE) ticket, ticket_message, desk_ticket_sla")
            return made
        finally:
            await connection.close()
    path = db.connection_kwargs["database"]  # type: ignore[attr-defined]
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-200000")
        connection.execute("PRAGMA temp_store=MEMORY")
        connection.execute("PRAGMA foreign_keys=ON")
        return await _generate(Writer(sqlite=connection), size, seed, moment)
    finally:
        connection.rollback()  # nothing, unless it failed half-way
        connection.close()


if __name__ == "__main__":  # quick manual run into the configured database
    import sys

    result = asyncio.run(generate(SIZES[sys.argv[1] if len(sys.argv) > 1 else "tiny"]))
    print(result)
