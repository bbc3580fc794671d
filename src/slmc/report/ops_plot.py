"""Per-operator cost of one decode step: instructions when a run measured them, MACs otherwise.

Top panel: one bar per operator type, stacked by layer, so both "which kind of op costs most" and
"is one layer unlike the others" read at a glance. Bottom panel: one bar per node in execution
order, when the costs are per node and few enough to name each one under its bar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from slmc.report.data import OpRow, Profile, Report
from slmc.report.style import LAYER_COLOURS, fmt_count, layer_colour, new_figure, save_png

WIDTH_IN = 15.0
THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")
_LAYER_PREFIX = re.compile(r"^layers?\.\d+\.")
MAX_NAMED_NODES = 160      # beyond this the names under the bars overlap at the smallest legible size
OP_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
              "#bab0ac", "#17becf", "#bcbd22")


@dataclass(frozen=True)
class OpCosts:
    metric: str                 # "instructions" or "MACs"
    rows: tuple[OpRow, ...]     # value in `instructions` or `macs` per the metric
    per_node: bool              # rows are nodes in execution order (not totals per op type)
    caption: str

    def value(self, r: OpRow) -> float:
        return float(r.instructions or 0) if self.metric == "instructions" else float(r.macs)

    @property
    def total(self) -> float:
        return sum(self.value(r) for r in self.rows)


def op_costs(rep: Report, profile: Profile | None) -> OpCosts:
    if profile is not None and profile.ops:
        names = [r.name for r in profile.ops]
        per_node = len(set(names)) > len({r.op for r in profile.ops}) or len(profile.ops) == len(rep.ops)
        ipt = ""
        if profile.instructions_per_token:
            rest = profile.instructions_per_token - sum(float(r.instructions or 0) for r in profile.ops)
            ipt = f"; {profile.instructions_per_token:,.0f} instructions/token in total" + \
                (f", {rest:,.0f} of them outside these operators" if rest > 0 else "")
        where = f" on {profile.target}" if profile.target else ""
        return OpCosts("instructions", profile.ops, per_node, f"measured{where} ({profile.source}){ipt}")
    att = rep.attention_macs_per_position
    cap = f"counted from the graph: {rep.macs_per_token:,} MACs/token in matrix products"
    if att:
        cap += f"; attention adds {att:,} x (position + 1), drawn at position 0"
    if profile is not None and profile.instructions_per_token:
        cap += f"; the run gave only a total: {profile.instructions_per_token:,.0f} instructions/token"
    return OpCosts("MACs", rep.ops, True, cap + " (no per-op instruction profile found)")


def _op_colours(ops: list[str]) -> dict[str, str]:
    return {op: OP_COLOURS[i % len(OP_COLOURS)] for i, op in enumerate(sorted(set(ops)))}


def ops_figure(rep: Report, profile: Profile | None) -> Figure:
    costs = op_costs(rep, profile)
    types: dict[str, float] = {}
    for r in costs.rows:
        types[r.op] = types.get(r.op, 0.0) + costs.value(r)
    order = sorted(types, key=lambda op: (-types[op], op))
    nodes = costs.per_node and len(costs.rows) <= MAX_NAMED_NODES
    # Vertical layout in inches from the top: title, op-type panel and its axis label, node panel
    # (legend band, bars, rotated names).
    title_h, bars_h, xlabel_h = 1.1, 0.3 + 0.32 * len(order), 0.55
    node_legend_h, node_bars_h, node_names_h = 0.75, 3.2, 1.5
    height = title_h + bars_h + xlabel_h + (node_legend_h + node_bars_h + node_names_h if nodes else 0.1)
    fig = new_figure(WIDTH_IN, height)
    left, right = 1.9 / WIDTH_IN, 1 - 0.5 / WIDTH_IN

    ax = fig.add_axes((left, 1 - (title_h + bars_h) / height, right - left - 1.6 / WIDTH_IN, bars_h / height))
    layers = sorted({r.layer for r in costs.rows if r.layer is not None}) + [None]
    stacked = len(layers) > 1     # a profile with totals per op type has no layers to stack
    base = [0.0] * len(order)
    for lay in layers:
        vals = [sum(costs.value(r) for r in costs.rows if r.op == op and r.layer == lay) for op in order]
        if any(vals):
            ax.barh(range(len(order)), vals, left=base, color=layer_colour(lay) if stacked else LAYER_COLOURS[0],
                    edgecolor="white", linewidth=0.6, label="outside layers" if lay is None else f"layer {lay}", zorder=2)
            base = [b + v for b, v in zip(base, vals)]
    total = max(costs.total, 1e-9)
    for i, op in enumerate(order):
        ax.text(types[op], i, f"  {types[op]:,.0f}  ({100 * types[op] / total:.1f}%)", va="center", fontsize=8.5)
    ax.set_yticks(range(len(order)), order, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(types.values(), default=1) * 1.22 or 1)
    ax.set_xlabel(f"{costs.metric} per decode step, summed over nodes of each type", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.grid(axis="x", color="#e3e3e3", zorder=0)
    if stacked:
        ax.legend(fontsize=8, loc="lower right", frameon=True, title="stacked by layer", title_fontsize=8)
    kind = "measured instructions" if costs.metric == "instructions" else "multiply-accumulates (no instruction profile)"
    fig.text(left, 1 - 0.3 / height, f"Per-operator cost of one decode step: {kind}, total {fmt_count(costs.total)}",
             fontsize=13, fontweight="bold", va="top")
    fig.text(left, 1 - 0.62 / height, costs.caption, fontsize=9, color="#444444", va="top")

    if nodes:
        top = title_h + bars_h + xlabel_h + node_legend_h
        _node_panel(fig, costs, (left, 1 - (top + node_bars_h) / height, right - left, node_bars_h / height))
    return fig


def _node_panel(fig: Figure, costs: OpCosts, rect: tuple[float, float, float, float]) -> None:
    """Bars in execution order, coloured by op type, with layers shaded and named above."""
    rows = costs.rows
    colours = _op_colours([r.op for r in rows])
    ax = fig.add_axes(rect)
    xs = range(len(rows))
    ax.bar(xs, [costs.value(r) for r in rows], color=[colours[r.op] for r in rows], width=0.8, zorder=2)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    # The shaded spans name the layer, so its prefix would only push the names into each other.
    ax.set_xticks(list(xs), [_LAYER_PREFIX.sub("", r.name) for r in rows], rotation=90, fontsize=6.5)
    ax.tick_params(axis="y", labelsize=8)
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_ylabel(f"{costs.metric} per node", fontsize=9)
    ax.grid(axis="y", color="#e3e3e3", zorder=0)
    spans: list[tuple[int | None, int, int]] = []
    for i, r in enumerate(rows):
        if spans and spans[-1][0] == r.layer:
            spans[-1] = (r.layer, spans[-1][1], i)
        else:
            spans.append((r.layer, i, i))
    for k, (lay, a, b) in enumerate(spans):
        if lay is None:
            continue
        ax.axvspan(a - 0.5, b + 0.5, color="#f1f3f6" if k % 2 else "#fbf7ee", zorder=0)
        ax.text((a + b) / 2, 0.97, f"layer {lay}", transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=9, fontweight="bold", color="#444444")
    ax.legend(handles=[Patch(color=c, label=op) for op, c in colours.items()], fontsize=8, ncol=min(len(colours), 10),
              loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, title="node cost, coloured by operator type",
              title_fontsize=8.5, alignment="left")


def save(fig: Figure, path) -> None:
    save_png(fig, path)
