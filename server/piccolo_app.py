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
from server.channels.chat.tables import ChatAgent, ChatMessage, ChatSession
from server.channels.email.inbound_tables import InboundMail, MailBounce
from server.channels.email.outbound_tables import MailDelivery
from server.channels.email.tables import MailReference
from server.channels.forum_ticket.tables import ForumTicketLink, ForumTicketReply
from server.desk.agent_tables import DeskSavedView, DeskTicketViewer
from server.desk.sla_tables import CsatRating, SlaCalendar, SlaPolicy, TicketSla
from server.desk.tables import (
    DeflectionEvent,
    DeskField,
    DeskGroup,
    DeskGroupMember,
    DeskIdempotencyKey,
    DeskMacro,
    Ticket,
    TicketAttachment,
    TicketFieldValue,
    TicketFollower,
    TicketLink,
    TicketMessage,
)
from server.forum.tables import (
    ForumBookmark,
    ForumCategory,
    ForumPost,
    ForumPostRevision,
    ForumReaction,
    ForumThread,
    ForumThreadRead,
    ForumThreadTag,
)
from server.jobs import Job, WorkerHeartbeat
from server.kb.tables import KbArticle, KbCategory, KbFeedback, KbRevision, KbSection, KbTranslation
from server.notifications.tables import Notification, NotificationSubscription
from server.realtime.tables import RealtimeEvent
from server.search.tables import SearchClick, SearchQueryLog, SearchSetting
from server.settings import ROOT
from server.webhooks.tables import WebhookDelivery, WebhookEndpoint, WebhookEvent

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
        MailReference,
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
        ForumCategory,
        ForumThread,
        ForumPost,
        ForumPostRevision,
        ForumReaction,
        ForumBookmark,
        ForumThreadRead,
        ForumThreadTag,
        DeskGroup,
        DeskGroupMember,
        Ticket,
        TicketMessage,
        TicketFollower,
        TicketLink,
        DeskField,
        TicketFieldValue,
        TicketAttachment,
        DeskMacro,
        DeskIdempotencyKey,
        DeflectionEvent,
        SlaCalendar,
        SlaPolicy,
        TicketSla,
        CsatRating,
        DeskSavedView,
        DeskTicketViewer,
        NotificationSubscription,
        Notification,
        RealtimeEvent,
        WebhookEndpoint,
        WebhookEvent,
        WebhookDelivery,
        ForumTicketLink,
        ForumTicketReply,
        MailDelivery,
        InboundMail,
        MailBounce,
        ChatSession,
        ChatMessage,
        ChatAgent,
    ],
    migration_dependencies=[],
    commands=[],
)
