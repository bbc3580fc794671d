"""`slmc sweep --report DIR`: the Pareto fronts of a sweep (latency x energy x RAM, all ESTIMATES from
exact instruction counts, results.py) drawn into DIR/pareto.png, and DIR/sweep.html: that picture, the
Pareto-optimal points and every failed point with its error. One self-contained page (report/html.py's
style: CSS and picture inline, no script, no network)."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from slmc.report.html import CSS
from slmc.report.style import LAYER_COLOURS, new_figure
from slmc.sweep.results import BY_NAME
from slmc.sweep.spec import AXES

OBJECTIVES = ("est_ms_per_token", "est_uj_per_token", "sram_bytes")
PANELS = ((0, 1), (0, 2), (1, 2))
FRONT_EDGE = "#111111"


def dominated(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether b dominates a (all minimised): no worse in every objective, better in one."""
    return all(y <= x for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b))


def front(rows: list[dict], objectives: tuple[str, ...] = OBJECTIVES) -> list[bool]:
    """For each row: on the Pareto front of the rows that are ok and give every objective."""
    vals = [tuple(r.get(o) for o in objectives) if r.get("status") == "ok" and all(r.get(o) is not None
            for o in objectives) else None for r in rows]
    return [v is not None and not any(w is not None and dominated(v, w) for w in vals) for v in vals]


def colour_axis(rows: list[dict]) -> str:
    """The first column among the axes, target and model whose value differs between points."""
    for name in (*AXES, "target", "model"):
        if len({r.get(name) for r in rows if name in r}) > 1:
            return name
    return "target"


def _label(name: str) -> str:
    f = BY_NAME.get(name)
    return f.label if f is not None and f.label else name


def draw(rows: list[dict], path: "Path | io.BytesIO", colour_by: str | None = None) -> str:
    """Three panels (each pair of objectives), a point per ok row coloured by one axis; the points of the
    three-objective front ringed in black, each panel's own two-objective front joined by a line."""
    ok = [r for r in rows if r.get("status") == "ok" and all(r.get(o) is not None for o in OBJECTIVES)]
    colour_by = colour_by or colour_axis(rows)
    groups = sorted({str(r.get(colour_by)) for r in ok})
    colours = {g: LAYER_COLOURS[i % len(LAYER_COLOURS)] for i, g in enumerate(groups)}
    on = front(ok)
    fig = new_figure(15, 5)
    for k, (i, j) in enumerate(PANELS):
        ax = fig.add_subplot(1, 3, k + 1)
        xo, yo = OBJECTIVES[i], OBJECTIVES[j]
        for g in groups:
            pts = [(r[xo], r[yo], f) for r, f in zip(ok, on) if str(r.get(colour_by)) == g]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=[70 if p[2] else 36 for p in pts],
                       c=colours[g], edgecolors=[FRONT_EDGE if p[2] else "none" for p in pts], linewidths=1.4,
                       label=f"{colour_by}={g}", zorder=3)
        two = front(ok, (xo, yo))
        line = sorted((r[xo], r[yo]) for r, f in zip(ok, two) if f)
        if line:
            ax.step([p[0] for p in line], [p[1] for p in line], where="post", color="#888888", lw=1, zorder=2)
        for setter, o in ((ax.set_xscale, xo), (ax.set_yscale, yo)):
            vals = [float(r[o]) for r in ok if r[o] > 0]
            if vals and max(vals) > 20 * min(vals):  # decades apart (fp32 soft float against int8): log scale
                setter("log")
        ax.set_xlabel(_label(xo))
        ax.set_ylabel(_label(yo))
        ax.grid(True, alpha=0.3)
        if k == 0 and groups:
            ax.legend(fontsize=8, loc="best")
    if not ok:
        fig.text(0.5, 0.5, "no point gave latency, energy and RAM (host targets give no energy)", ha="center")
    fig.suptitle(f"{len(ok)} points; ringed: on the latency x energy x RAM Pareto front ({sum(on)}); "
                 f"lines: each panel's own front", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return colour_by


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return escape("" if v is None else str(v))


def _axis_cell(r: dict, a: str) -> str:
    v = r.get(a)
    return _cell(Path(str(v)).name if a == "model" and v is not None else v)


def page(rows: list[dict], png: bytes, colour_by: str, title: str) -> str:
    axes = ["model", "target", *(a for a in AXES if any(r.get(a) is not None for r in rows))]
    cols = [*OBJECTIVES, "instructions_per_token", "int8_top1_agreement"]
    on = front(rows)
    best = sorted((r for r, f in zip(rows, on) if f), key=lambda r: r["est_ms_per_token"])
    failed = [r for r in rows if r.get("status") != "ok"]
    ok = len(rows) - len(failed)
    head = "".join(f"<th>{escape(a)}</th>" for a in axes) + "".join(f'<th class="n">{escape(_label(c))}</th>'
                                                                     for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_axis_cell(r, a)}</td>"
                                    for a in axes)
                   + "".join(f'<td class="n">{_cell(r.get(c))}</td>' for c in cols) + "</tr>" for r in best)
    fails = "".join("<tr>" + "".join(f"<td>{_axis_cell(r, a)}</td>"
                                     for a in axes) + f"<td>{escape(str(r.get('status')))}</td></tr>" for r in failed)
    cards = "".join(f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in
                    (("points", len(rows)), ("ok", ok), ("failed", len(failed)), ("on the front", len(best))))
    img = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{CSS}</style></head>
<body><main>
<header><h1>{escape(title)}</h1><p>Pareto fronts of latency, energy and RAM per token. Latency and energy are
ESTIMATES from exact instruction counts (the core's cycle model; the RP2350 power model at 1.10 V and the
target's clock, 150 MHz where it has none).</p></header>
<div class="cards">{cards}</div>
<section><h2>Fronts (coloured by {escape(colour_by)})</h2>
<figure><img alt="Pareto fronts" src="data:image/png;base64,{img}">
<figcaption>Each panel: one pair of objectives; ringed points are on the three-objective front.</figcaption></figure>
</section>
<section><h2>On the front ({len(best)} points, fastest first)</h2>
<table><tr>{head}</tr>{body}</table></section>
<section><h2>Failed points ({len(failed)})</h2>
{"<table><tr>" + "".join(f"<th>{escape(a)}</th>" for a in axes) + "<th>error</th></tr>" + fails + "</table>"
 if failed else '<p class="note">none</p>'}
</section>
<footer>slmc sweep</footer>
</main></body></html>
"""


def write_pareto(rows: list[dict], colour_by: str | None = None, title: str = "slmc sweep") -> dict[str, bytes]:
    """pareto.png and sweep.html (name -> bytes) for output.add_files."""
    buf = io.BytesIO()
    used = draw(rows, buf, colour_by)  # type: ignore[arg-type]
    png = buf.getvalue()
    return {"pareto.png": png, "sweep.html": page(rows, png, used, title).encode()}
