"""Registry entries of the quantized kernels of QDQ and QOperator ONNX models (frontend/onnx_qlinear.py):
QuantizeLinear, DequantizeLinear, ConvInteger, MatMulInteger, Requantize, QLinearGlobalAveragePool, QLinearAdd. Integer
data, int32 accumulation; the requantization keeps one fp32 multiply per output, as onnxruntime does."""

from __future__ import annotations

import math

from slmc.ir import DType, Node
from slmc.kernels.onnx import CAST_CODES, GraphCallContext, _need
from slmc.kernels.onnx_spatial import _by_groups, _spatial
from slmc.kernels.overlap import elementwise
from slmc.kernels.registry import KernelSpec, register
from slmc.kernels.tiles import ChunkTiles, ConvTiles, GemmTiles

# ConvInteger's tiles: int8 activations and weights, int32 sums, per-channel weight zero points sliced
CONV_INT_TILES = ConvTiles(x_elem=1, w_elem=1, out_elem=4, sliced=(3,))
# MatMulInteger's tiles: int8 rows of A and columns of B, int32 outputs, per-column weight zero points sliced
MATMUL_INT_TILES = GemmTiles(x_elem=1, w_elem=1, out_elem=4, cols=(3,))

EIGHT = (DType.I8, DType.U8)
QTYPES = (DType.I8, DType.U8, DType.I16, DType.U16)


def _mode(n: Node, i: int) -> int:
    """How input i (a scale or zero point) is laid over x: 0 one value, 1 one per element of the axis, 2 one per
    element of x (blocked quantization, gathered by onnx_qlinear.canonical_quantize)."""
    x, p = n.inputs[0], n.inputs[i] if i < len(n.inputs) else None
    assert x is not None
    if p is None or p.type.numel == 1:
        return 0
    return 2 if p.shape == x.shape and len(x.shape) > 1 else 1


def _split(n: Node) -> tuple[int, int, int, int, int]:
    """(outer, ch, inner) of input 0 around the node's axis, and the modes of its scale and zero point."""
    x = n.inputs[0]
    assert x is not None
    sm, zm = _mode(n, 1), _mode(n, 2)
    if 1 not in (sm, zm) or not x.shape:
        return 1, 1, x.type.numel, sm, zm
    ax = int(n.attrs.get("axis", 1)) % len(x.shape)
    return math.prod(x.shape[:ax]), x.shape[ax], math.prod(x.shape[ax + 1:]), sm, zm


def _opt(n: Node, c: GraphCallContext, i: int) -> str:
    return c.ref(i) if i < len(n.inputs) and n.inputs[i] is not None else "NULL"


def _quantize(n: Node, c: GraphCallContext) -> str:
    outer, ch, inner, sm, zm = _split(n)
    t = n.outputs[0].dtype
    info = {DType.I8: (-128, 127), DType.U8: (0, 255), DType.I16: (-32768, 32767), DType.U16: (0, 65535)}[t]
    return (f"slmc_quantize_linear({c.out()}, {CAST_CODES[t]}, {c.ref(0)}, {c.ref(1)}, {sm}, {_opt(n, c, 2)}, {zm}, "
            f"{outer}, {ch}, {inner}, {info[0]}, {info[1]});")


def _dequantize(n: Node, c: GraphCallContext) -> str:
    outer, ch, inner, sm, zm = _split(n)
    x = n.inputs[0]
    assert x is not None
    return (f"slmc_dequantize_linear({c.out()}, {c.ref(0)}, {CAST_CODES[x.dtype]}, {c.ref(1)}, {sm}, {_opt(n, c, 2)}, "
            f"{zm}, {outer}, {ch}, {inner});")


def _conv_integer(n: Node, c: GraphCallContext) -> str:
    shape, k, g = _spatial(n)
    geom = [*shape, n.outputs[0].shape[1], *k, *g["out"], int(n.attrs.get("group", 1)), *g["strides"],
            *g["dilations"], *g["begin"]]
    x, w = n.inputs[0], n.inputs[1]
    assert x is not None and w is not None
    wz = n.inputs[3] if len(n.inputs) > 3 else None
    return (f"slmc_conv_integer({c.out()}, {c.ref(0)}, {CAST_CODES[x.dtype]}, {c.ref(1)}, {CAST_CODES[w.dtype]}, "
            f"{_opt(n, c, 2)}, {_opt(n, c, 3)}, {0 if wz is None else wz.type.numel}, {c.ints(geom)} "
            "/* n c d h w m kd kh kw od oh ow group stride dilation pad_begin */);")


def _matmul_integer(n: Node, c: GraphCallContext) -> str:
    a, w = n.inputs[0], n.inputs[1]
    assert a is not None and w is not None
    _need(len(w.shape) == 2 or w.shape[:-2] == a.shape[:-2], n, "a B with other batch dimensions than A's")
    m, k, nn = a.shape[-2], a.shape[-1], w.shape[-1]
    wz = n.inputs[3] if len(n.inputs) > 3 else None
    return (f"slmc_matmul_integer({c.out()}, {c.ref(0)}, {CAST_CODES[a.dtype]}, {c.ref(1)}, {CAST_CODES[w.dtype]}, "
            f"{_opt(n, c, 2)}, {_opt(n, c, 3)}, {0 if wz is None else wz.type.numel}, {math.prod(a.shape[:-2])}, "
            f"{m}, {k}, {nn}, {int(len(w.shape) > 2)});")


def _requantize(n: Node, c: GraphCallContext) -> str:
    acc, m = n.inputs[0], n.inputs[1]
    assert acc is not None and m is not None
    b = n.inputs[3] if len(n.inputs) > 3 else None
    if acc.shape:
        ax = int(n.attrs.get("axis", 1)) % len(acc.shape)
        outer, ch, inner = math.prod(acc.shape[:ax]), acc.shape[ax], math.prod(acc.shape[ax + 1:])
    else:
        outer, ch, inner = 1, 1, 1
    return (f"slmc_requantize({c.out()}, {CAST_CODES[n.outputs[0].dtype]}, {c.ref(0)}, {c.ref(1)}, {m.type.numel}, "
            f"{_opt(n, c, 3)}, {0 if b is None else b.type.numel}, {c.ref(2)}, {outer}, {ch}, {inner});")


def _gap(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    return (f"slmc_qlinear_global_average_pool({c.out()}, {c.ref(0)}, {CAST_CODES[x.dtype]}, {c.ref(1)}, {c.ref(2)}, "
            f"{c.ref(3)}, {x.shape[0] * x.shape[1]}, {math.prod(x.shape[2:])});")


def _qadd(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    return (f"slmc_qlinear_add({c.out()}, {c.ref(0)}, {c.ref(1)}, {CAST_CODES[x.dtype]}, {c.ref(2)}, "
            f"{x.type.numel});")


def _guard(emit):  # type: ignore[no-untyped-def]
    def guarded(n: Node, c: GraphCallContext) -> str:
        return "/* empty output: nothing to compute */" if n.outputs[0].type.numel == 0 else emit(n, c)
    return guarded


# the element-wise ones walk memory in order: the output may lie over the input it has consumed; tiled by runs of
# elements (one scale and zero point), or by whole channels (one per channel along axis 1), plan/chunk_tiling.py
QUANT_TILES = ChunkTiles((0,), sliced=(1, 2))
register(KernelSpec("QuantizeLinear", DType.F32, "quantize_linear.c", _guard(_quantize), overlap=elementwise(0),
                    tiling=QUANT_TILES))
for _dt in (*QTYPES, DType.I32):
    register(KernelSpec("DequantizeLinear", _dt, "dequantize_linear.c", _guard(_dequantize), overlap=elementwise(0),
                        tiling=QUANT_TILES))
for _dt in EIGHT:
    register(KernelSpec("ConvInteger", _dt, "conv_integer.c", _guard(_conv_integer), tiling=CONV_INT_TILES,
                        overlap=_by_groups,  # batch, then output channel (group) outermost; pointwise: batch
                        macs=lambda n: n.outputs[0].type.numel * math.prod(n.inputs[1].shape[1:])))  # type: ignore
    register(KernelSpec("MatMulInteger", _dt, "matmul_integer.c", _guard(_matmul_integer), tiling=MATMUL_INT_TILES,
                        macs=lambda n: n.outputs[0].type.numel * n.inputs[0].shape[-1]))  # type: ignore[union-attr]
    register(KernelSpec("QLinearAdd", _dt, "qlinear_add.c", _guard(_qadd), overlap=elementwise(0, 1),
                        tiling=ChunkTiles((0, 1))))
    register(KernelSpec("QLinearGlobalAveragePool", _dt, "qlinear_global_average_pool.c", _guard(_gap),
                        tiling=ChunkTiles((0,), kind="plane")))
REQUANT_TILES = ChunkTiles((0,), sliced=(1, 3))   # the multiplier and bias: one value, or one per channel (axis 1)
register(KernelSpec("Requantize", DType.I32, "requantize.c", _guard(_requantize), overlap=elementwise(0),
                    tiling=REQUANT_TILES))


# Cortex-M33 (DSP): conv_integer_dsp.c and matmul_integer_dsp.c, the same int32 sums, two MACs per SMLAD; int8
# weights only (uint8 weights keep the portable kernels)
def _conv_dsp_scratch(n: Node) -> int:
    """conv_integer_dsp.c's scratch: the pointwise path's widened pixels, or the padded widened input volume of
    one group, the weight pairs and row offsets of one output channel."""
    shape, k, g = _spatial(n)
    b, c, d, h, w = shape
    kd, kh, kw = k
    out, s, dl = g["out"], g["strides"], g["dilations"]
    if k == [1, 1, 1] and list(out) == [d, h, w] and not any(g["begin"]) and int(n.attrs.get("group", 1)) == 1:
        c4 = (c + 3) // 4 * 4
        return 4 * (64 * c4 // 2) + 4 * c4 + 4 * 64
    cg = c // int(n.attrs.get("group", 1))
    vol = ((out[0] - 1) * s[0] + (kd - 1) * dl[0] + 1) * ((out[1] - 1) * s[1] + (kh - 1) * dl[1] + 1) * \
        ((out[2] - 1) * s[2] + (kw - 1) * dl[2] + 2)
    rows, kp = cg * kd * kh, (kw + 1) // 2 if dl[2] == 1 else kw
    return 2 * ((cg * vol + 1) // 2 * 2) + 4 * rows * kp + 4 * rows


def _with_scratch(emit):  # type: ignore[no-untyped-def]
    def call(n: Node, c: GraphCallContext) -> str:
        s = emit(n, c)
        if s.startswith("/*"):
            return s
        head, _, tail = s.replace("(", "_dsp(", 1).rpartition(");")
        return f"{head}, {c.scratch()});{tail}"
    return call


def _w_i8(n: Node) -> bool:
    return n.inputs[1] is not None and n.inputs[1].dtype == DType.I8


for _dt in EIGHT:
    register(KernelSpec("ConvInteger", _dt, "conv_integer_dsp.c", _with_scratch(_guard(_conv_integer)), isa="dsp",
                        tiling=CONV_INT_TILES, overlap=_by_groups,  # batch, then group: each group widened, then used
                        scratch=_conv_dsp_scratch, where=_w_i8,
                        macs=lambda n: n.outputs[0].type.numel * math.prod(n.inputs[1].shape[1:])))  # type: ignore
    register(KernelSpec("MatMulInteger", _dt, "matmul_integer_dsp.c", _with_scratch(_guard(_matmul_integer)), isa="dsp",
                        tiling=MATMUL_INT_TILES,
                        scratch=lambda n: 4 * ((n.inputs[0].shape[-1] + 1) // 2), where=_w_i8,  # type: ignore
                        macs=lambda n: n.outputs[0].type.numel * n.inputs[0].shape[-1]))  # type: ignore[union-attr]
# VCVTN + SSAT/USAT for the rounding and clamp: the same bytes (the "dsp" targets, cortex-m33 and rp2350-arm, have FPv5)
register(KernelSpec("Requantize", DType.I32, "requantize_dsp.c",
                    _guard(lambda n, c: _requantize(n, c).replace("slmc_requantize(", "slmc_requantize_dsp(", 1)),
                    isa="dsp", overlap=elementwise(0), tiling=REQUANT_TILES))
