"""Tiling: tile shapes for operators whose operands do not sit in the fastest level.

For a matrix product out[n, N] = x[n, K] @ w[N, K]^T (kernels/tiles.py `MatmulTiles`) the kernel
runs on tiles held in the fastest level (L1): `nt` rows of w, `mt` rows of x and an [mt, nt]
output tile (q8, `Q8MatmulTiles`: the rows of x and w carry their group scales along). K is never
split (fp32 or q8), so every output is the same sum in the same order as in
the untiled program. Two loop orders:

- "w-outer": w tiles outer, each loaded once (double-buffered where DMA connects w's level: the
  next tile moves while this one is used); x tiles inner, reloaded for every w tile unless all
  n rows fit (then x is loaded once: "resident");
- "x-outer": the mirror image (x tiles double-buffered outer, w inner or resident).

The choice minimises bytes moved between levels, then the bytes the cores wait for (those not
hidden behind a double buffer: the inner tiles and the output tiles; the first outer tile is the
pipeline's fill and is not counted), then
kernel calls (compute overhead), then L1 footprint, among the tile shapes whose buffers the L1 planner (greedy + CP-SAT behind one
signature, checked) places within L1's capacity: tiling and allocation are chosen together.
Bytes are counted for a full step (n = the graph's rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from slmc.kernels.tiles import MatmulTiles, Q8MatmulTiles
from slmc.plan.lifetimes import ALIGN


def _al(x: int) -> int:
    return -(-x // ALIGN) * ALIGN


@dataclass(frozen=True)
class MatmulShape:
    rows: int           # n: tokens (the graph's rows)
    k: int              # K: inputs per output
    n_out: int          # N: outputs per token
    elem: int           # bytes per element
    x_level: int        # level index where x lives
    w_level: int        # where w lives
    out_level: int      # where the output goes
    double: bool        # DMA connects the streamed operand's level: double-buffer it
    groups: int = 0     # q8 (Q8MatmulTiles): scale groups per row; a row of x or w is K int8 and this many fp32
                        # scales, a tile the int8 rows then (aligned) their scales. 0: fp32, K elements of `elem` bytes
    out_elem: int = 0   # bytes per output element where it differs from `elem` (MatMulInteger: int8 in, int32 out)

    @property
    def oe(self) -> int:
        return self.out_elem or self.elem

    @property
    def row(self) -> int:
        """Bytes of one row of x or w (what DMA moves per row)."""
        return self.k + 4 * self.groups if self.groups else self.k * self.elem

    def tile_bytes(self, r: int) -> int:
        """L1 bytes of an x or w tile of `r` rows (q8: the scales start aligned after the int8 rows)."""
        return _al(r * self.k) + 4 * r * self.groups if self.groups else r * self.k * self.elem


@dataclass(frozen=True)
class TileChoice:
    order: str          # "w-outer" | "x-outer"
    nt: int             # rows of w per tile
    mt: int             # rows of x per tile
    resident: bool      # the inner operand is loaded once (its tile holds all of it)
    buffers: tuple[tuple[str, int], ...]   # L1 tile buffers (role, bytes), all live during the operator
    moved: tuple[tuple[int, int, int], ...]  # (from level, to level, bytes) for a full step
    calls: int          # kernel calls for a full step
    exposed: int        # bytes moved while the cores wait (not overlapped by a double buffer)

    @property
    def footprint(self) -> int:
        """L1 bytes of the buffers placed one after another (what the greedy planner does with
        buffers live at the same time): every one padded to the alignment but the last, smallest one."""
        sizes = [b for _, b in self.buffers]
        return sum(_al(b) for b in sizes) - (_al(min(sizes)) - min(sizes))

    @property
    def bytes_moved(self) -> int:
        return sum(b for _, _, b in self.moved)

    def key(self) -> tuple[int, int, int, int]:
        return (self.bytes_moved, self.exposed, self.calls, self.footprint)


def _cands(n: int) -> list[int]:
    out = {n} | {1 << i for i in range(n.bit_length()) if 1 << i <= n} | {ceil(n / d) for d in range(1, 65)}
    return sorted(out)


def matmul_choice(s: MatmulShape, order: str, nt: int, mt: int, double: bool | None = None) -> TileChoice:
    """`double`: double-buffer the outer operand (default: where DMA connects its level)."""
    double = s.double if double is None else (double and s.double)
    if order == "w-outer":
        resident = mt >= s.rows
        mt = min(mt, s.rows)
        bufs = [("w", s.tile_bytes(nt))] * (2 if double and nt < s.n_out else 1) + [("x", s.tile_bytes(mt)), ("out", mt * nt * s.oe)]
        x_loads = 1 if resident else ceil(s.n_out / nt)
        moved = ((s.w_level, 0, s.n_out * s.row), (s.x_level, 0, x_loads * s.rows * s.row))
        overlapped = moved[0][2] if len(bufs) == 4 else 0
    else:
        resident = nt >= s.n_out
        nt = min(nt, s.n_out)
        bufs = [("x", s.tile_bytes(mt))] * (2 if double and mt < s.rows else 1) + [("w", s.tile_bytes(nt)), ("out", mt * nt * s.oe)]
        w_loads = 1 if resident else ceil(s.rows / mt)
        moved = ((s.x_level, 0, s.rows * s.row), (s.w_level, 0, w_loads * s.n_out * s.row))
        overlapped = moved[0][2] if len(bufs) == 4 else 0
    moved += ((0, s.out_level, s.rows * s.n_out * s.oe),)
    calls = ceil(s.n_out / nt) * ceil(s.rows / mt)
    exposed = sum(b for _, _, b in moved) - overlapped
    return TileChoice(order, nt, mt, resident, tuple(bufs), moved, calls, exposed)


def best_matmul_tiles(s: MatmulShape, capacity: int, rule: MatmulTiles | Q8MatmulTiles | None = None) -> TileChoice | None:
    """The cheapest tile choice whose L1 buffers fit `capacity` bytes; None when not even the
    smallest tiles fit. For each loop order, buffering and outer tile size the inner tile is the
    largest that fits (a larger one never moves more bytes nor makes more calls; the footprint
    grows with it, so it is found by bisection). Double buffering is preferred where DMA allows
    it (fewer exposed bytes) unless a single buffer's larger tiles move fewer bytes, or only a
    single buffer fits."""
    best: TileChoice | None = None
    mult = getattr(rule, "w_multiple", 1)
    w_cands = sorted({min(mult * c, s.n_out) for c in _cands(-(-s.n_out // mult))})   # whole blocks of a blocked layout
    for double in ((True, False) if s.double else (False,)):
        for order in ("w-outer", "x-outer"):
            outer, inner = (w_cands, _cands(s.rows)) if order == "w-outer" else (_cands(s.rows), w_cands)
            for o in outer:
                if rule is not None and o < rule.min_rows:
                    continue

                def at(j: int) -> TileChoice:
                    nt, mt = (o, inner[j]) if order == "w-outer" else (inner[j], o)
                    return matmul_choice(s, order, nt, mt, double)
                lo, hi = -1, len(inner) - 1            # largest j with at(j) fitting, -1: none
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if at(mid).footprint <= capacity:
                        lo = mid
                    else:
                        hi = mid - 1
                if lo >= 0:
                    c = at(lo)
                    if best is None or c.key() < best.key():
                        best = c
    return best


def smallest_matmul_tiles(s: MatmulShape, w_multiple: int = 1) -> TileChoice:
    """The smallest footprint any tiling of this product needs (one row of x, one of w or one block)."""
    nt = min(w_multiple, s.n_out)
    return min((matmul_choice(s, o, nt, 1, False) for o in ("w-outer", "x-outer")), key=lambda c: c.footprint)


def compulsory_bytes(s: "MatmulShape | RowShape") -> int:
    """Every operand moved exactly once: the floor any tiling's traffic is measured against."""
    if isinstance(s, RowShape):
        return row_compulsory(s)
    if hasattr(s, "compulsory"):   # plan/conv_tiling.py's ConvShape
        return s.compulsory()
    if isinstance(s, HeadShape):
        return sum(b for _, _, b in head_choice(s).moved)   # one pass over queries, cache and outputs
    return (s.rows + s.n_out) * s.row + s.rows * s.n_out * s.oe


@dataclass(frozen=True)
class RowShape:
    """A row-wise operator (kernels/tiles.py `RowTiles`) over `rows` rows."""
    rows: int
    row_bytes: tuple[int, ...]      # per row-cut input: bytes of one row
    whole_bytes: tuple[int, ...]    # per whole input: bytes
    out_row_bytes: int
    in_levels: tuple[int, ...]
    whole_levels: tuple[int, ...]
    out_level: int
    double: bool


def row_choice(s: RowShape, r: int, double: bool | None = None) -> TileChoice:
    """Tiles of `r` rows: the row inputs double-buffered where DMA allows (and there are 2+ tiles),
    the whole inputs loaded once, the output tile written back per tile."""
    double = s.double if double is None else (double and s.double)
    r = min(r, s.rows)
    n = 2 if double and r < s.rows else 1
    bufs = [(f"in{i}", r * b) for i, b in enumerate(s.row_bytes) for _ in range(n)]
    bufs += [(f"whole{i}", b) for i, b in enumerate(s.whole_bytes)] + [("out", r * s.out_row_bytes)]
    moved = tuple((lv, 0, s.rows * b) for lv, b in zip(s.in_levels, s.row_bytes))
    moved += tuple((lv, 0, b) for lv, b in zip(s.whole_levels, s.whole_bytes))
    moved += ((0, s.out_level, s.rows * s.out_row_bytes),)
    overlapped = sum(s.rows * b for b in s.row_bytes) if n == 2 else 0
    return TileChoice("rows", 0, r, False, tuple(bufs), moved, ceil(s.rows / r),
                      sum(b for _, _, b in moved) - overlapped)


def best_row_tiles(s: RowShape, capacity: int) -> TileChoice | None:
    """The cheapest tile height that fits (every choice moves the compulsory bytes; then the
    fewest exposed bytes, the fewest calls)."""
    best: TileChoice | None = None
    for double in ((True, False) if s.double else (False,)):
        for r in _cands(s.rows):
            c = row_choice(s, r, double)
            if c.footprint <= capacity and (best is None or c.key() < best.key()):
                best = c
    return best


def row_compulsory(s: RowShape) -> int:
    return s.rows * (sum(s.row_bytes) + s.out_row_bytes) + sum(s.whole_bytes)


@dataclass(frozen=True)
class HeadShape:
    """Attention (kernels/tiles.py `HeadTiles`) over `rows` queries and a KV cache of `positions`."""
    rows: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    positions: int                 # the cache's length: the tile holds every position that may be seen
    kv_elem: int                   # bytes per cached value (4: fp32, 2: fp16)
    scratch: int                   # the kernel's scratch (scores) for one KV head's group: its registry figure
    q_level: int
    kv_level: int
    out_level: int
    double: bool

    @property
    def group(self) -> int:
        return self.n_heads // self.n_kv_heads


def head_choice(s: HeadShape, double: bool | None = None) -> TileChoice:
    """One KV head at a time; traffic counted at the end of the context (all `positions` seen),
    the most a step can move: at position p a step moves p + rows cached rows per KV head."""
    double = s.double if double is None else (double and s.double)
    n = 2 if double and s.n_kv_heads > 1 else 1
    qb = s.rows * s.group * s.head_dim * 4
    kvb = s.positions * s.head_dim * s.kv_elem
    bufs = [("q", qb)] * n + [("k", kvb)] * n + [("v", kvb)] * n + [("out", qb), ("att", s.scratch)]
    moved = ((s.q_level, 0, s.n_kv_heads * qb), (s.kv_level, 0, 2 * s.n_kv_heads * kvb),
             (0, s.out_level, s.n_kv_heads * qb))
    total = sum(b for _, _, b in moved)
    overlapped = (s.n_kv_heads - 1) * (qb + 2 * kvb) if n == 2 else 0
    return TileChoice("heads", 0, s.rows, False, tuple(bufs), moved, s.n_kv_heads, total - overlapped)


def best_head_tiles(s: HeadShape, capacity: int) -> TileChoice | None:
    fits = [c for c in (head_choice(s, True), head_choice(s, False)) if c.footprint <= capacity]
    return min(fits, key=TileChoice.key) if fits else None
