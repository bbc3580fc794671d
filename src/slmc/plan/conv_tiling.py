"""Tiling of convolutions and pooling (kernels/tiles.py `ConvTiles`) for a fastest level (L1).

A tile is `ct` output channels by `rt` output rows (all columns). Its input is the channels of the
tile's groups (a group-1 conv: all of them) and the rows its windows reach: output rows oy0 .. oy0 + rt - 1
read input rows max(0, oy0 * s - pad) .. min(H, (oy0 + rt - 1) * s - pad + (k - 1) * d + 1) - 1, the halo
rows shared with the neighbouring tiles moved again. Channel tiles hold whole groups (depthwise: any
number of channels) or divide one group's channels, so a tile never straddles groups. Weights are
the tile's rows of w, moved as one block; a bias (and any per-channel zero points) is read in place.
ConvTranspose ("convt") is cut the same way: output row oy gathers input rows iy with oy = iy * s - pad + k * d,
so a tile's input rows are the first to the last such row inside the input (`rows_in`), and its weights
[C, M / group, kh, kw] are the tile's columns of each input channel's block (one strided transfer).

Two loop orders, as for matrix products (plan/tiling.py):
- "m-outer": channel tiles outer, each one's weights loaded once; row tiles inner with their input;
- "rows-outer" (group-1 convs only): row tiles outer with all input channels loaded once per row tile,
  channel tiles inner with their weights reloaded for every row tile.
The choice minimises bytes moved, then kernel calls, then L1 footprint, among the tiles that fit the
level's capacity (for each order and channel tile the tallest row tile that fits). Transfers are
single-buffered (the halo makes a next tile's rows overlap this one's). A 3-D operator is cut the same way along
its depth (a "row" is then one depth slice of h * w elements, the window's depth its height). The geometry comes from the
kernel's own emitter (`geometry`), so the tiled call and the untiled one share one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from slmc.ir import Node
from slmc.kernels.overlap import Share
from slmc.kernels.tiles import ConvTiles
from slmc.plan.tiling import TileChoice, _cands


class _Recorder:
    """A call context that records the geometry array an emitter passes (and names everything else)."""

    def __init__(self) -> None:
        self.arrays: list[list[int]] = []
        self.rows, self.pos = "rows", "pos"

    def ref(self, i: int) -> str:
        return f"in{i}"

    def out(self, i: int = 0) -> str:
        return f"out{i}"

    def weight(self, i: int) -> str:
        return f"in{i}"

    def scratch(self) -> str:
        return "scratch"

    def attr(self, key: str, wide: bool = False) -> str:
        return key

    def ints(self, values: list[int]) -> str:
        self.arrays.append([int(v) for v in values])
        return "geom"


def geometry(node: Node, emit) -> list[int] | None:  # type: ignore[no-untyped-def]
    """The geometry array the kernel's emitter passes for `node` (None: it passes none, or several)."""
    r = _Recorder()
    emit(node, r)
    return r.arrays[0] if len(r.arrays) == 1 else None


@dataclass(frozen=True)
class ConvShape:
    kind: str                # "conv" | "convt" (ConvTranspose) | "pool"
    geom: tuple[int, ...]    # the kernel's geometry array (untiled)
    n: int                   # batch (pool: 1, the planes are its channels)
    c: int                   # input channels (pool: planes)
    h: int
    w: int
    m: int                   # output channels (pool: planes)
    kh: int
    kw: int
    oh: int
    ow: int
    groups: int              # pool: planes (each its own)
    sh: int
    dh: int
    pt: int
    x_elem: int
    w_elem: int
    out_elem: int
    x_level: int
    w_level: int
    out_level: int
    ax: int = 0              # -1: a 3-D one cut along its depth (rows = depth slices of h * w, the geometry's d
                             # entries, one index below its h ones, take the tile's values)

    @property
    def cg(self) -> int:
        return self.c // self.groups

    @property
    def mg(self) -> int:
        return self.m // self.groups

    @property
    def w_row(self) -> int:
        """Bytes of one output channel's weights (0: a pool)."""
        return self.cg * self.kh * self.kw * self.w_elem if self.weighted else 0

    @property
    def weighted(self) -> bool:
        return self.kind != "pool"

    def in_channels(self, ct: int) -> int:
        """Input channels a tile of `ct` output channels reads."""
        return self.cg * (ct // self.mg) if ct >= self.mg else self.cg

    def rows_in(self, oy0: int, rt: int) -> tuple[int, int]:
        """The input rows [lo, hi) output rows oy0 .. oy0 + rt - 1 read (clipped to the input). ConvTranspose: output
        row oy takes input row iy where oy = iy * stride - pad + ky * dilation, the first and last such iy inside."""
        if self.kind == "convt":
            rows = [(t // self.sh) for oy in range(oy0, oy0 + rt) for ky in range(self.kh)
                    if (t := oy + self.pt - ky * self.dh) >= 0 and t % self.sh == 0 and t // self.sh < self.h]
            return (min(rows), max(rows) + 1) if rows else (0, 0)
        lo = max(0, oy0 * self.sh - self.pt)
        hi = min(self.h, (oy0 + rt - 1) * self.sh - self.pt + (self.kh - 1) * self.dh + 1)
        return lo, max(lo, hi)

    def row_tiles(self, rt: int) -> list[tuple[int, int, int, int]]:
        """(oy0, rows, lo, hi) of every row tile."""
        out = []
        for oy0 in range(0, self.oh, rt):
            nr = min(rt, self.oh - oy0)
            out.append((oy0, nr, *self.rows_in(oy0, nr)))
        return out

    def chan_tiles(self) -> list[int]:
        """Channel tile sizes that never straddle a group."""
        if self.groups == 1:
            return _cands(self.m)
        whole = [k * self.mg for k in _cands(self.groups)]
        return sorted(set(whole) | {d for d in range(1, self.mg) if self.mg % d == 0})

    def compulsory(self) -> int:
        """Every operand moved once."""
        return self.n * (self.c * self.h * self.w * self.x_elem + self.m * self.oh * self.ow * self.out_elem) + \
            self.m * self.w_row

    def tile_dict(self, ch: TileChoice) -> dict:
        rin = max(hi - lo for _, _, lo, hi in self.row_tiles(ch.mt))
        return dict(rows=self.oh, w_tile=[ch.nt, self.cg, self.kh, self.kw] if self.weighted else [],
                    x_tile=[self.in_channels(ch.nt), rin, self.w], out_tile=[ch.nt, ch.mt, self.ow])


def conv_shape(node: Node, rule: ConvTiles, emit, x_level: int, w_level: int, out_level: int) -> ConvShape | None:  # type: ignore[no-untyped-def]
    """The shape of a conv, ConvTranspose or pool (None: a MaxPool with Indices, no geometry, a 3-D integer one). A
    1-D float one is seen with its axis as the rows (`_one_d`); a 3-D one with its depth slices as the rows (each
    h * w elements of memory), cut along the depth only."""
    if len(node.outputs) > 1 or node.outputs[0].type.numel == 0:
        return None
    g = geometry(node, emit)
    if g is None or len(g) != 22:
        return None
    sizes = dict(x_elem=rule.x_elem, w_elem=rule.w_elem, out_elem=rule.out_elem, x_level=x_level, w_level=w_level,
                 out_level=out_level)
    if rule.kind == "pool":
        planes, d, h, w, kd, kh, kw, od, oh, ow = g[:10]
        if d != 1 or kd != 1 or od != 1:
            return None if rule.x_elem != 4 else ConvShape("pool", tuple(g), 1, planes, d, h * w, planes, kd, kh * kw, od,
                                                            oh * ow, planes, g[10], g[13], g[16], **sizes, ax=-1)
        if h == kh == oh == 1 and w > 1:
            g = _one_d(g, ((2, 3), (5, 6), (8, 9), (11, 12), (14, 15), (17, 18), (20, 21)))
            planes, d, h, w, kd, kh, kw, od, oh, ow = g[:10]
        return ConvShape("pool", tuple(g), 1, planes, h, w, planes, kh, kw, oh, ow, planes, g[11], g[14], g[17], **sizes)
    n, c, d, h, w, m, kd, kh, kw, od, oh, ow, groups = g[:13]
    kind = "convt" if rule.kind == "convt" else "conv"
    if d != 1 or kd != 1 or od != 1:
        return None if rule.x_elem != 4 else ConvShape(kind, tuple(g), n, c, d, h * w, m, kd, kh * kw, od, oh * ow, groups,
                                                        g[13], g[16], g[19], **sizes, ax=-1)
    if h == kh == oh == 1 and w > 1 and rule.x_elem == 4:   # 1-D: rows along its one axis (float kernels)
        g = _one_d(g, ((3, 4), (7, 8), (10, 11), (14, 15), (17, 18), (20, 21)))
        n, c, d, h, w, m, kd, kh, kw, od, oh, ow, groups = g[:13]
    return ConvShape(kind, tuple(g), n, c, h, w, m, kh, kw, oh, ow, groups, g[14], g[17], g[20], **sizes)


def _one_d(g: list[int], pairs: tuple[tuple[int, int], ...]) -> list[int]:
    """A 1-D geometry (run as 3-D with leading axes of size 1) with its axis moved from the columns to the rows:
    the same tensors in memory and the same terms in the same order per output (taps along one axis, whichever
    it is), but a tile may then hold some of its positions (output rows) instead of all of them."""
    g = list(g)
    for a, b in pairs:
        g[a], g[b] = g[b], g[a]
    return g


def conv_choice(s: ConvShape, order: str, ct: int, rt: int) -> TileChoice:
    ct, rt = min(ct, s.m), min(rt, s.oh)
    tiles = s.row_tiles(rt)
    rin = max(hi - lo for _, _, lo, hi in tiles)
    sum_rows = sum(hi - lo for _, _, lo, hi in tiles)
    n_ct = ceil(s.m / ct)
    chans = [s.in_channels(min(ct, s.m - m0)) for m0 in range(0, s.m, ct)]
    row_bytes = s.w * s.x_elem
    bufs = ([("w", ct * s.w_row)] if s.weighted else []) + \
        [("x", s.in_channels(ct) * rin * row_bytes), ("out", ct * rt * s.ow * s.out_elem)]
    if order == "m-outer":
        x_moved = s.n * sum(chans) * sum_rows * row_bytes
        w_moved = s.m * s.w_row
    else:
        x_moved = s.n * s.c * sum_rows * row_bytes
        w_moved = s.n * len(tiles) * s.m * s.w_row
    moved = ((s.x_level, 0, x_moved),) + (((s.w_level, 0, w_moved),) if s.weighted else ()) + \
        ((0, s.out_level, s.n * s.m * s.oh * s.ow * s.out_elem),)
    total = sum(b for _, _, b in moved)
    return TileChoice(order, ct, rt, order == "rows-outer", tuple(bufs), moved, s.n * n_ct * len(tiles), total)


def best_conv_tiles(s: ConvShape, capacity: int) -> TileChoice | None:
    """The cheapest tiling whose buffers fit `capacity` bytes; None when not even one channel by one row fits."""
    best: TileChoice | None = None
    orders = ("m-outer", "rows-outer") if s.groups == 1 and s.weighted else ("m-outer",)
    rows = _cands(s.oh)
    for order in orders:
        for ct in s.chan_tiles():
            lo, hi = -1, len(rows) - 1                 # largest j whose tile fits, -1: none
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if conv_choice(s, order, ct, rows[mid]).footprint <= capacity:
                    lo = mid
                else:
                    hi = mid - 1
            if lo >= 0:
                c = conv_choice(s, order, ct, rows[lo])
                if best is None or c.key() < best.key():
                    best = c
    return best


def tiled_contract(node: Node, s: ConvShape, ch: TileChoice) -> tuple:
    """The overlap contract (kernels/overlap.py) of the tiled loops, which decide the order in which the
    arena is read and written. One tile: the input is loaded whole before the output is stored
    (consumed first). m-outer over whole groups (depthwise, pools), one batch, one row tile per channel
    tile: a tile's input channels are loaded whole before its outputs are stored, tile after tile, so
    group g's output may lie over the input of groups up to g. With several row tiles a tile's input is
    read again while its outputs are stored: by whole channel tiles (when they divide the channels),
    or by groups where a tile lies inside one group, each read again. A group-1 conv cut into several
    channel tiles reloads all of x per tile, and rows-outer walks every channel per row tile: none, but for
    a conv whose output rows read exactly the same input rows (kh = 1, stride 1, no top pad, the same rows
    and columns: pointwise; any C and M) cut rows-outer or in one channel tile: each row tile's input rows
    (all channels) are loaded before its outputs are stored and never read again, so the output may lie
    exactly over the input (`RowOverlay`: its replay walks both sides by row tile)."""
    from slmc.kernels.overlap import by_chunks, consumed_first

    if ch.calls == 1:
        return consumed_first(0, "tiled as one tile: the input is loaded whole before the output is stored")(node)
    if (s.kind == "conv" and s.n == 1 and s.groups == 1 and (ch.order == "rows-outer" or ch.nt >= s.m) and s.kh == 1
            and s.sh == 1 and s.pt == 0 and (s.h, s.w, s.x_elem) == (s.oh, s.ow, s.out_elem)):
        # a row tile reads exactly its own rows of every channel, all loaded before any of its outputs is stored
        return (RowOverlay(0, 0, 1, node.inputs[0].nbytes, node.outputs[0].nbytes, exact=True, elem=s.x_elem,  # type: ignore[union-attr]
                           plane=s.h * s.w, row=s.w, tile_rows=ch.mt,
                           why=f"tiled by {ch.mt} rows, all channels of a row tile loaded before its outputs are stored"),)
    if s.n != 1 or ch.order != "m-outer" or s.groups == 1:
        return ()
    whole, n_rt = ch.nt >= s.mg, ceil(s.oh / ch.mt)
    if whole and n_rt == 1:
        return by_chunks(0, lambda n: s.groups, f"tiled m-outer by {ch.nt} channels, one row tile: a tile's input "
                         "is loaded whole before its outputs are stored", reread=False)(node)
    if whole and s.m % ch.nt:
        return ()
    steps = ceil(s.m / ch.nt) if whole else s.groups
    return by_chunks(0, lambda n: steps, f"tiled m-outer by {ch.nt} channels and {ch.mt} rows: a tile's input "
                     "rows are read while its outputs are stored", reread=True)(node)


@dataclass(frozen=True)
class RowOverlay(Share):
    """The exact overlay (out.offset == in.offset) of a pointwise-along-rows conv cut in row tiles, C and M
    channels of `plane` elements each (C != M allowed): element (channel, row) of either side is read or
    written in row tile row // tile_rows, the input loaded before the output is stored."""
    elem: int = 4
    plane: int = 1
    row: int = 1
    tile_rows: int = 1

    def times(self) -> tuple[np.ndarray, np.ndarray]:
        def tile(nbytes: int) -> np.ndarray:
            return (np.arange(nbytes // self.elem) % self.plane // self.row // self.tile_rows).astype(np.int64)
        return np.repeat(3 * tile(self.in_chunk), self.elem), np.repeat(3 * tile(self.out_chunk) + 1, self.elem)
