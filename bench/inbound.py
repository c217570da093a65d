# ruff: noqa: S603 - our own interpreter and CLI
"""`python -m bench.inbound`: inbound email throughput, and nothing lost when the worker dies.

Starts Kizuna as real processes on a scratch SQLite database (one web process, one worker, the
local SMTP sink for the acknowledgements; no Meilisearch: its sync jobs retry in the
background), then posts a mixed corpus to `POST /api/v1/inbound/email` from several clients:
new tickets, replies threaded by In-Reply-To, Japanese ISO-2022-JP mail, mail with a PDF
attachment, auto-replies and exact duplicates. Figures:

1. worker throughput: the corpus is posted with the worker stopped, then one worker drains it;
   messages per second from its start until no message is pending (parsed, threaded, stored);
2. end to end: posted with the worker running; messages per second from the first post until
   the last one is processed (the web process, the clients and the worker share 2 cores);
3. crash: the worker is killed with SIGKILL in the middle of a batch and started again; every
   stored message must end processed (done or ignored) and the tickets must hold exactly the
   expected number of messages (each new ticket and each reply one, duplicates and auto-replies
   none). Jobs the dead worker held come back after their lease; the inbound sweep picks their
   messages up sooner (30 s after arrival).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import httpx

from bench.common import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
TARGET = 200.0  # messages per second (Channels issue)
PDF = b"%PDF-1.4\n" + bytes(random.Random(7).randrange(256) for _ in range(20_000)) + b"\n%%EOF\n"


@dataclass
class Corpus:
    messages: list[bytes]
    expected_messages: int  # ticket messages the corpus must produce
    expected_ignored: int


def build_corpus(count: int, seed: int, tag: str) -> Corpus:
    """Mixed mail in posting order: a reply always comes well after the message it answers."""
    rng = random.Random(seed)
    support = "support@kizuna.localhost"
    out: list[bytes] = []
    sent_ids: list[tuple[str, str, str]] = []  # (message id, sender, subject) of new tickets
    expected = ignored = 0
    for n in range(count):
        roll = rng.random()
        message = EmailMessage()
        message["To"] = support
        message["Date"] = formatdate(localtime=False)
        message_id = f"<{tag}.{n}@bench.example.test>"
        if roll < 0.05 and out:  # an exact duplicate of an earlier message
            out.append(out[rng.randrange(len(out))])
            ignored += 1
            continue
        if roll < 0.10:
            message["From"] = f"away{n}@bench.example.test"
            message["Subject"] = "Out of office"
            message["Auto-Submitted"] = "auto-replied"
            message["Message-ID"] = message_id
            message.set_content("I am away until Monday.")
            ignored += 1
        elif roll < 0.35 and len(sent_ids) > 50:  # a reply, threaded by In-Reply-To
            parent, sender, subject = sent_ids[rng.randrange(len(sent_ids) - 40)]
            message["From"] = sender
            message["Subject"] = f"Re: {subject}"
            message["Message-ID"] = message_id
            message["In-Reply-To"] = parent
            message["References"] = parent
            message.set_content(f"Thanks, one more detail ({n}).\n\nOn Monday you wrote:\n> earlier text\n> more")
            expected += 1
        elif roll < 0.50:  # Japanese, ISO-2022-JP
            sender = f"yamada{n}@bench.example.jp"
            subject = f"ログインできません {n}"
            message["From"] = f"山田 太郎 <{sender}>"
            message["Subject"] = subject
            message["Message-ID"] = message_id
            message.set_content("お世話になっております。\nログインできません。\n\n山田", charset="iso-2022-jp")
            sent_ids.append((message_id, sender, subject))
            expected += 1
        else:
            sender = f"customer{n}@bench.example.test"
            subject = f"Export fails on report {n}"
            message["From"] = f"Customer {n} <{sender}>"
            message["Subject"] = subject
            message["Message-ID"] = message_id
            message.set_content(f"Hello,\n\nthe CSV export of report {n} stops at 50%.\n\nRegards\n-- \nCustomer")
            if roll > 0.85:
                message.add_attachment(PDF, maintype="application", subtype="pdf", filename=f"report-{n}.pdf")
            sent_ids.append((message_id, sender, subject))
            expected += 1
        out.append(bytes(message))
    return Corpus(out, expected, ignored)


async def post_all(base: str, secret: str, messages: list[bytes], clients: int) -> float:
    """Post in order from `clients` concurrent connections; returns seconds taken."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in messages:
        queue.put_nowait(raw)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "message/rfc822"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while not queue.empty():
                raw = queue.get_nowait()
                response = await http.post("/api/v1/inbound/email", content=raw, headers=headers)
                if response.status_code != 202:
                    raise SystemExit(f"bench: POST answered {response.status_code}: {response.text[:200]}")

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.monotonic() - started


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def pending(db: Path) -> int:
    return _count(db, "SELECT count(*) FROM inbound_mail WHERE status = 'pending'")


def wait_drained(db: Path, total: int, deadline_s: float) -> float:
    """Seconds until `total` messages exist and none is pending; the moment is polled every 20 ms."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if _count(db, "SELECT count(*) FROM inbound_mail") >= total and pending(db) == 0:
            return time.monotonic()
        time.sleep(0.02)
    raise SystemExit(f"bench: {pending(db)} messages still pending after {deadline_s:.0f} s")


def processing_span(db: Path) -> float:
    """Seconds from the first message processed to the last (the worker's start-up left out)."""
    with sqlite3.connect(db, timeout=30) as conn:
        first, last = conn.execute("SELECT min(processed_at), max(processed_at) FROM inbound_mail").fetchone()
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def start(python: str, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [python, "-m", "server", *command], env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inbound")
    parser.add_argument("--messages", type=int, default=2000, help="messages per throughput run")
    parser.add_argument("--crash-messages", type=int, default=1000, help="messages in the crash run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", help="run in this directory and keep it")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kizuna-bench-inbound-"))
    work.mkdir(parents=True, exist_ok=True)
    port, sink_port = free_port(), free_port()
    secret = "bench-inbound-secret"  # noqa: S105 - a scratch instance's own secret
    env = {
        **os.environ,
        "DATA_DIR": str(work),
        "PORT": str(port),
        "SMTP_URL": f"smtp://127.0.0.1:{sink_port}",
        "MEILI_URL": f"http://127.0.0.1:{free_port()}",  # none running: search sync retries later
        "INBOUND_EMAIL_SECRET": secret,
        "BASE_URL": "http://kizuna.localhost",
    }
    env.pop("DATABASE_URL", None)
    db = work / "kizuna.sqlite3"
    python = sys.executable
    log = work / "processes.log"
    base = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([python, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        processes.append(start(python, ["mailsink", "--force", "--listen", f"127.0.0.1:{sink_port}"], env, log))
        processes.append(start(python, ["serve"], env, log))
        wait_http(f"{base}/healthz")

        # 1. Worker throughput: post with no worker, then drain.
        corpus = build_corpus(args.messages, args.seed, "a")
        posted_s = asyncio.run(post_all(base, secret, corpus.messages, args.clients))
        ingest_rate = len(corpus.messages) / posted_s
        worker = start(python, ["worker"], env, log)
        began = time.monotonic()
        drained_at = wait_drained(db, len(corpus.messages), 600)
        worker_rate = len(corpus.messages) / (drained_at - began)  # includes the worker's start-up
        steady_rate = len(corpus.messages) / processing_span(db)

        # 2. End to end: post with the worker running.
        corpus2 = build_corpus(args.messages, args.seed + 1, "b")
        began = time.monotonic()
        asyncio.run(post_all(base, secret, corpus2.messages, args.clients))
        drained_at = wait_drained(db, len(corpus.messages) + len(corpus2.messages), 600)
        e2e_rate = len(corpus2.messages) / (drained_at - began)

        print(
            f"intake {ingest_rate:.0f}/s, worker {steady_rate:.0f}/s ({worker_rate:.0f}/s with start-up), "
            f"end to end {e2e_rate:.0f}/s",
            flush=True,
        )

        # 3. Kill the worker mid-batch, start another, lose nothing.
        corpus3 = build_corpus(args.crash_messages, args.seed + 2, "c")
        before = _count(db, "SELECT count(*) FROM inbound_mail")
        # The worker would finish its queue (acknowledgements) before heeding SIGTERM: kill it
        # (idle as far as inbound mail goes), let the corpus arrive, then start one and kill it
        # while it is in the middle of its batches.
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        asyncio.run(post_all(base, secret, corpus3.messages, args.clients))
        worker = start(python, ["worker"], env, log)
        total = before + len(corpus3.messages)
        while pending(db) > len(corpus3.messages) * 0.7:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        left = pending(db)
        killed_at = time.monotonic()
        worker = start(python, ["worker"], env, log)
        recovered_at = wait_drained(db, total, 900)
        statuses = dict(
            sqlite3.connect(db).execute("SELECT status, count(*) FROM inbound_mail GROUP BY status").fetchall()
        )
        messages = _count(db, "SELECT count(*) FROM ticket_message WHERE kind = 'public' AND channel = 'email'")
        expected_messages = corpus.expected_messages + corpus2.expected_messages + corpus3.expected_messages
        expected_ignored = corpus.expected_ignored + corpus2.expected_ignored + corpus3.expected_ignored
        lost = total - statuses.get("done", 0) - statuses.get("ignored", 0)

        print(f"\nKizuna inbound email on SQLite, {args.clients} HTTP clients, mixed corpus of {args.messages}\n")
        print(f"{'figure':<52} {'msg/s':>8}")
        print(f"{'HTTP intake (202 answered, worker stopped)':<52} {ingest_rate:>8.0f}")
        print(f"{'worker: parsed, threaded, stored (first to last)':<52} {steady_rate:>8.0f}  target {TARGET:.0f}")
        print(f"{'worker: the same, counting its start-up':<52} {worker_rate:>8.0f}")
        print(f"{'end to end (posting while the worker runs)':<52} {e2e_rate:>8.0f}")
        print(f"\ncrash run: {args.crash_messages} messages, worker SIGKILLed with {left} pending;")
        print(f"  recovered in {recovered_at - killed_at:.1f} s after the restart; statuses {statuses}")
        print(f"  ticket messages from email {messages} (expected {expected_messages}),")
        print(f"  ignored {statuses.get('ignored', 0)} (expected {expected_ignored}), lost {lost}")
        ok = lost == 0 and messages == expected_messages and statuses.get("ignored", 0) == expected_ignored
        print(f"\nnothing lost: {'ok' if ok else 'FAILED'}; throughput: {'ok' if steady_rate >= TARGET else 'MISSED'}")
        return 0 if ok and steady_rate >= TARGET else 1
    finally:
        for process in [*processes, *([worker] if worker else [])]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
