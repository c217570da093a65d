from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import ForeignKey

ID = "2026-12-05T01:22:36:900490"
VERSION = "1.38.0"
DESCRIPTION = "Index the foreign keys that deleting or merging tickets and users looks up"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="server", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="MailReference",
        tablename="mail_reference",
        column_name="ticket_message",
        db_column_name="ticket_message",
        params={"index": True},
        old_params={"index": False},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Ticket",
        tablename="ticket",
        column_name="merged_into",
        db_column_name="merged_into",
        params={"index": True},
        old_params={"index": False},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="TicketMessage",
        tablename="ticket_message",
        column_name="author",
        db_column_name="author",
        params={"index": True},
        old_params={"index": False},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="TicketAttachment",
        tablename="ticket_attachment",
        column_name="uploader",
        db_column_name="uploader",
        params={"index": True},
        old_params={"index": False},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="DeflectionEvent",
        tablename="desk_deflection_event",
        column_name="ticket",
        db_column_name="ticket",
        params={"index": True},
        old_params={"index": False},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="MailBounce",
        tablename="mail_bounce",
        column_name="ticket",
        db_column_name="ticket",
        params={"index": True},
        old_params={"index": False},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    return manager
