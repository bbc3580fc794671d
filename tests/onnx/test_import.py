"""The generic ONNX importer and its passes on small hand-built graphs: canonical forms across opsets
(checked against onnx's own reference evaluator), constant folding, and the errors users see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from slmc.errors import SlmcError
from slmc.frontend.onnx_import import import_graph
from slmc.passes import run_pipeline
from slmc.reference.interp import run

SLMC = [sys.executable, "-m", "slmc.cli"]
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None, opset: int = 18) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _vi(name: str, shape: list, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], ort: bool = False) -> "object":
    """slmc's folded graph on the numpy twins == onnx.reference (or onnxruntime, where onnx.reference
    departs from the standard: opset-11 Softmax, negative pads); returns the graph."""
    if ort:
        rt = pytest.importorskip("onnxruntime")
        want = rt.InferenceSession(model.SerializeToString()).run(None, feeds)
    else:
        want = ReferenceEvaluator(model).run(None, feeds)
    g = run_pipeline(import_graph(model))
    got = run(g, feeds)
    for v, w in zip(g.outputs, want):
        np.testing.assert_allclose(got[v.name], w, rtol=1e-5, atol=1e-6)
        assert got[v.name].dtype == w.dtype
    return g


X = np.random.default_rng(0).standard_normal((2, 1, 6)).astype(np.float32)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze_axes_as_attribute_or_input(opset: int) -> None:
    if opset < 13:
        nodes = [helper.make_node("Squeeze", ["x"], ["s"], axes=[1]), helper.make_node("Unsqueeze", ["s"], ["y"], axes=[0, 3])]
        inits = []
    else:
        nodes = [helper.make_node("Squeeze", ["x", "a1"], ["s"]), helper.make_node("Unsqueeze", ["s", "a2"], ["y"])]
        inits = [numpy_helper.from_array(np.array([1]), "a1"), numpy_helper.from_array(np.array([0, 3]), "a2")]
    g = _check(_model(nodes, [_vi("x", [2, 1, 6])], [_vi("y", None)], inits, opset), {"x": X})
    assert g.outputs[0].shape == (1, 2, 6, 1)


@pytest.mark.parametrize("op,opset", [("ReduceSum", 11), ("ReduceSum", 13), ("ReduceMean", 17), ("ReduceMean", 18),
                                      ("ReduceMax", 18), ("ReduceL2", 18), ("ReduceLogSumExp", 18)])
def test_reduce_axes_across_opsets(op: str, opset: int) -> None:
    as_input = opset >= (13 if op == "ReduceSum" else 18)
    node = (helper.make_node(op, ["x", "axes"], ["y"], keepdims=0) if as_input
            else helper.make_node(op, ["x"], ["y"], axes=[0, 2], keepdims=0))
    inits = [numpy_helper.from_array(np.array([0, 2]), "axes")] if as_input else []
    _check(_model([node], [_vi("x", [2, 1, 6])], [_vi("y", None)], inits, opset), {"x": X})


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_sizes_across_opsets(opset: int) -> None:
    if opset == 11:
        node, inits = helper.make_node("Split", ["x"], ["a", "b"], axis=2, split=[2, 4]), []
    elif opset == 13:
        node, inits = helper.make_node("Split", ["x", "s"], ["a", "b"], axis=2), [numpy_helper.from_array(np.array([2, 4]), "s")]
    else:
        node, inits = helper.make_node("Split", ["x"], ["a", "b"], axis=-1, num_outputs=2), []
    _check(_model([node], [_vi("x", [2, 1, 6])], [_vi("a", None), _vi("b", None)], inits, opset), {"x": X})


@pytest.mark.parametrize("opset", [9, 13])
def test_slice_bounds_as_attributes_or_inputs(opset: int) -> None:
    if opset < 10:
        node, inits = helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[100, 5], axes=[2, 0]), []
    else:
        node = helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])
        inits = [numpy_helper.from_array(np.array(v), n) for n, v in
                 (("st", [-1, 1]), ("en", [-100, 100]), ("ax", [2, 0]), ("sp", [-2, 1]))]
    _check(_model([node], [_vi("x", [2, 1, 6])], [_vi("y", None)], inits, opset), {"x": X})


@pytest.mark.parametrize("opset", [2, 11, 18])
def test_pad_across_opsets(opset: int) -> None:
    if opset == 2:
        node, inits = helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 1, 0, -1], value=1.5), []
    elif opset == 11:
        node = helper.make_node("Pad", ["x", "p", "v"], ["y"])
        inits = [numpy_helper.from_array(np.array([0, 1, 2, 1, 0, -1]), "p"), numpy_helper.from_array(np.array(1.5, np.float32), "v")]
    else:
        node = helper.make_node("Pad", ["x", "p", "v", "a"], ["y"])
        inits = [numpy_helper.from_array(np.array([2, -1]), "p"), numpy_helper.from_array(np.array(1.5, np.float32), "v"),
                 numpy_helper.from_array(np.array([-1]), "a")]
    _check(_model([node], [_vi("x", [2, 1, 6])], [_vi("y", None)], inits, opset), {"x": X}, ort=True)


@pytest.mark.parametrize("opset", [6, 11])
def test_clip_bounds_as_attributes_or_inputs(opset: int) -> None:
    if opset < 11:
        node, inits = helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.25), []
    else:
        node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
        inits = [numpy_helper.from_array(np.array(-0.5, np.float32), "lo"), numpy_helper.from_array(np.array(0.25, np.float32), "hi")]
    _check(_model([node], [_vi("x", [2, 1, 6])], [_vi("y", None)], inits, opset), {"x": X})


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_before_and_after_opset_13(opset: int) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    _check(_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [_vi("x", [2, 3, 4])], [_vi("y", None)],
                  opset=opset), {"x": x}, ort=True)


def test_variadic_mixed_and_identity_forms() -> None:
    nodes = [helper.make_node("Max", ["x", "x2", "x3"], ["m"]), helper.make_node("Mean", ["x", "x2", "x3"], ["me"]),
             helper.make_node("Sum", ["m", "me"], ["s"]), helper.make_node("CastLike", ["s", "i"], ["c"]),
             helper.make_node("Pow", ["x", "e"], ["p"]), helper.make_node("Dropout", ["x"], ["d", "mask"])]
    ins = [_vi("x", [2, 1, 6]), _vi("x2", [2, 1, 6]), _vi("x3", [6]), _vi("i", [1], I64), _vi("e", [6], I64)]
    outs = [_vi(n, None) for n in ("s", "c", "p", "d", "mask")]
    rng = np.random.default_rng(2)
    feeds = {"x": X, "x2": rng.standard_normal((2, 1, 6)).astype(np.float32), "x3": X[0, 0],
             "i": np.array([3]), "e": np.array([0, 1, 2, 3, 2, 1])}
    _check(_model(nodes, ins, outs), feeds)


def test_shape_arithmetic_folds_away() -> None:
    nodes = [helper.make_node("Shape", ["x"], ["sh"]),
             helper.make_node("Gather", ["sh", "i0"], ["d0"], axis=0),
             helper.make_node("Unsqueeze", ["d0", "z"], ["d0u"]),
             helper.make_node("Concat", ["d0u", "m1"], ["tgt"], axis=0),
             helper.make_node("Reshape", ["x", "tgt"], ["r"]),
             helper.make_node("ConstantOfShape", ["tgt2"], ["ones"], value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("Range", ["r0", "d0", "r1"], ["rg"]),
             helper.make_node("Cast", ["rg"], ["rgf"], to=F),
             helper.make_node("Add", ["r", "rgf2"], ["y0"]),
             helper.make_node("Mul", ["y0", "ones"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0), "i0"), numpy_helper.from_array(np.array([0]), "z"),
             numpy_helper.from_array(np.array([-1]), "m1"), numpy_helper.from_array(np.array([2, 6]), "tgt2"),
             numpy_helper.from_array(np.array(0), "r0"), numpy_helper.from_array(np.array(1), "r1")]
    nodes.insert(8, helper.make_node("Unsqueeze", ["rgf", "one"], ["rgf2"]))
    inits.append(numpy_helper.from_array(np.array([1]), "one"))
    g = _check(_model(nodes, [_vi("x", [2, 1, 6])], [_vi("y", None)], inits), {"x": X})
    assert [n.op for n in g.nodes] == ["Reshape", "Add", "Mul"]


def test_unsupported_operator_is_named() -> None:
    m = _model([helper.make_node("Hardmax", ["x"], ["y"], name="the_node")], [_vi("x", [2, 3])], [_vi("y", None)])
    with pytest.raises(SlmcError, match=r"unsupported ONNX operator 'Hardmax' \(node 'the_node'\)"):
        import_graph(m)


def test_shape_from_run_time_data_is_rejected() -> None:
    m = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [_vi("x", [2, 3]), _vi("s", [2], I64)],
               [_vi("y", None)])
    with pytest.raises(SlmcError, match="Reshape node 'r' takes its target shape from run-time data"):
        import_graph(m)


def test_dynamic_axes_outside_a_decoder_are_rejected(tmp_path: Path) -> None:
    from slmc.frontend.onnx_import import load

    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["N", 3])], [_vi("y", ["N", 3])])
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(SlmcError, match="graph input 'x' has a dynamic dimension 'N'"):
        load(tmp_path / "m.onnx")


def test_token_graph_that_is_no_decoder_is_rejected(tmp_path: Path) -> None:
    from slmc.frontend.onnx_import import load

    table = numpy_helper.from_array(np.ones((10, 4), np.float32), "emb")
    m = _model([helper.make_node("Gather", ["emb", "ids"], ["y"])], [_vi("ids", [1, "seq"], I64)],
               [_vi("y", [1, "seq", 4])], [table])
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(SlmcError, match="has a dynamic sequence axis but is not a decoder slmc recognises"):
        load(tmp_path / "m.onnx")


def test_cli_unsupported_operator_exit_2_one_line_nothing_written(tmp_path: Path) -> None:
    m = _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Hardmax", ["r"], ["y"], name="hm")],
               [_vi("x", [2, 3])], [_vi("y", None)])
    onnx.save(m, tmp_path / "bad.onnx")
    out = tmp_path / "out"
    r = subprocess.run([*SLMC, "compile", str(tmp_path / "bad.onnx"), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Hardmax" in lines[0] and "hm" in lines[0]
    assert "Traceback" not in r.stderr + r.stdout
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]  # no half-written folder either


@pytest.mark.slow
def test_cli_runs_a_graph_with_inputs_and_saves_outputs(tmp_path: Path) -> None:
    """`slmc run DIR --inputs --save` on a graph whose outputs are a view of an input, a constant, a view
    of an intermediate and a plain result, with two names that are one C identifier ("a.b", "a_b")."""
    ort = pytest.importorskip("onnxruntime")
    w = numpy_helper.from_array(np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32), "a.b")
    nodes = [helper.make_node("Identity", ["x"], ["same"]),
             helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.arange(3, dtype=np.int64))),
             helper.make_node("MatMul", ["x", "a.b"], ["a_b"]),
             helper.make_node("Relu", ["a_b"], ["act"]),
             helper.make_node("Reshape", ["act", "shp"], ["flat"]),
             helper.make_node("Softmax", ["act"], ["sm"], axis=-1)]
    inits = [w, numpy_helper.from_array(np.array([-1]), "shp")]
    m = _model(nodes, [_vi("x", [2, 1, 6])], [_vi(n, None) for n in ("same", "k", "flat", "sm")], inits)
    onnx.save(m, tmp_path / "g.onnx")
    out = tmp_path / "out"
    subprocess.run([*SLMC, "compile", str(tmp_path / "g.onnx"), "-o", str(out)], check=True, capture_output=True)
    np.savez(tmp_path / "in.npz", input_0=X)
    subprocess.run([*SLMC, "run", str(out), "--inputs", str(tmp_path / "in.npz"), "--save", str(tmp_path / "o.npz")],
                   check=True, capture_output=True)
    got = np.load(tmp_path / "o.npz")
    want = ort.InferenceSession(str(tmp_path / "g.onnx")).run(None, {"x": X})
    assert sorted(got.files) == ["output_0", "output_1", "output_2", "output_3"]
    for i, wv in enumerate(want):
        np.testing.assert_allclose(got[f"output_{i}"], wv, rtol=1e-5, atol=1e-6)
        assert got[f"output_{i}"].dtype == wv.dtype
