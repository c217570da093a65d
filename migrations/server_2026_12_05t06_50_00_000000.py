"""A partial index for the agents' "my open" view: its tickets in the view's order, so the view's
first page is the index's first entries, whatever the plan (PostgreSQL's generic plan for the
prepared read cannot use the composite index on assignee and status in that order)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-05T06:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "desk my-open index"

# The predicate must stay the literal that server/desk/queries.py's "mine" view reads.
INDEX = "CREATE INDEX IF NOT EXISTS ticket_mine ON ticket (assignee, updated_at, id) WHERE status IN ('new', 'open')"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(INDEX)

    manager.add_raw(run)
    return manager
