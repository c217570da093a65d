from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T18:38:44:778748"
VERSION = "1.38.0"
DESCRIPTION = "notification unread index"

# A partial index over unread rows only: the bell's COUNT(*) reads just the unread ones.
# SQLite and PostgreSQL both accept this statement.
CREATE = "CREATE INDEX IF NOT EXISTS notification_unread_idx ON notification (recipient) WHERE read_at IS NULL"
DROP = "DROP INDEX IF EXISTS notification_unread_idx"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl(CREATE)

    manager.add_raw(run)
    return manager


async def backwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        await engine_finder().run_ddl(DROP)

    manager.add_raw(run)
    return manager
