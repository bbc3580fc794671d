"""Small ONNX graphs of the conv family for the tiling and overlap tests (tests/plan/test_conv_tiling.py,
tests/kernels/test_overlap_conv_c.py, tests/onnx/test_cnn_tiled.py): each branch of one input is one
geometry the tiles must get right (strides, dilations, asymmetric pads, groups inside and across
channel tiles, a depthwise multiplier, pointwise convs with fewer, as many and more outputs, pools
with pads and ceil_mode, ConvTranspose grouped and not), plus a 1-D and a 3-D graph."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 5
# name, op, weights shape (conv) or None, attributes
BRANCHES_2D = [
    ("dw3", "Conv", (6, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1])),
    ("dw3s2d2", "Conv", (6, 1, 3, 3), dict(group=6, pads=[2, 1, 2, 2], strides=[2, 1], dilations=[2, 1])),
    ("dwmult2", "Conv", (12, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1])),
    ("group2", "Conv", (10, 3, 3, 2), dict(group=2, pads=[0, 1, 2, 0], strides=[1, 2])),
    ("dense5", "Conv", (5, 6, 4, 3), dict(pads=[0, 1, 2, 1], strides=[2, 2])),
    ("dense8", "Conv", (8, 6, 3, 3), dict(pads=[1, 1, 1, 1])),
    ("pw_same", "Conv", (6, 6, 1, 1), {}),
    ("pw_more", "Conv", (10, 6, 1, 1), {}),
    ("pw_fewer", "Conv", (3, 6, 1, 1), {}),
    ("row13", "Conv", (4, 6, 1, 3), dict(pads=[0, 1, 0, 1])),
    ("maxpool", "MaxPool", None, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("avgpool", "AveragePool", None, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1], count_include_pad=1,
                                          ceil_mode=1)),
    ("avgpool_ex", "AveragePool", None, dict(kernel_shape=[2, 3], strides=[1, 2], pads=[1, 1, 0, 1])),
    ("convT", "ConvTranspose", (6, 2, 3, 3), dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1])),
    ("convT1", "ConvTranspose", (6, 5, 3, 2), dict(strides=[2, 1], pads=[0, 1, 1, 0], output_padding=[1, 0],
                                                   dilations=[1, 2])),
]
X2D = (1, 6, 13, 9)
X1D = (1, 4, 29)
X3D = (1, 4, 9, 6, 5)


def _model(shape: tuple[int, ...], branches: list[tuple], seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits, outs = [], [], []
    for name, op, wshape, attrs in branches:
        ins = ["x"]
        if wshape is not None:
            m = wshape[1] * attrs.get("group", 1) if op == "ConvTranspose" else wshape[0]   # output channels
            inits += [numpy_helper.from_array(rng.standard_normal(wshape).astype(np.float32), f"{name}_w"),
                      numpy_helper.from_array(rng.standard_normal(m).astype(np.float32), f"{name}_b")]
            ins += [f"{name}_w", f"{name}_b"]
        nodes.append(helper.make_node(op, ins, [f"y_{name}"], name=name, **attrs))
        outs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))], outs,
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def conv_models() -> list[tuple[str, onnx.ModelProto, np.ndarray]]:
    """(name, model, input) of the 2-D, the 1-D and the 3-D graph."""
    rng = np.random.default_rng(SEED)
    one_d = [("c1d", "Conv", (6, 4, 5), dict(pads=[2, 1], strides=[2])),
             ("dw1d", "Conv", (4, 1, 3), dict(group=4, pads=[1, 1], dilations=[2])),
             ("mp1d", "MaxPool", None, dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
             ("ct1d", "ConvTranspose", (4, 3, 4), dict(strides=[2], pads=[1, 1]))]
    three_d = [("c3d", "Conv", (5, 4, 3, 3, 2), dict(pads=[1, 1, 0, 1, 1, 1], strides=[2, 1, 1])),
               ("dw3d", "Conv", (4, 1, 3, 3, 3), dict(group=4, pads=[2, 1, 1, 2, 1, 1], dilations=[2, 1, 1])),
               ("mp3d", "MaxPool", None, dict(kernel_shape=[3, 2, 2], strides=[2, 1, 2], pads=[1, 0, 0, 1, 1, 1])),
               ("ap3d", "AveragePool", None, dict(kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[1, 1, 1, 0, 1, 1],
                                                  count_include_pad=1)),
               ("ct3d", "ConvTranspose", (4, 3, 3, 2, 2), dict(strides=[2, 1, 1], pads=[1, 0, 0, 1, 0, 1]))]
    return [("conv2d", _model(X2D, BRANCHES_2D, SEED), rng.standard_normal(X2D).astype(np.float32)),
            ("conv1d", _model(X1D, one_d, SEED + 1), rng.standard_normal(X1D).astype(np.float32)),
            ("conv3d", _model(X3D, three_d, SEED + 2), rng.standard_normal(X3D).astype(np.float32))]


def conv_int_model() -> onnx.ModelProto:
    """ConvInteger branches (uint8 data with a zero point, int8 weights with per-channel zero points)."""
    rng = np.random.default_rng(3)
    nodes, inits, outs = [], [], []
    for name, wshape, attrs in (("qdw", (6, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1])),
                                ("qdense", (4, 6, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2])),
                                ("qgroup", (6, 2, 3, 3), dict(group=3, pads=[0, 1, 1, 0]))):
        inits += [numpy_helper.from_array(rng.integers(-100, 100, wshape).astype(np.int8), f"{name}_w"),
                  numpy_helper.from_array(np.array(7, np.uint8), f"{name}_xz"),
                  numpy_helper.from_array(rng.integers(-3, 3, wshape[0]).astype(np.int8), f"{name}_wz")]
        nodes.append(helper.make_node("ConvInteger", ["x", f"{name}_w", f"{name}_xz", f"{name}_wz"], [f"y_{name}"],
                                      name=name, **attrs))
        outs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.INT32, None))
    g = helper.make_graph(nodes, "qconvs", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 6, 9, 7])], outs,
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)
