"""In the running app (web + worker + Meilisearch as processes), a change of visibility reaches
search on its own: an article made internal leaves anonymous results, and staff still find it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

# ruff: noqa: S310, S603 - our own http URLs and our own CLI
from server.settings import ROOT
from tests.e2e.conftest import LiveServer

PASSWORD = "propagation-test-password"


def _call(base_url: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(
        f"{base_url}{path}",
        method=method,  # noqa: S310 - our http URL
        data=json.dumps(body).encode() if body is not None else None,
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


def _hit_ids(base_url: str, query: str, token: str | None = None) -> tuple[set[int], bool]:
    body = _call(
        base_url,
        "GET",
        "/api/v1/search?" + urllib.parse.urlencode({"q": query, "types": "kb", "limit": 50}),
        token=token,
    )
    return {hit["id"] for hit in body["hits"]}, body["degraded"]


def _meilisearch_idle() -> bool:
    request = urllib.request.Request(
        f"{os.environ['MEILI_URL']}/tasks?statuses=enqueued,processing&limit=1",
        headers={"Authorization": f"Bearer {os.environ['MEILI_MASTER_KEY']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return not json.loads(response.read())["results"]


def _wait_for(predicate, seconds: float = 60) -> float:  # noqa: ANN001
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"condition not reached within {seconds} s")


def test_article_made_internal_leaves_anonymous_results(meili_server: str, live_server: LiveServer) -> None:
    env = dict(os.environ)
    subprocess.run(
        [sys.executable, "-m", "server", "seed", "--only", "help"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "createuser",
            "--email",
            "editor@example.test",
            "--password",
            PASSWORD,
            "--role",
            "agent",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    base = live_server.base_url
    _wait_for(lambda: _hit_ids(base, "guests")[0] and not _hit_ids(base, "guests")[1])
    _wait_for(_meilisearch_idle)  # measure the edit, not the tail of the demo's initial indexing
    article_id = min(_hit_ids(base, "guests")[0])
    token = _call(base, "POST", "/api/v1/auth/token", {"email": "editor@example.test", "password": PASSWORD})["token"]
    article = _call(base, "GET", f"/api/v1/kb/articles/{article_id}?locale=en", token=token)
    _call(
        base,
        "PATCH",
        f"/api/v1/kb/articles/{article_id}",
        {"version": article["version"], "locale": "en", "visibility": "internal"},
        token=token,
    )

    elapsed = _wait_for(lambda: article_id not in _hit_ids(base, "guests")[0])
    print(f"internal article left anonymous results after {elapsed:.2f} s")
    assert article_id in _hit_ids(base, "guests", token)[0]  # staff still find it
