"""The failure artifacts of browser tests: an inner pytest run (in its own process, with the e2e
fixtures as a plugin) has one failing and one passing browser test; only the failing one leaves
a folder, with its step screenshots, a screenshot of every page still open and their URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import ROOT

pytestmark = pytest.mark.browser

INNER = """
import pytest

from tests.e2e.conftest import step


@pytest.mark.browser
def test_fails(browser_page):
    page = browser_page.page
    page.set_content("<h1>First step</h1>")
    step(page, "first step")
    other = page.context.new_page()
    other.set_content("<h1>A second page</h1>")
    assert False, "failing on purpose"


@pytest.mark.browser
def test_passes(browser_page):
    browser_page.page.set_content("<p>Fine</p>")
    step(browser_page.page, "fine")
"""
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_failed_browser_test_keeps_its_screenshots_and_a_passing_one_nothing(chromium: Path, tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    results = tmp_path / "results"
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.e2e.conftest",
            "-p",
            "no:randomly",
            "-n",
            "0",
            "-q",
            str(tmp_path / "test_inner.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "TEST_RESULTS_DIR": str(results)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    folder = results / "test_inner-test_fails"
    assert [p.name for p in results.iterdir()] == [folder.name]
    assert f"screenshots and logs in {folder}" in run.stdout
    assert sorted(p.name for p in folder.iterdir()) == [
        "open-page-b0c0p0.png",
        "open-page-b0c0p1.png",
        "pages.txt",
        "step-01-first-step.png",
    ]
    assert all(p.read_bytes().startswith(PNG) for p in folder.glob("*.png"))
    assert (folder / "pages.txt").read_text().count("about:blank") == 2
