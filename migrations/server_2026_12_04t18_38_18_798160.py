"""Forum indexes Piccolo's columns cannot declare (composite, for keyset pagination and lists),
and a handle for every existing user (`app_user.username`, used by @mentions)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

from server.accounts.usernames import base_handle

ID = "2026-12-04T18:38:18:798160"
VERSION = "1.38.0"
DESCRIPTION = "forum indexes and username backfill"

INDEXES = (
    "CREATE INDEX IF NOT EXISTS forum_post_thread_number ON forum_post (thread, number)",
    "CREATE INDEX IF NOT EXISTS forum_thread_category_last ON forum_thread (category, last_posted_at)",
    "CREATE INDEX IF NOT EXISTS forum_thread_tag_tag_thread ON forum_thread_tag (tag, thread)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="server", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        assert engine is not None
        for statement in INDEXES:
            await engine.run_ddl(statement)
        rows = await engine.run_querystring(
            QueryString("SELECT id, email FROM app_user WHERE username IS NULL ORDER BY id")
        )
        taken = {
            row["username"]
            for row in await engine.run_querystring(
                QueryString("SELECT username FROM app_user WHERE username IS NOT NULL")
            )
        }
        for row in rows:
            base = handle = base_handle(row["email"])
            n = 1
            while handle in taken:
                n += 1
                handle = f"{base}{n}"
            taken.add(handle)
            await engine.run_querystring(
                QueryString("UPDATE app_user SET username = {} WHERE id = {}", handle, row["id"])
            )

    manager.add_raw(run)
    return manager
