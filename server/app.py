"""create_app(settings): plugins, middleware, routers — nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asyncpg.exceptions import PostgresError
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from piccolo.engine.postgres import PostgresEngine

from server import features  # noqa: F401 - registers job handlers and search types
from server.accounts.auth import ActorMiddleware, current_actor
from server.accounts.routes import api_router as accounts_api_router
from server.accounts.routes import router as accounts_router
from server.admin.routes import router as admin_router
from server.channels.chat.routes import router as chat_router
from server.channels.chat.visitor import ChatVisitorMiddleware
from server.channels.email.inbound_routes import api_router as email_inbound_api_router
from server.channels.email.inbound_routes import router as email_inbound_router
from server.channels.email.quarantine_routes import router as email_quarantine_router
from server.channels.forum_ticket.routes import router as forum_ticket_router
from server.db import engine, start_postgres_pool
from server.desk.admin_routes import router as desk_admin_router
from server.desk.agent_routes import router as desk_agent_router
from server.desk.api import api_router as desk_api_router
from server.desk.csat_routes import router as desk_csat_router
from server.desk.routes import router as desk_router
from server.desk.sla_routes import router as desk_sla_router
from server.desk.support_routes import router as support_router
from server.forum import views as forum_views
from server.forum.admin_routes import router as forum_admin_router
from server.forum.api import api_router as forum_api_router
from server.forum.routes import router as forum_router
from server.kb import views as kb_views
from server.kb.api import api_router as kb_api_router
from server.kb.editor_routes import router as kb_editor_router
from server.kb.routes import router as kb_router
from server.kb.structure_routes import router as kb_structure_router
from server.logging import configure_logging
from server.notifications.bell import UnreadCountMiddleware
from server.notifications.routes import router as notifications_router
from server.orgs.routes import router as orgs_router
from server.realtime import channels_plugin
from server.realtime.routes import live as live_socket
from server.search.client import close_http_client
from server.search.engine import close_client as close_meili_client
from server.search.routes import api_router as search_api_router
from server.search.routes import router as search_router
from server.settings import ROOT, Settings, get_settings
from server.templating import template_engine
from server.web.errors import EXCEPTION_HANDLERS
from server.web.flash import write_flash_cookie
from server.web.middleware import RequestContextMiddleware, add_response_headers
from server.web.pages import ops_router
from server.web.pages import router as pages_router
from server.webhooks.routes import router as webhooks_router

log = logging.getLogger("kizuna")


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    db = engine()
    if isinstance(db, PostgresEngine):
        try:
            await start_postgres_pool(max_size=10)
        except (OSError, PostgresError) as exc:
            # Serve anyway: pages answer 503 with a clear message until the database is back
            # (Piccolo then opens a connection per query), instead of a process that will not start.
            log.error("database unreachable at start-up, serving 503 until it returns: %r", exc)
    try:
        yield
    finally:
        await kb_views.flush()  # view counts still buffered in this process
        await forum_views.flush()
        await close_http_client()
        await close_meili_client()
        if isinstance(db, PostgresEngine):
            await db.close_connection_pool()


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging()
    return Litestar(
        route_handlers=[
            pages_router,
            ops_router,
            accounts_router,
            accounts_api_router,
            orgs_router,
            admin_router,
            search_router,
            search_api_router,
            kb_router,
            kb_editor_router,
            kb_structure_router,
            kb_api_router,
            support_router,
            desk_router,
            desk_agent_router,
            desk_admin_router,
            desk_api_router,
            desk_sla_router,
            desk_csat_router,
            forum_router,
            forum_admin_router,
            forum_api_router,
            notifications_router,
            webhooks_router,
            forum_ticket_router,
            chat_router,
            email_inbound_api_router,
            email_inbound_router,
            email_quarantine_router,
            live_socket,
            create_static_files_router(path="/static", directories=[ROOT / "static"], include_in_schema=False),
        ],
        dependencies={"actor": Provide(current_actor, sync_to_thread=False)},
        middleware=[RequestContextMiddleware, ActorMiddleware, ChatVisitorMiddleware, UnreadCountMiddleware],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="kz_csrf",
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            exclude=["^/api/"],
        ),
        template_config=TemplateConfig(instance=template_engine()),
        plugins=[HTMXPlugin(), channels_plugin(settings)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[write_flash_cookie, add_response_headers],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Kizuna API", version="1", path="/schema"),
        logging_config=None,
        debug=False,
    )
