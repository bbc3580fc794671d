"""-q int8 (quant/int8.py, passes/quantize_int8.py): the integer building blocks against exact maths, the
integer graph against the fp32 reference, and the generated C against its numpy twin bit for bit."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from slmc.frontend.build import build_float_graph
from slmc.passes import quantize_int8
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.frontend import calibrate as cal
from slmc.quant import int8 as q
from slmc.frontend.logits import reference_logits
from slmc.reference.int_llm_ops import exp2_neg, isqrt, rdiv, rshift_round, sigmoid_q15
from slmc.reference.interp import new_state, run

SMALL = replace(SHAPES["stories260K"], dim=48, hidden_dim=96, n_layers=2, n_heads=6, n_kv_heads=2, vocab_size=80,
                seq_len=48)


def test_integer_helpers_are_exact():
    rng = np.random.default_rng(0)
    n = rng.integers(-10**12, 10**12, 2000)
    d = rng.integers(1, 10**6, 2000)
    want = [int(math.copysign(math.floor(abs(Fraction(int(a), int(b))) + Fraction(1, 2)), a)) for a, b in zip(n, d)]
    assert rdiv(n, d).tolist() == want
    assert rshift_round(np.array([5, -5, 6, -6, 7]), 1).tolist() == [3, -2, 3, -3, 4]  # (v + 1) >> 1, floor
    for v in [0, 1, 2, 3, 4, 15, 16, 17, 2**62 - 1, 10**18]:
        assert isqrt(v) == math.isqrt(v)


def test_exp2_and_sigmoid_tables_approximate_the_functions():
    u = np.arange(0, 40 << 16, 997, dtype=np.int64)
    got = exp2_neg(u, q.EXP2_LUT.astype(np.int64)) / 2**15
    want = 2.0 ** (-u / 65536)
    assert np.abs(got - want).max() < 4e-5  # Q15 with linear interpolation between 1/256 steps
    f = 12
    g = np.arange(-(10 << f), 10 << f, 37, dtype=np.int64)
    sg = sigmoid_q15(g, f, q.SIGMOID_LUT.astype(np.int64), q.SIGMOID_STEP_LOG2, q.SIGMOID_RANGE) / 2**15
    assert np.abs(sg - 1 / (1 + np.exp(-g / 2**f))).max() < 4e-4  # clamped to [-8, 8): sigmoid(8) = 0.99966


def test_int_weights_reproduce_the_q8_scales():
    w = np.random.default_rng(1).standard_normal((16, 128)).astype(np.float32)
    iw = q.int_weights(w, 11, 20)
    from slmc.quant.q8 import ensure_q8

    t = ensure_q8(w)
    assert np.array_equal(iw.q, t.q) and iw.group == t.group
    real = t.s.astype(np.float64) * 2.0 ** 9
    assert np.abs(iw.m / 2.0**iw.shift - real).max() <= 2.0 ** -iw.shift  # rounding of the multiplier only
    assert iw.m.max() < 2**q.MULT_BITS


@pytest.mark.parametrize("variant", ["gqa", "mha_halfrope_untied"])
def test_integer_graph_tracks_the_fp32_reference(variant):
    cfg = SMALL if variant == "gqa" else replace(SMALL, n_kv_heads=6, rope_interleaved=False)
    model = random_decoder(cfg, seed=5, tied=variant == "gqa")
    fm = cal.calibrate(model, cal.calibration_ids(model, 2, 32))
    g = quantize_int8.run(build_float_graph(model), fm)
    ids = [1, 7, 30, 2, 55, 61, 12, 9, 40, 41, 42, 3]
    ref = reference_logits(model, ids)
    state, rows = new_state(g), []
    for p, t in enumerate(ids):
        rows.append(run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)[g.outputs[0].name][0])
    got = np.stack(rows) * 2.0 ** -fm.logits
    assert all(v.dtype.np.kind in "iu" for v in g.values.values())  # integer-only, inputs to logits
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err < 0.05, err
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.75


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gqa", "mha_halfrope_untied"])
def test_generated_c_equals_its_numpy_twin(tmp_path, variant):
    from slmc.driver import CompileOptions, compile_model
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_events

    cfg = SMALL if variant == "gqa" else replace(SMALL, n_kv_heads=6, rope_interleaved=False)
    model = random_decoder(cfg, seed=5, tied=variant == "gqa")
    rep = compile_model(CompileOptions(model=tmp_path / "model.bin", numerics="int8", out=tmp_path / "m"), model=model)
    assert 0 <= rep["int8"]["top1_agreement"] <= 1 and rep["int8"]["mean_kl"] >= 0
    prompt = [1, 5, 9, 17, 33, 2, 40]
    logits = tmp_path / "l.f32"
    res = run_events([str(build(tmp_path / "m")), *llm_args(32, 0.0, 0.9, 1, prompt, logits)])
    got = np.fromfile(logits, np.float32).reshape(-1, cfg.vocab_size)
    fm = cal.formats_for(model)
    g = quantize_int8.run(build_float_graph(model), fm)
    state, rows = new_state(g), []
    for p, t in enumerate((prompt + res.ids)[:32]):
        rows.append(run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)[g.outputs[0].name][0])
    want = np.stack(rows).astype(np.float32) * np.float32(2.0 ** -fm.logits)
    assert np.array_equal(got, want)


def test_int8_refuses_a_float_onnx_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    from typer.testing import CliRunner

    from slmc.cli import app

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    onnx.save(model, tmp_path / "f.onnx")
    r = CliRunner().invoke(app, ["compile", str(tmp_path / "f.onnx"), "-q", "int8", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "quantizes language models only" in r.output
    assert not (tmp_path / "o").exists()


def test_int8_refuses_a_mixture_of_experts():
    """GPT-2-style blocks (LayerNorm, GELU, learned positions, biases) have integer forms now
    (tests/families/test_int8_features.py); experts do not."""
    from slmc.errors import SlmcError

    model = random_decoder(replace(SMALL, n_experts=4, top_k=2), seed=1)
    with pytest.raises(SlmcError, match="mixture-of-experts"):
        cal.formats_for(model)
