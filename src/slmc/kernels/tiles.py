"""Geometric tiling constraints a kernel declares with its registry entry (KernelSpec.tiling).

The planner (plan/tiling.py) may only cut an operator the way its kernel allows: `MatmulTiles`
says which inputs are the activations x [n, K], the weights w [N, K] and the bias, that the output
[n, N] is cut along both n (rows of x) and N (rows of w), and whether K may be split. A kernel
that keeps one running sum per output in a fixed order (fp32) must not have K split, or the
tiled program would round differently from the untiled one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class MatmulTiles:
    call: str                   # C function (out, x, w, bias, rows, K, N) the tiled loop calls per tile
    x: int = 0                  # input index of x [n, K]
    w: int = 1                  # input index of w [N, K] (row-major, one output feature per row)
    bias: int = 2               # input index of the bias [N], read in place (None in the graph: none)
    elem_bytes: int = 4
    split_k: bool = False       # fp32: K stays whole, so every dot product sums in the kernel's order
    min_rows: int = 1           # smallest tile along n and along N


@dataclass(frozen=True)
class Q8MatmulTiles:
    """A q8 product out[n, N] = (xq, xs)[n, K] @ (wq, ws)[N, K]^T: cut like `MatmulTiles` by token
    rows (xq int8 + their xs scales) and output rows (wq int8 rows + their ws scales), K never
    split, so every output is the same integer group sums rescaled in the same order. A "rows4"
    blob (linear_q8_dsp.c's order: blocks of 4 rows word-interleaved, the rows after the last block
    row-major) is cut in whole blocks, `w_multiple=4`: a w tile then starts at a multiple of 4 and
    is a contiguous slice of the blob in the same order, and every row stays in a block or in the
    tail as untiled. `call` takes the untiled call's arguments
    (out, xq, xs, wq, ws, bias[, scratch], rows, K, N, group); `scratch`: it takes the arena
    scratch pointer (the tuned kernels' int16 copy of x, planned for all n rows)."""
    call: str
    x: int = 0                  # xq [n, K] int8; xs [n, K / group] fp32 is input x + 1
    w: int = 2                  # wq [N, K] int8; ws [N, K / group] fp32 is input w + 1
    bias: int = 4
    elem_bytes: int = 4         # the output's
    scratch: bool = False
    min_rows: int = 1
    w_multiple: int = 1         # a w tile holds a multiple of this many rows (or all of them)


@dataclass(frozen=True)
class RowTiles:
    """A row-wise kernel (norms, element-wise ops): output row r depends only on row r of the
    `rows` inputs and on all of the `whole` inputs (a norm's weights), so the operator may be cut
    into tiles of whole rows with the same arithmetic. Its registry `emit` is reused per tile
    with the tile's row count."""
    rows: tuple[int, ...] = (0,)     # inputs cut along rows with the output
    whole: tuple[int, ...] = ()      # inputs every tile needs entirely, loaded into L1 once


@dataclass(frozen=True)
class HeadTiles:
    """Causal attention over the KV cache, cut by KV head: one KV head's keys and values (the
    positions seen so far) and the queries of its group of heads at a time. Every head's scores,
    softmax and weighted sum are the kernel's own, so the tiled result is the untiled one. `call`
    takes (out, q, kc, vc, att, rows, n_heads, n_kv_heads, head_dim, pos, window, softcap) like the untiled call."""
    call: str
    q: int = 0
    k: int = 1
    v: int = 2


@dataclass(frozen=True)
class ConvTiles:
    """A 1-D or 2-D convolution or pooling (NC + spatial axes, run as 3-D with leading axes of size 1;
    the geometry is the array of 22 ints its registry emitter passes), cut into tiles of
    output channels (whole groups, or a divisor of one group's channels) and output rows. A tile of
    `rows` output rows reads `(rows - 1) * stride + (k - 1) * dilation + 1` input rows (the halo), clipped to
    the input; the tile runs the kernel itself on a geometry with its own channel counts, rows and top pad,
    so every output sums the same terms in the same order as untiled (taps outside the input are skipped
    in both). `kind` "conv": input 1 holds the weights [M, C / group, kh, kw], one output channel per row;
    "convt" (ConvTranspose): the weights [C, M / group, kh, kw], a tile's input rows those its outputs gather from;
    "pool": no weights, every plane (n * c) its own channel. `sliced`: inputs read in place with one value
    per output channel (a bias, per-channel weight zero points), offset by the tile's first channel."""
    kind: str = "conv"
    x_elem: int = 4             # bytes of an input element
    w_elem: int = 4             # of a weight
    out_elem: int = 4           # of an output element
    sliced: tuple[int, ...] = (2,)


@dataclass(frozen=True)
class ChunkTiles(RowTiles):
    """An ONNX element-wise or per-channel kernel (plan/chunk_tiling.py) seen as a row-wise one: "elem"
    (unary, Clip, binary ops whose `rows` operands all have the output's shape): one row per element, a tile
    any run of elements; "channel" (BatchNormalization, InstanceNormalization) and "group"
    (GroupNormalization) on a batch of one: one row per channel (group), a tile whole channels (groups).
    "plane" (reductions over spatial axes only: ReduceMean as GlobalAveragePool, QLinearGlobalAveragePool) on a
    batch of one: one row per channel, the input's plane and the output's reduced extent each its own row size.
    A binary "elem" operator with an operand of one value per channel ([C, 1, 1] against [1, C, H, W]) is cut by
    whole channels instead, that operand read in place from the tile's first channel (plan/chunk_tiling.py).
    Each tile runs the kernel's own emitter on a copy of the node with the tile's shape, so every output is
    the same arithmetic on the same values as untiled. `sliced`: inputs holding one value per channel, read
    in place from the tile's first channel on ("elem": one value, read in place, or one per channel along the
    node's axis 1, which cuts it by channels: Requantize and the quantizers' scales and zero points). As a
    `RowTiles`, its tiled overlap contract is the untiled one
    (plan/sharing.py): a tile's inputs are loaded before its outputs are stored, tiles in memory order."""
    kind: str = "elem"
    sliced: tuple[int, ...] = ()
    # "plane" kernels whose emitter must see one plane at a time (Resize: its tap tables start with the channel
    # axes'): the node over the trailing axes and the elements of each constant input to skip, or None (not cut)
    plane: Callable | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GemmTiles:
    """An ONNX matrix product (plan/gemm_tiling.py): Gemm (transA/transB, a C of one value, one per row or one
    per column), MatMul with a 2-D B (A's leading axes flattened into rows) and MatMulInteger with a shared B,
    cut like `MatmulTiles` into output rows x output columns, K never split: a tile holds rows of A' and
    columns of B', moved into L1 in the layout the operator's own (tile-sized) call reads, so every output is
    the same sum in the same order as untiled (integer sums: exact anyway). Each tile runs the kernel's own
    registry emitter on a copy of the node with the tile's shapes. `cols`: inputs holding one value per output
    column (MatMulInteger's weight zero points), read in place from the tile's first column on; Gemm's C is
    read in place through its broadcast strides."""
    x_elem: int = 4             # bytes of an element of A
    w_elem: int = 4             # of B
    out_elem: int = 4           # of the output
    cols: tuple[int, ...] = ()
