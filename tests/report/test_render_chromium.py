"""report.html opens in a real browser: headless Debian chromium renders it, and the screenshot
shows a page with the memory plan picture in it (not a blank page or an error page)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slmc.report import write_report
from slmc.report.html import CSS
from slmc.report.style import KV_FACE, LAYER_COLOURS

WIDTH, HEIGHT = 1280, 2000


@pytest.fixture
def chromium() -> str:
    """Listed before the project fixture, so a machine without chromium skips before compiling."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium is not installed (Debian: apt-get install --no-install-recommends chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _screenshot(chromium: str, html: Path, png: Path, profile_dir: Path) -> np.ndarray:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile_dir}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}",
           html.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    with Image.open(png) as im:
        assert im.size == (WIDTH, HEIGHT)
        return np.asarray(im.convert("RGB")).astype(np.int16)


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)


def _frame(img: np.ndarray, colour: np.ndarray) -> tuple[int, int, int, int]:
    """The first picture on the page: the page draws a border of the accent colour around each
    picture, so its top edge is the first long horizontal run of that exact colour."""
    hit = np.all(img == colour, axis=2)
    rows = [y for y in range(img.shape[0]) if hit[y].sum() > 400]
    assert rows, "no framed picture found in the screenshot"
    top = rows[0]
    xs = np.flatnonzero(hit[top])
    bottom = next((y for y in rows if y > top + 50), img.shape[0])   # may be below the window
    return top, bottom, int(xs[0]), int(xs[-1])


@pytest.mark.slow
def test_report_page_renders_headless(chromium, small_project, tmp_path):
    files = write_report(small_project, tmp_path / "out")
    img = _screenshot(chromium, files.html, tmp_path / "shot.png", tmp_path / "chromium-profile")
    flat = img.reshape(-1, 3)
    non_white = np.any(flat < 245, axis=1).mean()
    assert non_white > 0.2, f"page mostly blank ({non_white:.1%} non-white)"
    assert len(np.unique(flat.astype(np.int32) @ np.array([65536, 256, 1]))) > 300

    accent = _hex(CSS.split("--accent:")[1][:7])
    top, bottom, left, right = _frame(img, accent)
    assert right - left > WIDTH // 2, "the plan picture is drawn narrower than half the page"
    plan = img[top + 3:bottom - 2, left + 3:right - 2]
    assert plan.shape[0] > 400
    assert plan.std() > 20, "the plan picture's region is uniform"
    # The picture is the plan: the KV cache's face and the layers' colours show up in it.
    for colour, least in ((KV_FACE, 2000), (LAYER_COLOURS[0], 500), (LAYER_COLOURS[1], 500)):
        near = np.all(np.abs(plan - _hex(colour)) <= 6, axis=2).sum()
        assert near >= least, f"{colour}: {near} pixels"
