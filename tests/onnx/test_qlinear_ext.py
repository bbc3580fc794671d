"""The com.microsoft quantized operators onnxruntime runs through a lookup table or its own scalar loop
(QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, QLinearMul, QLinearAveragePool; frontend/onnx_qlinear_ext.py)
and the QDQ groups onnxruntime fuses into them (frontend/onnx_qdq.py) match onnxruntime 1.32 bit for bit on
random 8-bit data, int8 and uint8, on the host and (slow tier) on the Cortex-M33 and RV32IMAC under QEMU; these
operators take per-tensor scales only (onnxruntime enforces it), so there is no per-channel case. The quantized
CCT-2 (tests/onnx/cnn_nets.py) compiles in both formats with every quantized operator integer; what onnxruntime
itself runs in float between DequantizeLinear and QuantizeLinear (LayerNormalization and Erf; Div by a constant
is exact) runs on the kernels that follow onnxruntime's CPU provider bit for bit (kernels/onnx_ort.py,
test_ort_numerics.py), as do the float MatMuls onnxruntime keeps in the QDQ-int8 model (their activation's
DequantizeLinear has two consumers, so its int8 pair is not made uint8; MLAS's summation order,
test_ort_exact_products.py); QLinearAdd's constant term is fused as onnxruntime's build fuses it, and
QLinearSoftmax takes its table's shift from logf and its quotient in double as onnxruntime's wheel computes them.
So all four variants (QDQ and QOperator, uint8 and int8 activations) give onnxruntime's outputs exactly on 150
random inputs each (1,500 outputs; before those two changes QDQ-int8 differed in 4 and QOperator-uint8 in 5, by
one output step); the MCU test runs, on the Cortex-M33 and RV32IMAC, the inputs that differed then."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.frontend import onnx_qdq
from slmc.frontend.onnx_import import load

sys.path.append(str(Path(__file__).parent))  # the helper modules next to this file
rt = pytest.importorskip("onnxruntime")

from qlinear_ext_models import MS, POOLS, TT, _model, _params, qdq, qoperator  # noqa: E402

OPS = ["QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QLinearMul", "QLinearAveragePool"]
DTYPES = {"int8": np.int8, "uint8": np.uint8}
VARIANTS = {"QLinearSoftmax": 3, "QLinearAveragePool": len(POOLS)}  # (axes and opsets; pool geometries)
CASES = [(op, v) for op in OPS for v in range(VARIANTS.get(op, 1))]
TOOLS = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"), "rv32imac": ("riscv64-unknown-elf-gcc",
                                                                              "qemu-system-riscv32")}


def _run(m: onnx.ModelProto, feeds: dict[str, np.ndarray], folder: Path, target: str = "host") -> tuple:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    onnx.save(m, str(path))
    want = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    compile_model(CompileOptions(model=path, out=folder / f"out_{target}", target=target))
    got, _ = run_graph(folder / f"out_{target}", feeds)
    return got["output_0"], want, path


def _exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {want.size} differ"


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("op,variant", CASES)
def test_qoperator_node_matches_onnxruntime(op: str, variant: int, dt: str, tmp_path: Path) -> None:
    m, feeds = qoperator(op, DTYPES[dt], 10 + variant, variant)
    got, want, path = _run(m, feeds, tmp_path)
    _exact(got, want)
    ops = [n.op for n in load(path).nodes]
    assert not {"Sigmoid", "LeakyRelu", "Softmax", "Mul", "Exp"} & set(ops), ops


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("op", ["Sigmoid", "LeakyRelu", "Softmax", "Mul", "AveragePool"])
def test_qdq_group_fuses_as_onnxruntime_and_matches(op: str, dt: str, tmp_path: Path) -> None:
    m, feeds = qdq(op, DTYPES[dt], 3)
    got, want, path = _run(m, feeds, tmp_path)
    _exact(got, want)
    ops = [n.op for n in load(path).nodes]
    want_ops = {"Sigmoid": "QLinearLookup", "LeakyRelu": "QLinearLookup", "Softmax": "QLinearSoftmax",
                "Mul": "QLinearMul", "AveragePool": "QuantizeAfterZp"}[op]
    so = rt.SessionOptions()  # (what onnxruntime itself fuses: its optimized graph)
    so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "ort_opt.onnx")
    rt.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    if op in {n.op_type for n in onnx.load(str(tmp_path / "ort_opt.onnx")).graph.node}:
        # onnxruntime on x86-64 keeps it float: the int8 input pair becomes uint8 (QDQS8ToU8Transformer), the
        # output's Q, a graph output, stays int8, and a QDQ group of two types is not fused (onnx_qdq.py)
        assert want_ops not in ops and op in ops, ops
    else:
        assert want_ops in ops and (op == "AveragePool" or op not in ops), ops


@pytest.mark.parametrize("shapes", [((2, 3, 17), (17,)), ((2, 3, 17), (3, 1)), ((3, 1), (2, 3, 17)),
                                    ((), (2, 3, 17)), ((2, 3, 1), (1, 1, 5))])
@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_broadcast_operands_match_onnxruntime(op: str, shapes: tuple, tmp_path: Path) -> None:
    """Operands of two shapes: expanded, in the order onnxruntime's broadcast loop hands them to MLAS."""
    for dt in (np.int8, np.uint8):
        rng = np.random.default_rng(len(shapes[0]) * 7 + len(shapes[1]))
        info = np.iinfo(dt)
        tt = TensorProto.INT8 if dt == np.int8 else TensorProto.UINT8
        inits = _params(rng, dt, "a") + _params(rng, dt, "b") + _params(rng, dt, "y")
        node = helper.make_node(op, ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], domain=MS)
        m = _model([node], inits, [helper.make_tensor_value_info(n, tt, list(s)) for n, s in zip("ab", shapes)], tt)
        feeds = {n: rng.integers(info.min, info.max + 1, s).astype(dt) for n, s in zip("ab", shapes)}
        got, want, _ = _run(m, feeds, tmp_path / dt.__name__)
        _exact(got, want)


def test_tables_match_onnxruntime_on_every_code() -> None:
    """The tables built at compile time against onnxruntime's own, all 256 codes, many scales and zero points."""
    from qlinear_ext_models import TT

    from slmc.reference.quant_lut_ops import leaky_relu_table, sigmoid_table

    rng = np.random.default_rng(0)
    for k in range(40):
        dt = (np.int8, np.uint8)[k % 2]
        info = np.iinfo(dt)
        xs, ys = np.float32(rng.uniform(0.001, 0.2)), np.float32(rng.choice([1 / 256, rng.uniform(0.001, 0.05)]))
        xz, yz = (int(rng.integers(info.min, info.max + 1)) for _ in range(2))
        alpha = float(np.float32(rng.uniform(0.01, 0.5)))
        for op, table in (("QLinearSigmoid", sigmoid_table(xs, xz, ys, yz, dt)),
                          ("QLinearLeakyRelu", leaky_relu_table(xs, xz, ys, yz, dt, alpha))):
            inits = [onnx.numpy_helper.from_array(np.array(v, t), n)
                     for v, t, n in ((xs, np.float32, "xs"), (xz, dt, "xz"), (ys, np.float32, "ys"), (yz, dt, "yz"))]
            attrs = {"alpha": alpha} if op == "QLinearLeakyRelu" else {}
            node = helper.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
            m = _model([node], inits, [helper.make_tensor_value_info("x", TT[dt], [256])], TT[dt])
            codes = np.arange(256, dtype=np.uint8).view(dt)
            sess = rt.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            want = sess.run(None, {"x": codes})[0]
            assert np.array_equal(table, want), (op, k)


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TOOLS))
def test_operators_on_an_emulated_mcu(target: str, tmp_path: Path) -> None:
    if any(shutil.which(t) is None for t in TOOLS[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    for op, variant in CASES:
        dt = (np.int8, np.uint8)[variant % 2]
        m, feeds = qoperator(op, dt, 20 + variant, variant)
        got, want, _ = _run(m, feeds, tmp_path / f"{op}{variant}", target)
        _exact(got, want)
    for op in ("Softmax", "Mul"):  # (uint8: onnxruntime on x86-64 fuses these, not the int8 ones)
        m, feeds = qdq(op, np.uint8, 4)
        got, want, _ = _run(m, feeds, tmp_path / f"qdq_{op}", target)
        _exact(got, want)
    for case, dt in ((1, np.uint8), (4, np.int8)):  # QLinearWhere: broadcast operands; one copied operand
        *shapes, same = WHERE_CASES[case]
        m, feeds = _where_model(dt, tuple(shapes), np.random.default_rng(case), same)
        got, want, _ = _run(m, feeds, tmp_path / f"where{case}", target)
        _exact(got, want)
    for case in (0, 3):  # MatMulIntegerToFloat: per-tensor with bias; per-column, int8 A
        m, feeds = _mitf_model(case)
        got, want, _ = _run(m, feeds, tmp_path / f"mitf{case}", target)
        _exact(got.view(np.uint32), want.view(np.uint32))


# ---- the quantized compact transformer -------------------------------------------------------------------------

def _cct(fmt: str, act: str, folder: Path, target: str = "host", inputs: "int | list[int]" = 150
         ) -> tuple[float, int, int, float]:
    """(max |difference|, outputs differing, outputs, the output's quantization step) over random inputs: the
    first `inputs` of one seeded sequence (input 0 is the network's own), or those of it numbered in a list."""
    from test_qdq import NETWORKS, quantized

    if "cct_2" not in NETWORKS:
        pytest.skip("cnn_nets.py has no cct_2")
    path, x = quantized("cct_2", fmt, folder, act)
    out = folder / f"out_{target}"
    compile_model(CompileOptions(model=path, out=out, target=target))
    ops = {n.op for n in load(path).nodes}
    m = onnx.load(str(path))
    if fmt == "QDQ":  # the QDQ groups fused are those onnxruntime's own optimized graph fuses
        so = rt.SessionOptions()
        so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(folder / "ort_opt.onnx")
        rt.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        kinds = {"MatMul", "Add", "Mul", "Conv", "Gemm", "Softmax", "QLinearMatMul", "QLinearConv", "QGemm",
                 "QLinearAdd", "QLinearMul", "QLinearSoftmax"}
        count = (lambda g: sorted(n.op_type for n in g.node if n.op_type in kinds))
        assert count(onnx_qdq.fuse(m).graph) == count(onnx.load(str(folder / "ort_opt.onnx")).graph)
    if fmt == "QDQ" and act == "QInt8":
        # onnxruntime on x86-64 keeps three MatMuls (their int8 activation's DequantizeLinear has two consumers)
        # and the Add and Mul of an int8 constant and a uint8 activation in float (onnx_qdq.py)
        assert "MatMul" in ops and "Add" in ops and "Mul" in ops, ops
        assert {"QLinearSoftmax", "MatMulInteger", "ConvInteger"} <= ops, ops
    else:  # every quantized operator is integer: no float Softmax, Mul, MatMul, Gemm, Conv or Add is left
        assert {"QLinearSoftmax", "QLinearMul", "QLinearAdd", "MatMulInteger", "ConvInteger"} <= ops, ops
        assert not {"Softmax", "Mul", "MatMul", "Gemm", "Conv", "Add"} & ops, ops
    sess = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(42)
    draws = [x] + [(rng.standard_normal(x.shape) * (1 + i % 3)).astype(np.float32)
                   for i in range(1, (inputs if isinstance(inputs, int) else max(inputs) + 1))]
    worst, differ, total = 0.0, 0, 0
    for xi in (draws if isinstance(inputs, int) else [draws[i] for i in inputs]):
        want = sess.run(None, {"x": xi})[0]
        got = run_graph(out, {"x": xi})[0]["output_0"]
        assert got.shape == want.shape and got.dtype == want.dtype
        worst, differ, total = max(worst, float(np.abs(got - want).max())), differ + int((got != want).sum()), \
            total + want.size
    return worst, differ, total, _output_step(m)


def _output_step(m: onnx.ModelProto) -> float:
    """The scale of the DequantizeLinear writing the graph's output."""
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
    out = m.graph.output[0].name
    dq = next(n for n in m.graph.node if out in n.output)
    assert dq.op_type == "DequantizeLinear", dq.op_type
    return float(consts[dq.input[1]].reshape(-1)[0])


@pytest.mark.parametrize("act", ["QUInt8", "QInt8"])
@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_quantized_cct_matches_onnxruntime(fmt: str, act: str, tmp_path: Path) -> None:
    worst, differ, total, step = _cct(fmt, act, tmp_path / "net")
    print(f"cct_2 {fmt} {act}: max |difference| {worst:.6g} ({worst / step:.3g} output steps), "
          f"{differ} of {total} outputs differ")
    assert differ == 0, (worst, step, differ, total)


# the inputs of the 150 where the host build differed by a step before MLAS's MatMul order (QDQ-int8) and the
# double QLinearSoftmax quotient (QOperator-uint8), with input 0
MCU_INPUTS = {("QDQ", "QInt8"): [0, 117], ("QOperator", "QUInt8"): [0, 55, 93], ("QDQ", "QUInt8"): [0],
              ("QOperator", "QInt8"): [0]}


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TOOLS))
def test_quantized_cct_on_an_emulated_mcu(target: str, tmp_path: Path) -> None:
    if any(shutil.which(t) is None for t in TOOLS[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    for (fmt, act), inputs in MCU_INPUTS.items():
        worst, differ, total, step = _cct(fmt, act, tmp_path / f"{fmt}_{act}", target, inputs=inputs)
        assert differ == 0, (fmt, act, worst, step, differ, total)


# ---- refused in one line, exit 2 --------------------------------------------------------------------------------

def _refused(tmp_path: Path, m: onnx.ModelProto) -> str:
    from test_qdq import _cli_fails_cleanly

    return _cli_fails_cleanly(tmp_path, m)


def test_still_unsupported_quantized_operator_is_refused(tmp_path: Path) -> None:
    """QLinearReduceMean: a contrib schema onnxruntime's CPU provider has no kernel for (so nothing to match)."""
    inits = _params(np.random.default_rng(0), np.uint8, "s")
    node = helper.make_node("QLinearReduceMean", ["x", "ss", "sz", "ss", "sz"], ["y"], name="r1", domain=MS, axes=[1],
                            keepdims=1)
    g = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)
    line = _refused(tmp_path, m)
    assert "QLinearReduceMean" in line and "r1" in line and "op_types_to_quantize" in line, line


# ---- QLinearWhere -----------------------------------------------------------------------------------------------

def _where_model(dt: type, shapes: tuple, rng: np.random.Generator, same: str = "") -> tuple[onnx.ModelProto, dict]:
    """QLinearWhere(c, a, b) with random per-tensor parameters; `same`: the inputs ("a", "b") sharing the
    output's scale and zero point."""
    info = np.iinfo(dt)
    z = _params(rng, dt, "z")
    inits = list(z)
    names = {}
    for k in "ab":
        if k in same:
            names[k] = ("zs", "zz")
        else:
            inits += _params(rng, dt, k)
            names[k] = (f"{k}s", f"{k}z")
    node = helper.make_node("QLinearWhere", ["c", "a", *names["a"], "b", *names["b"], "zs", "zz"], ["y"], domain=MS)
    ins = [helper.make_tensor_value_info("c", TensorProto.BOOL, list(shapes[0]))] + [
        helper.make_tensor_value_info(k, TT[dt], list(sh)) for k, sh in zip("ab", shapes[1:])]
    feeds = {"c": rng.integers(0, 2, shapes[0]).astype(bool),
             "a": rng.integers(info.min, info.max + 1, shapes[1]).astype(dt),
             "b": rng.integers(info.min, info.max + 1, shapes[2]).astype(dt)}
    return _model([node], inits, ins, TT[dt]), feeds


WHERE_CASES = [((2, 3, 17), (2, 3, 17), (2, 3, 17), ""), ((2, 3, 17), (17,), (3, 1), ""), ((3, 1), (2, 3, 5), (), ""),
               ((2, 3, 17), (2, 3, 17), (2, 3, 17), "a"), ((4, 9), (4, 9), (1, 9), "ab")]


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("case", range(len(WHERE_CASES)))
def test_qlinear_where_matches_onnxruntime(case: int, dt: str, tmp_path: Path) -> None:
    *shapes, same = WHERE_CASES[case]
    m, feeds = _where_model(DTYPES[dt], tuple(shapes), np.random.default_rng(case), same)
    folder = tmp_path / "w"
    folder.mkdir()
    path = folder / "m.onnx"
    onnx.save(m, str(path))
    want = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    compile_model(CompileOptions(model=path, out=folder / "out", target="host"))
    got = run_graph(folder / "out", feeds)[0]["output_0"]
    _exact(got, want)
    ops = [n.op for n in load(path).nodes]
    assert "Where" in ops and ops.count("QLinearLookup") == 2 - len(same), ops


def test_requantize_table_matches_onnxruntime_on_every_code() -> None:
    """QLinearWhere's tables: every code of A through onnxruntime (B never selected), many scales and zero points."""
    from slmc.reference.quant_lut_ops import requantize_table

    rng = np.random.default_rng(5)
    for k in range(30):
        dt = (np.int8, np.uint8)[k % 2]
        m, _ = _where_model(dt, ((256,), (256,), (256,)), rng)
        consts = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
        codes = np.arange(256, dtype=np.uint8).view(dt)
        want = rt.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"c": np.ones(256, bool), "a": codes, "b": codes})[0]
        table = requantize_table(float(consts["as"]), int(consts["az"]), float(consts["zs"]), int(consts["zz"]), dt)
        assert np.array_equal(table, want), k


@pytest.mark.parametrize("op", ["QLinearSigmoid", "QLinearSoftmax"])
def test_run_time_scale_is_refused(op: str, tmp_path: Path) -> None:
    inits = _params(np.random.default_rng(0), np.uint8, "s")
    node = helper.make_node(op, ["x", "sx", "sz", "ss", "sz"], ["y"], name="t1", domain=MS)
    g = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4]),
                                       helper.make_tensor_value_info("sx", TensorProto.FLOAT, [])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)
    line = _refused(tmp_path, m)
    assert f"{op} node 't1'" in line and "constant" in line, line


def test_average_pool_with_ceil_mode_and_padding_counted_is_refused(tmp_path: Path) -> None:
    inits = _params(np.random.default_rng(0), np.uint8, "s")
    node = helper.make_node("QLinearAveragePool", ["x", "ss", "sz", "ss", "sz"], ["y"], name="p1", domain=MS,
                            kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=1)
    m = _model([node], inits, [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2, 5, 5])], TensorProto.UINT8)
    line = _refused(tmp_path, m)
    assert "QLinearAveragePool node 'p1'" in line and "ceil_mode" in line, line


# ---- MatMulIntegerToFloat ---------------------------------------------------------------------------------------

MITF_CASES = [(np.uint8, np.int8, False, True, True), (np.uint8, np.uint8, False, False, True),
              (np.uint8, np.int8, True, True, False), (np.int8, np.int8, True, True, True)]


def _mitf_model(case: int) -> tuple[onnx.ModelProto, dict]:
    """MatMulIntegerToFloat(A [2, 5, 16], B [16, 7] constant): per-column B scale or not, zero points, bias."""
    at, bt, per_column, zps, bias = MITF_CASES[case]
    rng = np.random.default_rng(40 + case)
    a_info = np.iinfo(at)
    hi = 64 if bt == np.int8 else 128  # 7-bit weights: exact in onnxruntime's u8s8 kernels on any x86 (test_qdq.py)
    inits = [onnx.numpy_helper.from_array(rng.integers(-hi if bt == np.int8 else 0, hi, (16, 7)).astype(bt), "b"),
             onnx.numpy_helper.from_array(np.array(rng.uniform(0.01, 0.1), np.float32), "as"),
             onnx.numpy_helper.from_array(rng.uniform(0.01, 0.1, 7 if per_column else ()).astype(np.float32), "bs")]
    names = ["a", "b", "as", "bs"]
    if zps:
        inits += [onnx.numpy_helper.from_array(np.array(rng.integers(a_info.min, a_info.max + 1), at), "az"),
                  onnx.numpy_helper.from_array(np.array(0 if bt == np.int8 else rng.integers(0, 256), bt), "bz")]
        names += ["az", "bz"]
    if bias:
        inits.append(onnx.numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "bias"))
        names += ([] if zps else ["", ""]) + ["bias"]
    node = helper.make_node("MatMulIntegerToFloat", names, ["y"], domain=MS)
    g = helper.make_graph([node], "m", [helper.make_tensor_value_info("a", TT[at], [2, 5, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)
    return m, {"a": rng.integers(a_info.min, a_info.max + 1, (2, 5, 16)).astype(at)}


@pytest.mark.parametrize("case", range(len(MITF_CASES)))
def test_matmul_integer_to_float_matches_onnxruntime(case: int, tmp_path: Path) -> None:
    m, feeds = _mitf_model(case)
    got, want, path = _run(m, feeds, tmp_path)
    assert got.dtype == want.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    ops = [n.op for n in load(path).nodes]
    assert "MatMulInteger" in ops and "MatMul" not in ops, ops
