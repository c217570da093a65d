# ruff: noqa: S603 - our own interpreter and modules
"""`python -m bench.realtime`: many websocket subscribers to one channel on one web process.

Starts one web process (uvicorn serving bench/realtime_app.py: the real app plus a bench topic
whose event renders a forum-post-sized fragment) on a scratch SQLite database (or
`--database-url`), opens `--connections` websockets to `/live?channels=benchroom:1` from
`--clients` client processes, then publishes `--events` events one at a time through an HTTP
route that stores each in a transaction, exactly as a reply would. For every event and every
subscriber it records the time from just before the publishing request until the frame arrived
at the client, and it samples the web process's RSS throughout.

The clients use websockets' sans-I/O protocol on plain asyncio transports (no task per
connection), so 5,000 of them cost the shared CPU as little as possible: on a 2-core machine the
load generator competes with the server, and its own delay is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from bench.common import WebsocketClient, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "benchroom:1"
EVENT_ID_RE = re.compile(rb'\{"type":"event","id":(\d+),')


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# Client side -------------------------------------------------------------------------------------


def _event_id(data: bytes) -> int | None:
    # {"type":"event","id":123,...}: read the id without parsing the whole frame
    match = EVENT_ID_RE.match(data)
    return int(match.group(1)) if match else None


async def _client_main(uri: str, count: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    received: dict[int, list[float]] = {}
    host, port = uri.split("//", 1)[1].split("/", 1)[0].split(":")
    limit = asyncio.Semaphore(100)
    transports: list[asyncio.BaseTransport] = []
    failures = 0

    async def open_one() -> None:
        nonlocal failures
        async with limit:
            opened: asyncio.Future[bool] = loop.create_future()
            try:
                transport, _protocol = await loop.create_connection(
                    lambda: WebsocketClient(uri, received, opened, _event_id), host, int(port)
                )
                transports.append(transport)
                if not await asyncio.wait_for(opened, 30):
                    failures += 1
            except (OSError, TimeoutError):
                failures += 1

    await asyncio.gather(*(open_one() for _ in range(count)))
    pipe.send({"opened": count - failures})
    # wait for "report" without blocking the loop that receives the frames
    await loop.run_in_executor(None, pipe.recv)
    pipe.send({"received": received})
    for transport in transports:
        transport.close()


def _client_process(uri: str, count: int, pipe: Connection) -> None:
    import gc

    gc.disable()  # a load generator holding thousands of sockets: collection pauses would be ours
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_client_main(uri, count, pipe))


# Driver ------------------------------------------------------------------------------------------


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


class _RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopped = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument(
        "--warmup", type=int, default=0, help="unmeasured events first (reported apart as warmup_max_ms)"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between events")
    parser.add_argument("--database-url", help="default: a scratch SQLite database")
    parser.add_argument("--redis-url", help="use the Redis channels backend")
    args = parser.parse_args()
    raise_fd_limit()

    scratch = Path(tempfile.mkdtemp(prefix="kizuna-bench-rt-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATA_DIR": str(scratch),
        "DATABASE_URL": args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}",
        "BASE_URL": base,
        "SECRET_KEY": "bench-realtime",
        "MEILI_URL": "http://127.0.0.1:9",  # search is not part of this benchmark
    }
    env.pop("REDIS_URL", None)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    subprocess.run([sys.executable, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True)
    log = (scratch / "web.log").open("wb")
    command = [
        *[sys.executable, "-m", "uvicorn", "bench.realtime_app:app", "--host", "127.0.0.1", "--port", str(port)],
        *["--no-access-log", "--log-level", "warning", "--ws-per-message-deflate", "False"],
        *["--ws-max-size", "65536", "--backlog", "4096"],
    ]
    web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit)  # noqa: PLW1509
    clients: list[multiprocessing.Process] = []
    try:
        wait_http(f"{base}/healthz")
        rss_start = rss_mb(web.pid)
        sampler = _RssSampler(web.pid)
        sampler.start()
        uri = f"ws://127.0.0.1:{port}/live?channels={CHANNEL}"
        pipes: list[Connection] = []
        context = multiprocessing.get_context("spawn")
        share = [args.connections // args.clients + (i < args.connections % args.clients) for i in range(args.clients)]
        started = time.monotonic()
        for count in share:
            ours, theirs = context.Pipe()
            process = context.Process(target=_client_process, args=(uri, count, theirs), daemon=True)
            process.start()
            clients.append(process)
            pipes.append(ours)
        opened = sum(pipe.recv()["opened"] for pipe in pipes)
        connect_seconds = time.monotonic() - started
        http = httpx.Client(base_url=base, timeout=30)
        deadline = time.monotonic() + 60
        while http.get("/api/_bench/stats", params={"channel": CHANNEL}).json()["subscribers"] < opened:
            if time.monotonic() > deadline:
                raise SystemExit("bench: the server never registered every subscriber")
            time.sleep(0.2)
        rss_holding = rss_mb(web.pid)
        renders_before = http.get("/api/_bench/stats", params={"channel": CHANNEL}).json()["renders"]
        sent: dict[int, float] = {}
        warmup: dict[int, float] = {}
        for n in range(args.warmup + args.events):
            moment = time.time()
            event_id = http.post("/api/_bench/publish", json={"room": 1, "n": n}).json()["id"]
            (warmup if n < args.warmup else sent)[event_id] = moment
            time.sleep(args.interval)
        time.sleep(2)
        renders = http.get("/api/_bench/stats", params={"channel": CHANNEL}).json()["renders"] - renders_before
        for pipe in pipes:
            pipe.send("report")
        latencies: list[float] = []
        per_event: dict[int, list[float]] = {event_id: [] for event_id in sent}
        delivered = 0
        cold: list[float] = []
        for pipe in pipes:
            received: dict[int, list[float]] = pipe.recv()["received"]
            for event_id, stamps in received.items():
                if event_id in warmup:
                    cold.extend((stamp - warmup[event_id]) * 1000 for stamp in stamps)
                if event_id in sent:
                    delivered += len(stamps)
                    per_event[event_id].extend((stamp - sent[event_id]) * 1000 for stamp in stamps)
        for values in per_event.values():
            latencies.extend(values)
        sampler.stopped.set()
        sampler.join()
        expected = opened * args.events
        result: dict[str, Any] = {
            "connections": opened,
            "connect_seconds": round(connect_seconds, 1),
            "events": args.events,
            "delivered": f"{delivered}/{expected}",
            "renders": renders,
            "p50_ms": round(_percentile(latencies, 50), 1) if latencies else None,
            "p99_ms": round(_percentile(latencies, 99), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
            "rss_start_mb": round(rss_start),
            "rss_holding_mb": round(rss_holding),
            "rss_peak_mb": round(sampler.peak),
            "slowest_per_event_ms": [round(max(values)) for values in per_event.values() if values],
            "warmup_events": args.warmup,
            "warmup_max_ms": round(max(cold), 1) if cold else None,  # the web process's first writes
            "backend": "redis" if args.redis_url else ("postgres" if args.database_url else "memory (SQLite)"),
        }
        print(json.dumps(result, indent=2))
        ok = delivered == expected and result["p99_ms"] is not None and result["p99_ms"] <= 500
        ok = ok and result["rss_peak_mb"] <= 700
        print(f"targets (every frame delivered, p99 <= 500 ms, RSS <= 700 MB): {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        for process in clients:
            process.kill()
        web.terminate()
        try:
            web.wait(timeout=15)
        except subprocess.TimeoutExpired:
            web.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
