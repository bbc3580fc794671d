"""`slmc report DIR`: the files it writes, where the per-op costs come from, and its errors."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from slmc.report import write_report
from slmc.report.data import load_profile, load_report
from slmc.report.ops_plot import op_costs, ops_figure

SLMC = [sys.executable, "-m", "slmc.cli"]


def _profile(project: Path, per_node: bool) -> dict:
    """What `slmc run --json` is to print: a total and a per-op breakdown (names as in report.json)."""
    rep = json.loads((project / "report.json").read_text())
    rows = [dict(name=o["name"], op=o["op"], instructions=5 * o["macs"] + 100) for o in rep["ops"]]
    if not per_node:
        totals: dict[str, int] = {}
        for r in rows:
            totals[r["op"]] = totals.get(r["op"], 0) + r["instructions"]
        rows = [dict(op=k, instructions=v) for k, v in totals.items()]
    return dict(ids=[1], target="cortex-m33", instructions_per_token=sum(r["instructions"] for r in rows) + 777,
                ops=rows)


@pytest.fixture
def project(small_project, tmp_path) -> Path:
    """A private copy, since tests write into it."""
    return Path(shutil.copytree(small_project, tmp_path / "p"))


def test_writes_three_files_into_the_project(project):
    files = write_report(project)
    assert files.html.parent == project and files.profile is None
    for png in (files.memory_plan, files.ops):
        assert png.stat().st_size > 20_000
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] >= 1500 and im.size[1] >= 500
    html = files.html.read_text()
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    # Self-contained: both pictures inlined, nothing fetched from anywhere.
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2 and base64.b64decode(images[0]) == files.memory_plan.read_bytes()
    assert not re.search(r'(src|href)="(https?:)?//', html) and "@import" not in html and "<script" not in html
    rep = load_report(project)
    for needle in (f"{rep.arena_bytes:,}", f"{rep.kv_cache_bytes:,}", f"{rep.weights_bytes:,}", f"{rep.macs_per_token:,}",
                   f"{rep.lower_bound_bytes:,}", rep.planner):
        assert needle in html, needle
    for b in rep.buffers:
        assert f"<td>{b.name}</td>" in html


def test_out_folder_and_cli(project, tmp_path):
    out = tmp_path / "elsewhere"
    r = subprocess.run([*SLMC, "report", str(project), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"memory_plan.png", "ops.png", "report.html", ".slmc-output.json"}
    assert "MACs" in r.stderr


def test_costs_are_macs_without_a_profile(project):
    rep = load_report(project)
    costs = op_costs(rep, load_profile(project, rep, None))
    assert costs.metric == "MACs" and costs.total >= rep.macs_per_token
    fig = ops_figure(rep, None)
    assert any("multiply-accumulates" in t.get_text() for t in fig.texts)


@pytest.mark.parametrize("per_node", [True, False])
def test_profile_beside_the_report_gives_instructions(project, per_node):
    (project / "profile.json").write_text(json.dumps(_profile(project, per_node)))
    rep = load_report(project)
    prof = load_profile(project, rep, None)
    assert prof is not None and prof.source == "profile.json" and prof.target == "cortex-m33"
    costs = op_costs(rep, prof)
    assert costs.metric == "instructions" and costs.per_node == per_node
    assert costs.total + 777 == prof.instructions_per_token
    fig = ops_figure(rep, prof)
    assert any("measured instructions" in t.get_text() for t in fig.texts)
    assert len(fig.axes) == (2 if per_node else 1)
    files = write_report(project)
    assert files.profile == "profile.json"
    assert f"{prof.instructions_per_token:,.0f}" in files.html.read_text()


def test_explicit_profile_option(project, tmp_path):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(_profile(project, True)))
    r = subprocess.run([*SLMC, "report", str(project), "--profile", str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "instructions from run.json" in r.stderr.replace("\n", " ")


@pytest.mark.parametrize("case", ["no_report", "no_profile", "bad_profile"])
def test_errors_are_one_clean_line(project, tmp_path, case):
    args = {"no_report": [str(tmp_path)],
            "no_profile": [str(project), "--profile", str(tmp_path / "missing.json")],
            "bad_profile": [str(project), "--profile", str(project / "model.h")]}[case]
    r = subprocess.run([*SLMC, "report", *args], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, r.stderr


def test_memory_table_uses_the_fit_compile_checked(project):
    """report.json's `memory` block (what `slmc compile` checked against the target) is the table's source."""
    raw = json.loads((project / "report.json").read_text())
    raw["memory"] = {"weights_in": "flash",
                     "sram": {"capacity": 12_345, "used": 30_000, "margin": -17_655,
                              "needs": {"activations and scratch": 20_000, "KV cache": 10_000}},
                     "flash": {"capacity": 4_194_304, "used": 50_000, "margin": 4_144_304, "needs": {"weights": 50_000}}}
    (project / "report.json").write_text(json.dumps(raw))
    html = write_report(project).html.read_text()
    assert "12,345" in html and "-17,655" in html and "SRAM is 17,655 B over" in html
    assert 'class="meter over"' in html and "4,194,304" in html
