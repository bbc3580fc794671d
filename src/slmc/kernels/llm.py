"""Registry entries of the language-model kernels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from slmc.cquote import c_float
from slmc.ir import DType, Node
from slmc.kernels.overlap import by_chunks, consumed_first, elementwise, in_place
from slmc.kernels.registry import REGISTRY, CallContext, KernelSpec, register
from slmc.kernels.tiles import HeadTiles, MatmulTiles, Q8MatmulTiles, RowTiles

F32, I8, U16 = DType.F32, DType.I8, DType.U16


def _last(n: Node, i: int = 0) -> int:
    return n.inputs[i].shape[-1]  # type: ignore[union-attr]


def _linear_macs(n: Node) -> int:
    return _last(n) * n.outputs[0].shape[-1] * n.outputs[0].shape[0]


def _rows(n: Node) -> int:
    return n.inputs[0].shape[0]  # type: ignore[union-attr]


def _numel_per_row(n: Node) -> int:
    return n.outputs[0].type.numel // n.outputs[0].shape[0]


def _column_order(n: Node):
    """The step at which linear_swiglu_f32.c reads gate[s][i] and writes out[s][i]: columns outermost."""
    rows, m = n.outputs[0].shape[0], n.outputs[0].shape[-1]
    e = np.arange(rows * m)
    return (e % m) * rows + e // m


def _rope_order(n: Node):
    """The step at which rope_f32.c reads and writes each element: one step per rotated pair, then one per
    feature past rot_dim (partial rotary: copied through)."""
    feats, hd, e = _last(n), n.attrs["head_dim"], np.arange(n.outputs[0].type.numel)
    rot = n.attrs.get("rot_dim", hd)
    j, half = e % feats, rot // 2
    i = j % hd
    pair = np.where(i < rot, i // 2 if n.attrs["interleaved"] else i % max(half, 1), half + i - rot)
    return ((e // feats) * (feats // hd) + j // hd) * (half + hd - rot) + pair


def _groups(n: Node, rows: str) -> str:
    """rmsnorm's rows and width: qk-norm (`head_dim`) norms each head of each row on its own."""
    hd = n.attrs.get("head_dim", 0)
    return f"{rows} * {_last(n) // hd}, {hd}" if hd else f"{rows}, {_last(n)}"


register(KernelSpec("embedding", F32, "embedding_f32.c",
                    lambda n, c: f"slmc_embedding_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, {_last(n)});", batch="rows"))
register(KernelSpec("embedding_q8", I8, "embedding_q8.c",
                    lambda n, c: f"slmc_embedding_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['group']});", where=lambda n: "layout" not in n.attrs, batch="rows"))
register(KernelSpec("embedding_q8", I8, "embedding_q8_rows4.c",  # a tied table in linear_q8_dsp.c's order
                    lambda n, c: f"slmc_embedding_q8_rows4({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['group']}, {_rows(n)});",
                    where=lambda n: n.attrs.get("layout") == "rows4", batch="rows"))
register(KernelSpec("pos_embedding", F32, "pos_embedding_f32.c",
                    lambda n, c: f"slmc_pos_embedding_f32({c.out()}, {c.ref(0)}, {c.pos}, {c.rows}, {_last(n)});"))
register(KernelSpec("rmsnorm", F32, "rmsnorm_f32.c",
                    lambda n, c: f"slmc_rmsnorm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {_groups(n, c.rows)}, "
                                 f"{c_float(n.attrs['eps'])});", tiling=RowTiles((0,), (1,)), overlap=elementwise(0), batch="rows"))
register(KernelSpec("layernorm", F32, "layernorm_f32.c",
                    lambda n, c: f"slmc_layernorm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {c_float(n.attrs['eps'])});", tiling=RowTiles((0,), (1, 2)), overlap=elementwise(0), batch="rows"))
register(KernelSpec("linear", F32, "linear_f32.c",
                    lambda n, c: f"slmc_linear_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.outputs[0].shape[-1]});",
                    macs=_linear_macs, tiling=MatmulTiles("slmc_linear_f32"), batch="rows"))
# the up projection with the SwiGLU gate in its epilogue (passes/fuse_gate.py); inputs [x, w, b or None, gate]
register(KernelSpec("linear_swiglu", F32, "linear_swiglu_f32.c",
                    lambda n, c: f"slmc_linear_swiglu_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
                                 f"{c.rows}, {_last(n)}, {n.outputs[0].shape[-1]});",
                    macs=_linear_macs, overlap=in_place(3, _column_order, "output columns outermost: "
                                                        "gate[s][i] is read just before out[s][i] is written"), batch="rows"))
register(KernelSpec("quantize_q8", F32, "quantize_q8.c",
                    lambda n, c: f"slmc_quantize_q8({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['group']});", overlap=elementwise(0), batch="rows"))  # x -> xq; the scales xs: none
register(KernelSpec("quantize_q8", F32, "quantize_q8_sse2.c",  # the same bits on an x86-64 host, in SSE2 without roundf
                    lambda n, c: f"slmc_quantize_q8_sse2({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['group']});", isa="sse2", deps=("quantize_q8.c",), overlap=elementwise(0),
                    batch="rows"))
register(KernelSpec("quantize_q8", F32, "quantize_q8_dsp.c",  # the same bits on the Cortex-M33, about half the instructions
                    lambda n, c: f"slmc_quantize_q8_dsp({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['group']});", isa="dsp", overlap=elementwise(0), batch="rows"))
register(KernelSpec("linear_q8", I8, "linear_q8.c",
                    lambda n, c: f"slmc_linear_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
                                 f"{c.ref(4)}, {c.rows}, {_last(n)}, {n.outputs[0].shape[-1]}, {n.attrs['group']});",
                    macs=_linear_macs, where=lambda n: "layout" not in n.attrs, tiling=Q8MatmulTiles("slmc_linear_q8"), batch="rows"))


def _linear_q8_tuned(isa: str, suffix: str, layout: str = "") -> KernelSpec:
    """An ISA-tuned linear_q8: the portable kernel's arguments plus scratch where it widens the
    activations to int16 once per call (2 * n * k bytes). `layout`: the weight order it reads (the
    graph builder writes the constants in that order, see q8_layout)."""
    return KernelSpec("linear_q8", I8, f"linear_q8_{suffix}.c",
                      lambda n, c: f"slmc_linear_q8_{suffix}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
                                   f"{c.ref(3)}, {c.ref(4)}, {c.scratch()}, {c.rows}, {_last(n)}, "
                                   f"{n.outputs[0].shape[-1]}, {n.attrs['group']});",
                      isa=isa, scratch=lambda n: 2 * n.inputs[0].type.numel,  # type: ignore[union-attr]
                      macs=_linear_macs, where=lambda n: n.attrs.get("layout", "") == layout,
                      tiling=Q8MatmulTiles(f"slmc_linear_q8_{suffix}", scratch=True, w_multiple=4 if layout == "rows4" else 1),
                      overlap=_widened_first if suffix in ("dsp", "rv32") else lambda n: (), batch="rows")


def _widened_first(n: Node):
    """linear_q8_dsp.c and linear_q8_rv32.c widen all of xq into their scratch before the first output, then
    walk the token rows: xs row s is read while output row s is written (the portable and SSE2 kernels walk
    the output columns outermost, rereading every row: no overlap)."""
    rows = _rows(n)
    return (consumed_first(0, "xq widened into scratch before any output")(n)
            + by_chunks(1, lambda n: rows, "token rows; row s of xs read while output row s is written",
                        reread=True)(n))


register(_linear_q8_tuned("sse2", "sse2"))
register(_linear_q8_tuned("dsp", "dsp", "rows4"))  # weights word-interleaved in blocks of 4 rows (quant.q8.pack_rows4)
register(_linear_q8_tuned("rv32im", "rv32"))  # plain RV32IM (no Zb* -march), so Unicorn can still count it


def q8_layout(features: frozenset[str], batch: int = 0) -> str:
    """The linear_q8 weight order for a target with these ISA features: that of its registered ISA kernel
    (a batched build, --batch B for any B, on an x86-64 host: linear_q8_rows16.c's, kernels/batch_linear.py)."""
    if batch >= 1 and any(k.c_file == "linear_q8_rows16.c" and k.isa in features for k in REGISTRY):
        return "rows16"
    return "rows4" if "dsp" in features and any(k.c_file == "linear_q8_dsp.c" for k in REGISTRY) else ""


register(KernelSpec("rope", F32, "rope_f32.c",
                    lambda n, c: f"slmc_rope_f32({c.out()}, {c.ref(0)}, {c.ref(2)}, {c.ref(3)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['head_dim']}, {n.attrs.get('rot_dim', n.attrs['head_dim'])}, "
                                 f"{c.pos}, {n.attrs['interleaved']});",
                    overlap=in_place(0, _rope_order, "pairs (i, i + head_dim/2) or (2i, 2i + 1) of each head")))
register(KernelSpec("rope", F32, "rope_f32_dsp.c",  # the same bits on the Cortex-M33: interleaved heads of 8 whole
                    lambda n, c: f"slmc_rope_f32_dsp({c.out()}, {c.ref(0)}, {c.ref(2)}, {c.ref(3)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['head_dim']}, {n.attrs.get('rot_dim', n.attrs['head_dim'])}, "
                                 f"{c.pos}, {n.attrs['interleaved']});", isa="dsp",
                    overlap=in_place(0, _rope_order, "pairs (i, i + head_dim/2) or (2i, 2i + 1) of each head")))
register(KernelSpec("kv_write", F32, "kv_write_f32.c",
                    lambda n, c: f"slmc_kv_write_f32({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, {_last(n)});"))
# --kv-cache fp16: the cache state holds binary16 bit patterns (u16); storage only, attention reads floats back
register(KernelSpec("kv_write", U16, "kv_write_f16.c",
                    lambda n, c: f"slmc_kv_write_f16({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, {_last(n)});"))


def _attention_macs(n: Node) -> int:
    # per token at position p: n_heads * head_dim * (p + 1) for scores and as many for the weighted sum;
    # counted at position 0 here, the report adds the per-position term
    return 2 * n.attrs["n_heads"] * n.attrs["head_dim"] * n.outputs[0].shape[0]


def attention_extras(n: Node) -> str:
    """The trailing arguments of every attention call: the window (0: none) and the soft-cap (0: none)."""
    return f", {int(n.attrs.get('window', 0))}, {c_float(n.attrs.get('softcap', 0.0))}"


def _attention(fn: str, kv: DType, scratch, per: str) -> KernelSpec:
    return KernelSpec("attention", F32, f"{fn}.c",
                      lambda n, c: f"slmc_{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.scratch()}, "
                                   f"{c.rows}, {n.attrs['n_heads']}, {n.attrs['n_kv_heads']}, {n.attrs['head_dim']}, "
                                   f"{c.pos}{attention_extras(n)});",
                      scratch=scratch, macs=_attention_macs, tiling=HeadTiles(f"slmc_{fn}"),
                      overlap=by_chunks(0, lambda n: _rows(n) * n.attrs[per], f"token rows, then {per}: a query "
                                        "part is read whole before its output part is written"),
                      where=lambda n: n.inputs[1].dtype == kv)  # type: ignore[union-attr]


# f32: one head's scores (seq_len floats); f16kv: the scores of the heads sharing a KV head, and one
# converted cache row (each row is converted once for all of them)
register(_attention("attention_f32", F32, lambda n: 4 * n.inputs[1].shape[0], "n_heads"))  # type: ignore[union-attr]
# the same bits on an x86-64 host: scores and normalisation with lanes over positions, the weighted sum over head
# dimensions, libm's expf per score (AVX-512 / AVX2 / SSE2 chosen at run time; attention_f32.c for soft-capping)
register(replace(_attention("attention_f32_x86", F32, lambda n: 4 * n.inputs[1].shape[0], "n_heads"),  # type: ignore[union-attr]
                 isa="sse2", deps=("attention_f32.c",)))
register(_attention("attention_f16kv", U16, lambda n: 4 * (n.attrs["n_heads"] // n.attrs["n_kv_heads"]
                                                              * n.inputs[1].shape[0] + n.attrs["head_dim"]), "n_kv_heads"))
# --kv-cache int8 (reference/kv_int8.py): records of head_dim int8 values and a binary16 scale per position and
# KV head; attention with integer q.k and p.v (attention_i8kv_dsp.c: SXTB16/SMLAD on the Cortex-M33, same bits)
def _i8kv_heads(n: Node) -> tuple[int, int]:
    """(n_kv_heads, head_dim) of a kv_write on an int8 cache: the record adds a 2-byte scale per KV head."""
    kv = (n.inputs[0].shape[-1] - _last(n, 1)) // 2  # type: ignore[union-attr]
    return kv, _last(n, 1) // kv


def _i8kv_scratch(n: Node, isa: str = "any") -> int:
    kv_mul, hd, seq = n.attrs["n_heads"] // n.attrs["n_kv_heads"], n.attrs["head_dim"], n.inputs[1].shape[0]  # type: ignore[union-attr]
    # attention_i8kv_dsp_pair.c (head_dim 8, two query heads per KV head, no soft-cap) writes its int16 weights over
    # the scores; the DSP kernel's other paths keep them after attention_i8kv.c's scratch (2 heads' worth)
    pair = isa == "dsp" and hd == 8 and kv_mul == 2 and not n.attrs.get("softcap", 0.0)
    return 4 * (kv_mul * seq + 2 * kv_mul + hd) + (kv_mul * hd + 3) // 4 * 4 + (0 if pair else 4 * (seq + 2))


register(KernelSpec("kv_write", I8, "kv_write_i8.c",
                    lambda n, c: f"slmc_kv_write_i8({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, "
                                 f"{_i8kv_heads(n)[0]}, {_i8kv_heads(n)[1]});"))
register(KernelSpec("kv_write", I8, "kv_write_i8_dsp.c",  # the same records on the Cortex-M33, head_dim 8 in asm
                    lambda n, c: f"slmc_kv_write_i8_dsp({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, "
                                 f"{_i8kv_heads(n)[0]}, {_i8kv_heads(n)[1]});", isa="dsp"))
for _isa, _fn in (("any", "attention_i8kv"), ("dsp", "attention_i8kv_dsp")):
    register(KernelSpec("attention", F32, f"{_fn}.c",
                        lambda n, c, fn=_fn: f"slmc_{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.scratch()}, "
                                             f"{c.rows}, {n.attrs['n_heads']}, {n.attrs['n_kv_heads']}, "
                                             f"{n.attrs['head_dim']}, {c.pos}{attention_extras(n)});",
                        isa=_isa, scratch=lambda n, isa=_isa: _i8kv_scratch(n, isa), macs=_attention_macs,
                        deps=("kv_write_i8.c",) + (("attention_i8kv_dsp_pair.c",) if _isa == "dsp" else ()),
                        overlap=by_chunks(0, lambda n: _rows(n) * n.attrs["n_kv_heads"], "token rows, then n_kv_heads: "
                                          "a query part is read whole before its output part is written"),
                        where=lambda n, isa=_isa: n.inputs[1].dtype == I8 and (isa == "any" or n.attrs["head_dim"] % 4 == 0 and n.attrs["head_dim"] <= 256)))  # type: ignore[union-attr]
register(KernelSpec("add", F32, "add_f32.c",
                    lambda n, c: f"slmc_add_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_numel_per_row(n)});",
                    tiling=RowTiles((0, 1)), overlap=elementwise(0, 1), batch="rows"))
register(KernelSpec("swiglu", F32, "swiglu_f32.c",
                    lambda n, c: f"slmc_swiglu_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_numel_per_row(n)});",
                    tiling=RowTiles((0, 1)), overlap=elementwise(0, 1), batch="rows"))
register(KernelSpec("swiglu", F32, "swiglu_f32_dsp.c",  # the same bits on the Cortex-M33: picolibc's expf inlined
                    lambda n, c: f"slmc_swiglu_f32_dsp({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_numel_per_row(n)});",
                    isa="dsp", tiling=RowTiles((0, 1)), overlap=elementwise(0, 1), batch="rows"))
register(KernelSpec("gelu", F32, "gelu_f32.c",
                    lambda n, c: f"slmc_gelu_f32({c.out()}, {c.ref(0)}, {c.rows} * {_numel_per_row(n)}, "
                                 f"{n.attrs.get('approximate', 0)});", tiling=RowTiles((0,)), overlap=elementwise(0), batch="rows"))
