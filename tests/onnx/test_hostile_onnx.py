"""Broken and hostile ONNX files (issue 15, points 3 and 4): each is refused with one SlmcError naming what is
wrong, before anything is allocated by it and without writing an output folder; and ir/verify.py on the
graphs slmc builds itself."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model
from slmc.errors import SlmcError
from slmc.frontend.onnx_import import import_graph, read_model

F = TensorProto.FLOAT
vi = helper.make_tensor_value_info
c = numpy_helper.from_array
X28 = [vi("x", F, [2, 8])]


def model(nodes: list, ins: list, inits: tuple = (), opset: int = 17, outs: list | None = None) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", ins, outs or [vi(nodes[-1].output[0], F, None)], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def refused(tmp_path: Path, m: "onnx.ModelProto | bytes", name: str = "m.onnx") -> str:
    p = tmp_path / name
    p.write_bytes(m if isinstance(m, bytes) else m.SerializeToString())
    with pytest.raises(SlmcError) as e:
        compile_model(CompileOptions(model=p, out=tmp_path / "out"))
    msg = str(e.value)
    assert "\n" not in msg and not (tmp_path / "out").exists()
    return msg


W83 = c(np.ones((8, 3), np.float32), "w")
ISSUE_CASES = {  # issue 15, point 3: each compiled with exit 0 before, and read or wrote out of bounds
    "Gemm node 'g1': transA is 2, must be 0 or 1": model(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="g1", transA=2)], X28, (W83,)),
    "Gemm node 'g1': attribute 'transA' is a FLOAT (2.5), must be INT": model(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="g1", transA=2.5)], X28, (W83,)),
    "Reshape node 'r': cannot reshape [2, 8] (16 elements) to [3, 7]": model(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], X28, (c(np.array([3, 7]), "s"),)),
    "graph input 'x' has shape [-1, 8]": model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [-1, 8])]),
    "dynamic dimension 'n'": model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, ["n", 8])]),
    "[2147483648, 8]: a dimension beyond slmc's limit": model([helper.make_node("Relu", ["x"], ["y"])],
                                                              [vi("x", F, [1 << 31, 8])]),
    "[1073741824, 8] (8,589,934,592 elements": model([helper.make_node("Relu", ["x"], ["y"])],
                                                     [vi("x", F, [1 << 30, 8])]),
    "Pad node 'p': pads -100, 0 crop more than the 8 elements of axis 1": model(
        [helper.make_node("Pad", ["x", "p"], ["y"], name="p")], X28, (c(np.array([0, -100, 0, 0]), "p"),)),
    "output 'y' of Pad node 'p' has shape [2, 1099511627784]": model(
        [helper.make_node("Pad", ["x", "p"], ["y"], name="p")], X28, (c(np.array([0, 1 << 40, 0, 0]), "p"),)),
    "Split node 's': split sizes [3, 7] must be 2 non-negative sizes adding up to 8": model(
        [helper.make_node("Split", ["x", "s"], ["y", "z"], name="s", axis=1)], X28, (c(np.array([3, 7]), "s"),)),
    "Softmax node 'sm': axis 5 is out of range for an input of rank 2": model(
        [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=5)], X28),
    "ReduceSum node 'rs': axis 4 is out of range": model(
        [helper.make_node("ReduceSum", ["x", "a"], ["y"], name="rs")], X28, (c(np.array([4]), "a"),)),
    "Add node 'a': has 3 inputs": model([helper.make_node("Add", ["x", "x", "x"], ["y"], name="a")], X28),
    "Neg node 'n2' writes 'y', which is already defined": model(
        [helper.make_node("Relu", ["x"], ["y"], name="n1"), helper.make_node("Neg", ["x"], ["y"], name="n2")], X28),
    "Cast node 'c': required attribute 'to' is missing": model([helper.make_node("Cast", ["x"], ["y"], name="c")], X28),
    "Gemm node 'g1': inner dimensions differ": model(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="g1", transB=1)], X28, (W83,)),
    "Concat node 'k': required attribute 'axis' is missing": model(
        [helper.make_node("Concat", ["x", "x"], ["y"], name="k")], X28, opset=4),
    "Transpose node 't': perm [0, 0] is not a permutation": model(
        [helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[0, 0])], X28),
    "Gather node 'g': index 2 is out of range for axis 0 of size 2": model(
        [helper.make_node("Gather", ["x", "i"], ["y"], name="g")], X28, (c(np.array([0, 2]), "i"),)),
    "Slice node 's': steps [0] hold a 0": model(
        [helper.make_node("Slice", ["x", "a", "b", "ax", "st"], ["y"], name="s")], X28,
        tuple(c(np.array([v]), k) for k, v in (("a", 0), ("b", 2), ("ax", 1), ("st", 0)))),
    "Conv node 'cv': a [5, 5] kernel (with these strides, pads and dilations) does not fit the input [1, 1, 4, 4]": model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="cv")], [vi("x", F, [1, 1, 4, 4])],
        (c(np.ones((1, 1, 5, 5), np.float32), "w"),)),
    "Conv node 'cv': 2 input channels, weights [1, 1, 3, 3] and group 1 do not match": model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="cv")], [vi("x", F, [1, 2, 4, 4])],
        (c(np.ones((1, 1, 3, 3), np.float32), "w"),)),
    "MaxPool node 'mp': strides [0, 1] must be 2 values >= 1": model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], strides=[0, 1])],
        [vi("x", F, [1, 1, 4, 4])]),
    "Relu node 'r': input 0 ('X') is required but empty": model([helper.make_node("Relu", [""], ["y"], name="r")], X28),
}


@pytest.mark.parametrize("want", list(ISSUE_CASES))
def test_invalid_graph_is_refused_naming_the_node(want: str, tmp_path: Path) -> None:
    assert want in refused(tmp_path, ISSUE_CASES[want])


def _relu_with_weight(w: TensorProto) -> onnx.ModelProto:
    return model([helper.make_node("Add", ["x", "w"], ["y"])], X28, (w,))


def test_initializer_shorter_or_longer_than_its_shape(tmp_path: Path) -> None:
    w = c(np.ones((2, 8), np.float32), "w")
    w.raw_data = w.raw_data[:-4]
    assert "holds 60 bytes of data, but its shape [2, 8] needs 64" in refused(tmp_path, _relu_with_weight(w))
    w.raw_data += b"\0" * 8
    assert "holds 68 bytes" in refused(tmp_path, _relu_with_weight(w))
    typed = TensorProto(name="w", data_type=F, dims=[2, 8], float_data=[1.0] * 15)
    assert "holds 15 values of data, but its shape [2, 8] needs 16" in refused(tmp_path, _relu_with_weight(typed))
    nodata = TensorProto(name="w", data_type=F, dims=[1 << 20, 1 << 20])
    assert "beyond slmc's limit" in refused(tmp_path, _relu_with_weight(nodata))


def test_unsupported_tensors_are_refused(tmp_path: Path) -> None:
    s = helper.make_tensor("w", TensorProto.STRING, [1], [b"a"])
    assert "element type string" in refused(tmp_path, _relu_with_weight(s))
    odd = c(np.ones((2, 8), np.float32), "w")
    odd.data_type = 77
    assert "element type unknown (77)" in refused(tmp_path, _relu_with_weight(odd))


def _external(tmp_path: Path, location: str, offset: int = 0, length: int | None = None) -> onnx.ModelProto:
    w = c(np.arange(16, dtype=np.float32).reshape(2, 8), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset), **({"length": str(length)} if length is not None else {})}
    w.external_data.extend(onnx.StringStringEntryProto(key=k, value=v) for k, v in entries.items())
    return _relu_with_weight(w)


def test_external_data_stays_in_the_model_folder(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(np.arange(16, dtype=np.float32).tobytes())
    p = tmp_path / "ok.onnx"
    p.write_bytes(_external(tmp_path, "w.bin").SerializeToString())
    g = import_graph(read_model(p))
    np.testing.assert_array_equal(g.values["w"].data.reshape(-1), np.arange(16))
    secret = tmp_path.parent / f"{tmp_path.name}-secret.bin"
    secret.write_bytes(b"\0" * 64)
    (tmp_path / "link.bin").symlink_to(secret)
    for loc in (f"../{secret.name}", str(secret), "link.bin"):
        assert "outside the model's folder" in refused(tmp_path, _external(tmp_path, loc))
    assert "does not exist" in refused(tmp_path, _external(tmp_path, "missing.bin"))
    assert "needs bytes 8..72" in refused(tmp_path, _external(tmp_path, "w.bin", offset=8))
    assert "its shape needs 64" in refused(tmp_path, _external(tmp_path, "w.bin", length=60))
    os.mkfifo(tmp_path / "fifo.bin")
    assert "not a regular file" in refused(tmp_path, _external(tmp_path, "fifo.bin"))


def test_files_that_are_not_onnx_models(tmp_path: Path) -> None:
    good = model([helper.make_node("Relu", ["x"], ["y"])], X28).SerializeToString()
    assert "not a readable ONNX model" in refused(tmp_path, good[: len(good) // 2])
    assert "is empty" in refused(tmp_path, b"")
    assert "not a readable ONNX model" in refused(tmp_path, b"\xff" * 100)
    os.mkfifo(tmp_path / "fifo.onnx")
    with pytest.raises(SlmcError, match="not a regular file"):
        read_model(tmp_path / "fifo.onnx")  # returns at once: opened without blocking
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(SlmcError, match="folder"):
        read_model(tmp_path / "dir.onnx")


def test_opsets_and_subgraphs(tmp_path: Path) -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    assert "opset 99" in refused(tmp_path, model(relu, X28, opset=99))
    m = model(relu, X28)
    m.opset_import.extend([helper.make_opsetid("", 13)])
    assert "several versions" in refused(tmp_path, m)
    del m.opset_import[:]
    assert "declares no opset" in refused(tmp_path, m)
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["b"])], "b", [], [vi("b", F, None)])
    sub = model([helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)], X28,
                (c(np.array(True), "c"),))
    assert "unsupported ONNX operator 'If'" in refused(tmp_path, sub)
    bad_attr = model(relu, X28)
    bad_attr.graph.node[0].attribute.extend([onnx.AttributeProto(name="alpha")])
    assert "has no valid type" in refused(tmp_path, bad_attr)


def test_verify_accepts_what_slmc_builds() -> None:
    """The language-model graphs of every numerics, and after the passes that rewrite them."""
    from dataclasses import replace

    from slmc.frontend.build import build_step_graph
    from slmc.frontend.build import build_float_graph
    from slmc.passes import quantize_int8
    from slmc.frontend.random_model import SHAPES, random_decoder
    from slmc.ir.verify import verify
    from slmc.passes import fuse_gate
    from slmc.frontend.calibrate import formats_for

    cfg = SHAPES["stories260K"]
    for m in (random_decoder(cfg, seed=3), random_decoder(replace(cfg, norm="layer", ffn="gelu", pos="learned",
                                                                  n_kv_heads=8), seed=4, tied=False, bias=True)):
        for numerics in ("fp32", "q8"):
            for seq in (1, 4):
                for kv in ("fp32", "fp16"):
                    verify(fuse_gate.run(build_step_graph(m, seq, numerics, kv)))
    m = random_decoder(cfg, seed=3)
    verify(quantize_int8.run(build_float_graph(m), formats_for(m)))


def test_verify_names_a_broken_pass() -> None:
    from slmc.ir import DType, Graph, TensorType
    from slmc.ir.verify import verify

    g = Graph()
    x = g.add_input("x", (2, 3), DType.F32)
    y = g.op("Relu", [x], TensorType((2, 4), DType.F32), name="r")
    g.outputs = [y]
    with pytest.raises(SlmcError, match=r"Relu node 'r': output 0 \('r'\) is recorded as f32\[2,4\].*bug in slmc \(the x pass\)"):
        verify(g, after="the x pass")
    g.nodes[0].outputs[0].type = TensorType((2, 3), DType.F32)
    verify(g)
    g.nodes.reverse()
    g.add_node("Neg", [y], [TensorType((2, 3), DType.F32)], name="n")
    g.nodes.reverse()  # Neg now reads r before the Relu computes it
    with pytest.raises(SlmcError, match="read before any node computes it"):
        verify(g)
