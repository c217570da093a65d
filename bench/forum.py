# ruff: noqa: S603 - our own interpreter and CLI
"""`python -m bench.forum`: the community forum under load, measured with Debian's `wrk`.

Generates (fixed seed, bulk inserts through Piccolo, SQLite by default or DATABASE_URL) one
thread of 10,000 posts (500 pages of 20) and 50,000 other threads in five public categories,
starts one web process (uvicorn) on that database and measures, for the first, middle and last
page of the long thread and the latest-threads list: one client (p95 ≤ 15 ms) and 16 clients
(≥ 500 requests/s). `--record` writes the figures into docs/BENCHMARKS.md (its own section).

The 50,000 list threads have no posts of their own (only their list rows are read); the long
thread's posts are real rendered Markdown with reactions and replies-to.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.__main__ import Figure, _script, _wrk
from bench.common import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
LONG_THREAD_POSTS = 10_000
LIST_THREADS = 50_000
BATCH = 1_000
SEED = 4
P95_BOUND_MS = 15.0
RPS_BOUND = 500.0
SECTION = "## Community forum"

WORDS = [
    *("board", "timeline", "sync", "calendar", "export", "invoice", "client", "share", "project", "task"),
    *("column", "filter", "report", "guest", "link", "workspace", "mobile", "offline", "desktop", "import"),
    *("csv", "webhook", "token", "retry", "schedule", "reminder", "label", "archive"),
]
SAMPLES = [
    "Has anyone got **{a}** working with {b}? I tried the settings page twice.\n\n- step one\n- step two",
    "> {a} is slow on Windows\n\nSame here. Turning off {b} helped a bit; see the [help article](/help).",
    "Try `{a} --refresh` and then re-open the {b}. It fixed it for me after the 4.13 update.",
    "同期が遅い場合は、{a} の設定を確認してください。{b} を再起動すると直ることがあります。",
]


async def _generate(seed: int) -> tuple[int, str]:
    """Returns (long thread id, its slug)."""
    from server.accounts.tables import User
    from server.forum import services
    from server.forum.tables import ForumPost, ForumThread
    from server.markdown import render
    from server.policy import Actor

    rng = random.Random(seed)
    admin = Actor(roles=frozenset({"admin"}))
    moment = datetime.now(UTC)
    users = [
        User(
            email=f"member{n}@bench.example",
            password_hash="!",  # noqa: S106 - not a hash: no login
            display_name=f"Member {n}",
            username=f"member{n}",
            created_at=moment,
        )
        for n in range(200)
    ]
    await User.insert(*users)
    user_ids = [row["id"] for row in await User.select(User.id).order_by(User.id)]
    categories = []
    for n, name in enumerate(("Getting started", "Sync", "Integrations", "Ideas", "Show and tell")):
        data = services.CategoryInput(
            slug=f"bench-{n}", name_en=name, name_ja=name, position=n, qa=n < 3, colour="#2f6fdf"
        )
        categories.append(await services.save_category(admin, None, data))

    bodies = []
    for template in SAMPLES * 3:
        source = template.format(a=rng.choice(WORDS), b=rng.choice(WORDS))
        bodies.append((source, render(source)))

    # The long thread: 10,000 posts, started a year ago, one post every ~50 minutes.
    start = moment - timedelta(days=365)
    title = "The big sync megathread: post your setup"
    long_thread = ForumThread(
        category=categories[1],
        title=title,
        slug="the-big-sync-megathread-post-your-setup",
        author=user_ids[0],
        tags=["sync", "megathread"],
        created_at=start,
        last_posted_at=start + timedelta(minutes=50 * (LONG_THREAD_POSTS - 1)),
        last_poster=user_ids[1],
        post_count=LONG_THREAD_POSTS,
        reply_count=LONG_THREAD_POSTS - 1,
        score=LONG_THREAD_POSTS,
    )
    thread_id = (await ForumThread.insert(long_thread).returning(ForumThread.id))[0]["id"]
    for first in range(1, LONG_THREAD_POSTS + 1, BATCH):
        rows = []
        for number in range(first, min(first + BATCH, LONG_THREAD_POSTS + 1)):
            source, html = rng.choice(bodies)
            reactions = {"like": rng.randint(0, 9)} if rng.random() < 0.4 else {}
            reply_to = rng.randint(1, number - 1) if number > 2 and rng.random() < 0.2 else None
            rows.append(
                ForumPost(
                    thread=thread_id,
                    number=number,
                    author=rng.choice(user_ids),
                    body_md=source,
                    body_html=html,
                    locale="ja" if "同期" in source else "en",
                    reply_to_number=reply_to,
                    reactions=reactions,
                    created_at=start + timedelta(minutes=50 * (number - 1)),
                )
            )
        await ForumPost.insert(*rows)
    first_post = (
        await ForumPost.select(ForumPost.id).where((ForumPost.thread == thread_id) & (ForumPost.number == 1)).first()
    )
    await ForumThread.update({ForumThread.first_post_id: first_post["id"]}).where(ForumThread.id == thread_id)

    # 50,000 list threads over the last two years.
    for first in range(0, LIST_THREADS, BATCH):
        rows = []
        for n in range(first, min(first + BATCH, LIST_THREADS)):
            created = moment - timedelta(minutes=rng.randint(60, 2 * 365 * 24 * 60))
            replies = rng.randint(0, 40)
            words = " ".join(rng.choice(WORDS) for _ in range(5))
            rows.append(
                ForumThread(
                    category=rng.choice(categories),
                    title=f"Question {n}: {words}",
                    slug=f"question-{n}-" + words.replace(" ", "-"),
                    author=rng.choice(user_ids),
                    tags=rng.sample(WORDS, 2),
                    created_at=created,
                    last_posted_at=created + timedelta(minutes=rng.randint(0, 5000) * (replies > 0)),
                    last_poster=rng.choice(user_ids),
                    post_count=replies + 1,
                    reply_count=replies,
                    score=replies + rng.randint(0, 20),
                    solved=replies > 0 and rng.random() < 0.3,
                )
            )
        await ForumThread.insert(*rows)
    return thread_id, long_thread.slug


def _generate_sync(seed: int) -> tuple[int, str]:
    from server.db import engine, is_postgres

    async def run() -> tuple[int, str]:
        db = engine()
        if is_postgres():
            await db.start_connection_pool(min_size=1, max_size=4)  # type: ignore[attr-defined]
        try:
            return await _generate(seed)
        finally:
            if is_postgres():
                await db.close_connection_pool()  # type: ignore[attr-defined]

    return asyncio.run(run())


def _record(rows: list[tuple[str, Figure, Figure]], database: str, duration: int, generated: float) -> None:
    """Write this run's figures into docs/BENCHMARKS.md, replacing an earlier forum section."""
    path = ROOT / "docs" / "BENCHMARKS.md"
    lines = [
        SECTION,
        "",
        "`python -m bench.forum [--duration S] [--record]` generates, with a fixed seed, one thread of",
        "10,000 posts (rendered Markdown, reactions, replies-to; 500 pages of 20) and 50,000 other threads",
        "in five public categories (list rows only), starts one web process (uvicorn) on that database",
        "and measures anonymous readers with Debian's `wrk`: one client, then 16. Pages read one page of",
        "posts as a range of post numbers on the `(thread, number)` index (keyset), so page 500 costs",
        "what page 1 costs; the latest list is one indexed `ORDER BY last_posted_at DESC LIMIT 31`.",
        "A page of posts is the same HTML for every reader of one audience group and locale (per-user",
        "controls are revealed by static/js/forum.js), so it is rendered once and shared for 2 s",
        "(`server/forum/cache.py`, cleared by every forum write): a cache miss (a new post, an edit, an",
        "expired entry) costs ~25 ms of rendering on this machine, a hit ~1 ms. The `p95` column is",
        "sensitive to other work on this shared 2-core machine: the load average is printed below.",
        "",
        f"### Latest run ({datetime.now(UTC):%Y-%m-%d}, {database}, wrk {duration} s per figure, "
        f"data generated in {generated:.0f} s, load average {os.getloadavg()[0]:.1f} at the end)",
        "",
        "| page | 1 client p50 | 1 client p95 | 16 clients req/s | 16 clients p95 | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, one, many in rows:
        ok = one.p95 <= P95_BOUND_MS and many.rps >= RPS_BOUND
        lines.append(
            f"| {name} | {one.p50:.2f} ms | {one.p95:.2f} ms | {many.rps:.0f} | {many.p95:.1f} ms | "
            f"{'ok' if ok else 'MISSED'} (p95 ≤ {P95_BOUND_MS:.0f} ms, ≥ {RPS_BOUND:.0f} req/s) |"
        )
    lines.append("")
    section = "\n".join(lines) + "\n"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forum")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--record", action="store_true", help="write the figures into docs/BENCHMARKS.md")
    parser.add_argument("--keep", help="generate into this directory and keep it (profiling)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk not found; install Debian's `wrk` (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kizuna-bench-forum-"))
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Settings are read once, at first use: the environment must be ready before any server import.
    os.environ.update({"DATA_DIR": str(work), "PORT": str(port), "SMTP_URL": "smtp://127.0.0.1:9"})
    os.environ.setdefault("MEILI_URL", f"http://127.0.0.1:{free_port()}")  # no search needed: none running
    database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    env = dict(os.environ)
    python = sys.executable
    server = None
    try:
        subprocess.run([python, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        sys.path.insert(0, str(ROOT))
        started = time.monotonic()
        thread_id, slug = _generate_sync(args.seed)
        generated = time.monotonic() - started
        print(f"generated 10,000 posts and 50,000 threads in {generated:.1f} s")
        server = subprocess.Popen(
            [python, "-m", "server", "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        thread = f"{base}/community/t/{thread_id}-{slug}"
        measure = {
            "thread, first page": thread,
            "thread, middle page (250)": f"{thread}?page=250",
            "thread, last page (500)": f"{thread}?page=500",
            "latest threads list": f"{base}/community",
        }
        script = _script(work, "get")
        for url in measure.values():  # warm up: caches, connections, the JIT-less first render
            _wrk(url, 1, 1, script)
        d = args.duration
        one = {name: _wrk(url, 1, d, script) for name, url in measure.items()}
        many = {name: _wrk(url, 16, d, script) for name, url in measure.items()}
        print(f"\nKizuna forum on {database}, 1 web process, wrk {d}s per figure\n")
        print(f"{'page':<28} {'1 client p50':>13} {'p95':>9} {'16 clients req/s':>17} {'p95':>9} {'errors':>7}")
        ok = True
        for name in measure:
            a, b = one[name], many[name]
            hit = a.p95 <= P95_BOUND_MS and b.rps >= RPS_BOUND and not (a.errors or b.errors)
            ok = ok and hit
            print(
                f"{name:<28} {a.p50:>10.2f} ms {a.p95:>6.2f} ms {b.rps:>17.0f} {b.p95:>6.1f} ms "
                f"{a.errors + b.errors:>7}  {'ok' if hit else 'MISSED'}"
            )
        if args.record:
            _record([(name, one[name], many[name]) for name in measure], database, d, generated)
            print("\nrecorded in docs/BENCHMARKS.md")
        return 0 if ok else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
