# ruff: noqa: S603 - our own interpreter and CLI
"""`python -m bench`: start Kizuna (web, a local Meilisearch, the demo data indexed) on a scratch
database and measure it with wrk, beside raw Meilisearch in the same run.

wrk (Debian's `wrk`) is the load client: a Python client on a 2-core machine steals the CPU the
server needs and measures itself. Every figure is printed beside its target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "kizuna-bench-master-key"
SEARCH_QUERY = "timeline"

# wrk prints what we need as one JSON line at the end (its own summary has no p95).
REPORT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format('BENCH {"rps": %f, "p50": %f, "p95": %f, "p99": %f, "errors": %d, "requests": %d}\\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests))
end
"""


@dataclass(frozen=True)
class Figure:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    requests: int = 0  # answered within the run


def _wrk(url: str, connections: int, seconds: int, script: Path) -> Figure:
    wrk = shutil.which("wrk")
    assert wrk
    threads = min(2, connections)
    result = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    return Figure(**json.loads(line.removeprefix("BENCH ")))


def _script(directory: Path, name: str, extra: str = "") -> Path:
    path = directory / f"{name}.lua"
    path.write_text(extra + REPORT_LUA)
    return path


def _wait_indexed(meili_url: str) -> None:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    for _ in range(600):
        tasks = httpx.get(
            f"{meili_url}/tasks", params={"statuses": "enqueued,processing", "limit": 1}, headers=headers, timeout=5
        ).json()
        if not tasks["results"]:
            return
        time.sleep(0.2)
    raise SystemExit("bench: Meilisearch did not finish indexing")


SIZES = {"small": 1_000, "medium": 10_000, "large": 100_000}
CORPUS_PK_OFFSET = 1_000_000  # generated documents never collide with the demo articles


def _load_corpus(meili_url: str, size: str) -> int:
    """Add the generated corpus (bench/generate.py, fixed seed) to the live `kb` index as kb
    documents, so the running app searches demo articles plus `size` generated ones."""
    from bench.generate import generate

    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    docs = []
    for doc in generate(SIZES[size]):
        body = doc.to_meili()
        pk = CORPUS_PK_OFFSET + doc.pk
        body.update(id=f"kb-{pk}-{doc.locale}", type="kb", pk=pk)
        docs.append(body)
    for start in range(0, len(docs), 5_000):
        response = httpx.post(
            f"{meili_url}/indexes/kb/documents",
            headers=headers,
            content=json.dumps(docs[start : start + 5_000]),
            timeout=60,
        )
        response.raise_for_status()
    _wait_indexed(meili_url)
    return len(docs)


def _propagation(base: str, article_id: int, title: str, rounds: int = 10, warm_up: int = 3) -> list[float]:
    """Seconds from an API edit making an article internal until anonymous search no longer
    finds it (then it is made public again and found again before the next round).

    The first `warm_up` rounds are not kept: a freshly started Meilisearch spends seconds inside
    its first few indexing tasks, however small (its batch trace puts the time in "indexing",
    outside every traced sub-step; reproduced with Meilisearch alone), and the running app
    measures a Meilisearch that has been up for a while."""
    from server.seed import DEMO_PASSWORD

    token = httpx.post(
        f"{base}/api/v1/auth/token", json={"email": "agent@lumenfold.example", "password": DEMO_PASSWORD}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}

    def found() -> bool:
        hits = httpx.get(f"{base}/api/v1/search", params={"q": title, "types": "kb", "limit": 50}).json()
        return any(hit["id"] == article_id for hit in hits["hits"])

    def set_visibility(visibility: str) -> float:
        article = httpx.get(f"{base}/api/v1/kb/articles/{article_id}", params={"locale": "en"}, headers=auth).json()
        started = time.monotonic()
        httpx.patch(
            f"{base}/api/v1/kb/articles/{article_id}",
            json={"version": article["version"], "locale": "en", "visibility": visibility},
            headers=auth,
        ).raise_for_status()
        return started

    seconds = []
    for _ in range(warm_up + rounds):
        started = set_visibility("internal")
        while found() and time.monotonic() - started < 30:
            time.sleep(0.02)
        seconds.append(time.monotonic() - started)
        started = set_visibility("public")
        while not found() and time.monotonic() - started < 30:
            time.sleep(0.02)
    return seconds[warm_up:]


def _app_body(query: str, limit: int = 10) -> dict[str, object]:
    """The federated multi-search the app sends Meilisearch for an anonymous visitor (every type
    an anonymous visitor may search: help articles, community threads and replies), built by the
    app's own code, so raw Meilisearch answers exactly the same query."""
    from server import features  # noqa: F401 - registers every search type
    from server.policy import ANONYMOUS
    from server.search import registry
    from server.search.query import multi_search_body

    names = registry.searchable_names(ANONYMOUS)
    body = multi_search_body(ANONYMOUS, query, names, None, {}, limit, 0, False)
    assert body is not None
    return body


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument(
        "--corpus",
        choices=["demo", *SIZES],
        default="demo",
        help="search over the demo help center only, or plus 1,000 / 10,000 / 100,000 generated documents",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk not found; install Debian's `wrk` (apt-get install wrk)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from server.devtools import meili

    binary = meili.find_binary() or meili.fetch()
    if binary is None:
        print("bench: no Meilisearch binary", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kizuna-bench-"))
    port, meili_port = free_port(), free_port()
    meili_url = f"http://127.0.0.1:{meili_port}"
    env = {
        **os.environ,
        "DATA_DIR": str(work),
        "PORT": str(port),
        "SMTP_URL": "smtp://127.0.0.1:9",
        "MEILI_URL": meili_url,
        "MEILI_MASTER_KEY": MASTER_KEY,
    }
    env.pop("DATABASE_URL", None)
    python = sys.executable
    processes = [
        subprocess.Popen(
            meili.command(binary, f"127.0.0.1:{meili_port}", work / "meili", MASTER_KEY),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        wait_http(f"{meili_url}/health")
        for command in (["migrate"], ["seed"], ["worker", "--once"]):
            subprocess.run([python, "-m", "server", *command], env=env, cwd=ROOT, check=True, capture_output=True)
        _wait_indexed(meili_url)
        processes += [
            subprocess.Popen(
                [python, "-m", "server", command],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for command in ("serve", "worker")  # the worker carries edits to Meilisearch
        ]
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        article = httpx.get(f"{base}/api/v1/search", params={"q": SEARCH_QUERY, "types": "kb"}).json()["hits"][0]
        corpus = 108 + (_load_corpus(meili_url, args.corpus) if args.corpus != "demo" else 0)
        keys = httpx.get(f"{meili_url}/keys", headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()["results"]
        search_key = next(k["key"] for k in keys if k["actions"] == ["search"])
        raw_body = json.dumps(_app_body(SEARCH_QUERY))
        scripts = {
            "get": _script(work, "get"),
            "raw": _script(
                work,
                "raw",
                f"wrk.method = 'POST'\nwrk.body = {json.dumps(raw_body)}\n"
                f"wrk.headers['Content-Type'] = 'application/json'\n"
                f"wrk.headers['Authorization'] = 'Bearer {search_key}'\n"
                "wrk.headers['Accept-Encoding'] = 'identity'\n",
            ),
        }
        d = args.duration
        measure = {
            "raw Meilisearch multi-search": (f"{meili_url}/multi-search", "raw"),
            "GET /api/v1/search": (f"{base}/api/v1/search?q={SEARCH_QUERY}", "get"),
            "GET /search/suggest (htmx)": (f"{base}/search/suggest?q={SEARCH_QUERY}", "get"),
            "GET article page": (f"{base}{article['url']}", "get"),
            "GET / (home)": (f"{base}/", "get"),
        }
        one = {name: _wrk(url, 1, d, scripts[kind]) for name, (url, kind) in measure.items()}
        many = {name: _wrk(url, 16, d, scripts[kind]) for name, (url, kind) in measure.items()}
        raw1, raw16 = one["raw Meilisearch multi-search"], many["raw Meilisearch multi-search"]
        propagation = _propagation(base, article["id"], article["title"])
        print(f"Kizuna on SQLite, 1 web process, {corpus:,} kb documents indexed, wrk {d}s per figure\n")
        print(f"{'scenario':<30} {'1 client p50':>13} {'p95':>8} {'16 clients req/s':>17} {'p95':>8} {'errors':>7}")
        for name in measure:
            a, b = one[name], many[name]
            print(
                f"{name:<30} {a.p50:>10.2f} ms {a.p95:>5.2f} ms {b.rps:>17.0f} {b.p95:>5.1f} ms "
                f"{a.errors + b.errors:>7}"
            )
        checks = []
        for name in ("GET /api/v1/search", "GET /search/suggest (htmx)"):
            a, b = one[name], many[name]
            checks.append((f"{name}: 1-client p50 ≤ raw p50 + 3 ms", a.p50, raw1.p50 + 3, a.p50 <= raw1.p50 + 3))
            checks.append((f"{name}: 16-client req/s ≥ 50% of raw", b.rps, raw16.rps * 0.5, b.rps >= raw16.rps * 0.5))
            checks.append((f"{name}: 16-client p95 ≤ 2× raw p95", b.p95, raw16.p95 * 2, b.p95 <= raw16.p95 * 2))
        page1, page16 = one["GET article page"], many["GET article page"]
        checks.append(("article page: 1-client p95 ≤ 10 ms", page1.p95, 10.0, page1.p95 <= 10))
        checks.append(("article page: 16-client req/s ≥ 600", page16.rps, 600.0, page16.rps >= 600))
        worst = max(propagation)
        checks.append(("article made internal leaves anonymous search ≤ 2 s (worst of 10)", worst, 2.0, worst <= 2))
        print("\npropagation (s): " + ", ".join(f"{value:.2f}" for value in propagation))
        print(f"\n{'target':<68} {'measured':>10} {'bound':>10}  result")
        for label, value, bound, ok in checks:
            print(f"{label:<68} {value:>10.2f} {bound:>10.2f}  {'ok' if ok else 'MISSED'}")
        return 0 if all(ok for *_rest, ok in checks) else 1
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
