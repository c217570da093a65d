"""axe-core, the accessibility engine, from its npm package: fetched once with `npm pack` into
var/axe/ (beside the pinned Meilisearch) and checked against a pinned sha256, then injected into
pages by the browser tests."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from server.settings import ROOT

NPM_PACKAGE = "axe-core@4.14.1"
SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"


def axe_path() -> Path:
    return ROOT / "var" / "axe" / "axe.min.js"


def fetch_axe() -> Path | None:
    """The checked axe.min.js, fetching it if needed; None when npm cannot provide it."""
    target = axe_path()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "pack", NPM_PACKAGE, "--silent", "--pack-destination", tmp],
            capture_output=True,
            timeout=300,
            check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            return None
        with tarfile.open(tarballs[0]) as archive:
            source = archive.extractfile("package/axe.min.js")
            data = source.read() if source else b""
    if hashlib.sha256(data).hexdigest() != SHA256:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
