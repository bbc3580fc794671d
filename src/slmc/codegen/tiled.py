"""The tiled loops of operators that compute in the fastest level (plan/levels.py, plan/tiling.py).

A tiled operator keeps its registry entry but gets an emitter that writes, instead of one kernel
call, the loops over tiles: transfers into the L1 tile area through the DMA API of
kernels/c/dma.c (start on a channel, wait before use; the next outer tile is started before the
current one is used where it is double-buffered), one call of the kernel per tile, and the
output tile's (strided) transfer back. A matrix product calls the function its `MatmulTiles.call`
names with the tile's rows and outputs (a bias is read in place); a row-wise operator
(`RowTiles`) calls its own registry emitter with the tile's row count and L1 pointers. The L1
tile area is one static array, `slmc_l1`, whose offsets the L1 plan fixed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from slmc.cquote import c_comment, comment
from slmc.ir import Graph, Node
from slmc.kernels.registry import CallContext, KernelSpec
from slmc.kernels.llm import attention_extras
from slmc.kernels.tiles import ChunkTiles, ConvTiles, GemmTiles, HeadTiles, Q8MatmulTiles, RowTiles
from slmc.plan.levels import LevelPlan, TiledOp
from slmc.plan.lifetimes import ALIGN

DMA_FILE = "dma.c"


@dataclass(frozen=True)
class TiledProgram:
    binding: dict[int, KernelSpec]
    decls: list[str]             # lines for model.c after the kernel prototypes


def _al(x: int) -> int:
    return -(-x // ALIGN) * ALIGN


def _ptr(off: int) -> str:
    return f"(float *)(slmc_l1 + {off})"


def stream_loop(n: str, r: int, load: Callable[[str, str, str, str], list[str]], double: bool) -> list[str]:
    """The head of a loop over n rows in tiles of r (a0 the tile's first row, na its rows, t its index) whose
    tiles come by DMA: double-buffered, the next tile's transfers start before this one's wait (the first
    tile's are the caller's); otherwise each tile's transfers start and are waited for.
    `load(buf, start, count, chan)`: one tile's transfers."""
    L = [f"    for (int a0 = 0, t = 0; a0 < {n}; a0 += {r}, t++) {{",
         f"        const int na = {n} - a0 < {r} ? {n} - a0 : {r};"]
    if double:
        return L + [f"        if (a0 + {r} < {n}) {{",
                    f"            const int nb = {n} - a0 - {r} < {r} ? {n} - a0 - {r} : {r};",
                    *("            " + x for x in load("(t + 1) & 1", f"a0 + {r}", "nb", "(t + 1) & 1")),
                    "        }", "        slmc_dma_wait(t & 1);"]
    return L + [*("        " + x for x in load("0", "a0", "na", "0")), "        slmc_dma_wait(0);"]


def matmul_loops(t: TiledOp, node: Node, c: CallContext) -> str:
    """The C of one tiled matrix product (indented for the body of a step function). q8
    (`Q8MatmulTiles`): a tile of x or w is its int8 rows, then (aligned) their scales, each moved
    by its own transfer; the kernel is called with both parts."""
    s, ch, r = t.shape, t.choice, t.rule
    K, N, e = s.k, s.n_out, s.elem
    q8 = isinstance(r, Q8MatmulTiles)
    X, W, OUT = c.ref(r.x), c.ref(r.w), c.out()
    bias = c.ref(r.bias) if r.bias < len(node.inputs) else "NULL"
    offs: dict[str, list[int]] = {}
    for (role, _), off in zip(ch.buffers, t.offsets):
        offs.setdefault(role, []).append(off)
    outer, inner = ("w", "x") if ch.order == "w-outer" else ("x", "w")
    src = {"w": (r.w, s.w_level), "x": (r.x, s.x_level)}
    tile = {"w": ch.nt, "x": ch.mt}
    o_tile, i_tile = (ch.nt, ch.mt) if outer == "w" else (ch.mt, ch.nt)
    o_total, i_total = (str(N), "rows") if outer == "w" else ("rows", str(N))
    double = len(offs[outer]) == 2
    how = (f"{inner} loaded once" if ch.resident else f"{inner} reloaded per {outer} tile") + ", " + \
        (f"{outer} double-buffered" if double else f"{outer} single-buffered")
    kind = f"q8 (int8 rows + {s.groups} scales each)" if q8 else ""
    ptr = (lambda off: f"(slmc_l1 + {off})") if q8 else _ptr
    ty = "uint8_t" if q8 else "float"
    L = [f"{{   /* tiled in L1 ({ch.footprint:,} B), {ch.order}{', ' + kind if kind else ''}: w tiles [{ch.nt}, {K}] from level {s.w_level}, "
         f"x tiles [{ch.mt}, {K}] from level {s.x_level}, {how}; out tiles [{ch.mt}, {ch.nt}] to level {s.out_level} */",
         f"    {ty} *const t_{outer}[2] = {{{ptr(offs[outer][0])}, {ptr(offs[outer][-1])}}};",
         f"    {ty} *const t_{inner} = {ptr(offs[inner][0])};",
         f"    float *const t_o = {_ptr(offs['out'][0])};",
         f"    const int rows = {c.rows};"]

    def load(role: str, buf: str, start: str, count: str, chan: str) -> list[str]:
        """Transfers of rows start .. start + count - 1 of x or w into the tile `buf`."""
        i, lvl = src[role]
        if not q8:
            row = K * e
            return [f"slmc_dma_start({chan}, {buf}, 0, {c.ref(i)} + (size_t)({start}) * {K}, {lvl}, 1, ({count}) * {row}, "
                    f"({count}) * {row}, ({count}) * {row});"]
        sb, scales = 4 * s.groups, _al(tile[role] * K)
        return [f"slmc_dma_start({chan}, {buf}, 0, {c.ref(i)} + (size_t)({start}) * {K}, {lvl}, 1, ({count}) * {K}, "
                f"({count}) * {K}, ({count}) * {K});",
                f"slmc_dma_start({chan}, {buf} + {scales}, 0, {c.ref(i + 1)} + (size_t)({start}) * {s.groups}, {lvl}, 1, "
                f"({count}) * {sb}, ({count}) * {sb}, ({count}) * {sb});"]

    def args(role: str, p: str) -> str:
        if not q8:
            return p
        return f"(const int8_t *)({p}), (const float *)({p} + {_al(tile[role] * K)})"
    if ch.resident:
        L += ["    " + x for x in load(inner, f"t_{inner}", "0", i_total, "2")] + ["    slmc_dma_wait(2);"]
    if double:
        L += [f"    if ({o_total} > 0) {{",
              *("        " + x for x in load(outer, f"t_{outer}[0]", "0", f"{o_total} < {o_tile} ? {o_total} : {o_tile}", "0")),
              "    }"]
    L += stream_loop(str(o_total), o_tile, lambda buf, a, n, ch: load(outer, f"t_{outer}[{buf}]", a, n, ch), double)
    cur = f"t_{outer}[t & 1]" if double else f"t_{outer}[0]"
    L += [f"        for (int b0 = 0; b0 < {i_total}; b0 += {i_tile}) {{",
          f"            const int nb = {i_total} - b0 < {i_tile} ? {i_total} - b0 : {i_tile};"]
    if ch.resident and q8:
        # the resident tile holds all rows: int8 rows at b0 * K, their scales after all of them
        sc = _al(tile[inner] * K)
        inner_args = (f"(const int8_t *)(t_{inner} + (size_t)b0 * {K}), "
                      f"(const float *)(t_{inner} + {sc}) + (size_t)b0 * {s.groups}")
    elif ch.resident:
        inner_args = f"t_{inner} + (size_t)b0 * {K}"
    else:
        inner_args = args(inner, f"t_{inner}")
        L += [*("            " + x for x in load(inner, f"t_{inner}", "b0", "nb", "2")), "            slmc_dma_wait(2);"]
    xs, ws = (inner_args, args(outer, cur)) if outer == "w" else (args(outer, cur), inner_args)
    i0, s0, ni, ns = ("a0", "b0", "na", "nb") if outer == "w" else ("b0", "a0", "nb", "na")
    b = "NULL" if bias == "NULL" else f"{bias} + {i0}"
    if q8:
        scratch = f", {c.scratch()}" if r.scratch else ""
        call = f"{r.call}(t_o, {xs}, {ws}, {b}{scratch}, {ns}, {K}, {ni}, {node.attrs['group']});"
    else:
        call = f"{r.call}(t_o, {xs}, {ws}, {b}, {ns}, {K}, {ni});"
    L += [f"            {call}",
          f"            slmc_dma_start(3, {OUT} + (size_t){s0} * {N} + {i0}, {s.out_level}, t_o, 0, {ns}, {ni} * {e}, "
          f"{N * e}, {ni} * {e});",
          "            slmc_dma_wait(3);", "        }", "    }", "}"]
    return "\n    ".join(L)


class TileCtx:
    """What a kernel's registry emitter sees inside a tile loop: L1 tiles in `refs` (by input index) and
    `out`; the rows a call covers (`rows`: a C expression, the call's own where None); the rest is `c`'s."""

    def __init__(self, c: CallContext, refs: dict[int, str], out: str, rows: str | None = None) -> None:
        self.c, self.refs, self._out, self._rows = c, refs, out, rows

    def ref(self, i: int) -> str:
        return self.refs.get(i) or self.c.ref(i)

    def out(self, i: int = 0) -> str:
        return self._out

    def weight(self, i: int) -> str:
        return self.refs.get(i) or self.c.weight(i)  # type: ignore[attr-defined]

    def scratch(self) -> str:
        return self.c.scratch()

    @property
    def rows(self) -> str:
        return self._rows or self.c.rows

    @property
    def pos(self) -> str:
        return self.c.pos

    def attr(self, key: str, wide: bool = False) -> str:
        return self.c.attr(key, wide)

    def ints(self, values: list[int]) -> str:
        return self.c.ints(values)  # type: ignore[attr-defined]


def row_loops(t: TiledOp, node: Node, c: CallContext, spec: KernelSpec) -> str:
    """The C of one tiled row-wise operator: row tiles (double-buffered where DMA allows), whole
    inputs loaded once, the kernel's own call per tile with the tile's row count."""
    s, ch, rule = t.shape, t.choice, t.rule
    offs: dict[str, list[int]] = {}
    for (role, _), off in zip(ch.buffers, t.offsets):
        offs.setdefault(role, []).append(off)
    R, double = ch.mt, any(len(v) == 2 for v in offs.values())
    L = [f"{{   /* tiled in L1 ({ch.footprint:,} B): rows in tiles of {R}"
         f"{', double-buffered' if double else ''}; out tiles to level {s.out_level} */",
         f"    float *const t_o = {_ptr(offs['out'][0])};", f"    const int rows = {c.rows};"]
    srcs = []
    for k, i in enumerate(rule.rows):
        L.append(f"    float *const t_in{k}[2] = {{{_ptr(offs[f'in{k}'][0])}, {_ptr(offs[f'in{k}'][-1])}}};")
        srcs.append((k, c.ref(i), s.in_levels[k], s.row_bytes[k]))
    refs = {i: f"t_in{k}[{'t & 1' if double else '0'}]" for k, i in enumerate(rule.rows)}
    for k, i in enumerate(i for i in rule.whole if i < len(node.inputs) and node.inputs[i] is not None):
        L += [f"    float *const t_whole{k} = {_ptr(offs[f'whole{k}'][0])};",
              f"    slmc_dma_start(2, t_whole{k}, 0, {c.ref(i)}, {s.whole_levels[k]}, 1, {s.whole_bytes[k]}, "
              f"{s.whole_bytes[k]}, {s.whole_bytes[k]});", "    slmc_dma_wait(2);"]
        refs[i] = f"t_whole{k}"

    def load(buf: str, start: str, count: str, chan: str) -> list[str]:
        return [f"slmc_dma_start({chan}, t_in{k}[{buf}], 0, (const uint8_t *){src} + (size_t)({start}) * {rb}, {lvl}, 1, "
                f"({count}) * {rb}, ({count}) * {rb}, ({count}) * {rb});" for k, src, lvl, rb in srcs]
    if double:
        L += ["    if (rows > 0) {", *("        " + x for x in load("0", "0", f"rows < {R} ? rows : {R}", "0")), "    }"]
    L += stream_loop("rows", R, load, double)
    L += ["        " + spec.emit(node, TileCtx(c, refs, "t_o", "na")),  # type: ignore[arg-type]
          f"        slmc_dma_start(3, (uint8_t *){c.out()} + (size_t)a0 * {s.out_row_bytes}, {s.out_level}, t_o, 0, 1, "
          f"na * {s.out_row_bytes}, na * {s.out_row_bytes}, na * {s.out_row_bytes});",
          "        slmc_dma_wait(3);", "    }", "}"]
    return "\n    ".join(L)


def head_loops(t: TiledOp, node: Node, c: CallContext) -> str:
    """The C of one attention tiled by KV head: the queries of the head's group and the cached
    rows 0 .. pos + rows - 1 of its keys and values (strided copies out of the interleaved cache)
    move to L1, the next head's while this one computes where double-buffered; the kernel runs on
    one KV head (n_heads = the group, n_kv_heads = 1); its outputs go back strided."""
    s, ch, r = t.shape, t.choice, t.rule
    G, hd, e = s.group, s.head_dim, s.kv_elem
    offs: dict[str, list[int]] = {}
    for (role, _), off in zip(ch.buffers, t.offsets):
        offs.setdefault(role, []).append(off)
    double = len(offs["k"]) == 2
    qrow, kvrow = G * hd * 4, hd * e
    Q, K, V, OUT = c.ref(r.q), c.ref(r.k), c.ref(r.v), c.out()

    def pair(role: str) -> str:
        return f"    void *const t_{role}[2] = {{slmc_l1 + {offs[role][0]}, slmc_l1 + {offs[role][-1]}}};"

    def load(h: str, buf: str, chan: str) -> list[str]:
        return [f"slmc_dma_start({chan}, t_q[{buf}], 0, (const uint8_t *){Q} + (size_t)({h}) * {qrow}, {s.q_level}, "
                f"rows, {qrow}, {qrow}, {s.n_heads * hd * 4});",
                *(f"slmc_dma_start({chan}, t_{x}[{buf}], 0, (const uint8_t *){src} + (size_t)({h}) * {kvrow}, {s.kv_level}, "
                  f"len, {kvrow}, {kvrow}, {s.n_kv_heads * kvrow});" for x, src in (("k", K), ("v", V)))]
    L = [f"{{   /* tiled in L1 ({ch.footprint:,} B): attention one KV head at a time ({G} query heads), "
         f"cached rows 0 .. pos + rows - 1{', double-buffered' if double else ''} */",
         pair("q"), pair("k"), pair("v"),
         f"    float *const t_o = (float *)(slmc_l1 + {offs['out'][0]});",
         f"    void *const t_att = slmc_l1 + {offs['att'][0]};",
         f"    const int rows = {c.rows}, len = {c.pos} + rows;"]
    if double:
        L += ["    " + x for x in load("0", "0", "0")]
    L += [f"    for (int h = 0; h < {s.n_kv_heads}; h++) {{"]
    if double:
        L += [f"        if (h + 1 < {s.n_kv_heads}) {{", *("            " + x for x in load("h + 1", "(h + 1) & 1", "(h + 1) & 1")),
              "        }", "        slmc_dma_wait(h & 1);"]
    else:
        L += [*("        " + x for x in load("h", "0", "0")), "        slmc_dma_wait(0);"]
    b = "h & 1" if double else "0"
    L += [f"        {r.call}(t_o, t_q[{b}], t_k[{b}], t_v[{b}], t_att, rows, {G}, 1, {hd}, {c.pos}{attention_extras(node)});",
          f"        slmc_dma_start(3, (uint8_t *){OUT} + (size_t)h * {qrow}, {s.out_level}, t_o, 0, rows, {qrow}, "
          f"{s.n_heads * hd * 4}, {qrow});", "        slmc_dma_wait(3);", "    }", "}"]
    return "\n    ".join(L)


def tile_binding(graphs: list[Graph], binding: dict[int, KernelSpec], lp: LevelPlan) -> TiledProgram:
    """The binding with every tiled operator's emitter replaced by its loops (and dma.c as a dependency)."""
    if not lp.tiles:
        return TiledProgram(binding, [])
    by_name = {(t.graph, t.node): t for t in lp.tiles}
    out = dict(binding)
    for g in graphs:
        for node in g.nodes:
            t = by_name.get((g.name, node.name))
            if t is None:
                continue
            spec = binding[id(node)]
            if isinstance(t.rule, ChunkTiles):
                from slmc.codegen.tiled_chunk import chunk_loops
                emit = lambda n, c, t=t, spec=spec: chunk_loops(t, n, c, spec)  # noqa: E731
            elif isinstance(t.rule, RowTiles):
                emit = lambda n, c, t=t, spec=spec: row_loops(t, n, c, spec)  # noqa: E731
            elif isinstance(t.rule, HeadTiles):
                emit = lambda n, c, t=t: head_loops(t, n, c)  # noqa: E731
            elif isinstance(t.rule, GemmTiles):
                from slmc.codegen.tiled_gemm import gemm_loops
                emit = lambda n, c, t=t, spec=spec: gemm_loops(t, n, c, spec)  # noqa: E731
            elif isinstance(t.rule, ConvTiles):
                from slmc.codegen.tiled_conv import conv_loops
                emit = lambda n, c, t=t, spec=spec: conv_loops(t, n, c, spec)  # noqa: E731
            else:
                emit = lambda n, c, t=t: matmul_loops(t, n, c)  # noqa: E731
            out[id(node)] = dataclasses.replace(spec, emit=emit, deps=(*spec.deps, DMA_FILE))
    names = ", ".join(f"{c_comment(lv.name)}={i}" for i, lv in enumerate(lp.levels))
    decls = ["", comment(f"the fastest level's tile area, offsets fixed by the L1 plan; DMA levels: {names}"),
             f"static uint8_t slmc_l1[{lp.l1_bytes}] __attribute__((aligned(16)));"]
    return TiledProgram(out, decls)


def check_mode(mode: str, chunk: int) -> None:
    """`-m prefill` compiles a prompt step over `--seq S` tokens (S >= 2); decode is the default."""
    from slmc.errors import SlmcError

    if mode not in ("decode", "prefill"):
        raise SlmcError(f"unknown mode '{mode}'", "use -m decode or -m prefill")
    if mode == "prefill" and chunk < 2:
        raise SlmcError(f"-m prefill needs a prompt step of 2 or more tokens (--seq is {chunk})", "add e.g. --seq 16")


def place_and_tile(graphs: list[Graph], binding: dict[int, KernelSpec], plan: "object", weights_bytes: int,
                   target: "object", mode: str, memory: tuple = ()) -> tuple[LevelPlan, TiledProgram, dict]:
    """Per-level placement and tiling (raises SlmcError explaining an infeasible hierarchy), the
    binding with tiled emitters, and report.json's `levels` entry."""
    from slmc.plan.levels import plan_levels
    from slmc.targets.levels import levels_of

    if mode == "prefill" and not any(g.name == "prefill" for g in graphs):
        from slmc.errors import SlmcError

        raise SlmcError("-m prefill compiles a language model's prompt step; this model has none",
                        "omit -m (an ONNX graph runs as one step), or compile a decoder")
    # what else the linker region behind a level holds (main.c's buffers, stack, C library: targets/fit.py)
    reserved = {m.memory: sum(n.nbytes for n in m.needs if n.what not in ("activations and scratch", "KV cache", "weights"))
                for m in memory}
    lp = plan_levels(graphs, binding, plan, weights_bytes, levels_of(target), target.name,  # type: ignore[arg-type,attr-defined]
                     reserved)
    prog = tile_binding(graphs, binding, lp)
    return lp, prog, dict(mode=mode, **lp.as_dict(graphs))
