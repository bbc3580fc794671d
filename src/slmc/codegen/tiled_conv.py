"""The tiled loops of a convolution or pooling (kernels/tiles.py `ConvTiles`, plan/conv_tiling.py).

Per tile: the tile's weight rows (one block; ConvTranspose inside one group: its columns, one strided transfer)
and input rows with their halo (ConvTranspose: the rows its outputs gather from) (one strided transfer over
the tile's input channels) move to L1 through dma.c, the kernel's own registry emitter is called with
L1 pointers and a geometry array `tg` that is the untiled one with the tile's channel counts, groups,
rows and top pad (a pool also its bottom pad, for count_include_pad) put in, and the output tile goes
back with one strided transfer. A bias or per-channel zero points are read in place from the tile's
first channel on.
"""

from __future__ import annotations

from slmc.codegen.tiled import TileCtx
from slmc.ir import Node
from slmc.kernels.registry import CallContext, KernelSpec
from slmc.plan.conv_tiling import ConvShape


class _ConvCtx(TileCtx):
    """What the kernel's emitter sees inside the tile loop: L1 tiles, the per-tile geometry `tg`."""

    def ints(self, values: list[int]) -> str:
        return "tg"


def conv_loops(t, node: Node, c: CallContext, spec: KernelSpec) -> str:  # type: ignore[no-untyped-def]
    s: ConvShape = t.shape
    ch, rule = t.choice, t.rule
    offs = {role: off for (role, _), off in zip(ch.buffers, t.offsets)}
    conv, convt = s.weighted, s.kind == "convt"
    CT, RT, G = ch.nt, ch.mt, s.groups
    xrow, orow = s.w * s.x_elem, s.ow * s.out_elem
    X, OUT = c.ref(0), c.out()
    refs = {0: "t_x", 1: "t_w"} if conv else {0: "t_x"}
    for i in rule.sliced:
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is not None and v.type.numel == s.m and s.m > 1:
            refs[i] = f"({c.ref(i)} + m0)"
    call = spec.emit(node, _ConvCtx(c, refs, "t_o"))  # type: ignore[arg-type]
    # where the tile's values go in the geometry array (conv: n c d h w m ...; pool: planes d h w ...)
    if conv:
        grp = "1" if G == 1 else (f"mc / {s.mg}" if CT >= s.mg else "1")
        cc = str(s.c) if G == 1 else (f"mc / {s.mg} * {s.cg}" if CT >= s.mg else str(s.cg))
        c0 = "0" if G == 1 else f"m0 / {s.mg} * {s.cg}"
        a = s.ax     # the row axis's entries: h (or, 3-D, d: one index lower)
        sets = ["tg[0] = 1", f"tg[1] = {cc}", f"tg[{3 + a}] = hi - lo", "tg[5] = mc", f"tg[{10 + a}] = nr", f"tg[12] = {grp}",
                f"tg[{20 + a}] = {s.pt} + oy0 - lo * {s.sh}" if convt else f"tg[{20 + a}] = {s.pt} + lo - oy0 * {s.sh}"]
        x_at = f"((size_t)ni * {s.c} + {c0}) * {s.h} + lo"
    else:
        cc, c0 = "mc", "m0"
        a = s.ax
        sets = ["tg[0] = mc", f"tg[{2 + a}] = hi - lo", f"tg[{8 + a}] = nr", f"tg[{17 + a}] = {s.pt} + lo - oy0 * {s.sh}",
                f"tg[{20 + a}] = {s.geom[20 + a]} + {s.h} - hi"]
        x_at = f"(size_t)m0 * {s.h} + lo"
    w_load = [f"slmc_dma_start(0, t_w, 0, (const uint8_t *){c.ref(1)} + (size_t)m0 * {s.w_row}, {s.w_level}, 1, "
              f"mc * {s.w_row}, mc * {s.w_row}, mc * {s.w_row});", "slmc_dma_wait(0);"] if conv else []
    if convt and CT < s.mg:     # w [C, M / group, kh, kw]: the tile's columns of each of its group's input channels
        kv = s.kh * s.kw * s.w_elem
        w_load = [f"slmc_dma_start(0, t_w, 0, (const uint8_t *){c.ref(1)} + ((size_t)(m0 / {s.mg}) * {s.cg * s.mg} + "
                  f"m0 % {s.mg}) * {kv}, {s.w_level}, {s.cg}, mc * {kv}, mc * {kv}, {s.mg * kv});", "slmc_dma_wait(0);"]
    x_cc = str(s.c) if ch.order == "rows-outer" else cc
    x_src = f"((size_t)ni * {s.c}) * {s.h} + lo" if ch.order == "rows-outer" else x_at
    x_load = [f"slmc_dma_start(1, t_x, 0, (const uint8_t *){X} + ({x_src}) * {xrow}, {s.x_level}, {x_cc}, "
              f"(hi - lo) * {xrow}, (hi - lo) * {xrow}, {s.h * xrow});", "slmc_dma_wait(1);"]
    rows = [f"const int nr = {s.oh} - oy0 < {RT} ? {s.oh} - oy0 : {RT};",
            f"const int lo = oy0 * {s.sh} - {s.pt} > 0 ? oy0 * {s.sh} - {s.pt} : 0;",
            f"int hi = (oy0 + nr - 1) * {s.sh} - {s.pt} + {(s.kh - 1) * s.dh + 1};",
            f"if (hi > {s.h}) hi = {s.h};", "if (hi < lo) hi = lo;"]
    if convt:   # the rows each row tile gathers from (plan/conv_tiling.py `rows_in`), a table by row tile
        tab = c.ints([v for _, _, lo, hi in s.row_tiles(RT) for v in (lo, hi)])  # type: ignore[attr-defined]
        rows = [rows[0], f"const int lo = {tab}[oy0 / {RT} * 2], hi = {tab}[oy0 / {RT} * 2 + 1];"]
    chan = [f"const int mc = {s.m} - m0 < {CT} ? {s.m} - m0 : {CT};"]
    body = [*(f"{x};" for x in sets), call,
            f"slmc_dma_start(3, (uint8_t *){OUT} + (((size_t)ni * {s.m} + m0) * {s.oh} + oy0) * {orow}, {s.out_level}, "
            f"t_o, 0, mc, nr * {orow}, {s.oh * orow}, nr * {orow});", "slmc_dma_wait(3);"]

    def block(head: str, lines: list[str]) -> list[str]:
        return [head + " {", *("    " + x for x in lines), "}"]
    m_loop = f"for (int m0 = 0; m0 < {s.m}; m0 += {CT})"
    r_loop = f"for (int oy0 = 0; oy0 < {s.oh}; oy0 += {RT})"
    n_loop = f"for (int ni = 0; ni < {s.n}; ni++)"
    if ch.order == "rows-outer":
        inner = block(m_loop, chan + w_load + body)
        loops = block(n_loop, block(r_loop, rows + x_load + inner))
    else:
        inner = block(n_loop, block(r_loop, rows + x_load + body))
        loops = block(m_loop, chan + w_load + inner)
    halo = "the rows they gather from (a table)" if convt else f"(rows - 1) * {s.sh} + {(s.kh - 1) * s.dh + 1}"
    what = "output channels" if conv else "planes"
    L = [f"{{   /* tiled in L1 ({ch.footprint:,} B), {ch.order}: {CT} {what} x {RT} output rows per tile, input rows "
         f"{halo} with the halo{f', w from level {s.w_level}' if conv else ''}, x from level {s.x_level}, out to level "
         f"{s.out_level}; {ch.calls} tiles */",
         *(f"    void *const t_{r} = slmc_l1 + {offs[r]};" for r in (("w", "x", "out") if conv else ("x", "out"))
           if r != "out"),
         f"    void *const t_o = slmc_l1 + {offs['out']};",
         f"    int32_t tg[22] = {{{', '.join(str(v) for v in s.geom)}}};",
         *("    " + x for x in loops), "}"]
    return "\n    ".join(L)
