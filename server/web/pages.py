"""The UI shell: home, the top-level areas, health, and static error pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get
from litestar.response import Template

from server import jobs
from server.accounts.auth import CurrentActor
from server.db import engine
from server.policy import can_moderate, ensure, ensure_signed_in
from server.search.client import search_status
from server.web.render import page


@get("/", name="home")
async def home(request: Request[Any, Any, Any]) -> Template:
    return page(request, "pages/home.html")


@get("/guides")
async def guides(request: Request[Any, Any, Any]) -> Template:
    return page(request, "pages/area.html", {"area": "guides"})


@get("/perks")
async def perks(request: Request[Any, Any, Any]) -> Template:
    return page(request, "pages/area.html", {"area": "perks"})


@get("/moderation")
async def moderation(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    ensure(can_moderate(actor))
    return page(request, "pages/area.html", {"area": "moderation"})


@get("/healthz", tags=["ops"])
async def healthz() -> Response[dict[str, str]]:
    """200 while the database answers; search is `ok` or `degraded`; worker `ok` or `down`."""
    try:
        await engine().run_ddl("SELECT 1")
        db, worker = "ok", await jobs.worker_status()
    except Exception:  # any failure to reach the database is "down", reported, not raised
        db, worker = "down", "unknown"
    body = {
        "status": "ok" if db == "ok" else "down",
        "db": db,
        "search": await search_status(),
        "worker": worker,
    }
    return Response(body, status_code=200 if db == "ok" else 503)


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        home,
        guides,
        perks,
        moderation,
    ],
)
ops_router = Router(path="/", route_handlers=[healthz])
