"""The multi-row matrix products of a batched step (slmc compile --batch; passes/batch.py stamps the
row-wise products of the step graph with `shared_rows`, the step's row count).

A batched step's rows belong to different sequences but share every weight. The single-sequence kernels
take n rows too, but walk them so that each weight is loaded (and, for q8/int8, sign-extended or unpacked)
once per row; these read each weight once and use it for several rows at a time (`linear_q8_dsp_rows.c`:
two token rows by two weight rows in registers, for rows of 128 or more in groups of 32 or more, where it
saves 10-14% of the cycles, and linear_q8_dsp.c below that; SSE2: four token rows per widened weight vector,
two weight rows per activation load, about 1.8x fewer ns per MAC; on an x86-64 host a batched q8 build stores its
weights in the rows16 order instead and runs linear_q8_rows16.c, 16 outputs per AVX-512 vector and each weight vector
for up to 8 token rows, about 3x fewer ns per MAC than linear_q8_sse2_rows.c (benchmarks/batch_kernels.py);
the portable ones: two), and compute, row by row, the very same numbers as the kernel they stand for (integer
sums are exact in any order; the float rescale and accumulation keep that kernel's order per row). Same
operator, same arguments, same weight order and tiling rule as that kernel, so their numpy twins are the
operator's own (reference/llm_ops.py, reference/int_llm_ops.py). `select` prefers an ISA kernel first and,
among equals, the multi-row one (KernelSpec.shared_rows). Not written yet: RV32 (linear_q8_rv32.c,
linear_i8_rv32.c) and the M33's int8 (linear_i8_dsp.c); a batched build there keeps those kernels.
"""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.kernels.overlap import consumed_first
from slmc.kernels.registry import REGISTRY, CallContext, KernelSpec, register
from slmc.kernels.tiles import MatmulTiles, Q8MatmulTiles


def _batched(n: Node, layout: str = "") -> bool:
    return bool(n.attrs.get("shared_rows")) and n.attrs.get("layout", "") == layout


def _last(n: Node) -> int:
    return n.inputs[0].shape[-1]  # type: ignore[union-attr]


def _linear_macs(n: Node) -> int:
    return _last(n) * n.outputs[0].shape[-1] * n.outputs[0].shape[0]


def _q8(fn: str, isa: str, layout: str, scratch, deps: tuple[str, ...] = (), overlap=lambda n: ()) -> KernelSpec:
    def emit(n: Node, c: CallContext) -> str:
        sc = f"{c.scratch()}, " if scratch else ""
        return (f"slmc_{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.ref(4)}, {sc}{c.rows}, "
                f"{_last(n)}, {n.outputs[0].shape[-1]}, {n.attrs['group']});")

    return KernelSpec("linear_q8", DType.I8, f"{fn}.c", emit, isa=isa, scratch=scratch or (lambda n: 0),
                      macs=_linear_macs, where=lambda n: _batched(n, layout), deps=deps, overlap=overlap,
                      tiling=Q8MatmulTiles(f"slmc_{fn}", scratch=bool(scratch), w_multiple=4 if layout == "rows4" else 1),
                      batch="rows", shared_rows=True)


def _rows(n: Node) -> int:
    return n.inputs[0].shape[0]  # type: ignore[union-attr]


register(_q8("linear_q8_rows", "any", "", None))
register(_q8("linear_q8_sse2_rows", "sse2", "", lambda n: 2 * n.inputs[0].type.numel,  # type: ignore[union-attr]
             ("linear_q8_sse2.c",)))  # (one row: linear_q8_sse2.c)
# pairs of token rows unpacked to int16 (an odd last row paired with itself): 2 * k bytes per row, rounded up to a pair
# (groups under 16 call linear_q8_dsp.c, whose float rescale per group is the faster one)
register(_q8("linear_q8_dsp_rows", "dsp", "rows4", lambda n: 4 * _last(n) * ((_rows(n) + 1) // 2), ("linear_q8_dsp.c",),
             consumed_first(0, "xq unpacked into scratch before any output (both paths)")))


def _rows16(isa: str) -> KernelSpec:
    """linear_q8_rows16.c: 16 outputs per vector, each weight vector loaded once for up to 8 token rows, bit-identical
    per row to linear_q8.c; any row count (one row too), over weights in the rows16 order (quant/q8.py)"""
    def emit(n: Node, c: CallContext) -> str:
        return (f"slmc_linear_q8_rows16({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.ref(4)}, "
                f"{c.scratch()}, {c.rows}, {_last(n)}, {n.outputs[0].shape[-1]}, {n.attrs['group']});")

    return KernelSpec("linear_q8", DType.I8, "linear_q8_rows16.c", emit, isa=isa, macs=_linear_macs,
                      scratch=lambda n: 4 * _rows(n) * _last(n),  # -128 * sum(x) per row and group; SSE2: x as int16 x 2
                      where=lambda n: n.attrs.get("layout", "") == "rows16", batch="rows", shared_rows=True,
                      tiling=Q8MatmulTiles("slmc_linear_q8_rows16", scratch=True, w_multiple=16))


# an x86-64 host ("sse2"). Not host-native: its single runs use linear_q8_native.c, whose float sums are its own, and a
# batched run must give each sequence the ids of its single run (the batched host-native build keeps that kernel)
register(_rows16("sse2"))
register(KernelSpec("embedding_q8", DType.I8, "embedding_q8_rows16.c",  # a tied table in linear_q8_rows16.c's order
                    lambda n, c: f"slmc_embedding_q8_rows16({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['group']}, {_rows(n)});",
                    where=lambda n: n.attrs.get("layout") == "rows16", batch="rows"))

register(KernelSpec("linear", DType.F32, "linear_f32_rows.c",
                    lambda n, c: f"slmc_linear_f32_rows({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.outputs[0].shape[-1]});",
                    macs=_linear_macs, where=_batched, tiling=MatmulTiles("slmc_linear_f32_rows"), batch="rows",
                    shared_rows=True))


def _macs_i8(n: Node) -> int:
    rows, cols = n.inputs[1].shape  # type: ignore[union-attr]
    return n.outputs[0].shape[0] * rows * cols


register(KernelSpec("linear_i8", DType.I16, "linear_i8_rows.c",
                    lambda n, c: f"slmc_linear_i8_rows({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{n.inputs[1].shape[0]}, {n.inputs[1].shape[1]}, {c.attr('group')}, "  # type: ignore[union-attr]
                                 f"{c.attr('shift')}, {c.attr('out_bits')});",
                    macs=_macs_i8, where=_batched, batch="rows", shared_rows=True))


def has_shared_rows(op: str) -> bool:
    """Some kernel of `op` reads each weight once for several rows of a batched step."""
    return any(k.op == op and k.shared_rows for k in REGISTRY)
