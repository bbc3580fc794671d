"""sweep.html opens in headless chromium and shows the Pareto picture (a framed, non-uniform image with the
colours of the groups), drawn here from made-up rows so no compile is needed."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from slmc.report.html import CSS
from slmc.report.style import LAYER_COLOURS
from slmc.sweep.pareto import write_pareto

WIDTH, HEIGHT = 1280, 1400


def _rows() -> list[dict]:
    rng = np.random.default_rng(0)
    return [dict(status="ok", model="m.bin", target=t, numerics=q, est_ms_per_token=float(ms),
                 est_uj_per_token=float(ms * 31.6), sram_bytes=int(ram))
            for t in ("cortex-m33", "rv32imac") for q in ("q8", "int8")
            for ms, ram in zip(rng.uniform(2, 40, 6), rng.uniform(2e5, 7e5, 6))] + [
        dict(status="--kv-cache chooses fp32 or fp16 storage", model="m.bin", target="rv32imac", numerics="int8")]


@pytest.mark.slow
def test_sweep_page_renders_headless(tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium is not installed (Debian: apt-get install --no-install-recommends chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    files = write_pareto(_rows())
    html = tmp_path / "sweep.html"
    html.write_bytes(files["sweep.html"])
    png = tmp_path / "shot.png"
    r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
                        f"--window-size={WIDTH},{HEIGHT}", html.resolve().as_uri()],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    accent = np.array([int(CSS.split("--accent:")[1][i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    rows = [y for y in range(img.shape[0]) if np.all(img[y] == accent, axis=1).sum() > 400]
    assert rows, "no framed picture on the page"
    pic = img[rows[0] + 3:]
    assert pic.std() > 20
    for colour in LAYER_COLOURS[:2]:  # the two numerics groups' colours
        c = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
        assert np.all(np.abs(pic - c) <= 6, axis=2).sum() >= 100, colour
    assert "Failed points (1)" in files["sweep.html"].decode()
