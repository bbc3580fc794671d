"""Import hygiene (issue 20, part 1), against onnxruntime and Deeploy's golden outputs: nodes out of
topological order are sorted (a cycle is one error naming a node), a shuffled copy compiles to the same C;
quantization tools' domains (QuantLib's PACTOps) alias slmc's operators; a single int where a list is
declared is read as a list of one; Deeploy's Softmax convention (--onnx-convention)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import one_line_error, run_slmc, shared_path
from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.errors import SlmcError

F = TensorProto.FLOAT
RNG = np.random.default_rng(20)


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None, opset: int = 17,
           extra: tuple = ()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra], ir_version=8)


def _vi(name: str, shape: list | None, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    rt = pytest.importorskip("onnxruntime")
    return rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def compile_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], tmp: Path, tag: str = "m",
                **opts) -> tuple[list[np.ndarray], Path]:
    """Compile for the host (or opts' target) and run; the outputs in order and the project folder."""
    (tmp / tag).mkdir()
    path = tmp / tag / "model.onnx"  # (model.c names the file)
    onnx.save(model, str(path))
    out = tmp / tag / "out"
    compile_model(CompileOptions(model=path, out=out, **opts))
    got, _ = run_graph(out, feeds)
    return [got[f"output_{i}"] for i in range(len(got))], out


def _branchy() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Two branches and a join, some nodes unnamed, a Constant node: order matters to nothing but the C."""
    w1 = numpy_helper.from_array(RNG.standard_normal((6, 5)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(RNG.standard_normal((6, 5)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"], name="mm1"),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("MatMul", ["x", "w2"], ["b"]),
        helper.make_node("Tanh", ["b"], ["tb"], name="tanh"),
        helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
        helper.make_node("Mul", ["tb", "half"], ["hb"]),
        helper.make_node("Add", ["ra", "hb"], ["s"], name="join"),
        helper.make_node("Softmax", ["s"], ["y"], axis=-1),
        helper.make_node("Sigmoid", ["a"], ["z"], name="side"),
    ]
    m = _model(nodes, [_vi("x", [3, 6])], [_vi("y", [3, 5]), _vi("z", [3, 5])], [w1, w2])
    return m, {"x": RNG.standard_normal((3, 6)).astype(np.float32)}


def _shuffled(m: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    s = onnx.ModelProto()
    s.CopyFrom(m)
    nodes = list(s.graph.node)
    random.Random(seed).shuffle(nodes)
    del s.graph.node[:]
    s.graph.node.extend(nodes)
    return s


def _project_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix in (".c", ".h", ".bin")}


def test_nodes_out_of_order_compile_to_the_same_c_as_the_sorted_graph(tmp_path: Path) -> None:
    m, feeds = _branchy()
    want = _ort(m, feeds)
    got, sorted_dir = compile_run(m, feeds, tmp_path, "sorted")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    for seed in (1, 2, 3):
        s = _shuffled(m, seed)
        assert [n.output[0] for n in s.graph.node] != [n.output[0] for n in m.graph.node]
        np.testing.assert_allclose(_ort(s, feeds)[0], want[0], rtol=1e-6)  # onnxruntime takes it too
        got, d = compile_run(s, feeds, tmp_path, f"shuffled{seed}")
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        assert _project_bytes(d) == _project_bytes(sorted_dir)


def test_a_cycle_is_one_error_naming_a_node(tmp_path: Path) -> None:
    nodes = [helper.make_node("Add", ["x", "c"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second"),
             helper.make_node("Neg", ["b"], ["c"], name="third"),
             helper.make_node("Abs", ["a"], ["y"], name="out")]
    onnx.save(_model(nodes, [_vi("x", [4])], [_vi("y", [4])]), str(tmp_path / "cycle.onnx"))
    line = one_line_error(run_slmc("compile", tmp_path / "cycle.onnx", "-o", tmp_path / "o"), "cycle")
    assert any(f"'{n}'" in line for n in ("first", "second", "third"))


def test_a_value_no_node_computes_is_one_error(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["ghost"], ["y"], name="r")]
    onnx.save(_model(nodes, [_vi("x", [4])], [_vi("y", [4])]), str(tmp_path / "ghost.onnx"))
    one_line_error(run_slmc("compile", tmp_path / "ghost.onnx", "-o", tmp_path / "o"), "'r'", "'ghost'")


# ---- domains of quantization tools ------------------------------------------------------------------------------

def _deeploy(name: str) -> Path:
    return shared_path("conformance/deeploy/Kernels") / name


def _npz(p: Path) -> list[np.ndarray]:
    with np.load(p) as f:
        return [f[k] for k in f.files]


@pytest.mark.parametrize("case", ["Integer/GEMM/TransB_RQ", "Integer/Add/Regular_RQ"])
def test_pactops_domain_requantshift_is_deeploys(case: str, tmp_path: Path) -> None:
    """QuantLib's exporter writes PACTOps::RequantShift: the same operator Deeploy's files carry in the default
    domain. The case with its RequantShift moved to PACTOps matches Deeploy's golden outputs exactly."""
    d = _deeploy(case)
    m = onnx.load(str(d / "network.onnx"))
    moved = 0
    for n in m.graph.node:
        if n.op_type == "RequantShift":
            n.domain = "PACTOps"
            moved += 1
    assert moved
    if not any(o.domain == "PACTOps" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("PACTOps", 1))
    work = tmp_path / "case"
    work.mkdir()
    onnx.save(m, str(work / "network.onnx"))
    (work / "inputs.npz").write_bytes((d / "inputs.npz").read_bytes())
    out = tmp_path / "o"
    compile_model(CompileOptions(model=work / "network.onnx", out=out))
    ins = _npz(d / "inputs.npz")
    got, _ = run_graph(out, {f"input_{i}": x for i, x in enumerate(ins)})
    for i, w in enumerate(_npz(d / "outputs.npz")):
        np.testing.assert_array_equal(got[f"output_{i}"].astype(np.int64), w.astype(np.int64))


def test_unknown_domain_is_refused_by_name(tmp_path: Path) -> None:
    nodes = [helper.make_node("ChannelwiseThreshold2d", ["x"], ["y"], domain="PACTOps", name="thr")]
    m = _model(nodes, [_vi("x", [1, 2, 3, 3])], [_vi("y", [1, 2, 3, 3])], extra=(helper.make_opsetid("PACTOps", 1),))
    onnx.save(m, str(tmp_path / "d.onnx"))
    one_line_error(run_slmc("compile", tmp_path / "d.onnx", "-o", tmp_path / "o"), "PACTOps.ChannelwiseThreshold2d", "'thr'")
    nodes = [helper.make_node("Relu", ["x"], ["y"], domain="com.example.tool", name="r")]
    m = _model(nodes, [_vi("x", [4])], [_vi("y", [4])], extra=(helper.make_opsetid("com.example.tool", 1),))
    onnx.save(m, str(tmp_path / "e.onnx"))
    one_line_error(run_slmc("compile", tmp_path / "e.onnx", "-o", tmp_path / "o2"), "com.example.tool.Relu")


# ---- an int where a list of ints is declared --------------------------------------------------------------------

@pytest.mark.parametrize("op,key,shape", [("Squeeze", "axes", [2, 1, 3]), ("Unsqueeze", "axes", [2, 3]),
                                          ("ReduceSum", "axes", [2, 3]), ("ReduceMax", "axes", [2, 3])])
def test_a_single_int_where_a_list_is_declared_is_a_list_of_one(op: str, key: str, shape: list, tmp_path: Path) -> None:
    node = helper.make_node(op, ["x"], ["y"], name="n")
    node.attribute.append(helper.make_attribute(key, 1))  # an INT, where opset 11 declares INTS
    assert node.attribute[0].type == onnx.AttributeProto.INT
    m = _model([node], [_vi("x", shape)], [_vi("y", None)], opset=11)
    ref = _model([helper.make_node(op, ["x"], ["y"], name="n", **{key: [1]})], [_vi("x", shape)], [_vi("y", None)], opset=11)
    feeds = {"x": RNG.standard_normal(shape).astype(np.float32)}
    want = _ort(ref, feeds)[0]
    got, _ = compile_run(m, feeds, tmp_path)
    np.testing.assert_allclose(got[0].reshape(want.shape), want, rtol=1e-6)
    assert got[0].shape == want.shape


def test_a_wrong_attribute_kind_is_one_line(tmp_path: Path) -> None:
    node = helper.make_node("Transpose", ["x"], ["y"], name="t")
    node.attribute.append(helper.make_attribute("perm", 1.5))  # a FLOAT where INTS is declared
    onnx.save(_model([node], [_vi("x", [2, 3])], [_vi("y", None)]), str(tmp_path / "t.onnx"))
    one_line_error(run_slmc("compile", tmp_path / "t.onnx", "-o", tmp_path / "o"), "perm", "INTS")


# ---- Deeploy's Softmax convention -------------------------------------------------------------------------------

def _softmax_net(pact: bool, axis: int | None = None) -> onnx.ModelProto:
    kw = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="sm", **kw)]
    extra = (helper.make_opsetid("PACTOps", 1),) if pact else ()
    return _model(nodes, [_vi("x", [2, 3, 5])], [_vi("y", [2, 3, 5])], opset=10, extra=extra)


SM_X = {"x": RNG.standard_normal((2, 3, 5)).astype(np.float32) * 3}


def _last_axis_ref() -> np.ndarray:
    ref = _model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [_vi("x", [2, 3, 5])], [_vi("y", [2, 3, 5])], opset=13)
    return _ort(ref, SM_X)[0]


@pytest.mark.parametrize("pact,flag,want", [(True, "auto", "deeploy"), (False, "auto", "onnx"), (True, "onnx", "onnx"),
                                             (False, "deeploy", "deeploy")])
def test_deeploy_softmax_convention(pact: bool, flag: str, want: str, tmp_path: Path) -> None:
    m = _softmax_net(pact)
    onnx.save(m, str(tmp_path / "sm.onnx"))
    out = tmp_path / "o"
    r = run_slmc("compile", tmp_path / "sm.onnx", "-o", out, "--onnx-convention", flag)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["onnx"]["convention"] == want
    assert ("auto" in rep["onnx"]["why"]) == (flag == "auto")
    got, _ = run_graph(out, SM_X)
    ort_opset10 = _ort(_model(m.graph.node, list(m.graph.input), list(m.graph.output), opset=10), SM_X)[0]
    if want == "deeploy":
        assert rep["onnx"]["applied"] and "'sm'" in rep["onnx"]["applied"][0]
        np.testing.assert_allclose(got["output_0"], _last_axis_ref(), rtol=1e-5, atol=1e-7)
        assert not np.allclose(got["output_0"], ort_opset10, atol=1e-3)  # the conventions do differ here
    else:
        assert rep["onnx"]["applied"] == []
        np.testing.assert_allclose(got["output_0"], ort_opset10, rtol=1e-5, atol=1e-7)


def test_an_explicit_axis_keeps_its_meaning_under_deeploys_convention(tmp_path: Path) -> None:
    m = _softmax_net(True, axis=1)
    got, _ = compile_run(m, SM_X, tmp_path)
    np.testing.assert_allclose(got[0], _ort(_model(m.graph.node, list(m.graph.input), list(m.graph.output), opset=10), SM_X)[0],
                               rtol=1e-5, atol=1e-7)


def test_deeploy_softmax_golden_outputs_unchanged() -> None:
    """Deeploy's own FP32 Softmax case (opset 19, an explicit axis): the convention changes nothing there."""
    from slmc.frontend.onnx_import import load
    from slmc.reference.interp import run

    d = _deeploy("FP32/Softmax/Regular")
    g = load(d / "network.onnx")
    assert g.convention.name == "onnx" and not g.convention.applied
    ins = _npz(d / "inputs.npz")
    got = run(g, {v.name: x for v, x in zip(g.inputs, ins)})
    for v, w in zip(g.outputs, _npz(d / "outputs.npz")):
        np.testing.assert_allclose(got[v.name], w, atol=1e-4)


def test_unknown_convention_is_one_line(tmp_path: Path) -> None:
    onnx.save(_softmax_net(False), str(tmp_path / "sm.onnx"))
    one_line_error(run_slmc("compile", tmp_path / "sm.onnx", "-o", tmp_path / "o", "--onnx-convention", "tflite"),
                   "--onnx-convention")
    with pytest.raises(SlmcError):
        compile_model(CompileOptions(model=tmp_path / "sm.onnx", out=tmp_path / "o2", onnx_convention="x"))
