"""Publish one event from a process without the web app, as the worker does:
`python -m tests.realtime.publisher CHANNEL EVENT JSON_PAYLOAD`."""

from __future__ import annotations

import asyncio
import json
import sys

from server import realtime
from server.db import atomic, engine, is_postgres
from server.realtime import bus
from tests.realtime import topics  # noqa: F401 - registers the room topic and events


async def main(channel: str, event: str, payload: dict[str, object]) -> None:
    db = engine()
    pool = is_postgres()
    if pool:
        await db.start_connection_pool(min_size=1, max_size=2)  # type: ignore[attr-defined]
    try:
        async with atomic() as tx:
            event_id = await realtime.publish(tx, channel, event, payload)
        print(event_id, flush=True)
    finally:
        await bus.close_standalone()
        if pool:
            await db.close_connection_pool()  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
