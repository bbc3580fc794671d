"""`slmc report DIR`: pictures of a compiled model's memory plan and operator costs, and one HTML
page with them and the report's numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slmc.errors import SlmcError


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
    from slmc.report import memory_plot, ops_plot
    from slmc.report.data import load_profile, load_report, target_capacity
    from slmc.report.html import render_html

    project = Path(project)
    rep = load_report(project)
    prof = load_profile(project, rep, profile)
    out = Path(out) if out is not None else project
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SlmcError(f"cannot create '{out}' ({e.strerror})", "choose another --out") from None
    files = ReportFiles(out / "memory_plan.png", out / "ops.png", out / "report.html", prof.source if prof else None)
    mp = memory_plot.memory_plan_figure(rep, target_capacity(rep.target).sram_bytes)
    memory_plot.save(mp, files.memory_plan)
    ops_plot.save(ops_plot.ops_figure(rep, prof), files.ops)
    page = render_html(rep, prof, files.memory_plan, files.ops, mp.numbers)
    from slmc.report.levels_plot import levels_section, write_levels

    levels = write_levels(project, out)
    if levels is not None:  # the per-level picture and the per-operator tile table
        import json

        page = page.replace("</body>", levels_section(json.loads((project / "report.json").read_text()), levels) + "</body>")
        files = ReportFiles(files.memory_plan, files.ops, files.html, files.profile, levels)
    files.html.write_text(page, encoding="utf-8")
    return files
