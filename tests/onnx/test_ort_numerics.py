"""The float kernels of graphs read through the ONNX frontend follow onnxruntime's CPU provider bit for bit
(ir/numerics.py, kernels/onnx_ort.py): Erf as MLAS's FMA3 kernel, Gelu on it, LayerNormalization as MLAS's AVX2
kernel (double-sum mean, centred fused variance). What is compared is onnxruntime 1.32 on an x86-64 CPU with AVX2 and
FMA (the kernels it picks there), so the bit-for-bit checks skip elsewhere. The C kernels are checked against
onnxruntime through compiled models and against their numpy twins (reference/onnx_ort_ops.py), which must give
the same bits; the decoder kernels (layernorm_f32, gelu_f32) are not touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.reference.fma import fma32
from slmc.reference.onnx_ort_ops import erf_mlas, layer_norm_ort

rt = pytest.importorskip("onnxruntime")


def _x86_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


exact_host = pytest.mark.skipif(not _x86_fma(), reason="onnxruntime's kernels compared here are its x86-64 AVX2/FMA ones")


def _model(nodes: list, inits: list, shape: list[int], n_out: int = 1, opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ["y", "m", "i"][:n_out]],
                          inits)
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(g, opset_imports=imports, ir_version=9)


def _gelu(domain: str, shape: list) -> onnx.ModelProto:
    """ONNX's Gelu (opset 20) or onnxruntime's com.microsoft one, both the erf form."""
    return _model([helper.make_node("Gelu", ["x"], ["y"], domain=domain)], [], shape, opset=20)


def _ort(m: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    return rt.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


def test_fma32_rounds_once() -> None:
    """Cases where rounding the sum twice (in float64, then to float32) is wrong, and random ones."""
    one = np.float32(1)
    tiny = np.float32(2.0 ** -24)  # 1 + 2^-24 + 2^-60: a float32 tie after float64 rounding, above it exactly
    assert fma32(one + np.float32(2.0 ** -23), one, tiny) == np.float32(1 + 2.0 ** -22)
    assert fma32(np.float32(2.0 ** -30), np.float32(2.0 ** -30), one + tiny * 0) == one
    assert fma32(np.float32(1 + 2.0 ** -23), np.float32(2.0 ** -24), one) == np.float32(1 + 2.0 ** -23)
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(200_000).astype(np.float32) for _ in range(3))
    exact = [float(np.float32(float(x) * float(y) + float(z))) for x, y, z in zip(a[:2000], b[:2000], c[:2000])]
    assert np.allclose(fma32(a[:2000], b[:2000], c[:2000]), exact, rtol=1.2e-7, atol=0)


@exact_host
def test_erf_twin_matches_onnxruntime_on_random_bits() -> None:
    m = _model([helper.make_node("Erf", ["x"], ["y"])], [], [None])
    rng = np.random.default_rng(1)
    for scale in (0.3, 1.0, 2.5, 6.0):
        x = (rng.standard_normal(200_000) * scale).astype(np.float32)
        assert np.array_equal(_bits(erf_mlas(x)), _bits(_ort(m, x)[0])), scale
    x = rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x)]
    assert np.array_equal(_bits(erf_mlas(x)), _bits(_ort(m, x)[0]))


@exact_host
@pytest.mark.parametrize("domain", ["", "com.microsoft"])
def test_gelu_twin_matches_onnxruntime(domain: str) -> None:
    from slmc.reference.onnx_ort_ops import gelu

    x = (np.random.default_rng(2).standard_normal(300_000) * 3).astype(np.float32)
    got = gelu([x], {"numerics": "onnxruntime"})[0]
    assert np.array_equal(_bits(got), _bits(_ort(_gelu(domain, [None]), x)[0]))


@exact_host
@pytest.mark.parametrize("n", [8, 12, 17, 20, 31, 64, 100])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_twin_matches_onnxruntime(n: int, bias: bool) -> None:
    rng = np.random.default_rng(n)
    w = (rng.standard_normal(n) * 0.3 + 1).astype(np.float32)
    b = (rng.standard_normal(n) * 0.1).astype(np.float32)
    ins = ["x", "w", "b"] if bias else ["x", "w"]
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if bias else [])
    m = _model([helper.make_node("LayerNormalization", ins, ["y", "m", "i"], epsilon=1e-5)], inits, [None, n], 3)
    for scale, shift in ((1, 0), (0.01, -1), (30, 100)):
        x = (rng.standard_normal((300, n)) * scale + shift).astype(np.float32)
        y, mean, inv = layer_norm_ort(x, w, b if bias else None, 1e-5, 1)
        want = _ort(m, x)
        for got, exp in zip((y, mean, inv), want):
            assert np.array_equal(_bits(got).ravel(), _bits(exp).ravel()), (n, bias, scale)


TOOLS = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"), "rv32imac": ("riscv64-unknown-elf-gcc",
                                                                              "qemu-system-riscv32")}


@exact_host
@pytest.mark.slow
@pytest.mark.parametrize("target", list(TOOLS))
def test_kernels_on_an_emulated_mcu(target: str, tmp_path: Path) -> None:
    """The same bits on the Cortex-M33 (VFMA) and RV32IMAC (soft-float fmaf) as onnxruntime on the host."""
    if any(shutil.which(t) is None for t in TOOLS[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    for op in ("LayerNormalization", "Erf", "Gelu"):
        test_compiled_kernel_matches_onnxruntime(op, tmp_path / op, target, inputs=1)


@exact_host
@pytest.mark.slow
def test_kernels_in_a_host_native_build(tmp_path: Path) -> None:
    """-O3 -march=native -ffp-contract=fast (the host-native target): the kernels switch contraction off."""
    for op in ("LayerNormalization", "Erf", "Gelu"):
        test_compiled_kernel_matches_onnxruntime(op, tmp_path / op, "host-native", inputs=2)


@exact_host
@pytest.mark.parametrize("op", ["LayerNormalization", "Erf", "Gelu", "com.microsoft.Gelu"])
def test_compiled_kernel_matches_onnxruntime(op: str, tmp_path: Path, target: str = "host", inputs: int = 3) -> None:
    """Through the ONNX frontend: the C kernel (host build) gives onnxruntime's bits; the graph takes it."""
    rng = np.random.default_rng(3)
    shape = [6, 5, 52]  # rows of 52: 6 vector steps, a 4-wide tail, then a scalar one
    w = (rng.standard_normal(52) * 0.3 + 1).astype(np.float32)
    b = (rng.standard_normal(52) * 0.1).astype(np.float32)
    if op == "Erf":
        m = _model([helper.make_node("Erf", ["x"], ["y"])], [], shape)
    elif op.endswith("Gelu"):
        m = _gelu(op[:-5], shape)
    else:
        m = _model([helper.make_node("LayerNormalization", ["x", "w", "b"], ["y"], epsilon=1e-5)],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")], shape)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    compile_model(CompileOptions(model=path, out=tmp_path / "out", target=target))
    src = (tmp_path / "out" / "model.c").read_text()
    fn = {"Erf": "slmc_erf_mlas_f32", "LayerNormalization": "slmc_layer_normalization_ort_f32"}.get(op, "slmc_gelu_mlas_f32")
    assert fn in src, fn
    for k in range(inputs):
        x = (rng.standard_normal(shape) * (1 + 2 * k)).astype(np.float32)
        got = run_graph(tmp_path / "out", {"x": x})[0]["output_0"]
        assert np.array_equal(_bits(got), _bits(_ort(m, x)[0])), k


@exact_host
def test_qlinear_add_ties_round_as_onnxruntime(tmp_path: Path) -> None:
    """QLinearAdd's constant zp_c - (r_a * zp_a + r_b * zp_b) with its first product fused, as onnxruntime's
    AVX2 kernel is built: every pair of codes, random parameters, twin against onnxruntime; then the C kernel
    on the parameters of the quantized CCT-2's first residual sum, where an output lands on a tie (110.5)."""
    from slmc.reference.quant_ops import qlinear_add, qlinear_add_params

    def model(dt: type, p: tuple) -> onnx.ModelProto:
        tt = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
        inits = [numpy_helper.from_array(np.asarray(v, t), k) for k, v, t in
                 zip(("sa", "za", "sb", "zb", "sc", "zc"), p, (np.float32, dt) * 3)]
        node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"],
                                domain="com.microsoft")
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info(k, tt, [65536]) for k in "ab"],
                              [helper.make_tensor_value_info("y", tt, None)], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                                 ir_version=8)

    rng = np.random.default_rng(7)
    pairs = np.stack(np.meshgrid(np.arange(256), np.arange(256))).reshape(2, -1).astype(np.uint8)
    for k in range(12):
        dt = (np.uint8, np.int8)[k % 2]
        info = np.iinfo(dt)
        p = tuple(np.float32(rng.uniform(0.001, 0.05)) if i % 2 == 0 else int(rng.integers(info.min, info.max + 1))
                  for i in range(6))
        a, b = pairs[0].view(dt), pairs[1].view(dt)
        want = rt.InferenceSession(model(dt, p).SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"a": a, "b": b})[0]
        got = qlinear_add([a, b, qlinear_add_params(*p)], {})[0]
        assert np.array_equal(got, want), (k, int((got != want).sum()))
    p = (np.float32("0.012156674"), 62, np.float32("0.004454797"), 167, np.float32("0.013882832"), 75)
    m = model(np.uint8, p)
    path = tmp_path / "add.onnx"
    onnx.save(m, str(path))
    compile_model(CompileOptions(model=path, out=tmp_path / "out", target="host"))
    a, b = pairs[0], pairs[1]
    want = rt.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"a": a, "b": b})[0]
    assert want[(a == 115) & (b == 133)][0] == 111  # the tie: unfused, 110.5 rounds to even, 110
    got = run_graph(tmp_path / "out", {"a": a, "b": b})[0]["output_0"]
    assert np.array_equal(got, want)


def test_portable_fmaf_rounds_once(tmp_path: Path) -> None:
    """slmc_fmaf's portable path (slmc_kernels.h: what RV32IMAC runs, whose picolibc fmaf rounds twice), built
    for the host without an FMA unit: the twin's bits on random operands and on a double-rounding trap."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    import subprocess

    from slmc.kernels.registry import C_DIR
    from slmc.targets import get_target

    one = np.float32(1)
    trap = [one + np.float32(2.0 ** -23), np.float32(2.0 ** -24 - 2.0 ** -47), one + np.float32(2.0 ** -23)]
    rng = np.random.default_rng(9)
    ops = np.concatenate([np.array([trap], np.float32), rng.standard_normal((3000, 3)).astype(np.float32),
                          (rng.standard_normal((3000, 3)) * [1, 1e-4, 1]).astype(np.float32)])
    words = ",".join(f"0x{int(w):08x}u" for w in ops.view(np.uint32).ravel())
    (tmp_path / "f.c").write_text(
        '#include <stdio.h>\n#include "slmc_kernels.h"\n'
        f"static const uint32_t w[] = {{{words}}};\n"
        "int main(void) {\n    union { uint32_t u; float f; } a, b, c, r;\n"
        f"    for (int i = 0; i < {len(ops)}; i++) {{\n"
        "        a.u = w[3 * i]; b.u = w[3 * i + 1]; c.u = w[3 * i + 2];\n"
        "        r.f = slmc_fmaf(a.f, b.f, c.f);\n        printf(\"%08lx\\n\", (unsigned long)r.u);\n    }\n"
        "    return 0;\n}\n")
    exe = tmp_path / "f"
    subprocess.run(["gcc", *get_target("host").cflags, f"-I{C_DIR}", "-o", str(exe), str(tmp_path / "f.c"), "-lm"],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    got = np.array([int(h, 16) for h in out], np.uint32).view(np.float32)
    want = fma32(ops[:, 0], ops[:, 1], ops[:, 2])
    assert got[0] == one + np.float32(2.0 ** -23) == want[0]  # rounding the float64 sum first gives 1 + 2^-22
    assert np.float32(np.float64(trap[0]) * np.float64(trap[1]) + np.float64(trap[2])) != got[0]
    assert np.array_equal(_bits(got), _bits(want))


def test_short_rows_follow_the_twin(tmp_path: Path) -> None:
    """Rows shorter than 8 take another onnxruntime path (not reproduced: within 1e-6 of it); the C kernel
    still gives its twin's bits there, and onnxruntime's values within 1e-5."""
    rng = np.random.default_rng(11)
    for n in (1, 3, 5, 7):
        w = (rng.standard_normal(n) * 0.3 + 1).astype(np.float32)
        b = (rng.standard_normal(n) * 0.1).astype(np.float32)
        m = _model([helper.make_node("LayerNormalization", ["x", "w", "b"], ["y"], epsilon=1e-5)],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")], [9, n])
        path = tmp_path / f"n{n}.onnx"
        onnx.save(m, str(path))
        compile_model(CompileOptions(model=path, out=tmp_path / f"out{n}", target="host"))
        x = rng.standard_normal((9, n)).astype(np.float32)
        got = run_graph(tmp_path / f"out{n}", {"x": x})[0]["output_0"]
        assert np.array_equal(_bits(got), _bits(layer_norm_ort(x, w, b, 1e-5, 1)[0])), n
        assert np.allclose(got, _ort(m, x)[0], atol=1e-5), n
