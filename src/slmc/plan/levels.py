"""Placement across a memory hierarchy (targets/levels.py): what lives at which level, each level's
plan, the tiles of the operators that compute in the fastest level, and why no plan exists when
none does.

Placement rule (the software-managed hierarchy of Deeploy's targets):
- the constants (weights blob) live in the slowest level;
- the arena (activations, scratch, KV cache) in the first level backed by the target's SRAM
  (L2 on siracusa-like, SRAM on the RP2350), planned by `plan.plan_memory`;
- where a faster level sits above the arena's (L1), operators whose kernel declares tiling
  constraints (kernels/tiles.py) compute there on tiles moved by DMA (plan/tiling.py); their tile
  buffers are planned as buffers of their own, one operator at a time, with the same planners and
  checked by the same checker. Operators without tiling constraints read the arena in place, and
  so do row-wise operators, attentions, convolutions and pools (plan/conv_tiling.py) and ONNX Gemm /
  MatMul / MatMulInteger (plan/gemm_tiling.py) whose smallest tiles do not fit L1 (`in_place`: slower,
  not impossible); a language model's matrix product whose smallest tiles do not fit is an error, explained.

Each level's plan reports its size against the live-bytes lower bound and whether it is optimal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from slmc.errors import SlmcError
from slmc.ir import Graph, Node, ValueKind
from slmc.kernels.registry import KernelSpec
from slmc.kernels.tiles import ChunkTiles, ConvTiles, GemmTiles, HeadTiles, MatmulTiles, Q8MatmulTiles, RowTiles
from slmc.plan.check import check
from slmc.plan.conv_tiling import ConvShape, best_conv_tiles, conv_shape
from slmc.plan.cpsat import cpsat_plan
from slmc.plan.lifetimes import Buffer, live_peak
from slmc.plan.plan import MemoryPlan
from slmc.plan.tiling import (HeadShape, MatmulShape, RowShape, TileChoice, best_head_tiles, best_matmul_tiles,
                               best_row_tiles, compulsory_bytes, smallest_matmul_tiles)
from slmc.targets.levels import Level, arena_level_of


@dataclass(frozen=True)
class LevelUse:
    level: Level
    holds: str               # what the plan puts there
    used: int                # bytes the plan needs
    lower_bound: int         # live-bytes peak (or the exact need where nothing shares)
    best_bound: int          # tightest bound known (CP-SAT's when it ran)
    optimal: bool
    planner: str
    seconds: float

    @property
    def fits(self) -> bool:
        return self.level.size == 0 or self.used <= self.level.size

    def as_dict(self) -> dict:
        return dict(level=self.level.name, capacity=self.level.size, holds=self.holds, used=self.used,
                    lower_bound=self.lower_bound, best_bound=self.best_bound, optimal=self.optimal,
                    gap_bytes=self.used - self.best_bound, planner=self.planner)  # no seconds: report.json is deterministic


@dataclass(frozen=True)
class TiledOp:
    graph: str
    node: str
    op: str
    shape: "MatmulShape | RowShape"
    choice: TileChoice
    offsets: tuple[int, ...]     # L1 offset of each of choice.buffers
    rule: "MatmulTiles | Q8MatmulTiles | RowTiles"
    step: int                    # time step (over all graphs, as in the arena's plan)

    def as_dict(self, levels: tuple[Level, ...]) -> dict:
        s, c = self.shape, self.choice
        if isinstance(s, ConvShape):
            shapes = s.tile_dict(c)
        elif isinstance(s, HeadShape):
            shapes = dict(rows=s.rows, w_tile=[], x_tile=[s.rows, s.group * s.head_dim], out_tile=[s.rows, s.group * s.head_dim],
                          kv_tile=[s.positions, s.head_dim])
        elif isinstance(s, RowShape):
            e = 4
            shapes = dict(rows=s.rows, w_tile=[], x_tile=[c.mt, s.row_bytes[0] // e], out_tile=[c.mt, s.out_row_bytes // e])
        else:
            shapes = dict(rows=s.rows, k=s.k, n_out=s.n_out, w_tile=[c.nt, s.k], x_tile=[c.mt, s.k], out_tile=[c.mt, c.nt])
        return dict(graph=self.graph, node=self.node, op=self.op, step=self.step, order=c.order, **shapes,
                    resident=c.resident, double_buffered=len({r for r, _ in c.buffers}) < len(c.buffers), l1_buffers=[dict(role=r, bytes=b, offset=o)
                                                          for (r, b), o in zip(c.buffers, self.offsets)],
                    calls=c.calls, bytes_moved=c.bytes_moved, compulsory_bytes=compulsory_bytes(s),
                    moved={f"{levels[a].name}->{levels[b].name}": n for a, b, n in c.moved})


@dataclass(frozen=True)
class LevelPlan:
    levels: tuple[Level, ...]
    arena_level: int
    weights_level: int
    uses: tuple[LevelUse, ...]
    tiles: tuple[TiledOp, ...]
    l1_bytes: int                # the tile area's size (0: nothing tiled)
    in_place: tuple[str, ...] = ()  # row-wise operators left untiled (one row does not fit L1): they read L2

    def moved(self, graph: str) -> dict[str, int]:
        """Bytes moved between levels in one full step of `graph`, by link."""
        out: dict[str, int] = {}
        for t in self.tiles:
            if t.graph == graph:
                for a, b, n in t.choice.moved:
                    key = f"{self.levels[a].name}->{self.levels[b].name}"
                    out[key] = out.get(key, 0) + n
        return out

    def as_dict(self, graphs: list[Graph]) -> dict:
        return dict(steps=sum(len(g.nodes) for g in graphs), levels=[dict(name=lv.name, size=lv.size, bytes_per_cycle=lv.bytes_per_cycle,
                                 latency_cycles=lv.latency_cycles, dma=lv.dma) for lv in self.levels],
                    placement=[u.as_dict() for u in self.uses], l1_bytes=self.l1_bytes, in_place=list(self.in_place),
                    tiles=[t.as_dict(self.levels) for t in self.tiles],
                    bytes_moved={g.name: self.moved(g.name) for g in graphs},
                    compulsory_bytes={g.name: sum(compulsory_bytes(t.shape) for t in self.tiles if t.graph == g.name)
                                      for g in graphs})


def _matmul_shape(node: Node, rule: MatmulTiles | Q8MatmulTiles, levels: tuple[Level, ...], arena: int, weights: int) -> MatmulShape:
    x, w = node.inputs[rule.x], node.inputs[rule.w]
    assert x is not None and w is not None
    w_level = weights if w.kind == ValueKind.CONST else arena
    src = max(w_level, arena)
    return MatmulShape(rows=x.shape[0], k=x.shape[-1], n_out=w.shape[0], elem=rule.elem_bytes, x_level=arena,
                       w_level=w_level, out_level=arena, double=levels[src].dma,
                       groups=x.shape[-1] // node.attrs["group"] if isinstance(rule, Q8MatmulTiles) else 0)


def _row_shape(node: Node, rule: RowTiles, levels: tuple[Level, ...], arena: int, weights: int) -> RowShape | None:
    """None where the operator is not row-wise on these values (a broadcasting add of another front end)."""
    out = node.outputs[0]
    ins = [node.inputs[i] if i < len(node.inputs) else None for i in rule.rows]
    if len(out.shape) != 2 or any(v is None or v.shape != out.shape or v.dtype != out.dtype or v.kind == ValueKind.CONST
                                  for v in ins) or out.dtype.short != "f32":
        return None
    whole = [node.inputs[i] for i in rule.whole if i < len(node.inputs) and node.inputs[i] is not None]
    lvl = [weights if w.kind == ValueKind.CONST else arena for w in whole]  # type: ignore[union-attr]
    return RowShape(out.shape[0], tuple(v.nbytes // out.shape[0] for v in ins), tuple(w.nbytes for w in whole),  # type: ignore[union-attr]
                    out.nbytes // out.shape[0], tuple(arena for _ in ins), tuple(lvl), arena, levels[arena].dma)


def _head_shape(node: Node, spec: KernelSpec, levels: tuple[Level, ...], arena: int) -> HeadShape:
    q, kc = node.inputs[0], node.inputs[1]
    a = node.attrs
    return HeadShape(rows=q.shape[0], n_heads=a["n_heads"], n_kv_heads=a["n_kv_heads"], head_dim=a["head_dim"],  # type: ignore[union-attr]
                     positions=kc.shape[0], kv_elem=kc.dtype.size, scratch=spec.scratch(node), q_level=arena,  # type: ignore[union-attr]
                     kv_level=arena, out_level=arena, double=levels[arena].dma)


def _fmt(n: int) -> str:
    return f"{-(-n // 1024)}KiB" if n >= 1024 else f"{n}B"


def _needs(uses: list[LevelUse]) -> str:
    return "; ".join(f"{u.level.name} needs {u.used:,} B of {u.level.size:,} B ({u.holds})" for u in uses)


def choose_tiles(node: Node, spec: KernelSpec | None, levels: tuple[Level, ...]) -> tuple | None:
    """(shape, tile choice) of an operator computing in levels[0] above the arena; None where its kernel
    declares no tiling for it; choice None where even its smallest tiles do not fit."""
    rule = spec.tiling if spec is not None else None
    arena_level, weights_level, size = arena_level_of(levels), len(levels) - 1, levels[0].size
    if isinstance(rule, GemmTiles):     # ONNX Gemm / MatMul / MatMulInteger (plan/gemm_tiling.py)
        from slmc.plan.gemm_tiling import gemm_shape
        gemm = gemm_shape(node, rule, arena_level, weights_level)
        return None if gemm is None else (gemm, best_matmul_tiles(gemm, size))
    if isinstance(rule, (MatmulTiles, Q8MatmulTiles)):
        shape = _matmul_shape(node, rule, levels, arena_level, weights_level)
        return shape, best_matmul_tiles(shape, size, rule)
    if isinstance(rule, ChunkTiles):   # ONNX element-wise and normalisation kernels (plan/chunk_tiling.py)
        from slmc.plan.chunk_tiling import chunk_shape
        chunk = chunk_shape(node, rule, arena_level, levels[arena_level].dma)
        return None if chunk is None else (chunk, best_row_tiles(chunk, size))
    if isinstance(rule, RowTiles) and (row := _row_shape(node, rule, levels, arena_level, weights_level)):
        return row, best_row_tiles(row, size)
    if isinstance(rule, HeadTiles):
        head = _head_shape(node, spec, levels, arena_level)  # type: ignore[arg-type]
        return head, best_head_tiles(head, size)
    if isinstance(rule, ConvTiles):   # weights (conv) from where they live, activations from the arena
        w = node.inputs[1] if rule.kind == "conv" else None
        w_level = weights_level if w is not None and w.kind == ValueKind.CONST else arena_level
        conv = conv_shape(node, rule, spec.emit, arena_level, w_level, arena_level)  # type: ignore[union-attr]
        return None if conv is None else (conv, best_conv_tiles(conv, size))
    return None


def plan_levels(graphs: list[Graph], binding: dict[int, KernelSpec], plan: MemoryPlan, weights_bytes: int,
                levels: tuple[Level, ...], target_name: str = "", reserved: dict[str, int] | None = None) -> LevelPlan:
    """Place everything across `levels`; raises SlmcError explaining the first level that cannot hold its share.
    `reserved`: bytes the linker region of that name ("sram", "flash") also holds besides the plan
    (main.c's buffers, stack, C library, code), counted at the level it backs."""
    weights_level = len(levels) - 1
    arena_level = arena_level_of(levels)
    steps = [(g, n) for g in graphs for n in g.nodes]
    uses: list[LevelUse] = []
    tiles: list[TiledOp] = []
    in_place: list[str] = []     # row-wise operators and attentions whose smallest tiles do not fit L1
    l1_use = None
    if arena_level > 0:
        t0 = time.perf_counter()
        l1 = levels[0]
        bufs: list[Buffer] = []
        pending: list[tuple] = []                                    # (graph, node, shape, choice, rule, step)
        worst: tuple | None = None                                    # (bytes, graph, node, rule): needing the most L1
        for t, (g, node) in enumerate(steps):
            spec = binding.get(id(node))
            chosen = choose_tiles(node, spec, levels)
            if chosen is None:
                continue
            shape, choice = chosen
            rule = spec.tiling  # type: ignore[union-attr]
            if choice is None and (isinstance(shape, (RowShape, HeadShape, ConvShape)) or isinstance(rule, GemmTiles)):
                in_place.append(f"{g.name}/{node.name}")   # the cores read L2 in place: slower, not impossible
                continue
            if choice is None:
                need = smallest_matmul_tiles(shape, getattr(rule, "w_multiple", 1)).footprint   # weights in L3 cannot be read in place
                if worst is None or need > worst[0]:
                    worst = (need, g, node, rule)
                continue
            pending.append((g, node, shape, choice, rule, t))
            bufs += [Buffer(f"{g.name}/{node.name}.{role}{i}", size, t, t) for i, (role, size) in enumerate(choice.buffers)]
        if worst is not None:
            need, g, node, rule = worst
            w = node.inputs[rule.w]
            mult = getattr(rule, "w_multiple", 1)
            what = f"{'one row' if mult == 1 else f'one block of {mult} rows'} of {w.name} {w.type}, one row of x, one output"
            raise SlmcError(
                f"no tiling of {g.name}/{node.name} ({node.op}) fits {target_name} {l1.name}: its smallest tiles "
                f"({what}) need {need:,} B, "
                f"{l1.name} has {l1.size:,} B; smallest {l1.name} that works: {need:,} B",
                f"use --mem {l1.name}={_fmt(need)} or more")
        placement, info = cpsat_plan(bufs)
        check(bufs, placement)
        k = 0
        for g, node, shape, choice, rule, t in pending:
            n = len(choice.buffers)
            tiles.append(TiledOp(g.name, node.name, node.op, shape, choice, placement.offsets[k:k + n], rule, t))
            k += n
        bound = live_peak(bufs, len(steps))
        n_mm = sum(1 for t in tiles if isinstance(t.shape, MatmulShape))
        n_att = sum(1 for t in tiles if isinstance(t.shape, HeadShape))
        n_conv = sum(1 for t in tiles if isinstance(t.shape, ConvShape))
        what = (f"{n_mm} matrix products, {n_att} attentions, {len(tiles) - n_mm - n_att - n_conv} row-wise operators"
                + (f", {n_conv} convolutions and pools" if n_conv else "")
                if tiles else "nothing")
        l1_use = LevelUse(l1, "tiles of " + what, placement.size,
                          bound, max(bound, info.lower_bound), info.optimal, placement.planner,
                          time.perf_counter() - t0)
        uses.append(l1_use)
        for lv in levels[1:arena_level]:
            uses.append(LevelUse(lv, "nothing", 0, 0, 0, True, "-", 0.0))
    shared = weights_bytes if weights_level == arena_level else 0   # one level holds everything (the host)
    extra = (reserved or {}).get(levels[arena_level].memory, 0) if levels[arena_level].memory else 0
    shared += extra
    arena = LevelUse(levels[arena_level], "activations, scratch, KV cache" + (", weights" if weights_level == arena_level else "")
                     + (f", {extra:,} B of stack, C library and main.c buffers" if extra else ""),
                     plan.arena_bytes + shared, plan.shared_lower_bound_bytes + shared, plan.best_bound_bytes + shared,
                     plan.optimal, plan.planner, getattr(plan, "seconds", 0.0))
    uses.append(arena)
    for lv in levels[arena_level + 1:weights_level]:
        uses.append(LevelUse(lv, "nothing", 0, 0, 0, True, "-", 0.0))
    if weights_level != arena_level:
        wx = (reserved or {}).get(levels[weights_level].memory, 0) if levels[weights_level].memory else 0
        uses.append(LevelUse(levels[weights_level], "weights" + (f", {wx:,} B of code" if wx else ""), weights_bytes + wx,
                             weights_bytes + wx, weights_bytes + wx, True, "sequential", 0.0))
    if not arena.fits:
        raise SlmcError(_arena_overflow(graphs, plan, arena, target_name, uses),
                        f"use --mem {arena.level.name}={_fmt(arena.used)} or more, a shorter --context, or -q q8")
    over = next((u for u in uses if not u.fits), None)
    if over is not None:
        raise SlmcError(f"the weights ({weights_bytes:,} B) do not fit {target_name} {over.level.name}: {_needs(uses)}; "
                        f"smallest {over.level.name} that works: {over.used:,} B",
                        f"use --mem {over.level.name}={_fmt(over.used)} or more, or -q q8")
    return LevelPlan(levels, arena_level, weights_level, tuple(uses), tuple(tiles), l1_use.used if l1_use and tiles else 0,
                     tuple(in_place))


def _arena_overflow(graphs: list[Graph], plan: MemoryPlan, arena: LevelUse, target_name: str, uses: list[LevelUse]) -> str:
    """Names the operator at the time step where the most bytes are live, and its largest live tensor."""
    steps = [(g, n) for g in graphs for n in g.nodes]
    live = [0] * (len(steps) + 1)
    for b in plan.buffers:
        for t in range(b.first, b.last + 1):
            live[t] += b.size
    t = max(range(len(steps)), key=lambda i: live[i]) if steps else 0
    g, node = steps[t]
    biggest = max((b for b in plan.buffers if b.first <= t <= b.last), key=lambda b: b.size)
    return (f"no memory plan fits {target_name} {arena.level.name}: at {g.name}/{node.name} ({node.op}) "
            f"{live[t]:,} B are live, the largest tensor {biggest.name} ({biggest.size:,} B); {_needs(uses)}; "
            f"smallest {arena.level.name} that works: {arena.used:,} B (planned; lower bound {arena.best_bound:,} B)")
