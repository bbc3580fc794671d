"""`slmc report DIR`: pictures of a compiled model's memory plan and operator costs, and one HTML
page with them and the report's numbers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReportFiles:
    memory_plan: Path
    ops: Path
    html: Path
    profile: str | None     # where instruction counts came from, if anywhere
    levels: Path | None = None  # levels.png: the plan per memory level (compiled with --mem or -m prefill)


def write_report(project: Path, out: Path | None = None, profile: Path | None = None) -> ReportFiles:
    """Read PROJECT/report.json (and the profile: `profile`, else PROJECT/profile.json if present)
    and write memory_plan.png, ops.png and report.html into `out` (default: PROJECT)."""
    # Imported here so `slmc --help` does not pay for matplotlib.
    from slmc.output import add_files
    from slmc.report import memory_plot, ops_plot
    from slmc.report.data import load_profile, load_report, target_capacity
    from slmc.report.html import render_html
    from slmc.report.levels_plot import levels_figure, levels_section

    project = Path(project)
    rep = load_report(project)
    prof = load_profile(project, rep, profile)
    out = Path(out) if out is not None else project
    # written through output.py: into PROJECT (an slmc folder) beside the project, or into a new or empty
    # folder, or one holding an earlier report; never over a file slmc did not write
    files = ReportFiles(out / "memory_plan.png", out / "ops.png", out / "report.html", prof.source if prof else None)
    mp = memory_plot.memory_plan_figure(rep, target_capacity(rep.target).sram_bytes)
    pngs = {files.memory_plan.name: _png(mp.fig), files.ops.name: _png(ops_plot.ops_figure(rep, prof))}
    raw = json.loads((project / "report.json").read_text())
    if "levels" in raw:  # the per-level picture and the per-operator tile table (--mem, -m prefill)
        pngs["levels.png"] = _png(levels_figure(raw))
        files = ReportFiles(files.memory_plan, files.ops, files.html, files.profile, out / "levels.png")
    add_files(out, pngs, "--out")  # the page inlines the pictures it reads back from disk
    page = render_html(rep, prof, files.memory_plan, files.ops, mp.numbers)
    if files.levels is not None:
        page = page.replace("</body>", levels_section(raw, files.levels) + "</body>")
    add_files(out, {files.html.name: page.encode("utf-8")}, "--out")
    return files


def _png(fig) -> bytes:
    from slmc.report.style import save_png

    buf = io.BytesIO()
    save_png(fig, buf)
    return buf.getvalue()
