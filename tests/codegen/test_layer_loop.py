"""model.c runs a decoder's layers as one loop over a per-layer table (codegen/layers.py), on a memory plan
that gives every layer layer 0's offsets (plan/layers.py): its size no longer grows with the depth, and it
computes what the unrolled form computes, bit for bit."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slmc.config import CompileOptions
from slmc.driver import compile_model
from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.llama2c import save_v0
from slmc.frontend.random_model import random_decoder
from slmc.plan.layers import Fold, find_layers
from slmc.plan.plan import plan_memory

SLMC = [sys.executable, "-m", "slmc.cli"]
LOOP = "for (int l = 0; l < SLMC_N_LAYERS; l++) {"


def _model(tmp: Path, layers: int, seq_len: int = 64) -> Path:
    """A random llama2.c checkpoint of stories260K's width (what the line budget is stated for)."""
    cfg = DecoderConfig(dim=64, hidden_dim=172, n_layers=layers, n_heads=8, n_kv_heads=4, vocab_size=512, seq_len=seq_len)
    path = tmp / f"l{layers}.bin"
    save_v0(random_decoder(cfg, seed=layers), path)
    return path


def _compile(model: Path, out: Path, numerics: str, **kw) -> str:
    compile_model(CompileOptions(model, "host", numerics, out, **kw))
    return (out / "model.c").read_text()


@pytest.mark.parametrize("numerics", ["fp32", "q8", "int8"])
def test_model_c_does_not_grow_with_the_layers(tmp_path, numerics):
    five = _compile(_model(tmp_path, 5), tmp_path / "five", numerics)
    twenty = _compile(_model(tmp_path, 20), tmp_path / "twenty", numerics)
    assert LOOP in five and "static const struct slmc_layer slmc_layers[SLMC_N_LAYERS]" in five
    assert "layers_3_" not in five  # no layer of its own in the C: one body, one row per layer in the table
    n5, n20 = five.count("\n"), twenty.count("\n")
    assert n20 <= 1.1 * n5, (n5, n20)
    # the decoder's output is the caller's `logits`, under that name
    assert "float *logits)" in five or "int32_t *logits)" in five
    unrolled = _compile(_model(tmp_path, 5), tmp_path / "unrolled", numerics, layer_loop=False)
    assert LOOP not in unrolled and "layers_4_" in unrolled and unrolled.count("\n") > 1.5 * n5


def test_every_layer_is_planned_at_layer_0s_offsets():
    cfg = DecoderConfig(dim=32, hidden_dim=64, n_layers=4, n_heads=4, n_kv_heads=2, vocab_size=64, seq_len=32)
    model = random_decoder(cfg, seed=3)
    graphs = [build_step_graph(model, 1), build_step_graph(model, 8)]
    lays = [find_layers(g) for g in graphs]
    assert all(not isinstance(x, str) and x.count == 4 for x in lays), lays
    plan = plan_memory(graphs, {})
    offsets = {b.name: off for b, off in zip(plan.buffers, plan.offsets)}
    checked = 0
    for name, off in offsets.items():
        m = re.match(r"(\w+)/layers\.(\d+)\.(.+)$", name)
        if m:  # what a layer hands on (x_ffn) lies where layer 0 read its input (x)
            g, _, rest = m.groups()
            assert off == offsets[f"{g}/x" if rest == "x_ffn" else f"{g}/layers.0.{rest}"], name
            checked += 1
    assert checked > 4 * 10
    # the folded problem is what the planner solved: layer 0 and the nodes around the layers only
    assert len(Fold(graphs, {}).nodes(graphs[0])) == len(graphs[0].nodes) - 3 * lays[0].size


def _run(project: Path, tmp: Path, prompt: list[int], steps: int) -> tuple[list[int], np.ndarray]:
    logits = tmp / f"{project.name}.f32"
    r = subprocess.run([*SLMC, "run", str(project), "--steps", str(steps), "--prompt-ids", ",".join(map(str, prompt)),
                        "--ids", "--dump-logits", str(logits)], check=True, capture_output=True, text=True)
    return [int(x) for x in r.stdout.split()], np.fromfile(logits, np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("numerics", ["fp32", "q8", "int8"])
def test_looped_and_unrolled_builds_compute_the_same_logits(tmp_path, numerics):
    model = _model(tmp_path, 4, seq_len=48)
    looped, unrolled = tmp_path / "looped", tmp_path / "unrolled"
    assert LOOP in _compile(model, looped, numerics)
    assert LOOP not in _compile(model, unrolled, numerics, layer_loop=False)
    prompt = [1, 7, 300, 42, 9, 11, 200, 5, 77, 31, 2, 64, 128, 3, 99, 1, 450, 17, 23]  # a full prompt chunk and more
    ids_l, logits_l = _run(looped, tmp_path, prompt, 40)
    ids_u, logits_u = _run(unrolled, tmp_path, prompt, 40)
    assert ids_l == ids_u and len(ids_l) > 0
    assert logits_l.size > 0 and np.array_equal(logits_l, logits_u)  # byte for byte


def test_tied_buffers_get_one_offset_and_the_checker_holds_the_plan_to_it():
    from slmc.plan.check import PlanError, check
    from slmc.plan.cpsat import cpsat_plan
    from slmc.plan.lifetimes import Buffer
    from slmc.plan.memory import Placement, greedy_by_size

    # a and c: one buffer of a loop body in two passes (live at different times); e sits where c would go
    bufs = [Buffer("e", 128, 3, 4), Buffer("a", 64, 0, 1), Buffer("c", 64, 3, 4), Buffer("b", 32, 0, 4)]
    free = greedy_by_size(bufs)
    assert free.offsets[1] != free.offsets[2]
    tied = greedy_by_size(bufs, ties=[(1, 2)])
    assert tied.offsets[1] == tied.offsets[2]
    check(bufs, tied, ties=[(1, 2)])
    with pytest.raises(PlanError, match="lie apart"):
        check(bufs, free, ties=[(1, 2)])
    solved, _ = cpsat_plan(bufs, deterministic_time=0.5, ties=[(1, 2)])
    assert solved.offsets[1] == solved.offsets[2] and solved.size <= tied.size
    check(bufs, Placement(solved.offsets, solved.size, "cpsat"), ties=[(1, 2)])
