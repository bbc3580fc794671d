"""Tiling of the ONNX element-wise and normalisation kernels (kernels/tiles.py `ChunkTiles`) for L1.

The operator is viewed as `rows` rows of equal size: "elem" one element per row (the cut operands and the
output are contiguous tensors of one shape, so a run of elements is a run of memory); "channel" one
channel of NC... per row, "group" the channels of one group per row (a batch of one: a tile never straddles
a batch item, whose channels restart). The planner picks the tile height like any row-wise operator's
(plan/tiling.py `best_row_tiles`); codegen/tiled_chunk.py runs the kernel on each tile.
"""

from __future__ import annotations

import math

from slmc.ir import Node, ValueKind
from slmc.ir.types import DType
from slmc.kernels.tiles import ChunkTiles
from slmc.plan.tiling import RowShape


def cut_inputs(node: Node, rule: ChunkTiles) -> tuple[int, ...] | None:
    """The inputs of `rule.rows` cut with the output (activations of the output's shape); an "elem" operand
    of one value (a scalar, broadcast to every element) is read in place instead. None where another
    operand is broadcast or constant: the operator is not cut."""
    out, cut = node.outputs[0], []
    if out.dtype != DType.F32 or out.type.numel == 0:
        return None
    for i in rule.rows:
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is not None and v.shape == out.shape and v.dtype == out.dtype and v.kind != ValueKind.CONST:
            cut.append(i)
        elif not (rule.kind == "elem" and v is not None and v.type.numel == 1 and v.dtype == out.dtype):
            return None
    return tuple(cut) or None


def chunk_rows(node: Node, rule: ChunkTiles) -> tuple[int, int] | None:
    """(rows, channels per row; 0 for "elem") of the operator's row view; None where it cannot be cut so
    (an operand broadcast or constant, a batch above one, per-channel inputs not of one value per channel)."""
    out = node.outputs[0]
    if cut_inputs(node, rule) is None:
        return None
    if rule.kind == "elem":
        return out.type.numel, 0
    if len(out.shape) < 2 or out.shape[0] != 1:
        return None
    ch = out.shape[1]
    cg = ch // int(node.attrs["num_groups"]) if rule.kind == "group" else 1
    sliced = [node.inputs[i] for i in rule.sliced if i < len(node.inputs)]
    if cg < 1 or ch % cg or any(v is None or v.type.numel != ch for v in sliced):
        return None
    return ch // cg, cg


def chunk_shape(node: Node, rule: ChunkTiles, arena: int, double: bool) -> RowShape | None:
    """The row-wise shape the tile planner sees (every operand in the arena level)."""
    view = chunk_rows(node, rule)
    if view is None:
        return None
    rows, cg = view
    out, cut = node.outputs[0], cut_inputs(node, rule)
    row = out.nbytes // rows
    assert cut and row * rows == out.nbytes and math.prod(out.shape) > 0
    return RowShape(rows, tuple(row for _ in cut), (), row, tuple(arena for _ in cut), (), arena, double)
