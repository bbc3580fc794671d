"""Deeploy's integer operators that have no conformance case in ../shared (ITAMax, ITAPartialMax,
iLayerNorm, iGELU, IntegerDiv, IntegerMean) and variants the cases do not reach (unsigned
RequantShift in ai.onnx.contrib with per-row parameters, a broadcast IntegerDiv operand), checked against
a transcription of the README's formulas in plain Python integers (`Fraction` for the divisions; the
ITAPartialMax one follows Deeploy's streaming C loop). Small ONNX files are written the way Deeploy
writes them: float32 storage, custom ops in the default domain, sample inputs beside the model.
Also: the one-line errors when a range cannot be proven."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

SLMC = [sys.executable, "-m", "slmc.cli"]
RNG = np.random.default_rng(6)
TOOLS = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"),
         "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"), "host": ("gcc",)}


# ---- the README, in plain Python integers --------------------------------------------------------------

def tdiv(a: int, b: int) -> int:
    return int(Fraction(a, b)) if b else 0  # int() of a Fraction truncates toward zero, as C does


def round_away(a: int, b: int) -> int:
    if b == 0:
        return 0
    f = Fraction(a, b)
    q = math.floor(abs(f) + Fraction(1, 2))
    return q if f >= 0 else -q


def rows(x: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in r] for r in x.reshape(-1, x.shape[-1])]


def ita_max(x: np.ndarray, n: int) -> np.ndarray:
    out = []
    for row in rows(x):
        m = max(row)
        sh = [(m - v + 16) >> 5 for v in row]
        s = sum(256 >> k for k in sh)
        out.append([((n - 1) * 256 // s) >> k for k in sh])
    return np.array(out).reshape(x.shape)


def ita_partial_max(x: np.ndarray, n: int, width: int) -> np.ndarray:
    out = []
    for row in rows(x):  # Deeploy's ITAPartialMax_s8 loop, without its -n/2 output offset
        global_max, partial = -128, 0
        for g in range(len(row) // width):
            part = row[g * width:(g + 1) * width]
            cur = max(part)
            shift_sum = (cur - global_max + 16) >> 5 if cur > global_max else 0
            global_max = max(cur, global_max)
            partial = (partial >> shift_sum) + sum(256 >> ((global_max - v + 16) >> 5) for v in part)
        inv = ((n // 2 - 1) * 256) // partial
        out.append([inv >> ((global_max - v + 16) >> 5) for v in row])
    return np.array(out).reshape(x.shape)


def i_layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, s: int) -> np.ndarray:
    out = []
    for row in rows(x):
        n = len(row)
        m = tdiv(sum(row), n)
        t = [v - m for v in row]
        sd = math.isqrt(tdiv(sum(v * v for v in t), n) + 1)
        out.append([(tdiv(tj * int(wj), sd) + int(bj)) >> s for tj, wj, bj in zip(t, w, b)])
    return np.array(out).reshape(x.shape)


def i_gelu(x: np.ndarray, b: int, one: int) -> np.ndarray:
    def f(v: int) -> int:
        q = min(abs(v), -b)
        big_l = ((v > 0) - (v < 0)) * (one - (q + b) ** 2)
        return v * ((one + big_l) >> 1)
    return np.array([f(int(v)) for v in x.reshape(-1)]).reshape(x.shape)


def integer_div(a: np.ndarray, b: np.ndarray, delta: int, eta: int, eps: int) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    return np.array([round_away(delta * eta * int(p), eta * int(q) + eps)
                     for p, q in zip(a.reshape(-1), b.reshape(-1))]).reshape(a.shape)


def integer_mean(x: np.ndarray, axes: list[int], keepdims: int) -> np.ndarray:
    sums = x.astype(np.int64).sum(axis=tuple(axes), keepdims=bool(keepdims))  # exact: small ints
    count = math.prod(x.shape[a] for a in axes)
    return np.array([round_away(int(v), count) for v in sums.reshape(-1)]).reshape(sums.shape)


def requant_shift(x: np.ndarray, mul: np.ndarray, add: np.ndarray, div: int, n: int, signed: int) -> np.ndarray:
    lo, hi = (-(n // 2), n // 2 - 1) if signed else (0, n - 1)
    s = div.bit_length() - 1
    xs, ms, as_ = np.broadcast_arrays(x, mul, add)
    vals = [min(max((int(p) * int(m) + int(a) + div // 2) >> s, lo), hi)
            for p, m, a in zip(xs.reshape(-1), ms.reshape(-1), as_.reshape(-1))]
    return np.array(vals).reshape(xs.shape)


def i8(*shape: int, lo: int = -128, hi: int = 127) -> np.ndarray:
    return RNG.integers(lo, hi + 1, size=shape).astype(np.int8)


def _ramp() -> np.ndarray:
    x = i8(2, 3, 32, lo=-100, hi=20).astype(np.int64)
    x[..., 8:16] += 40   # later groups raise the running maximum: the partial sums are shifted
    x[..., 24:] += 100
    return np.clip(x, -128, 127).astype(np.int8)


# name -> (op, domain, graph inputs, initializers, attributes, expected)
def _cases() -> dict[str, tuple]:
    c: dict[str, tuple] = {}
    x = i8(2, 3, 16)
    c["ITAMax"] = ("ITAMax", "", [x], [], {"n_levels": 256}, ita_max(x, 256))
    x = _ramp()
    c["ITAPartialMax"] = ("ITAPartialMax", "", [x], [], {"n_levels": 256, "group_width": 8},
                          ita_partial_max(x, 256, 8))
    x, w, b = i8(1, 6, 32), RNG.integers(-100, 101, 32), RNG.integers(-1000, 1001, 32)
    c["iLayerNorm"] = ("iLayerNorm", "", [x], [w, b], {"D": 256, "n_levels": 256}, i_layer_norm(x, w, b, 8))
    x = i8(4, 50)
    c["iGELU"] = ("iGELU", "", [x], [], {"b": -90, "one": 8100}, i_gelu(x, -90, 8100))
    a, bb = i8(3, 20), i8(20)
    c["IntegerDiv"] = ("IntegerDiv", "", [a, bb], [], {"Delta": 16, "eta": 7, "eps": 3},
                       integer_div(a, bb, 16, 7, 3))
    x = i8(2, 5, 7)
    c["IntegerMean_keep"] = ("IntegerMean", "", [x], [], {"axes": [1], "keepdims": 1}, integer_mean(x, [1], 1))
    c["IntegerMean_two_axes"] = ("IntegerMean", "", [x], [], {"axes": [1, 2], "keepdims": 0},
                                 integer_mean(x, [1, 2], 0))
    x = RNG.integers(-3000, 3000, size=(6, 10)).astype(np.int16)
    mul, add = RNG.integers(1, 300, size=(6, 1)), RNG.integers(-20000, 20000, size=(6, 1))
    c["RequantShift_unsigned_per_row"] = ("RequantShift", "ai.onnx.contrib", [x], [mul, add],
                                          {"div": 1024, "n_levels_out": 256, "signed": 0},
                                          requant_shift(x, mul, add, 1024, 256, 0))
    return c


CASES = _cases()


def write_case(d: Path, op: str, domain: str, ins: list[np.ndarray], inits: list[np.ndarray], attrs: dict,
               out_shape: tuple[int, ...], sample: bool = True, elem: int = TensorProto.FLOAT) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    names = [f"x{i}" for i in range(len(ins))]
    wnames = [f"w{i}" for i in range(len(inits))]
    if op == "RequantShift":  # Deeploy stores its parameters as tensor attributes
        attrs = {k: numpy_helper.from_array(np.array([v], np.float32)) for k, v in attrs.items()}
    node = helper.make_node(op, names + wnames, ["y"], domain=domain, **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, elem, list(x.shape)) for n, x in zip(names, ins)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(w, np.float32), n) for n, w in zip(wnames, inits)])
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(d / "network.onnx"))
    if sample:
        np.savez(d / "inputs.npz", **{f"arr_{i}": x for i, x in enumerate(ins)})
    return d / "network.onnx"


@pytest.mark.parametrize("name", list(CASES))
def test_twin_matches_the_readme(name: str, tmp_path: Path) -> None:
    from slmc.frontend import onnx_import
    from slmc.reference.interp import run

    op, domain, ins, inits, attrs, want = CASES[name]
    g = onnx_import.load(write_case(tmp_path, op, domain, ins, inits, attrs, want.shape))
    got = run(g, {v.name: x for v, x in zip(g.inputs, ins)})[g.outputs[0].name]
    assert got.dtype.kind in "iu"
    np.testing.assert_array_equal(got.astype(np.int64), want)


def need(target: str) -> None:
    missing = [t for t in TOOLS[target] if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (`make toolchains` installs the cross toolchains and QEMU)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["host", "cortex-m33", "rv32imac"])
@pytest.mark.parametrize("name", list(CASES))
def test_compiled_c_matches_the_readme(name: str, target: str, tmp_path: Path) -> None:
    from slmc.driver import CompileOptions, compile_model, run_graph

    need(target)
    op, domain, ins, inits, attrs, want = CASES[name]
    path = write_case(tmp_path / "case", op, domain, ins, inits, attrs, want.shape)
    compile_model(CompileOptions(model=path, target=target, out=tmp_path / "build"))
    got = run_graph(tmp_path / "build", {f"input_{i}": x for i, x in enumerate(ins)})[0]["output_0"]
    assert got.dtype.kind in "iu"
    np.testing.assert_array_equal(got.astype(np.int64), want)


def standard_ops_case(d: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Gather (its int64 indices stay int64), Concat, Transpose, Sub, Mul and a RequantShift."""
    x = i8(4, 6)
    d.mkdir()
    nodes = [helper.make_node("Gather", ["x", "idx"], ["g"], axis=0),
             helper.make_node("Concat", ["x", "g"], ["cat"], axis=0),
             helper.make_node("Transpose", ["cat"], ["t"], perm=[1, 0]),
             helper.make_node("Sub", ["t", "k"], ["s"]),
             helper.make_node("Mul", ["s", "t"], ["m"]),
             helper.make_node("RequantShift", ["m", "mul", "add"], ["y"], div=64, n_levels_out=256, signed=1)]
    inits = [numpy_helper.from_array(np.array([2, 0], np.int64), "idx"),
             numpy_helper.from_array(np.array(100, np.float32), "k"),
             numpy_helper.from_array(np.array(3, np.float32), "mul"),
             numpy_helper.from_array(np.array(-7, np.float32), "add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 6])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(d / "network.onnx"))
    np.savez(d / "inputs.npz", x)
    t = np.concatenate([x, x[[2, 0]]]).T.astype(np.int64)
    return d / "network.onnx", x, requant_shift((t - 100) * t, np.array(3), np.array(-7), 64, 256, 1)


def test_standard_ops_on_integer_data(tmp_path: Path) -> None:
    """Data movement keeps int8, arithmetic computes in int32, all exact."""
    from slmc.frontend import onnx_import
    from slmc.reference.interp import run

    path, x, want = standard_ops_case(tmp_path / "c")
    g = onnx_import.load(path)
    types = {n.op: n.outputs[0].dtype.short for n in g.nodes}
    assert types["Gather"] == "i8" and types["Sub"] == "i32" and types["RequantShift"] == "i8", types
    np.testing.assert_array_equal(run(g, {"x": x})[g.outputs[0].name], want)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["host", "cortex-m33", "rv32imac"])
def test_standard_ops_on_integer_data_compiled(target: str, tmp_path: Path) -> None:
    from slmc.driver import CompileOptions, compile_model, run_graph

    need(target)
    path, x, want = standard_ops_case(tmp_path / "c")
    compile_model(CompileOptions(model=path, target=target, out=tmp_path / "build"))
    np.testing.assert_array_equal(run_graph(tmp_path / "build", {"input_0": x})[0]["output_0"], want)


def conv_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, group: int, strides: list[int], pads: list[int],
             dil: list[int]) -> np.ndarray:
    """ONNX Conv, 2-D, one output at a time (pads: top, left, bottom, right)."""
    n_, c_, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = (h + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) // strides[1] + 1
    y = np.zeros((n_, m, oh, ow), np.int64)
    for n, mi, oy, ox in np.ndindex(n_, m, oh, ow):
        acc, g = int(b[mi]), mi // (m // group)
        for ci, ky, kx in np.ndindex(cg, kh, kw):
            iy, ix = oy * strides[0] - pads[0] + ky * dil[0], ox * strides[1] - pads[1] + kx * dil[1]
            if 0 <= iy < h and 0 <= ix < wd:
                acc += int(x[n, g * cg + ci, iy, ix]) * int(w[mi, ci, ky, kx])
        y[n, mi, oy, ox] = acc
    return y


def maxpool_ref(x: np.ndarray, k: list[int], strides: list[int], pads: list[int]) -> np.ndarray:
    n_, c_, h, wd = x.shape
    oh = (h + pads[0] + pads[2] - k[0]) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - k[1]) // strides[1] + 1
    y = np.zeros((n_, c_, oh, ow), np.int64)
    for n, c, oy, ox in np.ndindex(n_, c_, oh, ow):
        top, left = oy * strides[0] - pads[0], ox * strides[1] - pads[1]
        y[n, c, oy, ox] = max(int(x[n, c, iy, ix]) for iy in range(top, top + k[0]) for ix in range(left, left + k[1])
                              if 0 <= iy < h and 0 <= ix < wd)
    return y


def conv_case(d: Path) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """A 2-D Conv (groups, strides, pads, dilations, bias) -> RequantShift -> MaxPool, and a 1-D Conv."""
    x, x1 = i8(1, 4, 9, 9), i8(2, 3, 12)
    w, b = RNG.integers(-128, 128, (6, 2, 3, 3)), RNG.integers(-5000, 5000, 6)
    w1 = RNG.integers(-128, 128, (4, 3, 3))
    d.mkdir()
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=2, strides=[2, 1], pads=[1, 0, 1, 2],
                              dilations=[1, 2]),
             helper.make_node("RequantShift", ["c", "mul", "add"], ["r"], div=256, n_levels_out=256, signed=1),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("Conv", ["x1", "w1"], ["y1"], pads=[1, 1])]
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in
             (("w", w), ("b", b), ("w1", w1), ("mul", np.array(3)), ("add", np.array(0)))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9]),
                                           helper.make_tensor_value_info("x1", TensorProto.FLOAT, [2, 3, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("y1", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(d / "network.onnx"))
    np.savez(d / "inputs.npz", x, x1)
    r = requant_shift(conv_ref(x, w, b, 2, [2, 1], [1, 0, 1, 2], [1, 2]), np.array(3), np.array(0), 256, 256, 1)
    y1 = conv_ref(x1[:, :, None, :], w1[:, :, None, :], np.zeros(4, np.int64), 1, [1, 1], [0, 1, 0, 1], [1, 1])
    return d / "network.onnx", [x, x1], [maxpool_ref(r, [2, 2], [2, 2], [0, 0, 1, 1]), y1[:, :, 0, :]]


def test_conv_and_maxpool_on_integer_data(tmp_path: Path) -> None:
    from slmc.frontend import onnx_import
    from slmc.reference.interp import run

    path, ins, want = conv_case(tmp_path / "c")
    g = onnx_import.load(path)
    got = run(g, {v.name: x for v, x in zip(g.inputs, ins)})
    assert [g.nodes[0].outputs[0].dtype.short, got[g.outputs[0].name].dtype.name] == ["i32", "int8"]
    for v, w in zip(g.outputs, want):
        np.testing.assert_array_equal(got[v.name].astype(np.int64), w)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["host", "cortex-m33", "rv32imac"])
def test_conv_and_maxpool_compiled(target: str, tmp_path: Path) -> None:
    from slmc.driver import CompileOptions, compile_model, run_graph

    need(target)
    path, ins, want = conv_case(tmp_path / "c")
    compile_model(CompileOptions(model=path, target=target, out=tmp_path / "build"))
    got = run_graph(tmp_path / "build", {f"input_{i}": x for i, x in enumerate(ins)})[0]
    for i, w in enumerate(want):
        np.testing.assert_array_equal(got[f"output_{i}"].astype(np.int64), w)


# ---- ranges that cannot be proven: one line, exit code 2 -------------------------------------------------

def compile_error(path: Path, tmp: Path) -> str:
    r = subprocess.run([*SLMC, "compile", str(path), "-t", "host", "-o", str(tmp / "out")], capture_output=True,
                       text=True)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert not (tmp / "out").exists()
    return err


def test_float_input_without_a_sample_is_an_error(tmp_path: Path) -> None:
    x = i8(2, 8)
    path = write_case(tmp_path / "c", "ITAMax", "", [x], [], {"n_levels": 256}, x.shape, sample=False)
    err = compile_error(path, tmp_path)
    assert "graph input 'x0'" in err and "inputs.npz" in err


def test_a_bound_beyond_int64_is_an_error(tmp_path: Path) -> None:
    x = np.zeros((1, 64), np.int32)  # declared int32, no sample: the proof takes int32's whole range
    w = np.full((64, 64), 2 ** 31 - 1, np.int64)
    d = tmp_path / "c"
    d.mkdir()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["acc"]),
         helper.make_node("RequantShift", ["acc", "m", "a"], ["y"], div=1 << 16, n_levels_out=256, signed=1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.INT32, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [numpy_helper.from_array(w.astype(np.float32), "w"), numpy_helper.from_array(np.array(3, np.float32), "m"),
         numpy_helper.from_array(np.array(0, np.float32), "a")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(d / "network.onnx"))
    err = compile_error(d / "network.onnx", tmp_path)
    assert "beyond int64" in err and "MatMul" in err


def test_an_isoftmax_with_negative_terms_is_an_error(tmp_path: Path) -> None:
    x = i8(2, 8)
    path = write_case(tmp_path / "c", "iSoftmax", "", [x], [],
                      {"coeffA": 1, "coeffB": 10, "coeffC": -500, "log2": 127, "n_levels": 256}, x.shape)
    err = compile_error(path, tmp_path)
    assert "iSoftmax node" in err and "not provable" in err


def test_run_refuses_inputs_outside_the_proven_type(tmp_path: Path) -> None:
    from slmc.errors import SlmcError
    from slmc.toolchain.graph_run import pack_inputs

    io = {"inputs_bytes": 16, "inputs": [dict(name="x", dtype="i8", shape=[2], offset=0, nbytes=2)]}
    assert pack_inputs(io, {"arr_0": np.array([-128.0, 127.0])})[:2] == bytes([0x80, 0x7F])
    for bad in (np.array([0.5, 1.0]), np.array([0, 300])):
        with pytest.raises(SlmcError, match="does not hold exactly"):
            pack_inputs(io, {"arr_0": bad})
