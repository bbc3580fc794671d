"""The memory plan as a picture: address (y) against time step (x), one rectangle per buffer.

Every buffer is named in the picture: inside its rectangle when the name fits, otherwise in the
numbered list under the plot (its number drawn in the rectangle when that fits; the list gives
size, offset and lifetime too, so a sliver too thin for a digit can still be found). A plan's
temporaries are often a small fraction of an arena dominated by the KV cache, so when they sit in
a narrow address band a second panel magnifies that band.

Axes are placed at fixed inch positions (no tight/constrained layout) so label fitting can
measure rectangles in points before the first draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from slmc.report.data import BufferRow, Report
from slmc.report.style import (ARENA, CAPACITY, KV_EDGE, KV_FACE, LOWER_BOUND, SCRATCH, fmt_bytes, layer_colour,
                               new_figure, save_png, text_colour)

WIDTH_IN = 15.0
LEFT_IN, RIGHT_IN = 1.0, 2.1           # the right margin holds the labels of the horizontal lines
NAME_PT, NUMBER_PT, SMALLEST_PT, LIST_PT = 7.5, 6.5, 6.0, 7.0
TOP_IN = 1.45                          # title, subtitle, graph names, layer ticks
ZOOM_BELOW = 0.6                       # magnify when the temporaries span less than this share of the arena


@dataclass
class MemoryPlanFigure:
    """The figure and, per buffer name, the text artist that names it (for tests and the page)."""
    fig: Figure
    inside: dict[str, Text] = field(default_factory=dict)     # name drawn inside its rectangle
    listed: dict[str, Text] = field(default_factory=dict)     # name in the numbered list
    numbers: dict[str, int] = field(default_factory=dict)

    def named(self) -> set[str]:
        return set(self.inside) | set(self.listed)


def _face(b: BufferRow) -> str:
    return KV_FACE if b.kind == "kv" else SCRATCH if b.kind == "scratch" else layer_colour(b.layer)


def _graph_label(name: str, rep: Report) -> str:
    if name == "decode":
        return "decode step (1 token)"
    if name in ("prefill", "prompt"):
        return f"prompt step ({rep.prefill_chunk} tokens)" if rep.prefill_chunk else "prompt step"
    return name


def _zoom_band(rep: Report) -> tuple[int, int] | None:
    temps = [b for b in rep.buffers if b.kind != "kv"]
    if not temps or not any(b.kind == "kv" for b in rep.buffers):
        return None
    lo, hi = min(b.offset for b in temps), max(b.end for b in temps)
    if hi - lo >= ZOOM_BELOW * max(rep.arena_bytes, 1):
        return None
    pad = (hi - lo) * 0.03
    return max(0, int(lo - pad)), int(hi + pad)


class _Fitter:
    """Decides what text fits in a rectangle, measured in points with the Agg renderer."""

    def __init__(self, fig: Figure):
        self.renderer = fig.canvas.get_renderer()
        self.scale = 72.0 / fig.dpi

    def size_pt(self, s: str, pt: float, family: str = "sans-serif") -> tuple[float, float]:
        w, h, _ = self.renderer.get_text_width_height_descent(s, FontProperties(family=family, size=pt), ismath=False)
        return w * self.scale, h * self.scale

    def rect_pt(self, ax: Axes, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
        (px0, py0), (px1, py1) = ax.transData.transform([(x0, y0), (x1, y1)])
        return abs(px1 - px0) * self.scale, abs(py1 - py0) * self.scale

    def fits(self, ax: Axes, b: BufferRow, s: str, pt: float, ylim: tuple[float, float]) -> float | None:
        """The rotation (0 or 90 degrees) at which `s` fits inside `b`, or None."""
        y0, y1 = max(b.offset, ylim[0]), min(b.end, ylim[1])
        if y1 <= y0:
            return None
        w, h = self.rect_pt(ax, b.first - 0.5, y0, b.last + 0.5, y1)
        tw, th = self.size_pt(s, pt)
        if tw + 3 <= w and th + 0.5 <= h:
            return 0.0
        if w < h and th + 0.5 <= w and tw + 3 <= h:    # tall and narrow: a one-step scratch buffer
            return 90.0
        return None


def _draw_buffers(ax: Axes, rep: Report) -> None:
    for b in rep.buffers:
        kv = b.kind == "kv"
        ax.add_patch(Rectangle((b.first - 0.5, b.offset), b.last - b.first + 1, b.size, facecolor=_face(b),
                               edgecolor=KV_EDGE if kv else "#333333", linewidth=0.8 if kv else 0.35,
                               hatch="//" if kv else "xxx" if b.kind == "scratch" else None, zorder=2))


def _label(ax: Axes, fitter: _Fitter, b: BufferRow, ylim: tuple[float, float], out: MemoryPlanFigure,
           number_only: bool) -> None:
    y = (max(b.offset, ylim[0]) + min(b.end, ylim[1])) / 2
    x = (b.first + b.last) / 2
    colour = "#1b2a3a" if b.kind == "kv" else text_colour(_face(b))
    # Hatched faces would cross the letters; give those labels a backdrop of the face colour.
    bbox = dict(boxstyle="square,pad=0.1", fc=_face(b), ec="none") if b.kind != "activation" else None
    if not number_only:
        for pt in (NAME_PT, NUMBER_PT, SMALLEST_PT):
            rot = fitter.fits(ax, b, b.name, pt, ylim)
            if rot is not None:
                out.inside[b.name] = ax.text(x, y, b.name, fontsize=pt, ha="center", va="center", color=colour,
                                             zorder=4, clip_on=True, bbox=bbox, rotation=rot)
                return
    num = out.numbers.get(b.name)
    rot = fitter.fits(ax, b, str(num), NUMBER_PT, ylim) if num is not None else None
    if rot is not None:
        ax.text(x, y, str(num), fontsize=NUMBER_PT, ha="center", va="center", color=colour, zorder=4, clip_on=True,
                rotation=rot)


def _hlines(ax: Axes, rep: Report, capacity: int | None, ylim: tuple[float, float], fitter: _Fitter) -> None:
    """Arena size, lower bound and (when given) the target's SRAM, labelled in the right margin;
    equal values share one label, and labels closer than two lines of text are pushed apart."""
    lines = [(rep.arena_bytes, ARENA, "--", "arena"), (rep.lower_bound_bytes, LOWER_BOUND, (0, (4, 3)), "lower bound")]
    if capacity:
        lines.append((capacity, CAPACITY, ":", "target SRAM"))
    _, panel_pt = fitter.rect_pt(ax, 0, ylim[0], 0, ylim[1])
    placed: list[float] = []       # label heights above the panel's bottom, in points
    labelled: set[int] = set()
    for value, colour, style, _ in sorted(lines, key=lambda t: -t[0]):
        if not ylim[0] <= value <= ylim[1]:
            continue
        ax.axhline(value, color=colour, linestyle=style, linewidth=1.6, zorder=5)
        if value in labelled:
            continue
        labelled.add(value)
        names = " = ".join(w for v, _, _, w in lines if v == value)
        _, y_pt = fitter.rect_pt(ax, 0, ylim[0], 0, value)
        while any(abs(y_pt - p) < 22 for p in placed):
            y_pt -= 22
        placed.append(y_pt)
        ax.annotate(f"{names}\n{value:,} B", xy=(1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(1.012, ylim[0] + (ylim[1] - ylim[0]) * y_pt / max(panel_pt, 1e-9)),
                    textcoords=("axes fraction", "data"), fontsize=8, color=colour, va="center", ha="left",
                    arrowprops=dict(arrowstyle="-", color=colour, lw=0.8), annotation_clip=False)


def _decorate(ax: Axes, rep: Report, ylim: tuple[float, float]) -> None:
    steps = max(rep.steps, 1)
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_ylim(*ylim)
    start = 0
    for i, n in enumerate(rep.graph_steps):
        ax.axvspan(start - 0.5, start + n - 0.5, color="#f4f6f8" if i % 2 == 0 else "#fbf3e6", zorder=0)
        if start:
            ax.axvline(start - 0.5, color="#444444", linewidth=1.8, zorder=3)
        start += n
    # A narrow magnified band would print the same rounded KiB on every tick: exact bytes there.
    exact = ylim[1] - ylim[0] < 64 * 1024
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if exact else fmt_bytes(v) if v else "0"))
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#dddddd", linewidth=0.5, zorder=1)


def _layer_ticks(ax: Axes, rep: Report) -> None:
    """Layer starts along the top edge, repeated for each graph that has the decode graph's node order."""
    starts: dict[int, int] = {}
    for i, o in enumerate(rep.ops):
        if o.layer is not None and o.layer not in starts:
            starts[o.layer] = i
    if not starts:
        return
    ticks, labels, offset = [], [], 0
    for n in rep.graph_steps:
        if n == len(rep.ops) or offset == 0:
            for lay, s in sorted(starts.items()):
                ticks.append(offset + s - 0.5)
                labels.append(f"L{lay}")
        offset += n
    top = ax.secondary_xaxis("top")
    top.set_xticks(ticks, labels, fontsize=7, color="#555555")
    top.tick_params(length=3)


def _entry(num: int, b: BufferRow, name_w: int) -> str:
    return f"{num:>3} {b.name:<{name_w}} {fmt_bytes(b.size):>9} @{b.offset:>9,} t{b.first}-{b.last}"


def memory_plan_figure(rep: Report, sram_bytes: int | None = None) -> MemoryPlanFigure:
    """Which names fit inside depends only on the panels' sizes in inches, which the list under
    them does not change; so draw once with a guessed list length and again if the guess was off."""
    guess = sum(1 for b in rep.buffers if b.kind != "kv")
    mp = _build(rep, sram_bytes, guess)
    if len(mp.listed) != guess:
        mp = _build(rep, sram_bytes, len(mp.listed))
    return mp


def _build(rep: Report, sram_bytes: int | None, n_listed: int) -> MemoryPlanFigure:
    zoom = _zoom_band(rep)
    top_cap = sram_bytes if sram_bytes and sram_bytes <= 2 * rep.arena_bytes else None
    full = (0.0, max(rep.arena_bytes, top_cap or 0, 1) * 1.04)
    panels: list[tuple[float, tuple[float, float], str]] = [(3.4 if zoom else 6.0, full, "whole arena")]
    if zoom:
        panels.append((5.0, (float(zoom[0]), float(zoom[1])), f"magnified: {fmt_bytes(zoom[0])} to {fmt_bytes(zoom[1])}"))

    name_w = max((len(b.name) for b in rep.buffers), default=4)
    probe = new_figure(WIDTH_IN, 1)
    col_w_pt = _Fitter(probe).size_pt(_entry(999, rep.buffers[0], name_w), LIST_PT, "monospace")[0] + 14 \
        if rep.buffers else 100.0
    n_cols = max(1, int((WIDTH_IN - 0.6) * 72 // max(col_w_pt, 1)))
    plots_h = sum(h for h, _, _ in panels) + 0.45 * (len(panels) - 1)
    list_h = 0.75 + -(-n_listed // n_cols) * LIST_PT * 1.45 / 72 if n_listed else 0.3
    height = TOP_IN + plots_h + 0.75 + list_h
    fig = new_figure(WIDTH_IN, height)
    out = MemoryPlanFigure(fig)
    fitter = _Fitter(fig)

    plot_w = (WIDTH_IN - LEFT_IN - RIGHT_IN) / WIDTH_IN
    y_top = TOP_IN
    axes: list[tuple[Axes, tuple[float, float], bool]] = []
    for i, (h, ylim, title) in enumerate(panels):
        ax = fig.add_axes((LEFT_IN / WIDTH_IN, 1 - (y_top + h) / height, plot_w, h / height))
        _decorate(ax, rep, ylim)
        _draw_buffers(ax, rep)
        ax.set_ylabel(f"address ({title})", fontsize=9)
        axes.append((ax, ylim, i == len(panels) - 1))
        y_top += h + 0.45
    order = ", then ".join(f"the {g} graph's" for g in rep.graphs)
    axes[-1][0].set_xlabel(f"time step (one kernel call each: {order} nodes)", fontsize=9)
    _layer_ticks(axes[0][0], rep)
    if zoom:
        ax0 = axes[0][0]
        ax0.axhspan(zoom[0], zoom[1], facecolor="none", edgecolor="#555555", linestyle=":", linewidth=1.2, zorder=6)

    # 1) names inside where they fit: KV in the whole-arena panel, temporaries in the magnified one.
    for b in rep.buffers:
        ax, ylim, _ = axes[1] if zoom and b.kind != "kv" else axes[0]
        _label(ax, fitter, b, ylim, out, number_only=False)
    # 2) everything else is numbered and listed.
    for b in rep.buffers:
        if b.name not in out.inside:
            out.numbers[b.name] = len(out.numbers) + 1
    for b in rep.buffers:
        if b.name in out.numbers:
            ax, ylim, _ = axes[1] if zoom and b.kind != "kv" else axes[0]
            _label(ax, fitter, b, ylim, out, number_only=True)
    for ax, ylim, _ in axes:
        _hlines(ax, rep, top_cap, ylim, fitter)

    # Region names above the first panel.
    ax0 = axes[0][0]
    start = 0
    for g, n in zip(rep.graphs, rep.graph_steps):
        ax0.text(start + (n - 1) / 2, 1.075, f"{_graph_label(g, rep)}: t {start}-{start + n - 1}", fontsize=10,
                 fontweight="bold", ha="center", va="bottom", transform=ax0.get_xaxis_transform(), color="#333333")
        start += n
    kv = fmt_bytes(rep.kv_cache_bytes)
    fig.text(LEFT_IN / WIDTH_IN, 1 - 0.3 / height,
             f"Memory plan: {len(rep.buffers)} buffers in a {rep.arena_bytes:,} B arena ({fmt_bytes(rep.arena_bytes)}; "
             f"KV cache {kv}), planner {rep.planner}", fontsize=13, fontweight="bold", va="top")
    gap = rep.arena_bytes - rep.lower_bound_bytes
    fig.text(LEFT_IN / WIDTH_IN, 1 - 0.62 / height,
             f"{rep.model.split('/')[-1]} · {rep.numerics} · target {rep.target} · lower bound "
             f"{rep.lower_bound_bytes:,} B (gap {gap:,} B, {100 * gap / max(rep.lower_bound_bytes, 1):.1f}%)"
             + (f" with memory sharing: outputs over consumed inputs overlap; whole tensors need "
                f"{rep.conventional_bound_bytes:,} B" if rep.conventional_bound_bytes > rep.lower_bound_bytes else ""),
             fontsize=9.5, color="#444444", va="top")

    # Key to the colours, then the numbered list.
    y_key = y_top + 0.25
    handles = [Patch(facecolor=KV_FACE, edgecolor=KV_EDGE, hatch="//", label="KV cache (state, live throughout)"),
               Patch(facecolor=SCRATCH, edgecolor="#333333", hatch="xxx", label="kernel scratch")]
    layers = sorted({b.layer for b in rep.buffers if b.layer is not None})
    handles += [Patch(facecolor=layer_colour(lay), edgecolor="#333333", label=f"layer {lay}") for lay in layers]
    if any(b.layer is None and b.kind == "activation" for b in rep.buffers):
        handles.append(Patch(facecolor=layer_colour(None), edgecolor="#333333", label="outside layers"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(LEFT_IN / WIDTH_IN, 1 - y_key / height),
               ncol=len(handles), fontsize=8, frameon=False, handlelength=1.6, columnspacing=1.4)
    listed = [b for b in rep.buffers if b.name in out.numbers]
    if listed:
        y_list = y_key + 0.45
        fig.text(0.3 / WIDTH_IN, 1 - y_list / height,
                 "Buffers not named inside their rectangle (number, name, size, offset in bytes, live time steps):",
                 fontsize=8.5, fontweight="bold", va="top")
        rows = -(-len(listed) // n_cols)
        line_in = LIST_PT * 1.45 / 72
        for k, b in enumerate(listed):
            col, row = divmod(k, rows)
            x = (0.3 + col * col_w_pt / 72) / WIDTH_IN
            y = 1 - (y_list + 0.3 + row * line_in) / height
            out.listed[b.name] = fig.text(x, y, _entry(out.numbers[b.name], b, name_w), fontsize=LIST_PT,
                                          family="monospace", va="top", color="#222222")
    return out


def save(mp: MemoryPlanFigure, path) -> None:
    save_png(mp.fig, path)
