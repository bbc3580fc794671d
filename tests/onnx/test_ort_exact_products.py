"""A quantized graph's float MatMul and com.microsoft QLinearSoftmax give onnxruntime 1.32's bits (issue 20):

- MatMul (ir/numerics.py, kernels/c/matmul_mlas_f32.c, twin reference/onnx_ort_ops.py) in the order MLAS sums it on
  x86-64: M = 1 in groups of 4 products (SgemmKernelM1Avx), N = 1 in 8 lanes reduced by the row's place in groups
  of 4, 2, 1 (SgemmKernelM1TransposeBAvx), otherwise one fused multiply-add chain per output and K block (128, or
  256 where onnxruntime packs a constant B; a B behind a DequantizeLinear is not packed). onnxruntime runs on one
  thread here: above 65,536 multiply-adds MLAS may split a product over threads, which can change that order.
  A float graph keeps matmul_f32.c (tiled; within 1e-4 of onnxruntime), so the models here carry a
  QuantizeLinear.
- QLinearSoftmax (kernels/c/qlinear_softmax.c, twin reference/quant_lut_ops.py): the table's shift from the float
  logf(FLT_MAX / D) and the quotient t * floor(1 / y_scale) / sum and its rounding in double, as the 1.32 wheel's
  machine code computes them (its qlinear_softmax.cc in the repository reads float).
Both against onnxruntime on random shapes and data: the twins on many rows, the C kernels compiled on the host and
(slow tier) on the Cortex-M33 and RV32IMAC under QEMU."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.ir.numerics import BLOCKED, M1, N1, mlas_sgemm_path

sys.path.append(str(Path(__file__).parent))
from test_ort_numerics import TOOLS, exact_host  # noqa: E402  (onnxruntime's x86-64 AVX2/FMA kernels: the orders reproduced)

rt = pytest.importorskip("onnxruntime")

F = TensorProto.FLOAT


def _session(m: onnx.ModelProto) -> "rt.InferenceSession":
    so = rt.SessionOptions()
    so.intra_op_num_threads = 1
    return rt.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


# ---- MatMul ------------------------------------------------------------------------------------------------

# (A shape, B shape, how B arrives): "input" (a graph input: not packed), "dq" (DequantizeLinear of int8 codes: not
# packed), "init" (a float initializer: packed by onnxruntime)
PRODUCTS = [
    ((1, 67), (67, 30), "dq"),            # M = 1: groups of 4, then 2 and 1
    ((1, 5), (5, 3), "input"),
    ((7, 100), (100, 1), "dq"),           # N = 1: 4 rows, a pair, a single row; K % 8 = 4
    ((64, 64), (64, 1), "dq"),            # the CCT-2's /attention_pool/MatMul
    ((2, 8, 70), (70, 1), "input"),       # A's batch merged into m = 16
    ((2, 3, 5, 33), (2, 3, 33, 1), "input"),  # batched products, each N = 1
    ((5, 200), (200, 300), "dq"),         # K blocks of 128
    ((12, 300), (300, 20), "init"),       # packed: K blocks of 256
    ((1, 40), (40, 9), "init"),           # packed: M = 1 takes the blocked kernel
    ((3, 129), (129, 129), "input"),
    ((2, 3, 4, 9), (2, 3, 9, 9), "input"),
]


def _matmul_model(products: list, rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One graph of several products and a QuantizeLinear (which makes it a quantized graph for slmc)."""
    nodes, inits, ins, outs, feeds = [], [], [], [], {}
    for i, (ash, bsh, how) in enumerate(products):
        feeds[f"a{i}"] = rng.standard_normal(ash).astype(np.float32)
        ins.append(helper.make_tensor_value_info(f"a{i}", F, list(ash)))
        if how == "input":
            feeds[f"b{i}"] = rng.standard_normal(bsh).astype(np.float32)
            ins.append(helper.make_tensor_value_info(f"b{i}", F, list(bsh)))
        elif how == "init":
            inits.append(numpy_helper.from_array(rng.standard_normal(bsh).astype(np.float32), f"b{i}"))
        else:
            # int8 codes fed at run time (onnxruntime fuses a DequantizeLinear of a constant into MatMulNBits
            # unless the MatMul sits in a QDQ group, as the CCT-2's do), per column
            feeds[f"bq{i}"] = rng.integers(-127, 128, bsh).astype(np.int8)
            ins.append(helper.make_tensor_value_info(f"bq{i}", TensorProto.INT8, list(bsh)))
            inits += [numpy_helper.from_array(rng.uniform(0.005, 0.02, bsh[-1]).astype(np.float32), f"bs{i}"),
                      numpy_helper.from_array(np.zeros(bsh[-1], np.int8), f"bz{i}")]
            nodes.append(helper.make_node("DequantizeLinear", [f"bq{i}", f"bs{i}", f"bz{i}"], [f"b{i}"], axis=1))
        nodes.append(helper.make_node("MatMul", [f"a{i}", f"b{i}"], [f"y{i}"]))
        outs.append(helper.make_tensor_value_info(f"y{i}", F, None))
    inits += [numpy_helper.from_array(np.array(0.05, np.float32), "qs"), numpy_helper.from_array(np.array(3, np.uint8), "qz")]
    nodes += [helper.make_node("QuantizeLinear", ["a0", "qs", "qz"], ["q"]),
              helper.make_node("DequantizeLinear", ["q", "qs", "qz"], ["dq"])]
    outs.append(helper.make_tensor_value_info("dq", F, None))
    g = helper.make_graph(nodes, "g", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), feeds


def test_mlas_path_choice() -> None:
    assert mlas_sgemm_path(1, 67, 30, False) == (M1, 67)
    assert mlas_sgemm_path(1, 40, 9, True) == (BLOCKED, 256)
    assert mlas_sgemm_path(7, 100, 1, False) == (N1, 100)
    assert mlas_sgemm_path(5, 200, 300, False) == (BLOCKED, 128)  # N >= K: stride K 128
    assert mlas_sgemm_path(5, 64, 64, False) == (BLOCKED, 64)
    assert mlas_sgemm_path(12, 300, 20, False) == (BLOCKED, 512)  # N < K: stride K doubled while N <= stride N / 2


@exact_host
def test_matmul_twin_matches_onnxruntime_on_random_shapes() -> None:
    from slmc.reference.onnx_ort_ops import matmul_mlas

    rng = np.random.default_rng(11)
    cases = list(PRODUCTS)
    for _ in range(40):  # random shapes around the paths: M = 1, N = 1, general; K 1..300
        k = int(rng.integers(1, 301))
        m, n = [(1, int(rng.integers(1, 70))), (int(rng.integers(1, 70)), 1),
                (int(rng.integers(2, 20)), int(rng.integers(2, 140)))][int(rng.integers(0, 3))]
        cases.append(((m, k), (k, n), ["input", "init", "dq"][int(rng.integers(0, 3))]))
    differ, total = 0, 0
    for ash, bsh, how in cases:
        m, feeds = _matmul_model([(ash, bsh, how)], rng)
        want = _session(m).run(None, feeds)[0]
        b = feeds.get("b0")
        if b is None:
            t = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
            b = t["b0"] if how == "init" else (feeds["bq0"].astype(np.float32) * t["bs0"][None, :]).astype(np.float32)
        got = matmul_mlas(feeds["a0"], b, how == "init")
        differ += int((_bits(got) != _bits(want)).sum())
        total += want.size
    assert differ == 0, f"{differ} of {total} differ"


def _compiled_matmuls(tmp_path: Path, target: str) -> None:
    rng = np.random.default_rng(5)
    m, feeds = _matmul_model(PRODUCTS, rng)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    compile_model(CompileOptions(model=path, out=tmp_path / "out", target=target))
    src = (tmp_path / "out" / "model.c").read_text()
    assert src.count("slmc_matmul_mlas_f32(") > len(PRODUCTS) and "slmc_matmul_f32(" not in src  # (and a prototype)
    want = _session(m).run(None, feeds)
    got = run_graph(tmp_path / "out", feeds)[0]
    for i, w in enumerate(want[:-1]):
        assert np.array_equal(_bits(got[f"output_{i}"]), _bits(w)), (target, PRODUCTS[i])


@exact_host
def test_compiled_matmuls_match_onnxruntime(tmp_path: Path) -> None:
    _compiled_matmuls(tmp_path, "host")


def test_float_graph_keeps_the_tiled_matmul(tmp_path: Path) -> None:
    """Without a QuantizeLinear the MatMul is not marked: matmul_f32.c (register-blocked, tiled)."""
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("a", F, [4, 8]), helper.make_tensor_value_info("b", F, [8, 3])],
                          [helper.make_tensor_value_info("y", F, None)])
    path = tmp_path / "f.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    compile_model(CompileOptions(model=path, out=tmp_path / "out", target="host"))
    src = (tmp_path / "out" / "model.c").read_text()
    assert "slmc_matmul_f32(" in src and "slmc_matmul_mlas_f32(" not in src


# ---- QLinearSoftmax ----------------------------------------------------------------------------------------

def _softmax_model(xs: float, xz: int, ys: float, yz: int, shape: list, dt: type, fixed: bool) -> onnx.ModelProto:
    tt = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    inits = [numpy_helper.from_array(np.array(xz, dt), "xz"), numpy_helper.from_array(np.array(ys, np.float32), "ys"),
             numpy_helper.from_array(np.array(yz, dt), "yz")]
    ins = [helper.make_tensor_value_info("x", tt, shape)]
    if fixed:  # a constant x_scale: onnxruntime builds the table when the session is made, else at each run
        inits.append(numpy_helper.from_array(np.array(xs, np.float32), "xs"))
    else:
        ins.append(helper.make_tensor_value_info("xs", F, []))
    node = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", axis=-1,
                            opset=13)
    g = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("y", tt, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=9)


def _softmax_case(rng: np.random.Generator, k: int, rows: int) -> tuple:
    d = int(rng.integers(1, 300))
    dt = (np.uint8, np.int8)[k % 2]
    lo, hi = (0, 255) if dt == np.uint8 else (-128, 127)
    xs, ys = float(rng.uniform(0.002, 0.08)), float(rng.choice([1 / 256, 1 / 255.3, 0.0041, 1 / 128, 0.013]))
    xz, yz = int(rng.integers(lo + 60, hi - 60)), int(rng.integers(lo, lo + 10))
    wide = rng.integers(lo, hi + 1, (rows // 2, d))  # rows of any codes, and rows near the zero point (ties)
    near = np.clip(rng.normal(xz, rng.uniform(3, 60, (rows - rows // 2, 1)), (rows - rows // 2, d)), lo, hi)
    return d, dt, xs, xz, ys, yz, np.concatenate([wide, near]).astype(dt)


@exact_host
def test_qlinear_softmax_twin_matches_onnxruntime_on_many_rows() -> None:
    """~2.4 million outputs: before the double quotient and the logf shift, about one in 10^6 differed."""
    from slmc.reference.quant_lut_ops import qlinear_softmax, softmax_table

    rng = np.random.default_rng(0)
    differ, total = 0, 0
    for k in range(40):
        d, dt, xs, xz, ys, yz, x = _softmax_case(rng, k, 400)
        fixed = bool(k % 3)
        feeds = {"x": x} if fixed else {"x": x, "xs": np.array(xs, np.float32)}
        want = _session(_softmax_model(xs, xz, ys, yz, [None, d], dt, fixed)).run(None, feeds)[0]
        ysc = np.float32(math.floor(np.float32(1) / np.float32(ys)))
        got = qlinear_softmax([x, softmax_table(xs, d, dt == np.int8), ysc, np.array(yz, dt)], {})[0]
        differ += int((got != want).sum())
        total += want.size
    assert differ == 0, f"{differ} of {total} differ"


def _compiled_softmax(tmp_path: Path, target: str, cases: int, rows: int) -> None:
    rng = np.random.default_rng(1)
    for k in range(cases):
        d, dt, xs, xz, ys, yz, x = _softmax_case(rng, k, rows)
        m = _softmax_model(xs, xz, ys, yz, list(x.shape), dt, True)
        folder = tmp_path / f"c{k}"
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save(m, str(folder / "m.onnx"))
        compile_model(CompileOptions(model=folder / "m.onnx", out=folder / "out", target=target))
        got = run_graph(folder / "out", {"x": x})[0]["output_0"]
        want = _session(m).run(None, {"x": x})[0]
        assert np.array_equal(got, want), (target, k, int((got != want).sum()))


@exact_host
def test_compiled_qlinear_softmax_matches_onnxruntime(tmp_path: Path) -> None:
    _compiled_softmax(tmp_path, "host", cases=6, rows=2000)


@exact_host
@pytest.mark.slow
@pytest.mark.parametrize("target", list(TOOLS))
def test_kernels_on_an_emulated_mcu(target: str, tmp_path: Path) -> None:
    """The same bits on the Cortex-M33 (VFMA, soft double) and RV32IMAC (soft-float, slmc_fmaf)."""
    if any(shutil.which(t) is None for t in TOOLS[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    _compiled_matmuls(tmp_path / "mm", target)
    _compiled_softmax(tmp_path / "sm", target, cases=2, rows=200)


# ---- slmc_fmaf's soft-float path (the blocked MatMul's multiply-add where there is no FMA instruction) ----------

def _fma_triples() -> np.ndarray:
    """Random triples of several magnitudes, subnormal results, and sums whose double lands on a float tie."""
    rng = np.random.default_rng(4)
    a, b, c = (rng.standard_normal(3000).astype(np.float32) for _ in range(3))
    e = rng.integers(-20, 20, (3, 3000))
    r = np.stack([a * np.exp2(e[0]), b * np.exp2(e[1]), c * np.exp2(e[2])]).astype(np.float32)
    one, ulp = np.float32(1), np.float32(2.0 ** -23)
    ties = []
    for k in range(1, 400, 2):  # c + a b, a b = 2^-24 (1 - 2^-36 j^2): the double sum rounds onto c's float tie
        j = 1 + k % 7
        c0 = np.float32((1 + k * 2.0 ** -23) * 2.0 ** (k % 9 - 4))
        x, y = (np.float32(2.0 ** -12 * (1 + j * 2.0 ** -18)), np.float32(2.0 ** -12 * (1 - j * 2.0 ** -18)))
        sc = np.float32(2.0 ** (k % 9 - 4))
        ties += [(x * sc, y, c0), (-x * sc, y, -c0), (x * sc, -y, -c0), (x, y, one + ulp), (x * sc, y * one, c0 + ulp)]
    tiny = [(np.float32(2.0 ** -70), np.float32(2.0 ** -60 * (1 + k * 2.0 ** -20)), np.float32(k * 2.0 ** -149))
            for k in range(1, 100)]  # subnormal sums, and ones whose double lands on a tie of subnormal floats
    tiny += [(np.float32(2.0 ** -75 * (1 + 2.0 ** -23)), np.float32(s * 2.0 ** -75 * (1 - 2.0 ** -23)),
              np.float32(s * (2 ** 20 + 2 * k + 1) * 2.0 ** -149)) for k in range(100) for s in (1, -1)]
    return np.concatenate([r.T, np.array(ties + tiny, np.float32)]).astype(np.float32)


def _fma_harness(triples: np.ndarray) -> str:
    vals = ",".join(f"0x{int(u):08x}u" for u in triples.reshape(-1).view(np.uint32))
    return ("#include <stdio.h>\n#include \"slmc_kernels.h\"\n"
            f"static const uint32_t T[] = {{{vals}}};\n"
            "static float f(uint32_t u) { union { uint32_t u; float f; } v; v.u = u; return v.f; }\n"
            "int main(void) {\n"
            f"    for (int i = 0; i < {len(triples)}; i++) {{\n"
            "        union { float f; uint32_t u; } r; r.f = slmc_fmaf(f(T[3 * i]), f(T[3 * i + 1]), f(T[3 * i + 2]));\n"
            "        printf(\"%08lx\\n\", (unsigned long)r.u);\n    }\n    return 0;\n}\n")


def _check_fma(out: str, triples: np.ndarray) -> None:
    from slmc.reference.fma import fma32

    got = np.array([int(w, 16) for w in out.split() if len(w) == 8], np.uint32)
    want = fma32(triples[:, 0], triples[:, 1], triples[:, 2]).view(np.uint32)
    assert got.shape == want.shape and np.array_equal(got, want), int((got != want).sum())


def test_soft_fmaf_rounds_once_on_the_host(tmp_path: Path) -> None:
    """The host build without -march has no __FP_FAST_FMAF: the portable path, against the exact twin."""
    import subprocess

    from slmc.kernels.registry import C_DIR

    triples = _fma_triples()
    (tmp_path / "h.c").write_text(_fma_harness(triples))
    subprocess.run(["gcc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(tmp_path / "h"),
                    str(tmp_path / "h.c"), "-lm"], check=True)
    _check_fma(subprocess.run([str(tmp_path / "h")], capture_output=True, text=True, check=True).stdout, triples)


@pytest.mark.slow
def test_soft_fmaf_rounds_once_on_rv32(tmp_path: Path) -> None:
    import sys

    sys.path.append(str(Path(__file__).parent.parent / "kernels"))
    from emulated_kernels import run_harness

    triples = _fma_triples()
    _check_fma(run_harness("rv32imac", tmp_path, _fma_harness(triples), []), triples)
