"""The q8 and int8 FFN pair (issue 21): passes/fuse_gate.py with the target's features fuses w3's product with the
SwiGLU gate into linear_swiglu_q8 / linear_swiglu_i8 (kernels/ffn_pair.py: the product's own kernel row by row,
then the gate's own kernel). Checked here: the rewrite, the kernel it binds (the very product kernel the unfused
w3 binds, on the host, the M33 and RV32), the numpy twins against the unfused graph (bit for bit), and the C on
the host against the unfused kernels and the twin, with the output where the memory plan may put it (over the
gate). Whole programs with and without the fusion, on the host and the emulators: tests/e2e/test_sharing.py."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from slmc.driver import bind
from slmc.frontend.build import build_float_graph
from slmc.frontend.calibrate import formats_for
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.ir import Node
from slmc.kernels.int_llm import int8_layout
from slmc.kernels.llm import q8_layout
from slmc.kernels.overlap import Share
from slmc.kernels.registry import select
from slmc.passes import fuse_gate, quantize_int8, quantize_q8, stream_rows
from slmc.reference.interp import new_state, run
from slmc.reference.registry import REFERENCE
from slmc.targets import get_target

SMALL = replace(SHAPES["stories260K"], dim=32, hidden_dim=88, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64,
                seq_len=32)
PAIR = {"q8": ("linear_q8", "swiglu", "linear_swiglu_q8"), "int8": ("linear_i8", "swiglu_i", "linear_swiglu_i8")}


def _model(bias: bool = False):
    model = random_decoder(SMALL, seed=5, bias=bias)
    if bias:   # random_decoder gives w3 no bias: the fused q8 kernel's bias path
        rng = np.random.default_rng(3)
        model = replace(model, layers=[replace(lw, b3=(0.02 * rng.standard_normal(SMALL.hidden_dim)).astype(np.float32))
                                       for lw in model.layers])
    return model


def _graph(model, numerics: str, seq: int, target: str):
    feats = get_target(target).features
    g = build_float_graph(model, seq, "fp32")
    if numerics == "q8":
        return quantize_q8.run(g, q8_layout(feats))
    return quantize_int8.run(g, formats_for(model), int8_layout(feats))


def _verify(g) -> None:
    defined = {id(v) for v in g.inputs} | {id(v) for v in g.values.values() if v.producer is None}
    for n in g.nodes:
        for v in n.inputs:
            if v is not None:
                assert id(v) in defined and n in v.users and g.values.get(v.name) is v, (n.name, v.name)
        for o in n.outputs:
            assert o.producer is n and g.values.get(o.name) is o
            defined.add(id(o))
    for v in g.values.values():
        assert all(u in g.nodes and v in u.inputs for u in v.users)


@pytest.mark.parametrize("target", ["host", "cortex-m33", "rv32imac"])
@pytest.mark.parametrize("numerics", ["q8", "int8"])
@pytest.mark.parametrize("seq", [2, 6])
def test_the_pass_fuses_the_pair_on_each_isa_around_the_same_product_kernel(target, numerics, seq):
    product, gate_op, fused_op = PAIR[numerics]
    feats = get_target(target).features
    g = _graph(_model(), numerics, seq, target)
    w3 = [n for n in g.nodes if n.op == product and n.inputs[2 if numerics == "q8" else 1].name.startswith("layers.")
          and ".w3." in n.inputs[2 if numerics == "q8" else 1].name]
    kernel = {select(n, feats).c_file for n in w3}
    gate_kernel = {select(n, feats).c_file for n in g.nodes if n.op == gate_op}
    n_before = len(g.nodes)
    g = fuse_gate.run(g, feats)
    _verify(g)
    fused = [n for n in g.nodes if n.op == fused_op]
    assert [n.name for n in fused] == [f"layers.{i}.ffn_act" for i in range(SMALL.n_layers)]
    assert not [n for n in g.nodes if n.op == gate_op] and len(g.nodes) == n_before - SMALL.n_layers
    assert not any(name.endswith(".w3_out") for name in g.values)
    binding = bind([g], get_target(target))
    for n in fused:
        spec = binding[id(n)]
        assert {spec.c_file} == kernel and {spec.deps[len(select(w3[0], feats).deps)]} == gate_kernel
        gate = n.inputs[5 if numerics == "q8" else 3]
        assert gate.producer.op == product and ".w1." in gate.producer.inputs[2 if numerics == "q8" else 1].name
        assert n.outputs[0].shape == (seq, SMALL.hidden_dim)
        assert [(sh.inp, sh.out) for sh in spec.overlap(n)] == [(5 if numerics == "q8" else 3, 0)]
    if target != "host":   # the ISA kernel, not the portable one
        assert kernel != {"linear_q8.c"} and kernel != {"linear_i8.c"}
    assert fuse_gate.run(g, feats) is g and len(g.nodes) == n_before - SMALL.n_layers   # idempotent


@pytest.mark.parametrize("numerics", ["q8", "int8"])
def test_without_features_on_host_native_and_in_decode_steps_the_pair_stays_apart(numerics):
    """No features: the fp32 pass as it was. host-native's q8 products reassociate their sums (kernels/native.py):
    the fused kernel would wrap another product than the unfused w3's. A decode step (one row): the programs
    whose instructions are counted per operator stay as they were (the pair saves nothing there)."""
    g = _graph(_model(), numerics, 4, "host")
    ops = [n.op for n in g.nodes]
    assert [n.op for n in fuse_gate.run(g).nodes] == ops
    if numerics == "q8":
        native = get_target("host-native").features
        assert [n.op for n in stream_rows.run(fuse_gate.run(g, native), native).nodes] == ops
    for target in ("host", "cortex-m33", "rv32imac"):
        feats = get_target(target).features
        one = _graph(_model(), numerics, 1, target)
        ops1 = [n.op for n in one.nodes]
        assert [n.op for n in stream_rows.run(fuse_gate.run(one, feats), feats).nodes] == ops1


@pytest.mark.parametrize("target", ["host", "cortex-m33", "rv32imac"])
def test_stream_rows_rewrites_the_single_reader_quantizers_and_the_gate_product(target):
    feats = get_target(target).features
    g = fuse_gate.run(_graph(_model(), "q8", 5, target), feats)
    product = {n.name: select(n, feats).c_file for n in g.nodes if n.op == "linear_q8"}
    quantizer = next(select(n, feats).c_file for n in g.nodes if n.op == "quantize_q8")
    g = stream_rows.run(g, feats)
    _verify(g)
    by_op: dict[str, list[str]] = {}
    for n in g.nodes:
        by_op.setdefault(n.op, []).append(n.name.split(".")[-1])
    L = SMALL.n_layers
    assert by_op["quantize_linear_q8"] == ["wo_out", "w2_out"] * L + ["tok_embeddings_out"]   # the tied classifier
    assert by_op["linear_q8_by_row"] == ["w1_out"] * L
    assert sorted(by_op["linear_q8"]) == sorted(["wq_out", "wk_out", "wv_out"] * L)   # one quantizer, three readers
    assert len(by_op["quantize_q8"]) == 2 * L   # attn_norm_out's and ffn_norm_out's (two readers each)
    binding = bind([g], get_target(target))
    for n in g.nodes:
        if n.op in ("quantize_linear_q8", "linear_q8_by_row"):
            spec = binding[id(n)]
            assert spec.c_file == product[n.name]   # the kernel the unfused product bound
            if n.op == "quantize_linear_q8":
                assert quantizer in spec.deps and [sh.inp for sh in spec.overlap(n)] == [0]
    assert stream_rows.run(g, feats) is g and [n.op for n in g.nodes] == [n.op for n in stream_rows.run(g, feats).nodes]


@pytest.mark.parametrize("numerics,bias", [("q8", False), ("q8", True), ("int8", False)])
@pytest.mark.parametrize("seq", [1, 5])
def test_the_twins_give_the_unfused_graphs_outputs_bit_for_bit(numerics, bias, seq):
    model = _model(bias)
    plain = _graph(model, numerics, seq, "host")
    feats = get_target("host").features
    fused = stream_rows.run(fuse_gate.run(_graph(model, numerics, seq, "host"), feats), feats)
    assert any(n.op == PAIR[numerics][2] for n in fused.nodes) == (seq > 1)
    rng = np.random.default_rng(2)
    s_plain, s_fused = new_state(plain), new_state(fused)
    for pos in range(0, 3 * seq, seq):
        feeds = {"tokens": rng.integers(0, SMALL.vocab_size, seq).astype(np.int32), "pos": np.array([pos], np.int32)}
        want, got = run(plain, feeds, s_plain, keep=True), run(fused, feeds, s_fused, keep=True)
        np.testing.assert_array_equal(got[fused.outputs[0].name], want[plain.outputs[0].name])
        for i in range(SMALL.n_layers):
            np.testing.assert_array_equal(got[f"layers.{i}.ffn_act"], want[f"layers.{i}.ffn_act"])
    for k in s_plain:
        np.testing.assert_array_equal(s_fused[k], s_plain[k])


# ---- the C on the host: the fused node's call against the unfused w3 + gate calls and the twin ----------------

def _harness():
    """tests/kernels/test_overlap_c.py's harness (by path: a `kernels` package in site-packages shadows the folder)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_overlap_c", Path(__file__).parents[1] / "kernels" / "test_overlap_c.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.ROWS, mod._data, mod._program, mod._run


@pytest.mark.parametrize("numerics,bias", [("q8", False), ("q8", True), ("int8", False)])
def test_the_c_pair_is_bit_identical_to_the_unfused_kernels_and_the_twin(tmp_path, numerics, bias):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    ROWS, _data, _program, _run = _harness()

    model = _model(bias)
    host = get_target("host")
    plain = _graph(model, numerics, ROWS, "host")
    fused = fuse_gate.run(_graph(model, numerics, ROWS, "host"), host.features)
    pair = next(n for n in fused.nodes if n.op == PAIR[numerics][2] and n.name == "layers.1.ffn_act")
    gate_sw = next(n for n in plain.nodes if n.op == PAIR[numerics][1] and n.name == "layers.1.ffn_act")
    w3 = gate_sw.inputs[1].producer
    rng = np.random.default_rng(9)
    blobs = {id(v): _data(v, rng) for v in pair.inputs if v is not None}
    for v in w3.inputs:   # the same operands for the unfused calls (x, xq/xs, the weights)
        if v is not None and id(v) not in blobs:
            twin = next(p for p in pair.inputs if p is not None and p.name == v.name)
            blobs[id(v)] = blobs[id(twin)]
    blobs[id(gate_sw.inputs[0])] = blobs[id(pair.inputs[5 if numerics == "q8" else 3])]
    if numerics == "int8":
        blobs[id(gate_sw.inputs[2])] = blobs[id(pair.inputs[4])]
    first = Share(0, 0, 1, 1, 1)

    def call(node: Node, extra: dict[int, bytes] | None = None) -> bytes:
        spec = select(node, host.features)
        exe = _program(tmp_path, node, spec)
        data = {**blobs, **(extra or {})}
        return _run(exe, tmp_path, node, spec, [None if v is None else data[id(v)] for v in node.inputs], first, None)

    got = call(pair)
    u = call(w3)
    want = call(gate_sw, {id(gate_sw.inputs[1]): u})
    assert got == want
    # the output over the gate, as the plan may place it (the contract's range: tests/kernels/test_overlap_c.py)
    spec = select(pair, host.features)
    exe = _program(tmp_path, pair, spec)
    share = spec.overlap(pair)[0]
    for d in sorted({0, share.hi // 2 * 2 if numerics == "int8" else 0, share.lo}):
        assert _run(exe, tmp_path, pair, spec, [None if v is None else blobs[id(v)] for v in pair.inputs], share, d) == want
    # the numpy twin: exact in integers; in q8 the C library's expf may differ from numpy's exp in the last bit
    ins = [None if v is None else np.frombuffer(blobs[id(v)], v.dtype.np).reshape(v.shape) for v in pair.inputs]
    twin = REFERENCE[pair.op](ins, pair.attrs)[0]
    out = np.frombuffer(got, twin.dtype).reshape(twin.shape)
    if numerics == "int8":
        np.testing.assert_array_equal(out, twin)
    else:
        np.testing.assert_allclose(out, twin, rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("name", ["layers.1.w2_out", "layers.0.wo_out", "tok_embeddings_out", "layers.1.w1_out"])
def test_the_c_row_streamed_products_are_bit_identical_to_the_unfused_kernels(tmp_path, name):
    """quantize_linear_q8 (w2: group 4; wo; the classifier) against quantize_q8 then linear_q8, linear_q8_by_row
    (w1) against linear_q8, on the host, with the output in a buffer of its own and (quantize_linear_q8) over x."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    ROWS, _data, _program, _run = _harness()
    host = get_target("host")
    plain = _graph(_model(True), "q8", ROWS, "host")
    streamed = stream_rows.run(fuse_gate.run(_graph(_model(True), "q8", ROWS, "host"), host.features), host.features)
    node = next(n for n in streamed.nodes if n.name == name)
    p = next(n for n in plain.nodes if n.name == name)
    rng = np.random.default_rng(4)
    blob = {v.name: _data(v, rng) for v in node.inputs if v is not None}
    first = Share(0, 0, 1, 1, 1)

    def call(n: Node, data: dict[str, bytes], out: int = 0, share=first, d=None) -> bytes:
        spec = select(n, host.features)
        exe = _program(tmp_path, n, spec)
        return _run(exe, tmp_path, n, spec, [None if v is None else data[v.name] for v in n.inputs],
                    Share(out, share.inp, 1, 1, 1) if d is None else share, d)

    got = call(node, blob)
    if node.op == "linear_q8_by_row":
        assert p.op == "linear_q8"
        want = call(p, blob)
    else:
        assert node.op == "quantize_linear_q8"
        q = p.inputs[0].producer
        xq, xs = call(q, blob, 0), call(q, blob, 1)
        want = call(p, {**blob, p.inputs[0].name: xq, p.inputs[1].name: xs})
        spec = select(node, host.features)
        for share in spec.overlap(node):   # the output over x, where the plan may put it
            for d in sorted({share.lo, min(share.hi, 0), share.hi // 4 * 4 if share.hi >= 0 else share.lo}):
                if share.lo <= d <= share.hi:
                    assert call(node, blob, share=share, d=d) == want, d
    assert got == want
    ins = [None if v is None else np.frombuffer(blob[v.name], v.dtype.np).reshape(v.shape) for v in node.inputs]
    twin = REFERENCE[node.op](ins, node.attrs)[0]
    np.testing.assert_array_equal(np.frombuffer(got, np.float32).reshape(twin.shape), twin)
