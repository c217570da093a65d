"""`python -m server COMMAND`: every command has --help."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

from server.settings import DEFAULT_SMTP_SINK, ROOT, get_settings


def _run(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a database-using coroutine with the PostgreSQL pool open when there is one."""

    async def wrapper() -> Any:
        from piccolo.engine.postgres import PostgresEngine

        from server.db import engine, start_postgres_pool

        db = engine()
        if isinstance(db, PostgresEngine):
            await start_postgres_pool(max_size=4)
        try:
            return await coro_fn()
        finally:
            if isinstance(db, PostgresEngine):
                await db.close_connection_pool()

    # uvloop (as the web server uses): the worker's event loop does less per mail and per claim
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(wrapper())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    workers = args.workers or settings.web_concurrency
    if workers > 1 and not settings.redis_url:
        print(
            f"kizuna: {workers} web processes need REDIS_URL: rate limits, typing indicators, presence "
            "and live chat are shared between processes through Redis (one process needs nothing)",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        "server.asgi:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=None,
        # /live: clients send tiny JSON; no per-connection deflate state (5,000 sockets stay small)
        ws_max_size=65_536,
        ws_per_message_deflate=False,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from server import features, jobs, retention  # noqa: F401 - features registers every job handler
    from server.logging import configure_logging
    from server.search.sync import enqueue_settings_update, ensure_indexes

    configure_logging()

    async def main() -> None:
        try:
            await ensure_indexes()  # index settings live in code: apply them at start-up
        except Exception as exc:  # Meilisearch down: a job applies them when it is back
            print(f"kizuna: search indexes not ready ({exc}); will retry in the background", file=sys.stderr)
            await enqueue_settings_update()
        await retention.schedule()  # this hour's prunes; each run then queues the next hour's
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.once:
            await jobs.run_pending(jobs.new_worker_id())
        else:
            await jobs.run_worker(stop)

    _run(main)
    return 0


async def migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="server", migration_id="all", fake=False)
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")


def cmd_migrate(args: argparse.Namespace) -> int:
    asyncio.run(migrate())
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from server.seed import PARTS, print_logins, seed

    parts = tuple(part.strip() for part in args.only.split(",") if part.strip()) if args.only else PARTS
    if unknown := set(parts) - set(PARTS):
        print(f"seed: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    _run(lambda: seed(parts))
    print_logins()
    return 0


def cmd_createuser(args: argparse.Namespace) -> int:
    from server.accounts.services import create_user
    from server.errors import Invalid

    async def main() -> int:
        return await create_user(
            args.email,
            args.password,
            args.name or args.email.split("@")[0],
            args.role or [],
            org_slug=args.org,
            org_admin=args.org_admin,
            locale=args.locale,
        )

    try:
        user_id = _run(main)
    except Invalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created user {user_id} <{args.email}>")
    return 0


def _host_port(value: str) -> tuple[str, int]:
    """argparse type for HOST:PORT."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def cmd_mailsink(args: argparse.Namespace) -> int:
    from urllib.parse import urlparse

    from server.mailsink import start_sink

    settings = get_settings()
    default = urlparse(DEFAULT_SMTP_SINK)
    host, port = args.listen or (default.hostname or "127.0.0.1", default.port or 1025)
    target = urlparse(settings.smtp_url)
    # Idle only when outbound mail goes somewhere else than this sink would listen.
    if (target.scheme, target.hostname, target.port) != ("smtp", host, port) and not args.force:
        print(
            f"kizuna: outbound mail goes to {target.hostname}:{target.port} (SMTP_URL), not to {host}:{port}; "
            "the local mail sink stays idle (--force runs it anyway).",
            flush=True,
        )
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0

    async def main() -> None:
        server = await start_sink(host, port, settings.mail_dir)
        print(
            f"kizuna: capturing outbound mail on smtp://{host}:{port} into {settings.mail_dir}; "
            "admins read it at /admin/mail",
            flush=True,
        )
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def cmd_smtp(args: argparse.Namespace) -> int:
    from server import features  # noqa: F401
    from server.channels.email.smtp_listener import start_listener
    from server.logging import configure_logging

    configure_logging()
    host, port = args.listen or _host_port(get_settings().smtp_listen)

    async def main() -> None:
        server = await start_listener(host, port)
        print(f"kizuna: receiving inbound mail on smtp://{host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()

    _run(main)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from server import features  # noqa: F401
    from server.search.sync import reindex_all

    print("kizuna: rebuilding search indexes (each is swapped in when complete)", file=sys.stderr)
    counts = _run(reindex_all)
    print(f"kizuna: reindexed {sum(counts.values())} documents", file=sys.stderr)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from server.devtools import meili

    return meili.run_forever()


def cmd_fetch_meili(args: argparse.Namespace) -> int:
    from server.devtools import meili

    found = meili.fetch()
    if found:
        print(f"kizuna: Meilisearch ready at {found}")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything `make run` does after installing: fetch, migrate, seed, start all processes."""
    from server.devtools import meili
    from server.seed import print_logins, seed

    settings = get_settings()
    meili.fetch()
    asyncio.run(migrate())
    _run(seed)
    print(f"\n  Kizuna is starting at {settings.base_url}/\n")
    print_logins()
    print("  Press Ctrl-C to stop every process.\n", flush=True)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # honcho gives each process its own PORT (base, base+100, ...): the base is ours, so `web`
    # (first in the Procfile) listens where we said, and BASE_URL is pinned so the worker's
    # emailed links do not point at the port honcho handed the worker.
    port = env.setdefault("PORT", "8000")  # the default `serve` uses (server/settings.py)
    env["BASE_URL"] = settings.base_url
    honcho = os.path.join(os.path.dirname(sys.executable), "honcho")
    command = [honcho, "start", "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "-p", port]
    os.execve(honcho, command, env)  # noqa: S606
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="Kizuna command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Run the web app (uvicorn).")
    serve.add_argument("--host", help="default: HOST")
    serve.add_argument("--port", type=int, help="default: PORT")
    serve.add_argument("--workers", type=int, help="web processes (default: WEB_CONCURRENCY, 1); more need REDIS_URL")
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="Run the job worker (outbox, mail, timers).")
    worker.add_argument("--once", action="store_true", help="drain due jobs, then exit")
    worker.set_defaults(fn=cmd_worker)

    sub.add_parser("migrate", help="Apply database migrations.").set_defaults(fn=cmd_migrate)
    seed_parser = sub.add_parser("seed", help="Add the demo data (idempotent) and print the logins.")
    seed_parser.add_argument(
        "--only", default="", help="comma-separated parts: help, desk, forum (default: all; people always)"
    )
    seed_parser.set_defaults(fn=cmd_seed)

    create = sub.add_parser("createuser", help="Create a verified account.")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--name", help="display name (default: the email's local part)")
    create.add_argument(
        "--role",
        action="append",
        choices=["customer", "agent", "moderator", "admin"],
        help="repeat for several roles; customer is always included",
    )
    create.add_argument("--org", help="organisation slug to join")
    create.add_argument("--org-admin", action="store_true", help="make the user an org admin")
    create.add_argument("--locale", default="en", choices=["en", "ja"])
    create.set_defaults(fn=cmd_createuser)

    sink = sub.add_parser("mailsink", help="Run the local SMTP sink that captures outbound mail.")
    sink.add_argument("--force", action="store_true", help="run even when SMTP_URL points elsewhere")
    sink.add_argument(
        "--listen", type=_host_port, metavar="HOST:PORT", help="address to listen on (default: 127.0.0.1:1025)"
    )
    sink.set_defaults(fn=cmd_mailsink)

    smtp = sub.add_parser("smtp", help="Run the inbound mail listener (SMTP) that turns mail into tickets.")
    smtp.add_argument("--listen", type=_host_port, metavar="HOST:PORT", help="default: SMTP_LISTEN (127.0.0.1:2525)")
    smtp.set_defaults(fn=cmd_smtp)

    sub.add_parser("search", help="Run the local Meilisearch (or wait, degraded, without one).").set_defaults(
        fn=cmd_search
    )
    sub.add_parser("reindex", help="Rebuild every search index from the database, swapped in atomically.").set_defaults(
        fn=cmd_reindex
    )
    sub.add_parser("fetch-meili", help="Obtain the pinned Meilisearch binary if needed.").set_defaults(
        fn=cmd_fetch_meili
    )
    sub.add_parser("dev", help="What `make run` runs: fetch, migrate, seed, start all processes.").set_defaults(
        fn=cmd_dev
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
