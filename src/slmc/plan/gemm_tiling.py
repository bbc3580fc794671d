"""Tiling of the ONNX matrix products (kernels/tiles.py `GemmTiles`) for a fastest level (L1).

Gemm, MatMul with a 2-D B and MatMulInteger with a shared B are viewed as out[M, N] = A'[M, K] @ B'[K, N]
(MatMul: A's leading axes flattened into M) and planned like any matrix product (plan/tiling.py
`best_matmul_tiles`: rows of A' x columns of B', K never split, loop order and sizes by bytes moved), single-
buffered. A tile of A' is `mt` rows of A (transA: `mt` columns of A, K strided rows), one of B' `nt` columns of B
(transB: `nt` rows of B); both land in L1 in the layout of a tile-sized operator of the same kind, whose own
emitter codegen/tiled_gemm.py calls (`tile_node`). Gemm's C is read in place through its broadcast strides
(a C with a value per output element is not tiled: its rows would need moving too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slmc.ir import Node, Value, ValueKind
from slmc.ir.types import TensorType
from slmc.kernels.tiles import GemmTiles
from slmc.plan.tiling import MatmulShape, TileChoice


@dataclass(frozen=True)
class GemmView:
    m: int                   # rows of A' (and of the output)
    k: int
    n: int                   # columns of B' (and of the output)
    trans_a: bool            # A is [K, M]
    trans_b: bool            # B is [N, K] (Gemm's transB; MatMul's B is [K, N])
    c_strides: tuple[int, int] = (0, 0)   # Gemm's C: row and column strides of its broadcast


def gemm_view(node: Node, rule: GemmTiles) -> GemmView | None:
    """The product's view; None where the operator is not cut so (a batched B, a full C, an empty output,
    element sizes the view does not hold)."""
    out, a, b = node.outputs[0], node.inputs[0], node.inputs[1]
    if a is None or b is None or out.type.numel == 0 or rule.x_elem != rule.w_elem:
        return None
    if node.op == "Gemm":
        ta, tb = bool(node.attrs.get("transA", 0)), bool(node.attrs.get("transB", 0))
        m, k = (a.shape[1], a.shape[0]) if ta else a.shape
        c = node.inputs[2] if len(node.inputs) > 2 else None
        rows, cols = ((1, 1) + tuple(c.shape))[-2:] if c is not None else (1, 1)
        crs, ccs = (cols if rows > 1 else 0), (1 if cols > 1 else 0)   # C's strides broadcast to [M, N] (kernels/onnx.py)
        if crs and ccs:
            return None
        return GemmView(m, k, b.shape[0] if tb else b.shape[1], ta, tb, (crs, ccs))
    if len(b.shape) != 2 or len(a.shape) < 2 or a.shape[-1] != b.shape[0]:
        return None
    n = b.shape[1]
    for i in rule.cols:
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is not None and v.type.numel not in (1, n):
            return None
    return GemmView(math.prod(a.shape[:-1]), a.shape[-1], n, False, False)


def gemm_shape(node: Node, rule: GemmTiles, arena: int, weights: int) -> MatmulShape | None:
    """The matrix-product shape the tile planner sees: A and B from where they live (a constant in the weights
    level), the output to the arena; single-buffered."""
    v = gemm_view(node, rule)
    if v is None:
        return None
    a, b = node.inputs[0], node.inputs[1]
    lvl = [weights if x is not None and x.kind == ValueKind.CONST else arena for x in (a, b)]
    return MatmulShape(rows=v.m, k=v.k, n_out=v.n, elem=rule.x_elem, x_level=lvl[0], w_level=lvl[1], out_level=arena,
                       double=False, out_elem=rule.out_elem)


def tile_node(node: Node, rule: GemmTiles, v: GemmView, mt: int, nt: int) -> Node:
    """A copy of `node` computing an [mt, nt] tile: A' and B' tiles in their L1 layouts, a per-column input (and
    Gemm's C along the axis it varies on) of the tile's length, the rest kept."""
    a, b = node.inputs[0], node.inputs[1]
    assert a is not None and b is not None

    def val(x: Value, shape: tuple[int, ...]) -> Value:
        return Value(x.name, TensorType(shape, x.dtype), x.kind)
    ins = list(node.inputs)
    ins[0] = val(a, (v.k, mt) if v.trans_a else (mt, v.k))
    ins[1] = val(b, (nt, v.k) if v.trans_b else (v.k, nt))
    if node.op == "Gemm" and len(ins) > 2 and ins[2] is not None:
        crs, ccs = v.c_strides
        ins[2] = val(ins[2], (nt,) if ccs else (mt, 1) if crs else ins[2].shape)
    for i in rule.cols:
        if i < len(ins) and ins[i] is not None and ins[i].type.numel == v.n > 1:  # type: ignore[union-attr]
            ins[i] = val(ins[i], (nt,))  # type: ignore[arg-type]
    out = node.outputs[0]
    return Node(node.op, ins, [val(out, (mt, nt)), *node.outputs[1:]], dict(node.attrs), node.name)


def tiled_contract(node: Node, s: MatmulShape, ch: TileChoice) -> tuple:
    """The overlap contract of the tiled loops (kernels/overlap.py) for A, as plan/sharing.py gives a tiled
    linear layer's x: A loaded whole first (w-outer, A resident), or by blocks of mt rows each loaded before its
    outputs are stored (x-outer, or one tile of B', mt dividing the rows); transA: none (a tile is columns)."""
    from slmc.kernels.overlap import by_chunks, consumed_first

    if node.op == "Gemm" and node.attrs.get("transA", 0):
        return ()
    if ch.order == "w-outer" and ch.resident:
        return consumed_first(0, "tiled, A resident: loaded whole before any output")(node)
    if (ch.order == "x-outer" or ch.nt >= s.n_out) and s.rows % ch.mt == 0:
        why = f"tiled x-outer: blocks of {ch.mt} rows of A, each loaded before its outputs are stored"
        return by_chunks(0, lambda n: s.rows // ch.mt, why)(node)
    return ()
