"""The tiled loops of an ONNX matrix product (kernels/tiles.py `GemmTiles`, plan/gemm_tiling.py).

Per tile: `ni` rows of A' (one transfer of rows of A; transA: K strided rows of `ni` columns) and `nj` columns of
B' (K strided rows of `nj` columns of B; transB: one transfer of rows of B) move to L1 through dma.c, the
operator's own registry emitter runs on a copy of the node with the tile's shapes (plan/gemm_tiling.py
`tile_node`) and L1 pointers, per-column inputs read in place from the tile's first column (Gemm's C through its
broadcast strides), and the [ni, nj] output tile goes back with one strided transfer. The inner operand is
loaded once where its tile holds all of it. Shorter last tiles get calls of their own (the shapes are
compile-time constants of the kernels' calls).
"""

from __future__ import annotations

from slmc.codegen.tiled import TileCtx
from slmc.ir import Node
from slmc.kernels.registry import CallContext, KernelSpec
from slmc.plan.gemm_tiling import gemm_view, tile_node


def gemm_loops(t, node: Node, c: CallContext, spec: KernelSpec) -> str:  # type: ignore[no-untyped-def]
    s, ch, rule = t.shape, t.choice, t.rule
    v = gemm_view(node, rule)
    assert v is not None
    offs = {role: off for (role, _), off in zip(ch.buffers, t.offsets)}
    M, K, N, e, oe = s.rows, s.k, s.n_out, s.elem, s.oe
    X, W = c.ref(0), c.ref(1)
    var = {"x": ("i0", "ni", M, ch.mt), "w": ("j0", "nj", N, ch.nt)}

    def load(role: str, start: str, cnt: str) -> list[str]:
        if role == "x":
            src, lvl, strided, across = X, s.x_level, v.trans_a, M
        else:
            src, lvl, strided, across = W, s.w_level, not v.trans_b, N
        if strided:     # K rows of the tile's `cnt` elements, `across` elements apart
            return [f"slmc_dma_start(1, t_{role}, 0, (const uint8_t *){src} + (size_t)({start}) * {e}, {lvl}, {K}, "
                    f"({cnt}) * {e}, ({cnt}) * {e}, {across * e});", "slmc_dma_wait(1);"]
        return [f"slmc_dma_start(1, t_{role}, 0, (const uint8_t *){src} + (size_t)({start}) * {K * e}, {lvl}, 1, "
                f"({cnt}) * {K * e}, ({cnt}) * {K * e}, ({cnt}) * {K * e});", "slmc_dma_wait(1);"]

    refs = {0: "t_x", 1: "t_w"}
    if node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2] is not None and any(v.c_strides):
        crs, ccs = v.c_strides
        refs[2] = f"({c.ref(2)} + (size_t)i0 * {crs} + (size_t)j0 * {ccs})"
    for i in rule.cols:
        if i < len(node.inputs) and node.inputs[i] is not None and node.inputs[i].type.numel == N > 1:  # type: ignore[union-attr]
            refs[i] = f"({c.ref(i)} + j0)"
    m_sizes = [ch.mt] + ([M % ch.mt] if M % ch.mt else [])
    n_sizes = [ch.nt] + ([N % ch.nt] if N % ch.nt else [])
    combos = [(a, b) for a in m_sizes for b in n_sizes]
    body: list[str] = []
    for k, (a, b) in enumerate(combos):
        call = spec.emit(tile_node(node, rule, v, a, b), TileCtx(c, refs, "t_o"))  # type: ignore[arg-type]
        if len(combos) == 1:
            body = [call]
            break
        head = "" if k == 0 else "} else "
        body += [f"{head}{'{' if k == len(combos) - 1 else f'if (ni == {a} && nj == {b}) {{'}", "    " + call]
    if len(combos) > 1:
        body.append("}")
    store = [f"slmc_dma_start(3, (uint8_t *){c.out()} + ((size_t)i0 * {N} + j0) * {oe}, {s.out_level}, t_o, 0, ni, "
             f"nj * {oe}, {N * oe}, nj * {oe});", "slmc_dma_wait(3);"]
    outer, inner = ("w", "x") if ch.order == "w-outer" else ("x", "w")
    o0, on, ot, otile = var[outer]
    i0, inn, it, itile = var[inner]
    inner_lines = [f"const int {inn} = {it} - {i0} < {itile} ? {it} - {i0} : {itile};",
                   *([] if ch.resident else load(inner, i0, inn)), *body, *store]
    L = [f"{{   /* tiled in L1 ({ch.footprint:,} B), {ch.order}: A' tiles [{ch.mt}, {K}] from level {s.x_level}, "
         f"B' tiles [{K}, {ch.nt}] from level {s.w_level}{', ' + inner + ' loaded once' if ch.resident else ''}; "
         f"out tiles [{ch.mt}, {ch.nt}] to level {s.out_level}; {ch.calls} tiles */",
         *(f"    void *const t_{r} = slmc_l1 + {offs[r]};" for r in ("x", "w")),
         f"    void *const t_o = slmc_l1 + {offs['out']};"]
    if ch.resident:
        L += ["    " + x for x in load(inner, "0", str(it))]
    L += [f"    for (int {o0} = 0; {o0} < {ot}; {o0} += {otile}) {{",
          f"        const int {on} = {ot} - {o0} < {otile} ? {ot} - {o0} : {otile};",
          *("        " + x for x in load(outer, o0, on)),
          f"        for (int {i0} = 0; {i0} < {it}; {i0} += {itile}) {{",
          *("            " + x for x in inner_lines), "        }", "    }", "}"]
    return "\n    ".join(L)
