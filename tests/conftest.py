"""Test fixtures: a fresh database (SQLite, or PostgreSQL from TEST_DATABASE_URL), a real
SMTP sink, the app behind Litestar's test client, and helpers for forms and mail.

The environment is set here, before anything imports `server`, because settings are read
once per process.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_DATA_DIR = Path(tempfile.mkdtemp(prefix="kizuna-test-"))
SMTP_PORT = _free_port()
os.environ["DATA_DIR"] = str(_DATA_DIR)


def _per_worker(url: str) -> str:
    """Under pytest-xdist each worker process gets a database of its own (SQLite: its own
    DATA_DIR already; PostgreSQL: `<name>_<worker>`, created here when missing)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not url.startswith("postgres"):
        return url
    from urllib.parse import urlparse

    import asyncpg

    parsed = urlparse(url)
    name = f"{parsed.path.lstrip('/')}_{worker}"

    async def create() -> None:
        conn = await asyncpg.connect(url)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return parsed._replace(path=f"/{name}").geturl()


os.environ["DATABASE_URL"] = (
    _per_worker(os.environ.get("TEST_DATABASE_URL", "")) or f"sqlite:///{_DATA_DIR / 'test.sqlite3'}"
)
os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{SMTP_PORT}"
MEILI_PORT = _free_port()
os.environ["MEILI_URL"] = f"http://127.0.0.1:{MEILI_PORT}"  # started on demand by `meili_server`
os.environ["MEILI_MASTER_KEY"] = "kizuna-test-master-key"
os.environ["BASE_URL"] = "http://testserver.local"
os.environ.pop("REDIS_URL", None)
os.environ.pop("SECRET_KEY", None)

from litestar.testing import AsyncTestClient  # noqa: E402

from server.db import is_postgres  # noqa: E402
from server.settings import get_settings  # noqa: E402
from tests.factories import Mailbox  # noqa: E402


def _tables_children_first() -> list[str]:
    """Every table of the app, children before parents (the app lists parents first)."""
    from server.piccolo_app import APP_CONFIG

    return [table._meta.tablename for table in reversed(APP_CONFIG.table_classes)]


def _reset_postgres_schema(url: str) -> None:
    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(reset())


@pytest.fixture(scope="session", autouse=True)
def database() -> None:
    """Migrate a fresh database once per run, through the real CLI command."""
    import subprocess
    import sys

    url = os.environ["DATABASE_URL"]
    if url.startswith("postgres"):
        _reset_postgres_schema(url)
    subprocess.run([sys.executable, "-m", "server", "migrate"], check=True, capture_output=True)


async def empty_all_tables() -> None:
    from server import ratelimit
    from server.db import engine

    db = engine()
    tables = _tables_children_first()
    if is_postgres():
        from asyncpg.exceptions import DeadlockDetectedError

        # A live server's worker may be writing meanwhile (e.g. its hourly prunes at start):
        # TRUNCATE takes every table's lock in turn, so PostgreSQL may pick it as a deadlock's
        # victim. Try again; the worker's statement has finished by then.
        for attempt in range(5):
            try:
                await db.run_ddl(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
                break
            except DeadlockDetectedError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2)
    else:
        for table in tables:
            await db.run_ddl(f"DELETE FROM {table}")  # noqa: S608 - constant names
    ratelimit.counter().reset()
    from server.shortcache import ShortCache

    ShortCache.clear_all()  # per-process reads of what the tables held


@pytest.fixture(autouse=True)
async def clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each test starts from empty tables and fresh rate-limit counters, except in modules
    marked `shared_data`: they read one data set (e.g. the seeded demo) that a module-scoped
    fixture prepares after calling `empty_all_tables()` itself."""
    if request.node.get_closest_marker("shared_data") is None:
        await empty_all_tables()
    yield


@pytest.fixture(scope="session")
async def smtp_sink() -> AsyncIterator[Path]:
    """A real SMTP server (our sink) that the app's outbound mail goes to."""
    from server.mailsink import start_sink

    server = await start_sink("127.0.0.1", SMTP_PORT, get_settings().mail_dir)
    yield get_settings().mail_dir
    server.close()


@pytest.fixture
async def mailbox(smtp_sink: Path) -> Mailbox:
    for path in smtp_sink.glob("*.eml"):
        path.unlink()
    return Mailbox(smtp_sink)


async def fresh_indexes(names: tuple[str, ...] | None = None, *, create: bool = True) -> None:
    """Drop the named search indexes (all registered ones by default) and, with `create`, make
    them again, empty, with the settings from code: Meilisearch outlives each test's database."""
    from server.search import registry
    from server.search.engine import client, ensure_index

    meili = client()
    for name in names or tuple(registry.names()):
        task = await meili.index(name).delete()
        await meili.wait_for_task(task.task_uid, timeout_in_ms=30_000)
        if create:
            await ensure_index(registry.get(name))


@pytest.fixture(scope="session")
def meili_server() -> Iterator[str]:
    """A real Meilisearch process (the pinned binary `make test` fetched, or one on PATH)."""
    import subprocess
    import time

    import httpx

    from server.devtools import meili

    binary = meili.find_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("no Meilisearch binary: `make test` runs `python -m server fetch-meili` first")
        pytest.skip("no Meilisearch binary (run `python -m server fetch-meili`)")
    db_path = _DATA_DIR / "meili"
    command = meili.command(binary, f"127.0.0.1:{MEILI_PORT}", db_path, os.environ["MEILI_MASTER_KEY"])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    url = os.environ["MEILI_URL"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.terminate()
        pytest.fail("Meilisearch did not start within 30 s")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def app():  # noqa: ANN201
    from server.app import create_app

    return create_app()


@pytest.fixture(scope="session", autouse=True)
async def postgres_pool() -> AsyncIterator[None]:
    """On PostgreSQL, one connection pool on the tests' own event loop for the whole run."""
    from server.db import engine, start_postgres_pool

    db = engine()
    if is_postgres():
        await start_postgres_pool(max_size=8)  # as the app's processes open theirs
    yield
    if is_postgres():
        await db.close_connection_pool()  # type: ignore[attr-defined]


@asynccontextmanager
async def make_client(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    """A browser-like HTTP client that runs the app on the tests' own event loop.

    Litestar's AsyncTestClient runs the app on a second event loop in another thread (a blocking
    portal) while blocking the test's loop, so a database pool or client made on one loop gets
    used from the other and hangs; httpx's ASGI transport keeps everything on one loop. The
    lifespan is not run: the pool above stands in for the one it would open."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver.local", follow_redirects=True
    ) as test_client:
        yield test_client


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    async with make_client(app) as test_client:
        yield test_client


CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def csrf_token(client: AsyncTestClient, path: str = "/login") -> str:
    """Load a page as a browser would and return the form's CSRF token."""
    response = await client.get(path)
    match = CSRF_RE.search(response.text)
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


async def post_form(
    client: AsyncTestClient, path: str, data: dict[str, str | list[str]], *, page: str | None = None, **kwargs: object
):  # noqa: ANN201
    """Submit a form like a browser: fetch the page for its token, then POST."""
    token = await csrf_token(client, page or path)
    return await client.post(path, data={**data, "_csrf_token": token}, **kwargs)
