"""create_app(settings): plugins, middleware, routers — nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from server.db import engine
from server.kb import views as kb_views
from server.kb.api import api_router as kb_api_router
from server.kb.editor_routes import router as kb_editor_router
from server.kb.routes import router as kb_router
from server.kb.structure_routes import router as kb_structure_router
from server.logging import configure_logging
from server.orgs.routes import router as orgs_router
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


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.start_connection_pool(min_size=1, max_size=10)
    try:
        yield
    finally:
        await kb_views.flush()  # view counts still buffered in this process
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
            create_static_files_router(path="/static", directories=[ROOT / "static"], include_in_schema=False),
        ],
        dependencies={"actor": Provide(current_actor, sync_to_thread=False)},
        middleware=[RequestContextMiddleware, ActorMiddleware],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="kz_csrf",
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            exclude=["^/api/"],
        ),
        template_config=TemplateConfig(instance=template_engine()),
        plugins=[HTMXPlugin()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[write_flash_cookie, add_response_headers],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Kizuna API", version="1", path="/schema"),
        logging_config=None,
        debug=False,
    )
