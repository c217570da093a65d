# ruff: noqa: S603 - our own interpreter and the Meilisearch binary
"""`python -m bench.search --size {small,medium,large}`: the large-corpus search benchmark.

Generates 1,000 / 10,000 / 100,000 documents (bench/generate.py, fixed seed), starts its own
Meilisearch on a free port in a temporary directory and measures, in one run:

1. raw indexing: a fresh index with our settings, documents added with meilisearch-python-sdk in
   batches of 5,000, timed until every task has succeeded;
2. `server.search.sync.reindex("benchdoc")` on the same documents (builds, adds to a fresh index,
   swaps it in), against the Help Center issue's bound of 1.3× raw;
3. query latency in-process, one client: `server.search.query.search()` beside a bare httpx POST
   of the same multi-search body with the same search-only key, interleaved query by query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "kizuna-bench-master-key"
SIZES = {"small": 1_000, "medium": 10_000, "large": 100_000}
RAW_BATCH = 5_000
RAW_INDEX = "bench_raw"
WARM_UP = 1_000
REINDEX_BOUND = 1.3


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def _raw_index(
    meili_url: str, payload: list[dict[str, object]], doc_type: object, batch: int, uid: str = RAW_INDEX
) -> float:
    from meilisearch_python_sdk import AsyncClient

    from server.search.engine import index_settings

    async with AsyncClient(meili_url, MASTER_KEY, timeout=120) as raw:
        started = time.monotonic()
        await raw.create_index(
            uid, primary_key="id", settings=index_settings(doc_type, {}, []), wait=True, timeout_in_ms=None
        )
        index = raw.index(uid)
        tasks = [
            await index.add_documents(payload[i : i + batch], primary_key="id") for i in range(0, len(payload), batch)
        ]
        for task in tasks:
            await raw.wait_for_task(task.task_uid, timeout_in_ms=None, raise_for_status=True)
        elapsed = time.monotonic() - started
        stats = await index.get_stats()
        assert stats.number_of_documents == len(payload), stats
        # Free Meilisearch's memory and disk before our own run.
        await raw.wait_for_task((await index.delete()).task_uid, timeout_in_ms=None)
    return elapsed


def _raw_body(query: str, audience_filter: str | None) -> dict[str, object]:
    """The multi-search `server.search.query` sends for one type, written out by hand."""
    from server.search.query import JAPANESE, POST, PRE

    one: dict[str, object] = {
        "indexUid": "benchdoc",
        "q": query,
        "filter": [audience_filter] if audience_filter else [],
        "attributesToRetrieve": ["type", "pk", "locale", "url", "title_en", "title_ja"],
        "attributesToCrop": ["text_en", "text_ja"],
        "cropLength": 28,
        "attributesToHighlight": ["title_en", "title_ja", "text_en", "text_ja"],
        "highlightPreTag": PRE,
        "highlightPostTag": POST,
        "cropMarker": "…",
    }
    if JAPANESE.search(query):
        one["locales"] = ["jpn"]
    return {"federation": {"limit": 10, "offset": 0}, "queries": [one]}


async def _latency(meili_url: str, queries: list[str]) -> dict[str, list[float]]:
    from server import policy
    from server.search.engine import search_client
    from server.search.query import search

    key = (await search_client()).http_client.headers["Authorization"]
    audience_filter = policy.meili_audience_filter(policy.ANONYMOUS)
    timings: dict[str, list[float]] = {"ours": [], "raw": []}
    hits: dict[str, int] = {"ours": 0, "raw": 0}
    headers = {"Authorization": key, "Accept-Encoding": "identity", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=meili_url, headers=headers, timeout=10) as raw:

        async def ours_once(q: str) -> int:
            return len((await search(policy.ANONYMOUS, q, types=["benchdoc"])).hits)

        async def raw_once(q: str) -> int:
            response = await raw.post("/multi-search", content=json.dumps(_raw_body(q, audience_filter)))
            response.raise_for_status()
            return len(response.json()["hits"])

        for q in queries[:20]:  # warm up connections and caches, not measured
            await ours_once(q)
            await raw_once(q)
        for n, q in enumerate(queries):
            # Alternate which goes first, so neither always benefits from the other's warm cache.
            order = (("ours", ours_once), ("raw", raw_once)) if n % 2 else (("raw", raw_once), ("ours", ours_once))
            for name, run in order:
                started = time.perf_counter()
                hits[name] += await run(q)
                timings[name].append((time.perf_counter() - started) * 1000)
    if hits["ours"] != hits["raw"]:
        print(f"bench: hit counts differ (ours {hits['ours']}, raw {hits['raw']})", file=sys.stderr)
    return timings


async def _run(meili_url: str, docs: list, args: argparse.Namespace) -> dict[str, object]:
    from bench import benchdoc
    from server.search import sync
    from server.search.engine import close_client

    doc_type = benchdoc.register(docs, args.pk_batch)
    payload = [doc.to_meili() for doc in docs]
    results: dict[str, object] = {}
    try:
        # A fresh Meilisearch is slower on its first index: pay that outside both measurements.
        await _raw_index(meili_url, payload[:WARM_UP], doc_type, WARM_UP, "bench_warm_up")
        print(f"raw indexing {len(payload)} documents…", file=sys.stderr, flush=True)
        results["raw"] = await _raw_index(meili_url, payload, doc_type, args.raw_batch)
        del payload
        print("reindex…", file=sys.stderr, flush=True)
        started = time.monotonic()
        count = await sync.reindex(doc_type.name)
        results["ours"] = time.monotonic() - started
        assert count == len(docs), count
        if args.queries:
            from bench.generate import queries

            print(f"{args.queries} queries, each through search() and raw…", file=sys.stderr, flush=True)
            results["latency"] = await _latency(meili_url, queries(args.queries))
    finally:
        await close_client()
    return results


def _report(args: argparse.Namespace, count: int, generated: float, results: dict[str, object]) -> None:
    raw, ours = float(results["raw"]), float(results["ours"])  # type: ignore[arg-type]
    print(f"\nbenchdoc corpus: {args.size}, {count} documents (half en, half ja), generated in {generated:.1f} s\n")
    print(f"{'indexing':<52} {'seconds':>9} {'docs/s':>9}")
    print(f"{f'raw Meilisearch (SDK, batches of {args.raw_batch})':<52} {raw:>9.2f} {count / raw:>9.0f}")
    print(f"{f'sync.reindex (batches of {args.pk_batch * 2} docs, swap)':<52} {ours:>9.2f} {count / ours:>9.0f}")
    ratio = ours / raw
    verdict = "ok" if ratio <= REINDEX_BOUND else "MISSED"
    print(f"{'reindex / raw':<52} {ratio:>9.2f}   bound ≤ {REINDEX_BOUND}  {verdict}")
    latency = results.get("latency")
    if isinstance(latency, dict):
        print(f"\n{'query latency, 1 client, anonymous':<40} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
        labels = {"raw": "raw multi-search (bare httpx)", "ours": "server.search.query.search()"}
        for name in ("raw", "ours"):
            values = latency[name]
            print(
                f"{labels[name]:<40} {len(values):>5} {_percentile(values, 50):>8.2f} "
                f"{_percentile(values, 95):>8.2f} {statistics.fmean(values):>8.2f}"
            )
        extra = _percentile(latency["ours"], 50) - _percentile(latency["raw"], 50)
        print(f"{'search() p50 − raw p50':<40} {'':>5} {extra:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search")
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=300, help="queries for the latency comparison (0: skip)")
    parser.add_argument("--raw-batch", type=int, default=RAW_BATCH, help="documents per raw addition")
    parser.add_argument("--pk-batch", type=int, default=500, help="objects per reindex batch (2 documents each)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="kizuna-bench-search-"))
    meili_port = free_port()
    meili_url = f"http://127.0.0.1:{meili_port}"
    # Settings are read once, at first use: the environment must be ready before any server import.
    os.environ.update(
        {
            "DATA_DIR": str(work),
            "MEILI_URL": meili_url,
            "MEILI_MASTER_KEY": MASTER_KEY,
            "SMTP_URL": "smtp://127.0.0.1:9",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    from server.devtools import meili

    binary = meili.find_binary() or meili.fetch()
    if binary is None:
        print("bench: no Meilisearch binary", file=sys.stderr)
        return 2
    process = subprocess.Popen(
        meili.command(binary, f"127.0.0.1:{meili_port}", work / "meili", MASTER_KEY),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The search settings (synonyms, stop words) live in the database: an empty scratch one.
        subprocess.run([sys.executable, "-m", "server", "migrate"], cwd=ROOT, check=True, capture_output=True)
        wait_http(f"{meili_url}/health")
        from bench.generate import generate

        started = time.monotonic()
        docs = generate(SIZES[args.size], args.seed)
        generated = time.monotonic() - started
        results = asyncio.run(_run(meili_url, docs, args))
        _report(args, len(docs), generated, results)
        return 0 if float(results["ours"]) <= REINDEX_BOUND * float(results["raw"]) else 1  # type: ignore[arg-type]
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
