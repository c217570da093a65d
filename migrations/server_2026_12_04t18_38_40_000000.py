"""Desk indexes Piccolo columns cannot declare: composite, for the agent views (filter, then
newest first), the portal lists and a ticket's conversation in order."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-04T18:38:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "desk indexes"

INDEXES = (
    "CREATE INDEX IF NOT EXISTS ticket_assignee_status_updated ON ticket (assignee, status, updated_at)",
    "CREATE INDEX IF NOT EXISTS ticket_team_status_updated ON ticket (team, status, updated_at)",
    "CREATE INDEX IF NOT EXISTS ticket_status_updated ON ticket (status, updated_at)",
    "CREATE INDEX IF NOT EXISTS ticket_requester_updated ON ticket (requester, updated_at)",
    "CREATE INDEX IF NOT EXISTS ticket_organisation_updated ON ticket (organisation, updated_at)",
    "CREATE INDEX IF NOT EXISTS ticket_message_ticket_created ON ticket_message (ticket, created_at)",
    "CREATE INDEX IF NOT EXISTS desk_deflection_event_visit_kind ON desk_deflection_event (visit, kind)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        assert engine is not None
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
