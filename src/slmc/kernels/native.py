"""Registry entries of the host-native kernels (target `host-native`, ISA feature "native"): the fp32 and q8
matrix products, attention and the q8 activation quantizer in the build machine's vector ISA (AVX-512, AVX2 + FMA,
AVX-512 VNNI / AVX-VNNI), chosen when the generated program is built, from the compiler's predefined macros
under -march=native (as onnxruntime's MLAS chooses at run time); a machine without AVX2 builds the portable
loops in the same files. Same operators and arguments as linear_f32.c, linear_swiglu_f32.c, linear_q8.c,
attention_f32.c and quantize_q8.c, so their numpy twins are those operators' own (reference/llm_ops.py). NOT
bit-identical to them (fused multiply-adds, reassociated sums, a polynomial exp), except the quantizer:
tests/kernels/test_native_kernels.py and tests/e2e/test_host_native.py compare with a tolerance.
Profiled with perf on stories260K and stories15M (valgrind cannot run AVX-512 code): the matrix products, then
attention (half of stories260K fp32's decode in scalar form) and the quantizer with its roundf calls (a fifth of
stories260K q8's)."""

from __future__ import annotations

import dataclasses

import numpy as np

from slmc.ir import DType, Node
from slmc.kernels.llm import _attention
from slmc.kernels.overlap import elementwise, in_place
from slmc.kernels.registry import KernelSpec, register
from slmc.kernels.tiles import MatmulTiles, Q8MatmulTiles

NATIVE = "native"


def _last(n: Node) -> int:
    return n.inputs[0].shape[-1]  # type: ignore[union-attr]


def _macs(n: Node) -> int:
    return _last(n) * n.outputs[0].shape[-1] * n.outputs[0].shape[0]


def _block_order(n: Node):
    """The step at which linear_swiglu_f32_native.c reads gate[s][i] and writes out[s][i]: blocks of four
    columns outermost, then token rows, then the columns of the block."""
    rows, m = n.outputs[0].shape[0], n.outputs[0].shape[-1]
    e = np.arange(rows * m)
    s, i = e // m, e % m
    return (i // 4) * rows * 4 + s * 4 + i % 4


register(KernelSpec("linear", DType.F32, "linear_f32_native.c",
                    lambda n, c: f"slmc_linear_f32_native({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.outputs[0].shape[-1]});",
                    isa=NATIVE, macs=_macs, tiling=MatmulTiles("slmc_linear_f32_native"), batch="rows"))
register(KernelSpec("linear_swiglu", DType.F32, "linear_swiglu_f32_native.c",
                    lambda n, c: f"slmc_linear_swiglu_f32_native({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
                                 f"{c.ref(3)}, {c.rows}, {_last(n)}, {n.outputs[0].shape[-1]});",
                    isa=NATIVE, macs=_macs, deps=("linear_f32_native.c",), batch="rows",
                    overlap=in_place(3, _block_order, "blocks of four output columns outermost: gate[s][i] is read "
                                     "just before out[s][i] is written")))
register(KernelSpec("linear_q8", DType.I8, "linear_q8_native.c",
                    lambda n, c: f"slmc_linear_q8_native({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
                                 f"{c.ref(4)}, {c.rows}, {_last(n)}, {n.outputs[0].shape[-1]}, {n.attrs['group']});",
                    isa=NATIVE, macs=_macs, where=lambda n: n.attrs.get("layout", "") == "",
                    tiling=Q8MatmulTiles("slmc_linear_q8_native"), batch="rows"))
# the scores, softmax and weighted sum in AVX2 + FMA vectors where head_dim is a multiple of 8 (else, and for
# soft-capped scores, it calls attention_f32.c's loop); scratch as attention_f32's: one head's scores
register(dataclasses.replace(_attention("attention_f32_native", DType.F32, lambda n: 4 * n.inputs[1].shape[0], "n_heads"),  # type: ignore[union-attr]
                             isa=NATIVE, deps=("attention_f32.c",)))
# bit-identical to quantize_q8.c (the same division and roundf's rounding), in vectors
register(KernelSpec("quantize_q8", DType.F32, "quantize_q8_native.c",
                    lambda n, c: f"slmc_quantize_q8_native({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['group']});", isa=NATIVE, overlap=elementwise(0), batch="rows"))
