"""The tiled loops of the ONNX element-wise, normalisation and reduction kernels (kernels/tiles.py `ChunkTiles`,
plan/chunk_tiling.py).

Per tile: the tile's rows of every cut operand move to L1 through dma.c (the next tile's while this one
computes, where double-buffered), the kernel's own registry emitter runs on a copy of the node whose cut
operands and output have the tile's shape (a run of elements; or 1 x channels x spatial, with the tile's
group count), with L1 pointers and its per-channel inputs read in place from the tile's first channel;
the output tile goes back with one transfer. A last, shorter tile gets its own call (the shapes are
compile-time constants of the kernels' calls). A kernel that runs one plane at a time (Resize) is called per plane
of the tile on its node over the trailing axes (`ChunkTiles.plane`).
"""

from __future__ import annotations

from slmc.codegen.tiled import TileCtx, stream_loop
from slmc.ir import Node, Value
from slmc.ir.types import TensorType
from slmc.kernels.registry import CallContext, KernelSpec
from slmc.plan.chunk_tiling import ChunkView, chunk_view


def tile_node(node: Node, view: ChunkView, rows: int) -> Node:
    """A copy of `node` computing `rows` rows of its row view: its cut operands and output reshaped (a run of
    elements; or 1 x the tile's channels x each one's own trailing axes), a per-channel operand given the tile's
    channel count in place of its channels, a scalar operand kept."""
    out = node.outputs[0]

    def val(v: Value) -> Value:
        shape = (rows,) if view.kind == "elem" else (1, rows * view.cg, *v.shape[2:])
        return Value(v.name, TensorType(shape, v.dtype), v.kind)

    def sliced(v: Value) -> Value:
        ax = len(v.shape) - len(out.shape) + 1        # the channel axis, right-aligned against the output's
        if view.kind != "channel" or ax < 0 or v.shape[ax] != out.shape[1]:
            return v
        shape = list(v.shape)
        shape[ax] = rows
        return Value(v.name, TensorType(tuple(shape), v.dtype), v.kind)
    ins = [val(v) if i in view.cut and v is not None else sliced(v) if i in view.sliced and v is not None else v
           for i, v in enumerate(node.inputs)]
    attrs = dict(node.attrs, num_groups=rows) if view.kind == "group" else dict(node.attrs)
    return Node(node.op, ins, [val(out), *node.outputs[1:]], attrs, node.name)


def chunk_loops(t, node: Node, c: CallContext, spec: KernelSpec) -> str:  # type: ignore[no-untyped-def]
    s, ch = t.shape, t.choice
    view = chunk_view(node, t.rule)
    assert view is not None
    N, cg = view.rows, view.cg
    R, cut = ch.mt, view.cut
    offs: dict[str, list[int]] = {}
    for (role, _), off in zip(ch.buffers, t.offsets):
        offs.setdefault(role, []).append(off)
    double = any(len(v) == 2 for v in offs.values())
    cur = "t & 1" if double else "0"
    refs = {i: f"t_in{k}[{cur}]" for k, i in enumerate(cut)}
    per = cg if cg else 1
    for i in view.sliced:
        if i < len(node.inputs) and node.inputs[i] is not None:
            refs[i] = f"({c.ref(i)} + (size_t)a0 * {per})"

    def call(rows: int) -> str:
        return spec.emit(tile_node(node, view, rows), TileCtx(c, refs, "t_o"))  # type: ignore[arg-type]
    rem = N % R
    body = [call(R)] if rem == 0 else [f"if (na == {R}) {{", "    " + call(R), "} else {", "    " + call(rem), "}"]
    if t.rule.plane is not None:    # one plane at a time: the kernel's node over the trailing axes (kernels/tiles.py)
        plane, skip = t.rule.plane(node)
        ib, ob = s.row_bytes[0] // node.inputs[cut[0]].dtype.size, s.out_row_bytes // node.outputs[0].dtype.size
        prefs = {**refs, cut[0]: f"({refs[cut[0]]} + (size_t)p * {ib})",
                 **{i: f"({c.ref(i)} + {k})" for i, k in skip.items()}}
        body = ["for (int p = 0; p < na; p++) {",
                "    " + spec.emit(plane, TileCtx(c, prefs, f"(t_o + (size_t)p * {ob})")), "}"]  # type: ignore[arg-type]
    srcs = [(k, c.ref(i), s.in_levels[k], s.row_bytes[k]) for k, i in enumerate(cut)]

    def load(buf: str, start: str, count: str, chan: str) -> list[str]:
        return [f"slmc_dma_start({chan}, t_in{k}[{buf}], 0, (const uint8_t *){src} + (size_t)({start}) * {rb}, {lvl}, 1, "
                f"({count}) * {rb}, ({count}) * {rb}, ({count}) * {rb});" for k, src, lvl, rb in srcs]
    ot = node.outputs[0].dtype.c
    what = "elements" if view.kind == "elem" else f"groups of {cg} channels" if view.kind == "group" else "channels"
    orb = s.out_row_bytes
    L = [f"{{   /* tiled in L1 ({ch.footprint:,} B): {N} {what} in tiles of {R}{', double-buffered' if double else ''}; "
         f"out tiles to level {s.out_level} */",
         f"    {ot} *const t_o = ({ot} *)(slmc_l1 + {offs['out'][0]});"]
    for k, _ in enumerate(cut):
        it = node.inputs[cut[k]].dtype.c  # type: ignore[union-attr]
        L.append(f"    {it} *const t_in{k}[2] = {{({it} *)(slmc_l1 + {offs[f'in{k}'][0]}), "
                 f"({it} *)(slmc_l1 + {offs[f'in{k}'][-1]})}};")
    if double:
        L += ["    " + x for x in load("0", "0", str(min(N, R)), "0")]
    L += stream_loop(str(N), R, load, double)
    L += [*("        " + x for x in body),
          f"        slmc_dma_start(3, (uint8_t *){c.out()} + (size_t)a0 * {orb}, {s.out_level}, t_o, 0, 1, "
          f"na * {orb}, na * {orb}, na * {orb});",
          "        slmc_dma_wait(3);", "    }", "}"]
    return "\n    ".join(L)
