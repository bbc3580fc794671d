"""Which overlap contract (kernels/overlap.py) holds for each operator of a build.

Untiled, the kernel's own loop order decides: its registry entry's `overlap`. Computing in a level
above the arena (plan/levels.py), a kernel reads L1 copies of its operands, so the order in which
tiles move between the arena and L1 decides instead:
- row tiles (norms, element-wise operators): a tile's output is stored after its input tile was
  loaded, in row order, so the untiled element-wise contracts still hold;
- a matrix product cut x-outer (or with one tile of w): blocks of mt token rows, each loaded before
  its outputs are stored: x (and q8's scales) by chunks of mt rows (when mt divides the rows); cut
  w-outer with x resident: x is loaded whole before the first output; otherwise x is reloaded for
  every w tile: none; the ONNX Gemm / MatMul / MatMulInteger the same for A (plan/gemm_tiling.py; transA: none);
- attention by KV head: a group's queries (all rows) are loaded before its outputs are stored,
  group after group: only the exact overlay of out on q, in that order;
- a convolution or pool (plan/conv_tiling.py `tiled_contract`): by channel tiles where they hold whole
  groups, exactly over its input for a pointwise conv cut by rows, consumed first in one tile;
- an operator whose smallest tiles do not fit L1 reads the arena in place: its untiled contract.
"""

from __future__ import annotations

import numpy as np

from slmc.ir import Graph, Node
from slmc.kernels.overlap import Share, by_chunks, consumed_first, in_place
from slmc.kernels.registry import KernelSpec
from slmc.kernels.tiles import ConvTiles, GemmTiles, HeadTiles, MatmulTiles, Q8MatmulTiles, RowTiles
from slmc.targets.levels import Level


def contracts_for(graphs: list[Graph], binding: dict[int, KernelSpec],
                  levels: tuple[Level, ...] | None = None) -> dict[int, tuple[Share, ...]]:
    """id(node) -> the contracts that hold for it. `levels`: the hierarchy the build tiles across (None: untiled)."""
    from slmc.plan.levels import choose_tiles

    out: dict[int, tuple[Share, ...]] = {}
    for g in graphs:
        for n in g.nodes:
            spec = binding.get(id(n))
            if spec is None:
                continue
            chosen = choose_tiles(n, spec, levels) if levels is not None else None
            shares = spec.overlap(n) if chosen is None or chosen[1] is None else _tiled(n, spec, *chosen)
            if shares:
                out[id(n)] = shares
    return out


def _tiled(node: Node, spec: KernelSpec, shape, choice) -> tuple[Share, ...]:
    rule = spec.tiling
    if isinstance(rule, RowTiles):
        return spec.overlap(node)
    if isinstance(rule, HeadTiles):
        return in_place(rule.q, _group_order, "tiled by KV head: a group's queries, all rows, are loaded before "
                        "its outputs are stored")(node)
    if isinstance(rule, ConvTiles):
        from slmc.plan.conv_tiling import tiled_contract
        return tiled_contract(node, shape, choice)
    if isinstance(rule, GemmTiles):
        from slmc.plan.gemm_tiling import tiled_contract as gemm_contract
        return gemm_contract(node, shape, choice)
    assert isinstance(rule, (MatmulTiles, Q8MatmulTiles))
    xs = (rule.x, rule.x + 1) if isinstance(rule, Q8MatmulTiles) else (rule.x,)
    rows, n_out = shape.rows, shape.n_out
    if choice.order == "w-outer" and choice.resident:
        return tuple(sh for i in xs for sh in consumed_first(i, "tiled, x resident: loaded whole before any output")(node))
    if (choice.order == "x-outer" or choice.nt >= n_out) and rows % choice.mt == 0:
        why = f"tiled x-outer: blocks of {choice.mt} token rows, each loaded before its outputs are stored"
        return tuple(sh for i in xs for sh in by_chunks(i, lambda n: rows // choice.mt, why)(node))
    return ()


def _group_order(n: Node) -> np.ndarray:
    """The step at which the tiled attention loads q[s][h] and stores out[s][h]: KV group, then token row."""
    rows, a = n.outputs[0].shape[0], n.attrs
    hd, per = a["head_dim"], a["n_heads"] // a["n_kv_heads"]
    e = np.arange(n.outputs[0].type.numel)
    head = (e % (a["n_heads"] * hd)) // hd
    return (head // per) * rows + e // (a["n_heads"] * hd)
