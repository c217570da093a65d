"""The one Piccolo app: every feature's tables, one migrations folder."""

from piccolo.conf.apps import AppConfig

from server.accounts.tables import (
    ApiToken,
    Membership,
    OneTimeToken,
    Organisation,
    Session,
    User,
    UserRole,
)
from server.jobs import Job, WorkerHeartbeat
from server.kb.tables import KbArticle, KbCategory, KbFeedback, KbRevision, KbSection, KbTranslation
from server.search.tables import SearchClick, SearchQueryLog, SearchSetting
from server.settings import ROOT

APP_CONFIG = AppConfig(
    app_name="server",
    migrations_folder_path=str(ROOT / "migrations"),
    table_classes=[
        User,
        UserRole,
        Organisation,
        Membership,
        Session,
        ApiToken,
        OneTimeToken,
        Job,
        WorkerHeartbeat,
        KbCategory,
        KbSection,
        KbArticle,
        KbTranslation,
        KbRevision,
        KbFeedback,
        SearchQueryLog,
        SearchClick,
        SearchSetting,
    ],
    migration_dependencies=[],
    commands=[],
)
