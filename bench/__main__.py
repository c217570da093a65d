# ruff: noqa: S603 - our own interpreter and CLI
"""`python -m bench`: start Kizuna on a scratch database and measure it with wrk.

Each scenario prints its figure beside its target. wrk (Debian's `wrk`) is the load client:
a Python client on a 2-core machine steals the CPU the server needs and measures itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    target_rps: float  # floor for requests per second
    target_p99_ms: float  # ceiling for the 99th-percentile latency


SCENARIOS = [
    Scenario("home page (anonymous)", "/", target_rps=300, target_p99_ms=100),
    Scenario("sign-in form", "/login", target_rps=300, target_p99_ms=100),
    Scenario("health check", "/healthz", target_rps=150, target_p99_ms=150),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_wrk(output: str) -> tuple[float, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rps, p99_ms


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench: wrk not found; install Debian's `wrk` (apt-get install wrk)", file=sys.stderr)
        return 2
    data_dir = Path(tempfile.mkdtemp(prefix="kizuna-bench-"))
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port), "SMTP_URL": "smtp://127.0.0.1:9"}
    env.pop("DATABASE_URL", None)
    python = sys.executable
    subprocess.run([python, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([python, "-m", "server", "seed"], env=env, cwd=ROOT, check=True, capture_output=True)
    server = subprocess.Popen(
        [python, "-m", "server", "serve"],
        env=env,
        cwd=ROOT,  # noqa: S603
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"Kizuna on SQLite, 1 web process, wrk -c{args.connections} -d{args.duration}s\n")
        print(f"{'scenario':<26} {'req/s':>9} {'target':>8} {'p99 ms':>8} {'target':>8}  result")
        failed = 0
        for scenario in SCENARIOS:
            result = subprocess.run(  # noqa: S603
                [wrk, "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency", base + scenario.path],
                capture_output=True,
                text=True,
                check=True,
            )
            rps, p99 = _parse_wrk(result.stdout)
            ok = rps >= scenario.target_rps and p99 <= scenario.target_p99_ms
            failed += not ok
            print(
                f"{scenario.name:<26} {rps:>9.0f} {scenario.target_rps:>8.0f} {p99:>8.1f} "
                f"{scenario.target_p99_ms:>8.0f}  {'ok' if ok else 'MISSED'}"
            )
        return 1 if failed else 0
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
