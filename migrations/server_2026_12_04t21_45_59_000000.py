"""Desk indexes: the "SLA at risk or breached" view walks what is due first among the tickets whose
at-risk instant has passed (one short index range for its first page), and the desk's list of
agents reads the agent and admin roles without scanning every customer's role."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-04T21:45:59:000000"
VERSION = "1.38.0"
DESCRIPTION = "desk sla view and agent role indexes"

CREATE = (
    "CREATE INDEX IF NOT EXISTS ticket_sla_due_risk ON ticket (sla_due_at, sla_at_risk_at)",
    # Partial: SQLite's planner knows only the average rows per role, not that agents are few.
    "CREATE INDEX IF NOT EXISTS user_role_staff ON user_role (\"user\") WHERE role IN ('agent', 'admin')",
)
DROP = ("DROP INDEX IF EXISTS ticket_sla_due_risk", "DROP INDEX IF EXISTS user_role_staff")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        assert engine is not None
        for statement in CREATE:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager


async def backwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        assert engine is not None
        for statement in DROP:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
