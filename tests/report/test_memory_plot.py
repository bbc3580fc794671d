"""The memory plan picture shows the plan it claims to: one rectangle per buffer where the plan put
it, and every buffer named in the picture (inside its rectangle or in the numbered list)."""

from __future__ import annotations

import json
import random

from matplotlib.patches import Rectangle
from matplotlib.text import Text
from PIL import Image

from conftest import shared_path
from slmc.report import memory_plot
from slmc.report.data import Report, load_report, parse_report


def _words(fig) -> set[str]:
    """Every whitespace-separated word of every text artist, so a name counts only as a whole word
    (buffer `x` must not be 'found' inside `layers.0.x_att`)."""
    return {w for t in fig.findobj(Text) for w in t.get_text().split()}


def _assert_every_buffer_named(rep: Report) -> memory_plot.MemoryPlanFigure:
    mp = memory_plot.memory_plan_figure(rep)
    words = _words(mp.fig)
    missing = [b.name for b in rep.buffers if b.name not in words]
    assert not missing, f"buffers not named in the picture: {missing}"
    assert mp.named() == {b.name for b in rep.buffers}
    # The names found must be drawn inside the figure, not pushed off its edge.
    for t in mp.listed.values():
        x, y = t.get_position()
        assert 0 <= x < 1 and 0 < y <= 1, (t.get_text(), x, y)
    return mp


def _assert_rectangles_are_the_plan(rep: Report, mp: memory_plot.MemoryPlanFigure) -> None:
    ax = mp.fig.axes[0]
    drawn = sorted((r.get_x(), r.get_y(), r.get_width(), r.get_height())
                   for r in ax.patches if isinstance(r, Rectangle) and r.get_zorder() == 2)
    want = sorted((b.first - 0.5, b.offset, b.last - b.first + 1, b.size) for b in rep.buffers)
    assert drawn == want


def test_every_buffer_named_and_drawn_where_planned(small_project, tmp_path):
    rep = load_report(small_project)
    assert len(rep.graphs) == 2 and any(b.kind == "kv" for b in rep.buffers)
    assert any(b.kind == "scratch" for b in rep.buffers)
    mp = _assert_every_buffer_named(rep)
    _assert_rectangles_are_the_plan(rep, mp)
    # The KV cache is told apart: its own hatch, and a key entry saying what it is.
    assert any(t.get_text().startswith("KV cache") for t in mp.fig.findobj(Text))
    png = tmp_path / "memory_plan.png"
    memory_plot.save(mp, png)
    assert png.stat().st_size > 30_000
    with Image.open(png) as im:
        w, h = im.size
        assert w >= 1500 and h >= 1000
        assert len(im.convert("RGB").getcolors(1 << 20) or []) > 50


def test_stories260k_plan_named(tmp_path):
    from slmc.driver import CompileOptions, compile_model

    model = shared_path("models/stories260K/stories260K.bin")
    compile_model(CompileOptions(model, "host", "q8", tmp_path / "out"))
    rep = load_report(tmp_path / "out")
    assert len(rep.buffers) > 100
    _assert_every_buffer_named(rep)


def test_many_short_buffers_all_listed():
    """A plan with hundreds of one-step buffers: almost none fits a name, so the list must hold
    them all, on the figure, in columns."""
    rng = random.Random(0)
    rows, t_end = [], 400
    for i in range(600):
        first = rng.randrange(t_end)
        rows.append(dict(name=f"layers.{i % 7}.tensor_{i}", offset=rng.randrange(0, 200_000, 16),
                         size=rng.choice([16, 64, 256, 1024]), first=first, last=min(t_end - 1, first + rng.randrange(3))))
    rows.insert(0, dict(name="key_cache_0", offset=200_000, size=100_000, first=0, last=t_end - 1))
    raw = dict(arena_bytes=300_000, lower_bound_bytes=250_000, kv_cache_bytes=100_000, graphs=["decode", "prefill"],
               graph_steps=[150, 250], buffers=rows, ops=[])
    rep = parse_report(json.loads(json.dumps(raw)))
    assert rep.graph_steps == (150, 250)
    _assert_every_buffer_named(rep)


def test_decode_only_plan(tmp_path, compile_small_project):
    rep = load_report(compile_small_project(tmp_path / "d", "fp32", 0))
    assert rep.graphs == ("decode",) and rep.graph_steps == (rep.steps,)
    _assert_rectangles_are_the_plan(rep, _assert_every_buffer_named(rep))
