# ruff: noqa: S603 - our own interpreter and modules
"""`python -m bench.chat`: many concurrent chat sessions on one web process.

On a scratch SQLite database (or `--database-url`) it creates `--sessions` signed-in customers,
each with a chat taken by one of `--agents` agents (so every chat has both sides), through the
real chat services. Then it starts one web process (uvicorn, the real app) and the worker (which
mirrors the transcripts into the tickets), opens one `/live` websocket per customer
(`chat:{id}`) and one per agent (its chats, up to 20 channels), and sends `--rate` messages a
second for `--seconds` seconds over real HTTP, alternately from a customer and from the agent
of a random chat, exactly as chat.js posts them. For every message it records the time from just
before the POST until the frame carrying it arrived at each of the two sockets that hear it, and
it samples the web process's RSS throughout.

The websocket clients use websockets' sans-I/O protocol on plain asyncio transports in a
process of their own (no task per connection), so they cost the shared CPU as little as
possible; their own delay is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from bench.common import WebsocketClient, free_port, wait_http
from bench.realtime import _percentile, _RssSampler, raise_fd_limit, rss_mb

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_ID_RE = re.compile(rb'data-id=\\"(\d+)\\"')
PAGE_MESSAGE_ID_RE = re.compile(r'data-id="(\d+)"')
CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')
CHANNELS_PER_AGENT = 20
SECRET = "bench-chat"  # noqa: S105 - the scratch run's own key


# Setup (in this process, on the scratch database) -----------------------------------------------


async def _setup(sessions: int, agents: int) -> dict[str, Any]:
    """Customers, agents (online, capacity enough), and one taken chat per customer."""
    from server import jobs
    from server.accounts.auth import hash_token, new_token, utcnow
    from server.accounts.passwords import hash_password
    from server.accounts.tables import Session, User, UserRole
    from server.channels.chat import services
    from server.db import atomic
    from server.policy import Actor

    password = hash_password("bench chat password")  # once: argon2 is slow on purpose
    moment = utcnow()

    async def user(email: str, name: str, role: str) -> tuple[Actor, str]:
        async with atomic():
            rows = await User.insert(
                User(
                    email=email, password_hash=password, display_name=name, locale="en", created_at=moment,
                    email_verified_at=moment,
                )
            ).returning(User.id)  # fmt: skip
            user_id = rows[0]["id"]
            for held in {"customer", role}:
                await UserRole.insert(UserRole(user=user_id, role=held))
            token = new_token()
            await Session.insert(
                Session(
                    token_hash=hash_token(token), user=user_id, created_at=moment, last_seen_at=moment,
                    expires_at=moment.replace(year=moment.year + 1),
                )
            )  # fmt: skip
        roles = frozenset({"customer", role})
        return Actor(user_id=user_id, email=email, display_name=name, roles=roles), token

    agent_rows = [await user(f"agent{n}@bench.example", f"Agent {n}", "agent") for n in range(agents)]
    per_agent = -(-sessions // agents)
    for actor, _token in agent_rows:
        await services.set_availability(actor, "online", min(services.MAX_CAPACITY, per_agent))
    chats: list[dict[str, Any]] = []
    for n in range(sessions):
        actor, token = await user(f"customer{n}@bench.example", f"Customer {n}", "customer")
        chat_id = await services.start_chat(actor, f"Hello, this is customer {n}: my export is stuck.")
        agent, agent_token = agent_rows[n // per_agent]
        await services.take_chat(agent, chat_id)
        chats.append({"id": chat_id, "customer": token, "agent": agent_token, "agent_index": n // per_agent})
    # Search is not part of this benchmark (MEILI_URL points nowhere): the setup's own sync jobs
    # would only keep the worker retrying against it.
    await jobs.Job.update({jobs.Job.status: jobs.DONE}).where(jobs.Job.kind == "search.sync")
    return {"chats": chats, "agents": [token for _actor, token in agent_rows]}


# Websocket clients (a process of their own) -------------------------------------------------------


def _message_id(data: bytes) -> int | None:
    match = MESSAGE_ID_RE.search(data) if b'"chat.message"' in data else None
    return int(match.group(1)) if match else None


async def _clients_main(base_ws: str, sockets: list[tuple[str, str]], pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    received: dict[int, list[float]] = {}
    host, port = base_ws.split("//", 1)[1].split("/", 1)[0].split(":")
    limit = asyncio.Semaphore(100)
    transports: list[asyncio.BaseTransport] = []
    failures = 0

    async def open_one(query: str, cookie: str) -> None:
        nonlocal failures
        async with limit:
            opened: asyncio.Future[bool] = loop.create_future()
            uri = f"{base_ws}?{query}"
            try:
                transport, _protocol = await loop.create_connection(
                    lambda: WebsocketClient(uri, received, opened, _message_id, cookie=cookie, max_size=2**20),
                    host,
                    int(port),
                )
                transports.append(transport)
                if not await asyncio.wait_for(opened, 30):
                    failures += 1
            except (OSError, TimeoutError):
                failures += 1

    await asyncio.gather(*(open_one(query, cookie) for query, cookie in sockets))
    pipe.send({"opened": len(sockets) - failures})
    await loop.run_in_executor(None, pipe.recv)
    pipe.send({"received": received})
    for transport in transports:
        transport.close()


def _clients_process(base_ws: str, sockets: list[tuple[str, str]], pipe: Connection) -> None:
    import gc

    gc.disable()
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_clients_main(base_ws, sockets, pipe))


# Senders (this process) -----------------------------------------------------------------------------


async def _agent_csrf(http: httpx.AsyncClient, token: str) -> tuple[str, str]:
    """An agent's CSRF pair: the cookie Litestar set and the page's token."""
    page = await http.get("/desk/chats", headers={"Cookie": f"kz_session={token}"})
    match = CSRF_RE.search(page.text)
    if page.status_code != 200 or not match:
        raise SystemExit(f"bench: the agent's queue page failed ({page.status_code})")
    return page.cookies.get("kz_csrf") or "", match.group(1)


async def _send_all(base: str, world: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    chats = world["chats"]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    sent: dict[int, float] = {}
    post_ms: list[float] = []
    errors: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        csrf = [await _agent_csrf(http, token) for token in world["agents"]]

        async def one(n: int) -> None:
            chat = chats[random.randrange(len(chats))]
            from_agent = n % 2 == 1
            headers = {"X-Kizuna-Chat": "1"}
            if from_agent:
                cookie, token = csrf[chat["agent_index"]]
                headers.update(Cookie=f"kz_session={chat['agent']}; kz_csrf={cookie}", **{"x-csrftoken": token})
                url = f"/desk/chats/{chat['id']}/messages"
            else:
                headers["Cookie"] = f"kz_session={chat['customer']}"
                url = f"/chat/s/{chat['id']}/messages"
            body = {"body": f"Message {n}: the export still shows yesterday's timeline.", "client_ref": f"b{n}"}
            started = time.time()
            try:
                response = await http.post(url, data=body, headers=headers)
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            post_ms.append((time.time() - started) * 1000)
            match = PAGE_MESSAGE_ID_RE.search(response.text)
            if response.status_code != 201 or not match:
                errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
                return
            sent[int(match.group(1))] = started

        tasks = []
        began = time.monotonic()
        total = int(rate * seconds)
        for n in range(total):
            delay = began + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return {"sent": sent, "post_ms": post_ms, "errors": errors, "attempted": total}


# Driver ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second, all chats together")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-worker", action="store_true", help="do not run the worker (no transcript mirroring)")
    parser.add_argument("--database-url", help="default: a scratch SQLite database")
    args = parser.parse_args()
    if -(-args.sessions // args.agents) > CHANNELS_PER_AGENT:
        raise SystemExit(f"bench: at most {CHANNELS_PER_AGENT} chats per agent (one socket each); add agents")
    raise_fd_limit()

    scratch = Path(tempfile.mkdtemp(prefix="kizuna-bench-chat-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATA_DIR": str(scratch),
        "DATABASE_URL": args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}",
        "BASE_URL": base,
        "SECRET_KEY": SECRET,
        "MEILI_URL": "http://127.0.0.1:9",  # search is not part of this benchmark
        "SMTP_URL": "smtp://127.0.0.1:9",
    }
    env.pop("REDIS_URL", None)
    os.environ.update({k: env[k] for k in ("DATA_DIR", "DATABASE_URL", "BASE_URL", "SECRET_KEY", "MEILI_URL")})
    subprocess.run([sys.executable, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    started = time.monotonic()
    world = asyncio.run(_setup(args.sessions, args.agents))
    setup_seconds = time.monotonic() - started

    logs = {name: (scratch / f"{name}.log").open("wb") for name in ("web", "worker")}
    command = [
        *[sys.executable, "-m", "uvicorn", "server.asgi:app", "--host", "127.0.0.1", "--port", str(port)],
        *["--no-access-log", "--log-level", "warning", "--ws-per-message-deflate", "False"],
        *["--ws-max-size", "65536", "--backlog", "4096"],
    ]
    web = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=logs["web"],
        stderr=subprocess.STDOUT,
        preexec_fn=raise_fd_limit,  # noqa: PLW1509
    )
    worker = None
    if not args.no_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            cwd=ROOT,
            env=env,
            stdout=logs["worker"],
            stderr=subprocess.STDOUT,
        )
    clients: multiprocessing.Process | None = None
    try:
        wait_http(f"{base}/healthz")
        rss_start = rss_mb(web.pid)
        sampler = _RssSampler(web.pid)
        sampler.start()
        sockets = [(f"channels=chat:{c['id']}", f"kz_session={c['customer']}") for c in world["chats"]]
        for index, token in enumerate(world["agents"]):
            mine = [str(c["id"]) for c in world["chats"] if c["agent_index"] == index]
            if mine:
                sockets.append(("channels=" + ",".join(f"chat:{i}" for i in mine), f"kz_session={token}"))
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        clients = multiprocessing.get_context("spawn").Process(
            target=_clients_process, args=(f"ws://127.0.0.1:{port}/live", sockets, theirs), daemon=True
        )
        connect_started = time.monotonic()
        clients.start()
        opened = ours.recv()["opened"]
        connect_seconds = time.monotonic() - connect_started
        time.sleep(2)  # let the server finish subscribing
        rss_holding = rss_mb(web.pid)
        outcome = asyncio.run(_send_all(base, world, args.rate, args.seconds))
        time.sleep(2)
        ours.send("report")
        received: dict[int, list[float]] = ours.recv()["received"]
        sampler.stopped.set()
        sampler.join()
        latencies = [
            (stamp - outcome["sent"][message_id]) * 1000
            for message_id, stamps in received.items()
            if message_id in outcome["sent"]
            for stamp in stamps
        ]
        expected = 2 * len(outcome["sent"])  # the customer's socket and the agent's
        delivered = len(latencies)
        result: dict[str, Any] = {
            "sessions": args.sessions,
            "agents": args.agents,
            "websockets": f"{opened}/{len(sockets)}",
            "connect_seconds": round(connect_seconds, 1),
            "setup_seconds": round(setup_seconds, 1),
            "messages": f"{len(outcome['sent'])}/{outcome['attempted']} stored",
            "rate_per_second": args.rate,
            "errors": outcome["errors"],
            "delivered": f"{delivered}/{expected}",
            "delivery_p50_ms": round(_percentile(latencies, 50), 1) if latencies else None,
            "delivery_p99_ms": round(_percentile(latencies, 99), 1) if latencies else None,
            "delivery_max_ms": round(max(latencies), 1) if latencies else None,
            "post_p99_ms": round(_percentile(outcome["post_ms"], 99), 1) if outcome["post_ms"] else None,
            "rss_start_mb": round(rss_start),
            "rss_holding_mb": round(rss_holding),
            "rss_peak_mb": round(sampler.peak),
            "worker": not args.no_worker,
            "database": "postgres" if args.database_url else "sqlite",
        }
        print(json.dumps(result, indent=2))
        ok = (
            opened == len(sockets)
            and delivered == expected
            and not outcome["errors"]
            and result["delivery_p99_ms"] is not None
            and result["delivery_p99_ms"] <= 200
        )
        targets = "every socket open, every message delivered to both sides, p99 <= 200 ms"
        print(f"targets ({targets}): {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        if clients is not None:
            clients.kill()
        for process in (web, worker):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        for handle in logs.values():
            handle.close()


if __name__ == "__main__":
    sys.exit(main())
