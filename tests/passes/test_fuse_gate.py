"""passes/fuse_gate.py: linear(w3) + swiglu -> linear_swiglu, and its kernel linear_swiglu_f32.c, which must be
bit-identical to linear_f32.c followed by swiglu_f32.c (in the numpy twin and directly in C; whole generated
models with and without the fusion: tests/e2e/test_sharing.py)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from conftest import shared_path
from slmc.frontend import llama2c
from slmc.frontend.build import build_step_graph
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.passes import fuse_gate
from slmc.reference.interp import new_state, run

SMALL = replace(SHAPES["stories260K"], dim=48, hidden_dim=100, n_layers=2, n_heads=6, n_kv_heads=2, vocab_size=80,
                seq_len=48)


def _model(which: str):
    if which == "stories260K":
        return llama2c.load(shared_path("models/stories260K/stories260K.bin"))
    model = random_decoder(SMALL, seed=7, bias=which == "random_bias")
    if which == "random_bias":  # random_decoder gives w1 and w2 biases but none to w3: the fused kernel's bias path
        rng = np.random.default_rng(11)
        model = replace(model, layers=[replace(lw, b3=(0.02 * rng.standard_normal(SMALL.hidden_dim)).astype(np.float32))
                                       for lw in model.layers])
    return model


def _verify(g) -> None:
    """Def-use links and topological order of the graph after the pass."""
    defined = {id(v) for v in g.inputs} | {id(v) for v in g.values.values() if v.producer is None}
    for n in g.nodes:
        for v in n.inputs:
            if v is not None:
                assert id(v) in defined, f"{n.name} reads {v.name} before it is defined"
                assert n in v.users, f"{v.name} does not list its user {n.name}"
                assert g.values.get(v.name) is v, f"{v.name} is not in the graph's values"
        for o in n.outputs:
            assert o.producer is n and g.values.get(o.name) is o
            defined.add(id(o))
    for v in g.values.values():
        for u in v.users:
            assert u in g.nodes and v in u.inputs, f"{v.name} lists a stale user {u.name}"
    assert all(id(v) in defined for v in g.outputs)


@pytest.mark.parametrize("which", ["stories260K", "random", "random_bias"])
@pytest.mark.parametrize("seq", [1, 8])
def test_the_pass_fuses_every_up_projection(which, seq):
    model = _model(which)
    g = build_step_graph(model, seq, "fp32")
    n_before = len(g.nodes)
    w3 = {f"layers.{i}.w3" for i in range(model.config.n_layers)}
    g = fuse_gate.run(g)
    _verify(g)
    assert not [n for n in g.nodes if n.op == "swiglu"]
    assert not [n for n in g.nodes if n.op == "linear" and n.inputs[1].name in w3]
    assert not any(name.endswith(".w3_out") for name in g.values)
    fused = [n for n in g.nodes if n.op == "linear_swiglu"]
    assert [n.name for n in fused] == [f"layers.{i}.ffn_act" for i in range(model.config.n_layers)]
    assert len(g.nodes) == n_before - model.config.n_layers
    for n in fused:
        x, w, b, gate = n.inputs
        assert w.name.endswith(".w3") and gate.producer.inputs[1].name.endswith(".w1")
        assert (b is not None) == (which == "random_bias")
        assert n.outputs[0].shape == (seq, model.config.hidden_dim)
    assert fuse_gate.run(g) is g and len(g.nodes) == n_before - model.config.n_layers  # idempotent


@pytest.mark.parametrize("layout", ["", "rows4"])
@pytest.mark.parametrize("seq", [1, 8])
def test_q8_graphs_are_left_alone(seq, layout):
    g = build_step_graph(random_decoder(SMALL, seed=7), seq, "q8", q8_layout=layout)
    before = [(n, n.op, n.name, list(n.inputs), list(n.outputs)) for n in g.nodes]
    values = dict(g.values)
    fuse_gate.run(g)
    assert [(n, n.op, n.name, list(n.inputs), list(n.outputs)) for n in g.nodes] == before
    assert g.values == values


def test_a_shared_or_output_up_projection_is_not_fused():
    g = build_step_graph(random_decoder(SMALL, seed=7), 1, "fp32")
    u0 = next(n for n in g.nodes if n.op == "swiglu").inputs[1]     # layer 0: u is also a graph output
    g.outputs = [*g.outputs, u0]
    g = fuse_gate.run(g)
    _verify(g)
    assert [n.name for n in g.nodes if n.op == "swiglu"] == ["layers.0.ffn_act"]
    assert [n.name for n in g.nodes if n.op == "linear_swiglu"] == ["layers.1.ffn_act"]


@pytest.mark.parametrize("which", ["stories260K", "random_bias"])
@pytest.mark.parametrize("seq", [1, 8])
def test_the_reference_gives_the_same_outputs(which, seq):
    model = _model(which)
    plain, fused = build_step_graph(model, seq, "fp32"), fuse_gate.run(build_step_graph(model, seq, "fp32"))
    rng = np.random.default_rng(1)
    s_plain, s_fused = new_state(plain), new_state(fused)
    for step, pos in enumerate(range(0, 3 * seq, seq)):
        feeds = {"tokens": rng.integers(0, model.config.vocab_size, seq).astype(np.int32),
                 "pos": np.array([pos], np.int32)}
        want = run(plain, feeds, s_plain, keep=True)
        got = run(fused, feeds, s_fused, keep=True)
        np.testing.assert_array_equal(got["logits" if "logits" in got else fused.outputs[0].name],
                                      want[plain.outputs[0].name])
        for i in range(model.config.n_layers):  # the FFN activation itself, not only what follows it
            np.testing.assert_array_equal(got[f"layers.{i}.ffn_act"], want[f"layers.{i}.ffn_act"])
    for k in s_plain:
        np.testing.assert_array_equal(s_fused[k], s_plain[k])


# ---- the C kernel against linear_f32.c + swiglu_f32.c ------------------------------------------------------

_CFLAGS = ["-O2", "-std=c99", "-ffp-contract=off"]  # the host target's (targets/builtin.py)


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    from slmc.kernels.registry import C_DIR

    so = tmp_path_factory.mktemp("fuse_gate") / "libk.so"
    srcs = [str(C_DIR / f) for f in ("linear_f32.c", "swiglu_f32.c", "linear_swiglu_f32.c")]
    subprocess.run(["gcc", *_CFLAGS, "-shared", "-fPIC", f"-I{C_DIR}", "-o", str(so), *srcs, "-lm"], check=True)
    lib = ctypes.CDLL(str(so))
    p = ctypes.c_void_p
    lib.slmc_linear_f32.argtypes = [p, p, p, p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.slmc_swiglu_f32.argtypes = [p, p, p, ctypes.c_int]
    lib.slmc_linear_swiglu_f32.argtypes = [p, p, p, p, p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    for fn in (lib.slmc_linear_f32, lib.slmc_swiglu_f32, lib.slmc_linear_swiglu_f32):
        fn.restype = None
    return lib


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data


@pytest.mark.slow
@pytest.mark.parametrize("n,k,m", [(1, 64, 172), (8, 64, 172), (3, 13, 7), (5, 7, 9), (2, 8, 1), (4, 101, 33),
                                   (1, 1, 1)])
@pytest.mark.parametrize("bias", [False, True])
def test_the_c_kernel_is_bit_identical_to_linear_then_swiglu(kernels, n, k, m, bias):
    rng = np.random.default_rng(n * 1000 + k * 10 + m)
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(np.float32)
    b = (0.1 * rng.standard_normal(m)).astype(np.float32) if bias else None
    gate = (3 * rng.standard_normal((n, m))).astype(np.float32)
    gate.flat[:: 5] = np.array([0.0, -0.0, 90.0, -90.0, 1e-30, np.inf, -np.inf], np.float32)[
        np.arange(gate.size)[:: 5] % 7]  # the exp's edges: overflow, underflow, infinities, signed zero
    u = np.empty((n, m), np.float32)
    want = np.empty((n, m), np.float32)
    kernels.slmc_linear_f32(_ptr(u), _ptr(x), _ptr(w), _ptr(b), n, k, m)
    kernels.slmc_swiglu_f32(_ptr(want), _ptr(gate), _ptr(u), n * m)
    got = np.full((n, m), np.nan, np.float32)
    kernels.slmc_linear_swiglu_f32(_ptr(got), _ptr(x), _ptr(w), _ptr(b), _ptr(gate), n, k, m)
    assert got.tobytes() == want.tobytes()
    inplace = gate.copy()  # out in exactly the gate's bytes, as the memory planner may place it
    kernels.slmc_linear_swiglu_f32(_ptr(inplace), _ptr(x), _ptr(w), _ptr(b), _ptr(inplace), n, k, m)
    assert inplace.tobytes() == want.tobytes()
