"""frontend/onnx_merged.py: an `If` on a boolean graph input (Optimum's use_cache_branch) becomes its then-branch,
which onnxruntime runs with the flag true; an `If` on a computed condition is left alone, and slmc refuses it in
one line (control flow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import one_line_error, run_slmc
from slmc.frontend.onnx_merged import inline_cache_branch

rt = pytest.importorskip("onnxruntime")


def _model(cond_from_input: bool = True) -> onnx.ModelProto:
    c = helper.make_tensor("c", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    then = helper.make_graph([helper.make_node("Mul", ["x", "c"], ["u"]), helper.make_node("Add", ["u", "k"], ["y1"])],
                             "then", [], [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [4])],
                             [helper.make_tensor("k", TensorProto.FLOAT, [4], [0.5] * 4)])
    other = helper.make_graph([helper.make_node("Sub", ["x", "c"], ["y2"])], "else", [],
                              [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [4])])
    nodes = [helper.make_node("Neg", ["x"], ["t"])]
    cond = "flag"
    if not cond_from_input:
        nodes.append(helper.make_node("ReduceSum", ["t"], ["s"], keepdims=1))
        nodes.append(helper.make_node("Less", ["s", "zero"], ["computed"]))
        cond = "computed"
    nodes += [helper.make_node("If", [cond], ["y"], then_branch=then, else_branch=other),
              helper.make_node("Add", ["y", "t"], ["out"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])]
    if cond_from_input:
        inputs.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, [1]))
    g = helper.make_graph(nodes, "m", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4])],
                          [c, helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _ort(m: onnx.ModelProto, feeds: dict) -> np.ndarray:
    sess = rt.InferenceSession(m.SerializeToString())
    return sess.run(None, {k: v for k, v in feeds.items() if k in {i.name for i in sess.get_inputs()}})[0]


def test_the_flagged_if_becomes_its_then_branch() -> None:
    m = _model()
    x = np.array([1.0, -2.0, 3.0, 0.25], np.float32)
    inlined = inline_cache_branch(m)
    assert [n.op_type for n in inlined.graph.node] == ["Neg", "Mul", "Add", "Identity", "Add"]
    assert [i.name for i in inlined.graph.input] == ["x"]
    want = _ort(m, {"x": x, "flag": np.array([True])})
    assert np.array_equal(_ort(inlined, {"x": x}), want)
    assert not np.array_equal(want, _ort(m, {"x": x, "flag": np.array([False])}))


def test_a_branch_output_named_as_the_ifs_own_output_is_inlined_without_an_identity() -> None:
    m = _model()
    then = next(a.g for a in m.graph.node[1].attribute if a.name == "then_branch")
    then.node[-1].output[0] = "y"           # as the exporters name a branch's outputs: like the If's
    then.output[0].name = "y"
    inlined = inline_cache_branch(m)
    assert [n.op_type for n in inlined.graph.node] == ["Neg", "Mul", "Add", "Add"]
    x = np.array([1.0, -2.0, 3.0, 0.25], np.float32)
    assert np.array_equal(_ort(inlined, {"x": x}), _ort(_model(), {"x": x, "flag": np.array([True])}))


def test_an_if_on_a_computed_condition_stays_and_is_refused(tmp_path: Path) -> None:
    m = _model(cond_from_input=False)
    assert inline_cache_branch(m) is m
    path = tmp_path / "if.onnx"
    onnx.save(m, str(path))
    one_line_error(run_slmc("compile", path, "-o", tmp_path / "out"), "unsupported", "If")
    assert not (tmp_path / "out").exists()


def test_a_flagged_if_compiles_to_the_then_branch(tmp_path: Path) -> None:
    m = _model()
    path = tmp_path / "merged.onnx"
    onnx.save(m, str(path))
    r = run_slmc("compile", path, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    x = np.array([1.0, -2.0, 3.0, 0.25], np.float32)
    np.savez(tmp_path / "in.npz", input_0=x)
    r = run_slmc("run", tmp_path / "out", "--inputs", tmp_path / "in.npz", "--save", tmp_path / "o.npz")
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "o.npz")["output_0"]
    np.testing.assert_allclose(got, _ort(m, {"x": x, "flag": np.array([True])}), rtol=1e-6)
