"""The "my open" view's page is read through the partial index made for it (`ticket_mine`), also in
PostgreSQL's generic plan of the prepared read: the view's status literal and the index's
predicate must stay the same for that, and this is what notices when they drift apart."""

from __future__ import annotations

import asyncpg
from piccolo.querystring import QueryString

from server.db import is_postgres
from server.desk import queries
from server.desk.tables import Ticket
from server.settings import get_settings
from tests.desk.conftest import People
from tests.desk.factories import make_ticket


def _first_page_of_mine(agent_id: int) -> QueryString:
    where = queries._view_where("mine", user_id=agent_id)
    return queries._page_query([where], sort="-updated", after=None, limit=25, columns=[Ticket.id]).querystrings[0]


async def _generic_plan(query: QueryString) -> str:
    sql, values = query.compile_string(engine_type="postgres")
    connection = await asyncpg.connect(get_settings().database_url)
    try:
        async with connection.transaction():
            await connection.execute(f"PREPARE kz_plan_probe AS {sql}")
            await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            arguments = ", ".join(str(int(value)) for value in values)
            rows = await connection.fetch(f"EXPLAIN EXECUTE kz_plan_probe({arguments})")
            await connection.execute("DEALLOCATE kz_plan_probe")
    finally:
        await connection.close()
    return "\n".join(row[0] for row in rows)


async def test_my_open_view_reads_the_partial_index(people: People) -> None:
    for n in range(3):
        await make_ticket(people.customer, f"Ticket {n}")
    query = _first_page_of_mine(people.agent.user_id)

    if is_postgres():
        plan = await _generic_plan(query)
    else:
        rows = await Ticket.raw("EXPLAIN QUERY PLAN {}", query)
        plan = "\n".join(row["detail"] for row in rows)

    assert "ticket_mine" in plan, plan
