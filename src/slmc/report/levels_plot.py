"""The multi-level plan as a picture (levels.png): one panel per memory level, address (y) against
time step (x), one rectangle per tensor: L1 the tile buffers of each tiled operator, the arena's
level the activations, scratch and KV cache, the slowest level the weights. Rectangles wide and
tall enough carry their tensor's name; the per-operator table in report.html (and
`levels_table.tile_rows`) names every tile buffer with its offset and size.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from matplotlib.patches import Rectangle

from slmc.report.levels_table import tile_rows
from slmc.report.style import CAPACITY, KV_FACE, LAYER_COLOURS, SCRATCH, fmt_bytes, new_figure, save_png

PANEL_IN = 2.6


def _rects(rep: dict, level: str, lv: dict) -> list[tuple[str, int, int, int, int, str]]:
    """(name, first, last, offset, bytes, colour) of what the level holds."""
    placement = {p["level"]: p for p in lv["placement"]}
    names = [x["name"] for x in lv["levels"]]
    out = []
    if level == names[0] and lv["tiles"]:
        for i, t in enumerate(lv["tiles"]):
            for b in t["l1_buffers"]:
                out.append((f"{t['node']}.{b['role']}", t["step"], t["step"], b["offset"], b["bytes"],
                            LAYER_COLOURS[i % len(LAYER_COLOURS)]))
    elif "activations" in placement[level]["holds"]:
        for b in rep["buffers"]:
            layer = re.search(r"layers\.(\d+)\.", b["name"])
            face = KV_FACE if "cache" in b["name"] else SCRATCH if b["name"].endswith(".scratch") else \
                LAYER_COLOURS[int(layer.group(1)) % len(LAYER_COLOURS)] if layer else "#a0a0a0"
            out.append((b["name"], b["first"], b["last"], b["offset"], b["size"], face))
    elif "weights" in placement[level]["holds"]:
        out.append(("weights", 0, max(lv["steps"] - 1, 0), 0, rep["weights_bytes"], "#bbbbbb"))
    return out


def levels_figure(rep: dict):
    lv = rep["levels"]
    levels = lv["placement"]
    fig = new_figure(15.0, PANEL_IN * len(levels) + 0.8)
    steps = max(lv["steps"], 1)
    fig.suptitle(f"memory levels of {Path(rep['model']).name} on {rep['target']} ({lv['mode']} mode): address x time step",
                 fontsize=11)
    for i, p in enumerate(levels):
        ax = fig.add_axes((0.07, 1 - (i + 1) * PANEL_IN / (PANEL_IN * len(levels) + 0.8) - 0.02, 0.8,
                           PANEL_IN / (PANEL_IN * len(levels) + 0.8) * 0.72))
        # a level far larger than its plan is drawn to the plan's scale (its capacity stays in the title)
        cap = p["capacity"] if p["capacity"] and p["capacity"] <= 4 * p["used"] else 0
        top = max(p["used"], cap, 1)
        ax.set_xlim(0, steps)
        ax.set_ylim(0, top * 1.05)
        for name, a, b, off, size, face in _rects(rep, p["level"], lv):
            ax.add_patch(Rectangle((a, off), b - a + 1, size, facecolor=face, edgecolor="#333333", linewidth=0.3))
            if (b - a + 1) / steps > 0.12 and size / top > 0.08:
                ax.text(a + (b - a + 1) / 2, off + size / 2, name, ha="center", va="center", fontsize=7, clip_on=True)
        if cap:
            ax.axhline(p["capacity"], color=CAPACITY, linewidth=1)
            ax.text(steps, p["capacity"], f" capacity {fmt_bytes(p['capacity'])}", color=CAPACITY, fontsize=7, va="center")
        ax.axhline(p["used"], color="#c0392b", linewidth=0.8, linestyle="--")
        ax.text(steps, p["used"], f" plan {fmt_bytes(p['used'])}", color="#c0392b", fontsize=7, va="top")
        proof = "optimal" if p["optimal"] and p["gap_bytes"] == 0 else f"gap {p['gap_bytes']:,} B"
        ax.set_title(f"{p['level']}: {p['holds']} - {p['used']:,} B of "
                     f"{p['capacity']:,} B, lower bound {p['lower_bound']:,} B, {proof}", fontsize=9, loc="left")
        ax.yaxis.set_major_formatter(lambda y, _: fmt_bytes(y))
        ax.tick_params(labelsize=7)
    return fig


def levels_section(rep: dict, png: Path) -> str:
    """HTML: the picture and the per-operator table of tile shapes and bytes moved."""
    rows = tile_rows(rep)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    moved = rep["levels"]["bytes_moved"]
    lines = "".join(f"<li>{html.escape(g)} step: " + html.escape(", ".join(f"{k} {v:,} B" for k, v in m.items()) or "nothing")
                    + f" (compulsory {rep['levels']['compulsory_bytes'][g]:,} B)</li>" for g, m in moved.items())
    from slmc.report.html import _img   # inlined like the page's other pictures, so the page travels alone

    return (f'<section id="levels"><h2>Memory levels and tiles</h2><figure><a href="{png.name}"><img src="{_img(png)}" '
            f'alt="memory levels"></a></figure>'
            f"<ul>{lines}</ul><table><tr>{head}</tr>{body}</table></section>")


def write_levels(project: Path, out: Path) -> Path | None:
    """levels.png and levels.html's section for a multi-level compile; None when the report has no levels."""
    rep = json.loads((Path(project) / "report.json").read_text())
    if "levels" not in rep:
        return None
    png = Path(out) / "levels.png"
    save_png(levels_figure(rep), png)
    return png
