"""Tiling of the ONNX element-wise, normalisation and reduction kernels (kernels/tiles.py `ChunkTiles`) for L1.

The operator is viewed as `rows` rows of equal size: "elem" one element per row (the cut operands and the
output are contiguous tensors of one shape, so a run of elements is a run of memory; the quantizers'
one-value scales and zero points read in place); "channel" one
channel of NC... per row, "group" the channels of one group per row (a batch of one: a tile never straddles
a batch item, whose channels restart); "plane" one channel per row where the cut operands and the output each
keep their own extent per channel (a reduction over spatial axes only: ReduceMean as GlobalAveragePool,
QLinearGlobalAveragePool; a Resize that keeps the batch and channel axes, run plane by plane). A binary "elem" operator with an operand of one value per channel ([C, 1, 1] against
[1, C, H, W]) is viewed by channels instead, that operand read in place from the tile's first channel, and so
is a quantizer (Requantize, QuantizeLinear, DequantizeLinear) with one scale per channel along axis 1. The
planner picks the tile height like any row-wise operator's (plan/tiling.py `best_row_tiles`);
codegen/tiled_chunk.py runs the kernel on each tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slmc.ir import Node, Value, ValueKind
from slmc.ir.types import DType
from slmc.kernels.tiles import ChunkTiles
from slmc.plan.tiling import RowShape


@dataclass(frozen=True)
class ChunkView:
    kind: str                       # "elem" | "channel" | "group" | "plane"
    rows: int
    cg: int                         # channels per row (0: "elem")
    cut: tuple[int, ...]            # inputs moved in tiles with the output
    sliced: tuple[int, ...]         # inputs of one value per channel (group: per channel), read in place from the tile's first


def _full(v: Value | None, out: Value) -> bool:
    return v is not None and v.shape == out.shape and v.kind != ValueKind.CONST


def _per_channel(v: Value, out: Value) -> bool:
    """One value per channel of a batch-of-one NC... output, broadcast over the other axes."""
    r = len(out.shape)
    if len(v.shape) > r or r < 3 or out.shape[0] != 1 or v.dtype != out.dtype:
        return False
    shape = (1,) * (r - len(v.shape)) + tuple(v.shape)
    return shape[1] == out.shape[1] > 1 and v.type.numel == out.shape[1]


def _spatial_reduce(node: Node) -> bool:
    """A reduction over spatial axes only (channels and batch kept)."""
    if not node.op.startswith("Reduce"):
        return True
    from slmc.ir.shapes import reduce_axes

    x = node.inputs[0]
    axes = reduce_axes(len(x.shape), node.attrs) if x is not None else []
    return bool(axes) and min(axes) >= 2


def chunk_view(node: Node, rule: ChunkTiles) -> ChunkView | None:
    """The operator's row view; None where it cannot be cut so (an operand broadcast otherwise or constant, a
    batch above one, per-channel inputs not of one value per channel, a reduction over the channels)."""
    out = node.outputs[0]
    if out.type.numel == 0:
        return None
    ins = [node.inputs[i] if i < len(node.inputs) else None for i in rule.rows]
    if rule.kind == "plane":
        x = ins[0]
        if (len(out.shape) < 2 or out.shape[0] != 1 or x is None or x.kind == ValueKind.CONST or
                tuple(x.shape[:2]) != tuple(out.shape[:2]) or not _spatial_reduce(node)):
            return None
        if rule.plane is not None:      # the kernel's hook says whether one plane can run alone
            if rule.plane(node) is None:
                return None
        elif any(v is not None and v.type.numel != 1 and not (v.kind == ValueKind.CONST and v.dtype in (DType.I64, DType.I32))
                 for i, v in enumerate(node.inputs) if i not in rule.rows):   # scalars (and an axes list) in place
            return None
        return ChunkView("plane", out.shape[1], 1, tuple(rule.rows), ())
    if rule.kind == "elem":
        cut = tuple(i for i, v in zip(rule.rows, ins) if _full(v, out))
        rest = [(i, v) for i, v in zip(rule.rows, ins) if i not in cut]
        axis = [(i, node.inputs[i]) for i in rule.sliced if i < len(node.inputs) and node.inputs[i] is not None]
        if not cut:
            return None
        one = [v is not None and v.type.numel == 1 and v.dtype == out.dtype for _, v in rest] + \
            [v.type.numel == 1 for _, v in axis]                                       # type: ignore[union-attr]
        if all(one):
            return ChunkView("elem", out.type.numel, 0, cut, ())
        along = int(node.attrs.get("axis", 1)) % len(out.shape) if out.shape else -1
        by_channel = [o or v is not None and _per_channel(v, out) for o, (_, v) in zip(one, rest)] + \
            [o or along == 1 and len(out.shape) >= 2 and out.shape[0] == 1 and v.type.numel == out.shape[1]  # type: ignore[union-attr]
             for o, (_, v) in zip(one[len(rest):], axis)]
        if all(by_channel):
            return ChunkView("channel", out.shape[1], 1, cut,
                             tuple(i for o, (i, _) in zip(one, rest + axis) if not o))
        return None
    if not all(_full(v, out) for v in ins) or len(out.shape) < 2 or out.shape[0] != 1:
        return None
    ch = out.shape[1]
    cg = ch // int(node.attrs["num_groups"]) if rule.kind == "group" else 1
    sliced = [node.inputs[i] for i in rule.sliced if i < len(node.inputs)]
    if cg < 1 or ch % cg or any(v is None or v.type.numel != ch for v in sliced):
        return None
    return ChunkView(rule.kind, ch // cg, cg, tuple(rule.rows), tuple(rule.sliced))


def chunk_shape(node: Node, rule: ChunkTiles, arena: int, double: bool) -> RowShape | None:
    """The row-wise shape the tile planner sees (every operand in the arena level)."""
    view = chunk_view(node, rule)
    if view is None:
        return None
    out = node.outputs[0]
    ins = [node.inputs[i] for i in view.cut]
    row_bytes = tuple(v.nbytes // view.rows for v in ins)  # type: ignore[union-attr]
    out_row = out.nbytes // view.rows
    assert out_row * view.rows == out.nbytes and math.prod(out.shape) > 0
    return RowShape(view.rows, row_bytes, (), out_row, tuple(arena for _ in ins), (), arena, double)
