"""Registry entries of the float spatial kernels behind ONNX graphs: Conv, ConvTranspose, MaxPool,
AveragePool, BatchNormalization, InstanceNormalization and GroupNormalization on float32 (NC + 1 to 3
spatial axes; the integer Conv and MaxPool of Deeploy's networks are in kernels/deeploy.py). The emitters pass the geometry
(ir/shapes.py: strides, dilations, pads, auto_pad, ceil_mode, output_padding) as a static const array; a
1-D or 2-D operator runs as a 3-D one with the missing leading axes of size 1.
GlobalAveragePool and GlobalMaxPool need no kernel: the importer makes them ReduceMean and ReduceMax."""

from __future__ import annotations

import math

import numpy as np

from slmc.cquote import c_float
from slmc.ir import DType, Node, Value
from slmc.ir.types import TensorType
from slmc.ir.shapes import conv_transpose_geometry, pool_geometry
from slmc.kernels.onnx import GraphCallContext, _need
from slmc.kernels.overlap import by_chunks, elementwise
from slmc.kernels.registry import KernelSpec, register
from slmc.kernels.tiles import ChunkTiles, ConvTiles

F32 = DType.F32


def _spatial(n: Node) -> tuple[list[int], list[int], dict[str, list[int]]]:
    """x's shape, the kernel's and the geometry as 3-D: a 1-D or 2-D operator gets leading axes of size 1."""
    x = n.inputs[0]
    assert x is not None
    kernel = tuple(n.inputs[1].shape[2:]) if n.op in ("Conv", "ConvTranspose") else tuple(n.attrs["kernel_shape"])  # type: ignore
    _need(len(kernel) in (1, 2, 3), n, f"a {len(kernel)}-D window (1-D to 3-D are)")
    if n.op == "ConvTranspose":
        g = conv_transpose_geometry(x.shape, n.inputs[1].shape, n.attrs)  # type: ignore[union-attr]
    else:
        g = pool_geometry(x.shape, kernel, n.attrs)
    lift = 3 - len(kernel)
    geom = {k: [0 if k in ("begin", "end") else 1] * lift + list(v) for k, v in g.items()}
    return [*x.shape[:2], *[1] * lift, *x.shape[2:]], [1] * lift + list(kernel), geom


def _conv(n: Node, c: GraphCallContext) -> str:
    shape, k, g = _spatial(n)
    geom = [*shape, n.outputs[0].shape[1], *k, *g["out"], int(n.attrs.get("group", 1)), *g["strides"],
            *g["dilations"], *g["begin"]]
    bias = c.ref(2) if len(n.inputs) > 2 and n.inputs[2] is not None else "NULL"
    fn = "slmc_conv_transpose3d_f32" if n.op == "ConvTranspose" else "slmc_conv3d_f32"
    return (f"{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {bias}, {c.ints(geom)} "
            f"/* n c d h w m kd kh kw od oh ow group stride dilation pad_begin */);")


def _pool(n: Node, c: GraphCallContext) -> str:
    shape, k, g = _spatial(n)
    geom = [shape[0] * shape[1], *shape[2:], *k, *g["out"], *g["strides"], *g["dilations"], *g["begin"], *g["end"]]
    avg = int(n.op == "AveragePool")
    include = int(bool(n.attrs.get("count_include_pad", 0))) if avg else 0
    idx = c.out(1) if len(n.outputs) > 1 else "NULL"
    col = int(bool(n.attrs.get("storage_order", 0))) if len(n.outputs) > 1 else 0
    return (f"slmc_pool3d_f32({c.out()}, {idx}, {c.ref(0)}, {avg} /* {n.op} */, {include} /* count_include_pad */, "
            f"{col} /* storage_order */, {c.ints(geom)} /* planes d h w kd kh kw od oh ow stride dilation pad_begin "
            "pad_end */);")


def _batch_norm(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    inner = math.prod(x.shape[2:])
    return (f"slmc_batch_norm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.ref(4)}, {x.shape[0]}, "
            f"{x.shape[1]}, {inner}, {c_float(n.attrs.get('epsilon', 1e-5))});")


def _group_norm(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    ch = x.shape[1]
    cg = 1 if n.op == "InstanceNormalization" else ch // int(n.attrs["num_groups"])
    return (f"slmc_group_norm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {x.shape[0]}, {ch}, {cg}, "
            f"{math.prod(x.shape[2:])}, {c_float(n.attrs.get('epsilon', 1e-5))});")


def _conv_macs(n: Node) -> int:
    return n.outputs[0].type.numel * math.prod(n.inputs[1].shape[1:])  # type: ignore[union-attr]


def _by_groups(n: Node) -> tuple:
    """Conv and ConvTranspose (conv_f32.c, conv_transpose_f32.c): batch, then group outermost, each group's
    output channels written while its input channels are read (again per output channel): output group g
    may lie over the input of groups before g. conv_f32.c's dense4 pass runs over every group before its
    leftover channels (a group of 4 + 1 to 3 channels): then the walk is not by groups, and none holds."""
    groups, mg = int(n.attrs.get("group", 1)), n.outputs[0].shape[1] // int(n.attrs.get("group", 1))
    if n.op == "Conv" and n.inputs[0].dtype == F32 and mg > 4 and mg % 4:  # type: ignore[union-attr]
        return ()
    steps = n.inputs[0].shape[0] * groups  # type: ignore[union-attr]
    return by_chunks(0, lambda _: steps, "batch, then group outermost; a group's input read while its output "
                     "is written", reread=True)(n)


def _by_planes(n: Node) -> tuple:
    """pool_f32.c: plane (n * c) outermost, each plane's input read while its output is written."""
    planes = n.inputs[0].shape[0] * n.inputs[0].shape[1]  # type: ignore[union-attr]
    return by_chunks(0, lambda _: planes, "plane outermost; a plane's input read while its output is written",
                     reread=True)(n)


def _guard(emit):  # type: ignore[no-untyped-def]
    def guarded(n: Node, c: GraphCallContext) -> str:
        return "/* empty output: nothing to compute */" if n.outputs[0].type.numel == 0 else emit(n, c)
    return guarded


register(KernelSpec("Conv", F32, "conv_f32.c", _guard(_conv), macs=_conv_macs, deps=("mm_f32.c",), tiling=ConvTiles(),
                    overlap=_by_groups))
# ConvTranspose: each input element meets every weight of its group once
register(KernelSpec("ConvTranspose", F32, "conv_transpose_f32.c", _guard(_conv), overlap=_by_groups,
                    tiling=ConvTiles("convt"),
                    macs=lambda n: n.inputs[0].type.numel * math.prod(n.inputs[1].shape[1:])))  # type: ignore[union-attr]
register(KernelSpec("InstanceNormalization", F32, "group_norm_f32.c", _guard(_group_norm), overlap=elementwise(0),
                    tiling=ChunkTiles((0,), kind="channel", sliced=(1, 2))))
register(KernelSpec("GroupNormalization", F32, "group_norm_f32.c", _guard(_group_norm), overlap=elementwise(0),
                    tiling=ChunkTiles((0,), kind="group", sliced=(1, 2))))
register(KernelSpec("MaxPool", F32, "pool_f32.c", _guard(_pool), tiling=ConvTiles("pool"), overlap=_by_planes))
register(KernelSpec("AveragePool", F32, "pool_f32.c", _guard(_pool), tiling=ConvTiles("pool"),
                    overlap=_by_planes))
register(KernelSpec("BatchNormalization", F32, "batch_norm_f32.c", _guard(_batch_norm), overlap=elementwise(0),
                    tiling=ChunkTiles((0,), kind="channel", sliced=(1, 2, 3, 4))))


def _resize(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    _need(len(x.shape) <= 8, n, "a rank above 8")
    geom = [len(x.shape), *x.shape, *n.attrs["sizes"], *n.attrs["taps"]]
    return (f"slmc_resize_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
            f"{c_float(n.attrs.get('extrapolation_value', 0.0))}, {c.ints(geom)} /* rank in_shape out_shape taps */);")


def _resize_plane(n: Node) -> tuple[Node, dict[int, int]] | None:
    """Resize on one plane of its NC... input (the tiled loops, codegen/tiled_chunk.py): the node over the trailing
    axes, its tap tables past the batch and channel axes' entries, where those two axes are the identity (one tap
    of weight 1 at its own position: each output's weight product and taps are then the whole node's)."""
    x, idx, w, out = n.inputs[0], n.inputs[1], n.inputs[2], n.outputs[0]
    if x is None or idx is None or w is None or idx.data is None or w.data is None or len(x.shape) < 3:
        return None
    taps, sizes, lead = list(n.attrs["taps"]), list(n.attrs["sizes"]), x.shape[0] + x.shape[1]
    ident = np.concatenate([np.arange(x.shape[0]), np.arange(x.shape[1])])
    if taps[:2] != [1, 1] or sizes[:2] != list(x.shape[:2]) or not np.array_equal(idx.data.ravel()[:lead], ident) or \
            not np.all(w.data.ravel()[:lead] == 1):
        return None
    plane = Node("Resize", [Value(x.name, TensorType(x.shape[2:], x.dtype), x.kind), idx, w],
                 [Value(out.name, TensorType(tuple(sizes[2:]), out.dtype), out.kind)],
                 dict(n.attrs, sizes=sizes[2:], taps=taps[2:]), n.name)
    return plane, {1: lead, 2: lead}


# Resize: the taps of every output element; tiled by whole channel planes
register(KernelSpec("Resize", F32, "resize_f32.c", _guard(_resize),
                    macs=lambda n: n.outputs[0].type.numel * math.prod(n.attrs["taps"]),
                    tiling=ChunkTiles((0,), kind="plane", plane=_resize_plane)))
