"""-q int8 (integer-only) for the families of issue 17 (hf_cases.py: built by transformers from their real
configs, shrunk, seeded): each family's int8 host build compiles and runs, its logits are bit-identical to the
numpy twin of the same integer graph (passes/quantize_int8.py run on reference/), and its agreement with
fp32 (top-1 over a teacher-forced sequence and max logit error, the compile report's figures, and the max
logit error of the C program against transformers) is printed, stored in report.json's `int8` (and, with
SLMC_INT8_FIGURES=PATH, in that JSON file for README), and held to a loose bound a broken kernel would miss.
One family per new integer kernel also on cortex-m33 and rv32imac (slow), with toolchain/floatcheck.py
proving the forward pass free of floating point. On the numpy interpreter, each feature's integer graph
tracks fp32, and partitions over two chips and batches bit-identically. What int8 still refuses (mixtures
of experts) is one line, exit 2.

    SLMC_INT8_FIGURES=/tmp/int8.json python -m pytest -q -m slow tests/families/test_int8_features.py -k agrees
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_slmc
from families.hf_cases import SUPPORTED, hf_logits, hf_model, save

from slmc.errors import SlmcError

# every non-MoE family that int8 covers, and what each brings beyond Llama
INT8 = {
    "llama": "Llama (untied)", "llama3_2": "llama3 RoPE scaling, tied", "mistral": "window beyond the context",
    "qwen2": "q/k/v biases", "gpt2": "LayerNorm, GELU-tanh, learned positions, biases", "olmo": "LayerNorm without "
    "weight or bias", "phi3": "fused projections", "phi3_5": "LongRoPE", "qwen3": "qk-norm per head",
    "stablelm": "LayerNorm with bias, partial rotary, biases", "phi": "parallel residual, partial rotary, GELU-tanh, "
    "classifier bias", "gpt_neox": "parallel residual, partial rotary, erf GELU", "gemma": "GeGLU, embedding scale",
    "gemma3": "sandwich norms, qk-norm, windows, second RoPE base, attention scale", "granite": "embedding, residual, "
    "attention and logit multipliers", "smollm3": "NoPE layers", "opt": "ReLU, learned positions at offset 2, biases",
    "gpt_neo": "windows, unscaled scores, learned positions", "olmo2": "post-norms only, qk-norm over the projection"}
INT8["gemma2"] = "soft-capping of scores and logits, sandwich norms, alternating windows, GeGLU"
REFUSED = {"mixtral": "mixture-of-experts", "qwen3_moe": "mixture-of-experts"}
PROMPT = [1, 17, 42, 99]
STEPS = 16
CONTEXT = 32
TOP1_FLOOR = 0.6        # a broken kernel drops to chance (1/256); int8 rounding costs a few positions


def _seed(name: str) -> int:
    case = SUPPORTED[name]
    return case.seed if case.seed >= 0 else list(SUPPORTED).index(name)


def _twin_logits(model, ids: list[int]) -> np.ndarray:
    """The int8 graph of the model (the formats the compile calibrated) on the numpy interpreter, as the C
    program's float32 logits: int32 * 2^-logits."""
    from slmc.frontend.build import build_float_graph
    from slmc.frontend.calibrate import formats_for
    from slmc.passes import quantize_int8
    from slmc.reference.interp import new_state, run

    fm = formats_for(model)
    g = quantize_int8.run(build_float_graph(replace(model, config=replace(model.config, seq_len=CONTEXT))), fm)
    state, rows = new_state(g), []
    for p, t in enumerate(ids):
        rows.append(run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)[g.outputs[0].name][0])
    return np.stack(rows).astype(np.float32) * np.float32(2.0 ** -fm.logits)


def compile_int8(name: str, tmp: Path, target: str = "host"):
    """The family's folder compiled with -q int8 in this process (so the twin reads the same calibration)."""
    from slmc.driver import CompileOptions, compile_model
    from slmc.frontend.load import load_model

    hf = hf_model(SUPPORTED[name], seed=_seed(name))
    folder = save(hf, tmp / name)
    model = load_model(folder)
    out = tmp / f"out_{target}"
    compile_model(CompileOptions(model=folder, numerics="int8", target=target, context=CONTEXT, out=out), model=model)
    return hf, model, out


def run_logits(out: Path, tmp: Path) -> tuple[np.ndarray, list[int]]:
    dump = tmp / f"{out.name}.f32"
    r = run_slmc("run", out, "--steps", STEPS, "--prompt-ids", ",".join(map(str, PROMPT)), "--ids",
                 "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(dump, np.float32).reshape(-1, 256)
    assert got.shape[0] == STEPS
    return got, PROMPT + [int(t) for t in got[len(PROMPT) - 1:-1].argmax(axis=1)]


def _store(name: str, row: dict) -> None:
    """With SLMC_INT8_FIGURES=PATH (as figures.py's SLMC_FIGURES), the row is merged into the JSON file PATH
    ({family: row}), README's int8 figures; without it, nothing is written (report.json holds them per build)."""
    path = os.environ.get("SLMC_INT8_FIGURES")
    if not path:
        return
    p = Path(path)
    table = json.loads(p.read_text()) if p.exists() else {}
    table[name] = row
    p.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(INT8))
def test_int8_family_runs_equals_twin_and_agrees(tmp_path: Path, name: str) -> None:
    hf, model, out = compile_int8(name, tmp_path)
    got, ids = run_logits(out, tmp_path)
    assert np.array_equal(got, _twin_logits(model, ids)), "the C program's int8 logits differ from the numpy twin"
    want = hf_logits(hf, ids)
    err, top = float(np.abs(got - want).max()), float(np.abs(want).max())
    top1 = float((got.argmax(1) == want.argmax(1)).mean())
    rep = json.loads((out / "report.json").read_text())["int8"]
    row = dict(features=INT8[name], top1_agreement=rep["top1_agreement"], positions=rep["positions"],
               mean_kl=rep["mean_kl"], twin_max_logit_error=rep["max_logit_error"], c_max_logit_error=err,
               c_top1_vs_transformers=top1, max_logit=top)
    _store(name, row)
    print(f"\n{name} int8: top-1 {rep['top1_agreement']:.1%} over {rep['positions']} teacher-forced positions, "
          f"max |logit error| {rep['max_logit_error']:.3f}; the C program against transformers: max |logit error| "
          f"{err:.3f} (max |logit| {top:.2f}), top-1 {top1:.0%}")
    assert rep["top1_agreement"] >= TOP1_FLOOR and top1 >= TOP1_FLOOR, row
    assert err < 0.25 * top, row


# the features of test_features.py's random decoders (and the FFNs and positions beyond them), on the numpy
# interpreter: the integer graph holds integers only and tracks the fp32 reference
EXTRA = {"gpt2_like": dict(norm="layer", ffn="gelu_tanh", pos="learned", n_kv_heads=4),
         "opt_like": dict(norm="layer", ffn="relu", pos="learned", n_kv_heads=4), "silu_mlp": dict(ffn="silu"),
         "post_norms_full_qk_norm": dict(norm_place="post", qk_norm="full")}


FEATURES_INT8 = ["qk_norm_head", "sandwich_norms", "post_norms", "parallel_partial_rotary", "geglu_multipliers",
                 "windows_softcaps_nope", *EXTRA]


def _feature_model(feature: str):
    from families.test_features import BASE, FEATURES

    from slmc.frontend import calibrate as cal
    from slmc.frontend.random_model import random_decoder

    model = random_decoder(replace(BASE, **{**FEATURES, **EXTRA}[feature]), 7, bias=True)
    return model, cal.formats_for(model)


def _decode(g, ids: list[int]) -> np.ndarray:
    from slmc.reference.interp import new_state, run

    state = new_state(g)
    return np.stack([run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)
                     [g.outputs[0].name][0] for p, t in enumerate(ids)])


@pytest.mark.parametrize("feature", FEATURES_INT8)
def test_int8_graph_of_each_feature_tracks_fp32(feature: str) -> None:
    from slmc.frontend.build import build_float_graph
    from slmc.frontend.logits import reference_logits
    from slmc.passes import quantize_int8

    model, fm = _feature_model(feature)
    g = quantize_int8.run(build_float_graph(model), fm)
    assert all(v.dtype.np.kind in "iu" for v in g.values.values()), feature
    ids = [1, 5, 9, 33, 2, 70, 11, 4, 8, 15, 16, 23, 42, 3]
    ref = reference_logits(model, ids)
    got = _decode(g, ids) * 2.0 ** -fm.logits
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    print(f"\n{feature}: int8 top-1 {(got.argmax(1) == ref.argmax(1)).mean():.0%}, max |logit error| / max |logit| {err:.3f}")
    assert err < 0.25 and (got.argmax(1) == ref.argmax(1)).mean() >= 0.75, (feature, err)


@pytest.mark.parametrize("feature", FEATURES_INT8)
def test_int8_features_over_two_chips_equal_one_chip(feature: str) -> None:
    """passes/partition.py over each feature's integer graph (biases after the chips' sum): bit-identical."""
    from slmc.frontend.build import build_float_graph
    from slmc.passes import partition, quantize_int8
    from slmc.plan.partition import partition_model
    from slmc.reference.multichip import new_states, run_chips

    model, fm = _feature_model(feature)
    one = quantize_int8.run(build_float_graph(model), fm)
    plan = partition_model(model, 2, 2, "int8")
    if model.config.qk_norm == "full":  # as in fp32 and q8 (test_features.py): one line
        with pytest.raises(SlmcError, match="qk-norm over the whole projection"):
            partition.run(one, plan, 0)
        return
    graphs = [partition.run(one, plan, c) for c in range(2)]
    states, ids = new_states(graphs), [1, 9, 33, 4, 70, 12, 5, 60]
    for p, (t, want) in enumerate(zip(ids, _decode(one, ids))):
        feeds = {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}
        assert np.array_equal(run_chips(graphs, plan, feeds, states)[0][graphs[0].outputs[0].name][0], want), p


@pytest.mark.parametrize("feature", FEATURES_INT8)
def test_int8_features_batched_equal_one_sequence(feature: str) -> None:
    """passes/batch.py over each feature's integer graph (learned positions per row): each row's logits are
    its sequence's alone."""
    from slmc.frontend.build import build_float_graph
    from slmc.passes import batch, quantize_int8
    from slmc.reference.interp import new_state, run

    model, fm = _feature_model(feature)
    bg = batch.run(quantize_int8.run(build_float_graph(model, 4), fm), 4)
    one = quantize_int8.run(build_float_graph(model), fm)
    seqs = [[1, 40, 30, 20, 50], [1, 7, 9]]
    want = [_decode(one, s) for s in seqs]
    state = new_state(bg)
    for rows in [[(0, 0), (0, 1), (0, 2), (1, 0)], [(0, 3), (1, 1)], [(1, 2), (0, 4)]]:
        pad = 4 - len(rows)
        feed = {"tokens": [seqs[q][p] for q, p in rows] + [0] * pad, "pos": [p for _, p in rows] + [0] * pad,
                "slot": [q for q, _ in rows] + [3] * pad}
        out = run(bg, {k: np.array(v, np.int32) for k, v in feed.items()}, state)[bg.outputs[0].name]
        for i, (q, p) in enumerate(rows):
            assert np.array_equal(out[i], want[q][p]), (q, p)


@pytest.mark.parametrize("name, feature", list(REFUSED.items()))
def test_int8_refuses_what_it_has_no_integer_form_of(tmp_path: Path, name: str, feature: str) -> None:
    folder = save(hf_model(SUPPORTED[name], seed=_seed(name)), tmp_path / name)
    r = run_slmc("compile", folder, "-q", "int8", "--context", CONTEXT, "-o", tmp_path / "out")
    one_line_error(r, "-q int8", feature)


# one family per new integer kernel on the MCU cores: GPT-2 (layernorm_i, gelu_i, pos_embedding_i8, bias_i),
# OPT (relu_i), Granite (scale_i), Gemma 2 (softcap_i, attention_i's soft-cap and window, rmsnorm_i into
# int32, GeGLU's table), Gemma 3 (rmsnorm_i per head), GPT-NeoX (partial rotary rope_i), OLMo 2 (narrow_i)
MCU = ["gpt2", "opt", "granite", "gemma2", "gemma3", "gpt_neox", "olmo2"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
@pytest.mark.parametrize("name", MCU)
def test_int8_family_on_mcu_equals_host_without_float(tmp_path: Path, name: str, target: str) -> None:
    from slmc.targets import get_target
    from slmc.toolchain.build import build
    from slmc.toolchain.floatcheck import reachable_float

    hf, model, out = compile_int8(name, tmp_path, target)
    got, ids = run_logits(out, tmp_path)
    assert np.array_equal(got, _twin_logits(model, ids)), (name, target)
    elf = build(out)
    assert reachable_float(elf, get_target(target).tool_prefix + "objdump") == [], (name, target)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "gemma2"])
def test_int8_family_over_chips_and_batched_gives_one_chips_logits(tmp_path: Path, name: str) -> None:
    """The C programs of `--chips 2` (biases after the int64 sum) give the single program's logits bit for
    bit, and of `--batch 2` (learned positions per row) its greedy ids."""
    folder = save(hf_model(SUPPORTED[name], seed=_seed(name)), tmp_path / name)
    logits, ids = {}, {}
    for how, extra in (("one", []), ("chips", ["--chips", 2]), ("batch", ["--batch", 2])):
        out = tmp_path / how
        r = run_slmc("compile", folder, "-q", "int8", "--context", CONTEXT, *extra, "-o", out)
        assert r.returncode == 0, r.stderr
        if how != "batch":  # (a batched build dumps no logits)
            logits[how], _ = run_logits(out, tmp_path)
        if how != "chips":
            r = run_slmc("run", out, "--steps", STEPS, "--prompt-ids", ",".join(map(str, PROMPT)), "--ids")
            assert r.returncode == 0, r.stderr
            ids[how] = r.stdout.split()
    assert np.array_equal(logits["chips"], logits["one"])
    assert ids["batch"] == ids["one"] and len(ids["one"]) > 4, ids
