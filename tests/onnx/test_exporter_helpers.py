"""Exporters' helper subgraphs and the helper operators (issue 17, item 3).

- A mask helper in the style transformers 5 exports (positions from the sequence length, packed-sequence
  ids by CumSum, GatherND into index grids, plus an operator slmc does not translate, EyeLike) folds to
  constants before the operator check; what remains (SDPA's IsNaN guard) runs in C and matches onnxruntime.
- An untranslated operator is folded by onnx's reference evaluator only where its inputs are known, its
  output size is known first and bounded, and it is deterministic; otherwise a one-line error.
- CumSum, GatherND, IsNaN, IsInf and TopK on run-time data: the numpy twins and the compiled C match
  onnxruntime (the onnx package's own cases for them run in tests/onnx/test_conformance.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.frontend.onnx_import import import_graph
from slmc.passes import run_pipeline
from slmc.reference.interp import run

from conftest import one_line_error, run_slmc

ort = pytest.importorskip("onnxruntime")

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
SLMC = [sys.executable, "-m", "slmc.cli"]
S, D = 6, 8


def _model(nodes: list, inputs: list, outputs: list, inits: dict | None = None, opset: int = 18) -> onnx.ModelProto:
    init = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=init)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _n(op: str, ins: list[str], outs: list[str], **attrs) -> onnx.NodeProto:
    return helper.make_node(op, ins, outs, name=f"{op}:{outs[0]}", **attrs)


def mask_helper_model() -> onnx.ModelProto:
    """Self-attention of x [1, S, D] over itself under a mask computed from S alone, as transformers 5's
    create_causal_mask exports it (packed-sequence ids by CumSum over position jumps, GatherND of the ids
    and positions at each (query, key) pair, and SDPA's Where(IsNaN(p), 0, p) after the Softmax)."""
    nodes = [
        _n("Shape", ["x"], ["sh"], start=1, end=2), _n("Squeeze", ["sh", "ax0"], ["s"]),
        _n("Range", ["zero", "s", "one"], ["pos"]),
        _n("Unsqueeze", ["pos", "ax0"], ["pu"]),                                     # [1, S] position ids
        _n("Slice", ["pu", "b0", "b1", "ax1"], ["p0"]), _n("Sub", ["p0", "one"], ["first"]),
        _n("Concat", ["first", "pu"], ["cat"], axis=-1),
        _n("Slice", ["cat", "b1", "big", "ax1"], ["hi"]), _n("Slice", ["cat", "b0", "m1", "ax1"], ["lo"]),
        _n("Sub", ["hi", "lo"], ["diff"]), _n("Equal", ["diff", "one"], ["step1"]), _n("Not", ["step1"], ["jump"]),
        _n("Cast", ["jump"], ["jumpi"], to=I64), _n("CumSum", ["jumpi", "ax1"], ["seqid"]),  # [1, S] sequence ids
        _n("Unsqueeze", ["pos", "ax1"], ["qcol"]), _n("Expand", ["qcol", "ss"], ["q"]),        # [S, S] query index
        _n("Unsqueeze", ["pos", "ax0"], ["krow"]), _n("Expand", ["krow", "ss"], ["k"]),        # [S, S] key index
        _n("Expand", ["zero", "ss"], ["b"]),
        _n("Unsqueeze", ["b", "axm1"], ["b3"]), _n("Unsqueeze", ["q", "axm1"], ["q3"]), _n("Unsqueeze", ["k", "axm1"], ["k3"]),
        _n("Concat", ["b3", "q3"], ["iq"], axis=-1), _n("Concat", ["b3", "k3"], ["ik"], axis=-1),
        _n("GatherND", ["seqid", "iq"], ["sq"]), _n("GatherND", ["seqid", "ik"], ["sk"]),
        _n("GatherND", ["pu", "iq"], ["pq"]), _n("GatherND", ["pu", "ik"], ["pk"]),
        _n("Equal", ["sq", "sk"], ["same"]), _n("LessOrEqual", ["pk", "pq"], ["causal"]),
        _n("And", ["same", "causal"], ["allowed"]),
        _n("ConstantOfShape", ["ss"], ["zss"]), _n("EyeLike", ["zss"], ["eyef"]),  # untranslated
        _n("Cast", ["eyef"], ["eye"], to=BOOL),
        _n("Or", ["allowed", "eye"], ["mask"]),
        _n("Where", ["mask", "f0", "ninf"], ["bias"]),
        _n("Transpose", ["x"], ["xt"], perm=[0, 2, 1]), _n("MatMul", ["x", "xt"], ["sc0"]),
        _n("Add", ["sc0", "bias"], ["sc"]), _n("Softmax", ["sc"], ["p"], axis=-1),
        _n("IsNaN", ["p"], ["nan"]), _n("Where", ["nan", "f0", "p"], ["pg"]),
        _n("MatMul", ["pg", "x"], ["y"]),
    ]
    inits = dict(zero=np.array(0), one=np.array(1), ax0=np.array([0]), ax1=np.array([1]), axm1=np.array([-1]),
                 b0=np.array([0]), b1=np.array([1]), m1=np.array([-1]), big=np.array([1 << 30]),
                 ss=np.array([S, S]), f0=np.array(0, np.float32), ninf=np.array(-np.inf, np.float32))
    return _model(nodes, [helper.make_tensor_value_info("x", F, [1, S, D])],
                  [helper.make_tensor_value_info("y", F, None)], inits)


X = np.random.default_rng(0).standard_normal((1, S, D)).astype(np.float32)


def test_mask_helpers_fold_before_the_operator_check() -> None:
    m = mask_helper_model()
    g = run_pipeline(import_graph(m))
    ops = [n.op for n in g.nodes]
    assert not {"Shape", "Range", "CumSum", "GatherND", "EyeLike", "Expand", "Equal"} & set(ops), ops
    assert "IsNaN" in ops  # it reads the attention probabilities: run-time data
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": X})[0]
    np.testing.assert_allclose(run(g, {"x": X})[g.outputs[0].name], want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_mask_helper_model_compiles_and_matches_onnxruntime(tmp_path: Path) -> None:
    m = mask_helper_model()
    onnx.save(m, tmp_path / "m.onnx")
    got = _compile_and_run(tmp_path, {"x": X})
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": X})[0]
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)


def _compile_and_run(d: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    subprocess.run([*SLMC, "compile", str(d / "m.onnx"), "-o", str(d / "out")], check=True, capture_output=True)
    np.savez(d / "in.npz", **{f"input_{i}": v for i, v in enumerate(feeds.values())})
    subprocess.run([*SLMC, "run", str(d / "out"), "--inputs", str(d / "in.npz"), "--save", str(d / "o.npz")],
                   check=True, capture_output=True)
    got = np.load(d / "o.npz")
    return [got[f"output_{i}"] for i in range(len(got.files))]


# ---- folding untranslated operators: only what is safe --------------------------------------------------

def _refused(tmp_path: Path, m: onnx.ModelProto, *needles: str) -> str:
    onnx.save(m, tmp_path / "m.onnx")
    r = run_slmc("compile", tmp_path / "m.onnx", "-o", tmp_path / "out")
    line = one_line_error(r, *needles)
    assert not (tmp_path / "out").exists()
    return line


def _after_relu(node: onnx.NodeProto, inits: dict) -> onnx.ModelProto:
    """x -> Relu, plus `node` over constants, added to it."""
    return _model([_n("Relu", ["x"], ["r"]), node, _n("Cast", [node.output[0]], ["c"], to=F), _n("Add", ["r", "c"], ["y"])],
                  [helper.make_tensor_value_info("x", F, [3, 4])], [helper.make_tensor_value_info("y", F, None)], inits)


def test_untranslated_operator_over_constants_folds_with_onnx_reference() -> None:
    m = _after_relu(_n("OneHot", ["i", "depth", "vals"], ["oh"]), dict(i=np.array([0, 2, 3]), depth=np.array(4),
                                                                      vals=np.array([0, 5], np.float32)))
    g = run_pipeline(import_graph(m))
    assert [n.op for n in g.nodes] == ["Relu", "Add"]
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(run(g, {"x": x})[g.outputs[0].name], want)


def test_huge_folded_constant_is_refused(tmp_path: Path) -> None:
    m = _after_relu(_n("OneHot", ["i", "depth", "vals"], ["oh"]), dict(i=np.array([0, 2, 3]), depth=np.array(10 ** 9),
                                                                      vals=np.array([0, 5], np.float32)))
    _refused(tmp_path, m, "folding ONNX OneHot node 'OneHot:oh'", "[3, 1000000000]", "limit", "folded constant")


def test_folding_needs_the_output_size_first(tmp_path: Path) -> None:
    m = _after_relu(_n("NonZero", ["k"], ["nz"]), dict(k=np.array([[1, 0, 1, 1]] * 3)))
    _refused(tmp_path, m, "NonZero node 'NonZero:nz'", "output size is not known before it is evaluated")


def test_random_or_run_time_operators_are_not_folded(tmp_path: Path) -> None:
    m = _after_relu(_n("RandomUniformLike", ["k"], ["ru"]), dict(k=np.zeros((3, 4), np.float32)))
    _refused(tmp_path, m, "unsupported ONNX operator 'RandomUniformLike'")
    m = _model([_n("Hardmax", ["x"], ["y"])], [helper.make_tensor_value_info("x", F, [3, 4])],
               [helper.make_tensor_value_info("y", F, None)])
    _refused(tmp_path, m, "unsupported ONNX operator 'Hardmax'")


def test_invalid_foldable_node_is_one_line(tmp_path: Path) -> None:
    m = _after_relu(_n("ScatterElements", ["d", "i", "u"], ["se"], axis=1),
                    dict(d=np.ones((3, 4), np.float32), i=np.full((3, 4), 99), u=np.ones((3, 4), np.float32)))
    _refused(tmp_path, m, "ScatterElements node 'ScatterElements:se'", "reference evaluator fails", "IndexError")
    m = _after_relu(_n("OneHot", ["i", "depth", "vals"], ["oh"]), dict(i=np.array([0, 2, 3]), depth=np.array([[4, 4]]),
                                                                      vals=np.array([0, 5], np.float32)))
    _refused(tmp_path, m, "OneHot node 'OneHot:oh'", "onnx cannot infer its outputs")


# ---- the helper operators on run-time data --------------------------------------------------------------

RNG = np.random.default_rng(2)
XF = RNG.standard_normal((3, 5, 4)).astype(np.float32)
XF[0, 1, 2] = XF[0, 3, 2]  # a tie for TopK
XI = RNG.integers(-50, 50, (3, 5, 4)).astype(np.int64)
XI[1, :, 0] = 7            # ties along an axis
SPECIAL = np.array([[1.0, np.nan, np.inf], [-np.inf, 0.0, -2.5]], np.float32)


def _tv(name: str, a: np.ndarray) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))


OP_CASES = {
    "cumsum_f32_exclusive_reverse": ([_n("CumSum", ["x", "a"], ["y"], exclusive=1, reverse=1)], {"x": XF}, dict(a=np.array(1))),
    "cumsum_f32_axis0": ([_n("CumSum", ["x", "a"], ["y"])], {"x": XF}, dict(a=np.array(0))),
    "cumsum_i64_last_axis": ([_n("CumSum", ["x", "a"], ["y"], exclusive=1)], {"x": XI}, dict(a=np.array(-1))),
    "gathernd_depth2": ([_n("GatherND", ["x", "i"], ["y"])], {"x": XF, "i": np.array([[[0, 4], [2, -1]], [[1, 0], [-3, 2]]])}, {}),
    "gathernd_batch_dims1": ([_n("GatherND", ["x", "i"], ["y"], batch_dims=1)],
                             {"x": XI, "i": np.array([[[4, 3], [0, 0]], [[1, -1], [2, 2]], [[3, 1], [-5, 0]]])}, {}),
    "isnan_isinf": ([_n("IsNaN", ["x"], ["y"]), _n("IsInf", ["x"], ["z"]), _n("IsInf", ["x"], ["w"], detect_positive=0)],
                    {"x": SPECIAL}, {}),
    "topk_f32_largest_axis1": ([_n("TopK", ["x", "k"], ["v", "i"], axis=1)], {"x": XF}, dict(k=np.array([3]))),
    "topk_i64_smallest_axis0": ([_n("TopK", ["x", "k"], ["v", "i"], axis=0, largest=0)], {"x": XI}, dict(k=np.array([2]))),
    "topk_i64_largest_ties": ([_n("TopK", ["x", "k"], ["v", "i"], axis=1)], {"x": XI}, dict(k=np.array([5]))),
}


def _op_model(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    nodes, feeds, inits = OP_CASES[name]
    outs = [o for n in nodes for o in n.output]
    return _model(nodes, [_tv(k, v) for k, v in feeds.items()], [helper.make_empty_tensor_value_info(o) for o in outs],
                  inits), feeds


@pytest.mark.parametrize("name", list(OP_CASES))
def test_helper_operator_twins_match_onnxruntime(name: str) -> None:
    m, feeds = _op_model(name)
    want = ort.InferenceSession(m.SerializeToString()).run(None, feeds)
    g = run_pipeline(import_graph(m))
    got = run(g, feeds)
    for v, w in zip(g.outputs, want):
        np.testing.assert_array_equal(got[v.name], w)
        assert got[v.name].dtype == w.dtype


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OP_CASES))
def test_helper_operators_compiled_match_onnxruntime(name: str, tmp_path: Path) -> None:
    m, feeds = _op_model(name)
    onnx.save(m, tmp_path / "m.onnx")
    want = ort.InferenceSession(m.SerializeToString()).run(None, feeds)
    got = _compile_and_run(tmp_path, feeds)
    assert len(got) == len(want)
    for gv, w in zip(got, want):
        np.testing.assert_array_equal(gv, w)
        assert gv.dtype == w.dtype
