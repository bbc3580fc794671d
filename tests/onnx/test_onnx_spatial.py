"""Float Conv and ConvTranspose (1-D to 3-D, groups, depthwise, dilations, pads, auto_pad, strides, bias,
output_padding/output_shape), BatchNormalization (folded into Conv/Gemm by passes/fold_batchnorm.py, else its
own kernel), Instance/GroupNormalization, Resize (nearest/linear/cubic, every coordinate mode) and the pooling
family (MaxPool with Indices, AveragePool with pads/ceil_mode/count_include_pad, GlobalAveragePool,
GlobalMaxPool) compiled to C and run,
against onnxruntime within 1e-4: on the host, and (slow tier) on the Cortex-M33 and RV32IMAC under QEMU."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.frontend.onnx_import import load

rt = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(2020)
F = TensorProto.FLOAT


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


BN = {"s": _f(6), "bb": _f(6), "mu": _f(6), "var": RNG.random(6).astype(np.float32) + 0.5}


def _model(nodes: list, x_shape: list[int], inits: dict[str, np.ndarray], opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, x_shape)],
                          [helper.make_tensor_value_info("y", F, None)],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def check(model: onnx.ModelProto, tmp: Path, target: str = "host", atol: float = 1e-4) -> None:
    x = _f(*[d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim])
    want = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    onnx.save(model, str(tmp / "m.onnx"))
    compile_model(CompileOptions(model=tmp / "m.onnx", out=tmp / "o", target=target))
    got, _ = run_graph(tmp / "o", {"x": x})
    assert got["output_0"].shape == want.shape
    np.testing.assert_allclose(got["output_0"], want, rtol=1e-4, atol=atol)


def node(op: str, ins: list[str], **kw) -> onnx.NodeProto:  # type: ignore[no-untyped-def]
    return helper.make_node(op, ins, ["y"], **kw)


CASES = {
    "conv2d_groups_pads_strides_dilations": (node("Conv", ["x", "w", "b"], group=2, pads=[1, 0, 2, 1], strides=[2, 1],
                                                  dilations=[1, 2]), [1, 4, 9, 10], {"w": _f(6, 2, 3, 3), "b": _f(6)}),
    "conv2d_depthwise_same_upper": (node("Conv", ["x", "w"], group=4, auto_pad="SAME_UPPER", strides=[2, 2]),
                                    [2, 4, 7, 8], {"w": _f(4, 1, 3, 3)}),
    "conv2d_same_lower": (node("Conv", ["x", "w"], auto_pad="SAME_LOWER", kernel_shape=[4, 2]), [1, 3, 6, 5], {"w": _f(2, 3, 4, 2)}),
    "conv2d_valid_pointwise": (node("Conv", ["x", "w", "b"], auto_pad="VALID"), [1, 8, 5, 5], {"w": _f(3, 8, 1, 1), "b": _f(3)}),
    # conv_f32.c's blocked 1x1 path: 4x4 blocks with channel and position tails, groups, batch, no bias, 1-D and 3-D
    "conv2d_pointwise_grouped_tails": (node("Conv", ["x", "w"], group=2), [2, 6, 3, 5], {"w": _f(10, 3, 1, 1)}),
    "conv3d_pointwise_bias": (node("Conv", ["x", "w", "b"]), [1, 5, 2, 3, 3], {"w": _f(9, 5, 1, 1, 1), "b": _f(9)}),
    # its 3x3 one-plane-per-output path: border rows and columns checked, interior straight
    "conv2d_depthwise3x3_pads_bias": (node("Conv", ["x", "w", "b"], group=4, pads=[1, 1, 1, 1]), [2, 4, 6, 7],
                                      {"w": _f(4, 1, 3, 3), "b": _f(4)}),
    "conv2d_depthwise3x3_strided_asym": (node("Conv", ["x", "w"], group=3, strides=[2, 3], pads=[0, 2, 1, 1]),
                                         [1, 3, 9, 11], {"w": _f(3, 1, 3, 3)}),
    "conv2d_depthwise3x3_dilated_multiplier": (node("Conv", ["x", "w", "b"], group=2, dilations=[2, 2], pads=[2, 1, 2, 3]),
                                               [1, 2, 7, 8], {"w": _f(6, 1, 3, 3), "b": _f(6)}),
    "conv2d_depthwise3x3_tiny_planes": (node("Conv", ["x", "w"], group=5, strides=[2, 2], pads=[1, 1, 1, 1]), [1, 5, 2, 1],
                                        {"w": _f(5, 1, 3, 3)}),
    "conv2d_3x3_grouped_channels": (node("Conv", ["x", "w", "b"], group=2, strides=[2, 1], pads=[1, 0, 0, 1], dilations=[1, 2]),
                                    [2, 4, 5, 8], {"w": _f(6, 2, 3, 3), "b": _f(6)}),
    "conv2d_3x3_dense_same": (node("Conv", ["x", "w"], pads=[1, 1, 1, 1]), [1, 3, 7, 6], {"w": _f(5, 3, 3, 3)}),
    # dense4: 4 channels x 4 positions, border columns, channel tails on the 3x3 and the general paths
    "conv2d_dense_4x2_strided_dilated_tail": (node("Conv", ["x", "w", "b"], strides=[2, 1], dilations=[1, 2], pads=[2, 1, 1, 3]),
                                              [1, 3, 9, 13], {"w": _f(6, 3, 4, 2), "b": _f(6)}),
    "conv2d_dense_grouped_wide": (node("Conv", ["x", "w"], group=2, pads=[1, 1, 1, 1]), [2, 6, 4, 15], {"w": _f(8, 3, 3, 3)}),
    "conv1d_dense_k5": (node("Conv", ["x", "w", "b"], pads=[2, 3], strides=[2]), [1, 4, 23], {"w": _f(9, 4, 5), "b": _f(9)}),
    "conv2d_depthwise3x3_valid": (node("Conv", ["x", "w"], group=2), [1, 2, 3, 3], {"w": _f(2, 1, 3, 3)}),
    "conv1d_pointwise_strided": (node("Conv", ["x", "w", "b"], strides=[2]), [1, 4, 9], {"w": _f(8, 4, 1), "b": _f(8)}),
    "conv1d_dilated_padded": (node("Conv", ["x", "w", "b"], pads=[2, 1], dilations=[2]), [1, 3, 16], {"w": _f(5, 3, 4), "b": _f(5)}),
    "conv1d_depthwise_strided": (node("Conv", ["x", "w"], group=3, strides=[3], pads=[1, 1]), [2, 3, 11], {"w": _f(3, 1, 3)}),
    "maxpool2d_ceil_pads": (node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                            [1, 2, 8, 9], {}),
    "maxpool2d_dilated_same": (node("MaxPool", ["x"], kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
                               [1, 3, 7, 7], {}),
    "maxpool1d_dilated_pads": (node("MaxPool", ["x"], kernel_shape=[3], strides=[2], dilations=[2], pads=[2, 1]), [2, 3, 10], {}),
    "avgpool2d_include_pad_ceil": (node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                        ceil_mode=1, count_include_pad=1), [1, 2, 8, 9], {}),
    "avgpool2d_exclude_pad_ceil": (node("AveragePool", ["x"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1],
                                        ceil_mode=1), [1, 2, 8, 9], {}),
    "avgpool1d_same": (node("AveragePool", ["x"], kernel_shape=[4], auto_pad="SAME_LOWER"), [1, 2, 9], {}),
    "global_avgpool": (node("GlobalAveragePool", ["x"]), [2, 3, 5, 4], {}),
    "global_maxpool_1d": (node("GlobalMaxPool", ["x"]), [2, 3, 5], {}),
    "batchnorm_alone": (node("BatchNormalization", ["x", "s", "bb", "mu", "var"], epsilon=1e-3), [2, 6, 5], BN),
    "batchnorm_4d_opset9": (node("BatchNormalization", ["x", "s", "bb", "mu", "var"]), [1, 6, 3, 4], BN),
    "convtranspose2d_groups_pads_output_padding": (node("ConvTranspose", ["x", "w", "b"], group=2, pads=[1, 0, 2, 1],
                                                        strides=[2, 3], dilations=[1, 2], output_padding=[1, 0]),
                                                   [1, 4, 5, 6], {"w": _f(4, 3, 3, 3), "b": _f(6)}),
    "convtranspose1d_strided": (node("ConvTranspose", ["x", "w"], strides=[2], pads=[1, 1], output_padding=[1]),
                                [1, 3, 7], {"w": _f(3, 2, 4)}),
    "convtranspose2d_output_shape": (node("ConvTranspose", ["x", "w"], strides=[2, 2], output_shape=[10, 9]),
                                     [1, 3, 5, 4], {"w": _f(3, 2, 3, 3)}),
    "convtranspose2d_same_upper": (node("ConvTranspose", ["x", "w"], strides=[2, 2], auto_pad="SAME_UPPER"),
                                   [1, 3, 5, 4], {"w": _f(3, 2, 3, 3)}),
    "instancenorm": (node("InstanceNormalization", ["x", "s", "bb"], epsilon=1e-3), [2, 6, 5, 4], BN),
    "groupnorm_opset21": (node("GroupNormalization", ["x", "s", "bb"], num_groups=2), [2, 6, 5], BN),
    "groupnorm_opset18_per_group": (node("GroupNormalization", ["x", "g2", "b2"], num_groups=2), [2, 6, 5],
                                    {"g2": _f(2), "b2": _f(2)}),
}
OPSET = {"batchnorm_4d_opset9": 9, "groupnorm_opset21": 21, "groupnorm_opset18_per_group": 18}


@pytest.mark.parametrize("case", list(CASES))
def test_spatial_operator_matches_onnxruntime(case: str, tmp_path: Path) -> None:
    n, shape, inits = CASES[case]
    check(_model([n], shape, inits, opset=OPSET.get(case, 17)), tmp_path)


def _conv_bn_gemm_bn() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["d"], epsilon=1e-3),
             helper.make_node("Relu", ["d"], ["e"]),
             helper.make_node("BatchNormalization", ["e", "s", "bb", "mu", "var"], ["f"]),  # after a Relu: a kernel
             helper.make_node("GlobalAveragePool", ["f"], ["p"]),
             helper.make_node("Flatten", ["p"], ["q"]),
             helper.make_node("Gemm", ["q", "gw", "gb"], ["r"], transB=1, beta=0.5),
             helper.make_node("BatchNormalization", ["r", "s", "bb", "mu", "var"], ["y"])]
    return _model(nodes, [1, 4, 6, 7], {"w": _f(6, 4, 3, 3), "gw": _f(6, 6), "gb": _f(6), **BN})


def test_batchnorm_folds_into_conv_and_gemm(tmp_path: Path) -> None:
    m = _conv_bn_gemm_bn()
    onnx.save(m, str(tmp_path / "bn.onnx"))
    ops = [n.op for n in load(tmp_path / "bn.onnx").nodes]
    assert ops.count("BatchNormalization") == 1, ops  # the one after the Relu runs as its own kernel
    (tmp_path / "run").mkdir()
    check(m, tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
def test_spatial_operators_on_emulated_mcus(target: str, tmp_path: Path) -> None:
    tools = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"), "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}
    if any(shutil.which(t) is None for t in tools[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=2, pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["d"]),
             helper.make_node("Relu", ["d"], ["e"]),
             helper.make_node("BatchNormalization", ["e", "s", "bb", "mu", "var"], ["f"]),
             helper.make_node("MaxPool", ["f"], ["g"], kernel_shape=[2, 2], ceil_mode=1, strides=[2, 2]),
             helper.make_node("AveragePool", ["g"], ["h"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1),
             helper.make_node("Resize", ["h", "", "rs2"], ["h2"], mode="cubic"),
             helper.make_node("Conv", ["h2", "dw"], ["i"], group=6, auto_pad="SAME_UPPER"),
             helper.make_node("GlobalMaxPool", ["i"], ["j"]),
             helper.make_node("GlobalAveragePool", ["h2"], ["k"]),
             helper.make_node("Add", ["j", "k"], ["y"])]
    m = _model(nodes, [1, 4, 9, 10], {"w": _f(6, 2, 3, 3), "b": _f(6), "dw": _f(6, 1, 3, 3),
                                      "rs2": np.array([1, 1, 1.5, 2], np.float32), **BN})
    check(m, tmp_path, target)
    # a 1-D net too: Conv1d, AveragePool with ceil_mode
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[2, 1], dilations=[2], strides=[2]),
             helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[3], strides=[2], ceil_mode=1, pads=[1, 0]),
             helper.make_node("InstanceNormalization", ["p", "s5", "b5"], ["q"]),
             helper.make_node("ConvTranspose", ["q", "wt"], ["r"], strides=[2], pads=[1, 1], output_padding=[1], group=5),
             helper.make_node("GroupNormalization", ["r", "s10", "b10"], ["t"], num_groups=5),
             helper.make_node("Resize", ["t", "", "rs"], ["y"], mode="linear")]
    (tmp_path / "one").mkdir()
    check(_model(nodes, [1, 3, 17], {"w1": _f(5, 3, 4), "s5": _f(5), "b5": _f(5), "wt": _f(5, 2, 3), "s10": _f(10),
                                     "b10": _f(10), "rs": np.array([1, 1, 1.5], np.float32)}, opset=21), tmp_path / "one", target)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_maxpool_indices_match_onnxruntime(storage_order: int, tmp_path: Path) -> None:
    n = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1],
                         storage_order=storage_order)
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", F, [2, 3, 7, 6])],
                          [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("i", TensorProto.INT64, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = _f(2, 3, 7, 6)
    want = rt.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    onnx.save(m, str(tmp_path / "m.onnx"))
    compile_model(CompileOptions(model=tmp_path / "m.onnx", out=tmp_path / "o"))
    got, _ = run_graph(tmp_path / "o", {"x": x})
    np.testing.assert_array_equal(got["output_0"], want[0])
    np.testing.assert_array_equal(got["output_1"], want[1])


def test_3d_pool_and_convtranspose(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 1, 0, 1, 1], strides=[1, 2, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2, 2], ceil_mode=1, strides=[2, 2, 2]),
             helper.make_node("AveragePool", ["p"], ["q"], kernel_shape=[2, 1, 2], pads=[1, 0, 0, 0, 0, 1], count_include_pad=1),
             helper.make_node("ConvTranspose", ["q", "wt"], ["y"], strides=[2, 1, 2], output_padding=[1, 0, 0])]
    check(_model(nodes, [1, 2, 5, 6, 4], {"w": _f(3, 2, 3, 2, 3), "wt": _f(3, 2, 2, 2, 3)}), tmp_path)


def _resize(x_shape: list[int], opset: int = 19, roi: np.ndarray | None = None, scales: np.ndarray | None = None,
            sizes: np.ndarray | None = None, **attrs) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    inits = {k: v for k, v in (("roi", roi), ("scales", scales), ("sizes", sizes)) if v is not None}
    ins = ["x"] + [k if k in inits else "" for k in ("roi", "scales", "sizes")]
    while ins[-1] == "":
        ins.pop()
    return _model([helper.make_node("Resize", ins, ["y"], **attrs)], x_shape, inits, opset=opset)


RESIZE = {
    "linear_half_pixel": dict(scales=np.array([1, 1, 2, 1.5], np.float32), mode="linear"),
    "linear_antialias_down": dict(scales=np.array([1, 1, 0.6, 0.5], np.float32), mode="linear", antialias=1),
    "cubic_align_corners_sizes": dict(sizes=np.array([1, 2, 7, 3]), mode="cubic", coordinate_transformation_mode="align_corners"),
    "cubic_exclude_outside": dict(scales=np.array([1, 1, 1.7, 0.8], np.float32), mode="cubic", exclude_outside=1,
                                  cubic_coeff_a=-0.5),
    "nearest_axes_floor": dict(sizes=np.array([8, 9]), axes=[2, 3], mode="nearest", nearest_mode="floor",
                               coordinate_transformation_mode="asymmetric"),
    "nearest_keep_aspect_not_larger": dict(sizes=np.array([7, 7]), axes=[2, 3], keep_aspect_ratio_policy="not_larger"),
    "tf_crop_and_resize_extrapolation": dict(roi=np.array([0, 0, 0.2, 0.3, 1, 1, 0.8, 0.9], np.float32),
                                             scales=np.array([1, 1, 2, 2], np.float32), mode="linear",
                                             coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=3.0),
    "nearest_pytorch_half_pixel_ceil": dict(scales=np.array([1, 1, 2.5, 1], np.float32), nearest_mode="ceil",
                                            coordinate_transformation_mode="pytorch_half_pixel"),
}


@pytest.mark.parametrize("case", list(RESIZE))
def test_resize_matches_onnxruntime(case: str, tmp_path: Path) -> None:
    check(_resize([1, 2, 4, 5], **RESIZE[case]), tmp_path)


def test_resize_opset10_and_upsample(tmp_path: Path) -> None:
    s = {"s": np.array([1, 1, 2, 2.5], np.float32)}
    check(_model([helper.make_node("Resize", ["x", "s"], ["y"], mode="linear")], [1, 2, 4, 5], s, opset=10), tmp_path)
    (tmp_path / "up").mkdir()
    check(_model([helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")], [1, 2, 4, 5], s, opset=9), tmp_path / "up")


def test_resize_to_a_huge_size_is_one_error(tmp_path: Path) -> None:
    from conftest import one_line_error, run_slmc

    m = _resize([1, 2, 4, 5], sizes=np.array([1, 2, 1 << 20, 1 << 20]), mode="nearest")
    onnx.save(m, str(tmp_path / "big.onnx"))
    one_line_error(run_slmc("compile", tmp_path / "big.onnx", "-o", tmp_path / "o"), "Resize")


@pytest.mark.slow
@pytest.mark.parametrize("extrapolate", [False, True])
def test_spatial_kernels_run_clean_under_asan_and_ubsan(extrapolate: bool, tmp_path: Path) -> None:
    """Every new kernel, at its edges (negative ConvTranspose pads, ceil_mode windows past the pads, Indices,
    tf_crop_and_resize reaching outside the input), built with AddressSanitizer and UBSan: clean, and right
    against onnxruntime. (With a roi outside [0, 1], onnxruntime departs from the ONNX reference, which the
    conformance case test_resize_tf_crop_and_resize_extrapolation_value checks: only clean there.)"""
    import subprocess
    import sys

    sys.path.append(str(Path(__file__).parent))
    from test_sanitizers import sanitized_build, sanitizers_work  # noqa: E402

    from slmc.toolchain.graph_run import pack_inputs

    why = sanitizers_work()
    if why:
        pytest.skip(why)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[2, 0, 1, 1], strides=[2, 3], dilations=[2, 1], group=2),
             helper.make_node("MaxPool", ["c"], ["p", "pi"], kernel_shape=[3, 2], ceil_mode=1, strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["p"], ["q"], kernel_shape=[2, 2], ceil_mode=1, strides=[2, 1], pads=[1, 0, 1, 1]),
             helper.make_node("ConvTranspose", ["q", "wt"], ["r"], strides=[3, 2], output_shape=[7, 8]),
             helper.make_node("InstanceNormalization", ["r", "s4", "b4"], ["s"]),
             helper.make_node("Resize", ["s", "roi", "", "sz"], ["t"], mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
                              extrapolation_value=-1.0),
             helper.make_node("BatchNormalization", ["t", "s4", "b4", "b4", "v4"], ["y"])]
    inits = {"w": _f(4, 1, 3, 2), "wt": _f(4, 4, 3, 3), "s4": _f(4), "b4": _f(4), "v4": RNG.random(4).astype(np.float32) + 0.5,
             "roi": np.array([0, 0, -0.2, 0.1, 1, 1, 1.1, 0.9] if extrapolate else [0, 0, 0.2, 0.1, 1, 1, 0.7, 0.9], np.float32), "sz": np.array([1, 4, 9, 5])}
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 2, 11, 13])],
                          [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("pi", TensorProto.INT64, None)],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    x = _f(1, 2, 11, 13)
    want = rt.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    onnx.save(m, str(tmp_path / "m.onnx"))
    rep = compile_model(CompileOptions(model=tmp_path / "m.onnx", out=tmp_path / "o"))
    io = rep["graph_io"]
    (tmp_path / "in.bin").write_bytes(pack_inputs(io, {"input_0": x}))
    exe = sanitized_build(tmp_path / "o")
    r = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True, text=True,
                       timeout=60, env={"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert r.returncode == 0 and "runtime error" not in r.stderr, r.stderr[-2000:]
    if extrapolate:
        return
    raw = (tmp_path / "out.bin").read_bytes()
    for row, w in zip(io["outputs"], want):
        got = np.frombuffer(raw[row["offset"]:row["offset"] + row["nbytes"]], dtype=w.dtype).reshape(w.shape)
        np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-4)
