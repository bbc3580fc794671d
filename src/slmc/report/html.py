"""report.html: one self-contained page (pictures inlined as base64, CSS inline, no script, no
network) that a browser opens straight from the output folder or from an e-mail attachment."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape
from pathlib import Path

from slmc.report.data import Profile, Report, target_capacity
from slmc.report.ops_plot import op_costs
from slmc.report.style import fmt_bytes

CSS = """
:root { --ink:#1f2933; --muted:#5f6b7a; --line:#d9dee5; --bg:#f6f7f9; --accent:#2f5d8a; --ok:#1e8449; --bad:#c0392b; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
       "DejaVu Sans", sans-serif; }
main { max-width:1500px; margin:0 auto; padding:24px 28px 48px; }
header h1 { margin:0 0 4px; font-size:26px; }
header p { margin:0; color:var(--muted); }
h2 { font-size:19px; margin:0 0 12px; color:var(--accent); }
section { background:white; border:1px solid var(--line); border-radius:8px; padding:18px 22px; margin-top:20px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:12px; margin-top:20px; }
.card { background:white; border:1px solid var(--line); border-left:4px solid var(--accent); border-radius:6px;
        padding:10px 14px; }
.card .k { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
.card .v { font-size:22px; font-weight:600; }
.card .d { font-size:12.5px; color:var(--muted); }
table { border-collapse:collapse; width:100%; font-size:14px; }
th, td { text-align:left; padding:5px 10px; border-bottom:1px solid var(--line); }
th { background:#eef1f5; font-weight:600; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.sub td { color:var(--muted); font-size:13px; }
tr.sub td:first-child { padding-left:28px; }
.meter { width:180px; height:12px; background:#e6e9ee; border-radius:6px; overflow:hidden; display:inline-block;
         vertical-align:middle; }
.meter span { display:block; height:100%; background:var(--ok); }
.meter.over span { background:var(--bad); }
.over-text { color:var(--bad); font-weight:600; }
figure { margin:0; }
figure img { display:block; max-width:100%; height:auto; border:2px solid var(--accent); }
figcaption { color:var(--muted); font-size:13.5px; margin-top:6px; }
details summary { cursor:pointer; color:var(--accent); font-weight:600; }
.buffers { max-height:520px; overflow:auto; margin-top:10px; }
.buffers td { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-size:12.5px; padding:2px 10px; }
.note { color:var(--muted); font-size:13.5px; }
section.notes { background:#fff8e6; border-color:#f0d9a0; padding:8px 22px; }
section.notes ul { margin:0; padding-left:18px; }
footer { color:var(--muted); font-size:12.5px; margin-top:24px; text-align:center; }
"""


@dataclass(frozen=True)
class Level:
    name: str
    capacity: int | None
    needs: tuple[tuple[str, int], ...]

    @property
    def used(self) -> int:
        return sum(n for _, n in self.needs)


def memory_levels(rep: Report) -> tuple[Level, ...]:
    """What each memory holds, against the target's capacity: the fit that `slmc compile` checked
    and wrote into report.json; for older reports, the target's fit rules (stack, C library,
    main.c's buffers) applied here; failing those, the plan and the weights alone."""
    levels = tuple(Level(name.upper(), int(m["capacity"]), tuple((str(k), int(v)) for k, v in m["needs"].items() if v))
                   for name, m in rep.memory.items() if isinstance(m, dict) and "capacity" in m and "needs" in m)
    if levels:
        return levels
    try:
        from slmc.targets import get_target
        from slmc.targets.fit import main_llm_buffers, memory_fit

        c = rep.config
        main = main_llm_buffers(c["vocab_size"], c["seq_len"], rep.prefill_chunk) if "vocab_size" in c else 0
        fit = memory_fit(get_target(rep.target), rep.arena_bytes, rep.kv_cache_bytes, rep.weights_bytes, main)
        if fit:
            return tuple(Level(m.memory.upper(), m.capacity, tuple((n.what, n.nbytes) for n in m.needs if n.nbytes))
                         for m in fit)
    except Exception:   # a target this build does not know, or a fit module from another version
        pass
    cap = target_capacity(rep.target)
    return (Level("SRAM", cap.sram_bytes, (("activations and scratch", rep.activation_bytes),
                                           ("KV cache", rep.kv_cache_bytes))),
            Level("FLASH", cap.flash_bytes, (("weights", rep.weights_bytes),)))


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _card(key: str, value: str, detail: str = "") -> str:
    return (f'<div class="card"><div class="k">{escape(key)}</div><div class="v">{escape(value)}</div>'
            f'<div class="d">{escape(detail)}</div></div>')


def _levels_table(rep: Report, levels: tuple[Level, ...]) -> str:
    rows = ['<table><tr><th>memory</th><th class="n">bytes</th><th class="n">capacity</th>'
            '<th class="n">margin</th><th>use</th></tr>']
    for lv in levels:
        if lv.capacity:
            share = lv.used / lv.capacity
            over = share > 1
            meter = (f'<span class="meter{" over" if over else ""}"><span style="width:{min(share, 1) * 100:.1f}%">'
                     f'</span></span> <span class="{"over-text" if over else ""}">{share * 100:.1f}%</span>')
            cap, margin = f"{lv.capacity:,}", f'<span class="{"over-text" if over else ""}">{lv.capacity - lv.used:+,}</span>'
        else:
            meter, cap, margin = '<span class="note">no limit that slmc checks</span>', "&ndash;", "&ndash;"
        rows.append(f'<tr><td><b>{escape(lv.name)}</b></td><td class="n"><b>{lv.used:,}</b> ({fmt_bytes(lv.used)})</td>'
                    f'<td class="n">{cap}</td><td class="n">{margin}</td><td>{meter}</td></tr>')
        for what, n in lv.needs:
            rows.append(f'<tr class="sub"><td>{escape(what)}</td><td class="n">{n:,}</td><td></td><td></td><td></td></tr>')
    rows.append("</table>")
    return "".join(rows)


def _ops_table(rep: Report, profile: Profile | None) -> str:
    costs = op_costs(rep, profile)
    macs: dict[str, int] = {}
    count: dict[str, int] = {}
    for o in rep.ops:
        macs[o.op] = macs.get(o.op, 0) + o.macs
        count[o.op] = count.get(o.op, 0) + 1
    instr: dict[str, float] = {}
    if costs.metric == "instructions":
        for r in costs.rows:
            instr[r.op] = instr.get(r.op, 0.0) + float(r.instructions or 0)
    key = instr if instr else {op: float(v) for op, v in macs.items()}
    total = sum(key.values()) or 1.0
    head = '<table><tr><th>operator</th><th class="n">nodes</th><th class="n">MACs / step</th>'
    head += '<th class="n">instructions / step</th>' if instr else ""
    head += '<th class="n">share</th><th>kernel</th></tr>'
    kernels = {o.op: o.kernel for o in rep.ops}
    rows = [head]
    for op in sorted(set(key) | set(macs), key=lambda k: -key.get(k, 0.0)):
        rows.append(f'<tr><td>{escape(op)}</td><td class="n">{count.get(op, 0)}</td><td class="n">{macs.get(op, 0):,}</td>'
                    + (f'<td class="n">{instr.get(op, 0):,.0f}</td>' if instr else "")
                    + f'<td class="n">{100 * key.get(op, 0) / total:.1f}%</td><td>{escape(kernels.get(op, ""))}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def _buffers_table(rep: Report, numbers: dict[str, int]) -> str:
    rows = ['<table><tr><th class="n">#</th><th>name</th><th>kind</th><th class="n">offset</th><th class="n">size</th>'
            '<th class="n">first</th><th class="n">last</th></tr>']
    for b in sorted(rep.buffers, key=lambda b: (b.offset, b.first)):
        rows.append(f'<tr><td class="n">{numbers.get(b.name, "")}</td><td>{escape(b.name)}</td><td>{b.kind}</td>'
                    f'<td class="n">{b.offset:,}</td><td class="n">{b.size:,}</td><td class="n">{b.first}</td>'
                    f'<td class="n">{b.last}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def render_html(rep: Report, profile: Profile | None, plan_png: Path, ops_png: Path, numbers: dict[str, int]) -> str:
    model = Path(rep.model).name
    gap = rep.arena_bytes - rep.lower_bound_bytes
    levels = memory_levels(rep)
    cards = [_card("arena", fmt_bytes(rep.arena_bytes), f"{rep.arena_bytes:,} B, planner {rep.planner}"),
             _card("KV cache", fmt_bytes(rep.kv_cache_bytes), f"{rep.kv_cache_bytes:,} B (in the arena)"),
             _card("weights", fmt_bytes(rep.weights_bytes), f"{rep.weights_bytes:,} B"),
             _card("lower bound gap", f"{100 * gap / max(rep.lower_bound_bytes, 1):.1f}%",
                   f"{gap:,} B over the live-peak bound {rep.lower_bound_bytes:,} B"
                   + (f" (with memory sharing; {rep.conventional_bound_bytes:,} B for whole tensors)"
                      if rep.conventional_bound_bytes > rep.lower_bound_bytes else "")),
             _card("MACs / token", f"{rep.macs_per_token:,}",
                   f"+ {rep.attention_macs_per_position:,} x (position + 1) in attention"
                   if rep.attention_macs_per_position else "matrix products")]
    ipt = profile.instructions_per_token if profile else None
    if ipt:
        cards.append(_card("instructions / token", f"{ipt:,.0f}", f"{ipt / max(rep.macs_per_token, 1):.2f} per MAC"
                           + (f" on {profile.target}" if profile and profile.target else "")))
    if profile and profile.tokens_per_s:
        cards.append(_card("tokens / s", f"{profile.tokens_per_s:,.0f}", profile.target or ""))
    if rep.params:
        cards.append(_card("parameters", f"{rep.params:,}", rep.source or ""))
    over = [lv for lv in levels if lv.capacity and lv.used > lv.capacity]
    fit_note = ("; ".join(f"{lv.name} is {lv.used - lv.capacity:,} B over" for lv in over) + ".") if over else \
        ("Everything fits." if any(lv.capacity for lv in levels) else f"Target {rep.target} sets no memory limits.")
    steps = ", then ".join(f"{g} ({n} steps)" for g, n in zip(rep.graphs, rep.graph_steps))
    cfg = "".join(f'<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>' for k, v in rep.config.items())
    notes = "".join(f"<li>{escape(n)}</li>" for n in rep.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>slmc report: {escape(model)} ({escape(rep.numerics)}, {escape(rep.target)})</title>
<style>{CSS}</style></head>
<body><main>
<header><h1>{escape(model)}</h1>
<p>{escape(rep.numerics)} numerics &middot; target <b>{escape(rep.target)}</b> &middot; planner {escape(rep.planner)}
&middot; {len(rep.buffers)} buffers, {len(rep.ops)} kernel calls per decode step &middot; {escape(rep.model)}</p></header>
<div class="cards">{''.join(cards)}</div>
{f'<section id="notes" class="notes"><ul>{notes}</ul></section>' if notes else ""}
<section id="memory"><h2>Memory per level</h2>{_levels_table(rep, levels)}
<p class="note">{escape(fit_note)} The arena holds the KV cache and every activation and scratch buffer; the
lower bound is the largest total of buffers live at one time step, so no placement can beat it.</p></section>
<section id="plan"><h2>Memory plan</h2>
<figure><a href="{escape(plan_png.name)}"><img src="{_img(plan_png)}"
 alt="memory plan: address against time step, one rectangle per buffer"></a>
<figcaption>Address (up) against time step (right): {escape(steps)}. Hatched: the KV cache, live throughout.
Dashed lines: the arena size and the lower bound. Buffers whose names do not fit their rectangle are numbered in the
list under the plot and in the table below. Click for full size.</figcaption></figure></section>
<section id="ops"><h2>Operators</h2>
<figure><a href="{escape(ops_png.name)}"><img src="{_img(ops_png)}" alt="cost per operator"></a>
<figcaption>{escape(op_costs(rep, profile).caption)}.</figcaption></figure>
<div style="margin-top:14px">{_ops_table(rep, profile)}</div></section>
<section id="model"><h2>Model</h2><table>{cfg}</table></section>
<section id="buffers"><details><summary>All {len(rep.buffers)} buffers of the plan (by offset)</summary>
<div class="buffers">{_buffers_table(rep, numbers)}</div></details></section>
<footer>written by <code>slmc report</code> from report.json{f" and {escape(profile.source)}" if profile else ""}</footer>
</main></body></html>
"""
