"""Registry entries of the float kernels that follow onnxruntime's CPU provider bit for bit (ir/numerics.py):
LayerNormalization, Erf and Gelu (exact form) of graphs read by the ONNX frontend, and MatMul in their quantized
graphs. Twins: reference/onnx_ort_ops.py."""

from __future__ import annotations

import math

from slmc.cquote import c_float
from slmc.ir import DType, Node
from slmc.ir.numerics import PACKED, is_ort, mlas_sgemm_path
from slmc.kernels.onnx import GraphCallContext, _matmul_macs, _mm_dims, _need, contiguous, merge_axes
from slmc.kernels.overlap import elementwise
from slmc.kernels.registry import KernelSpec, register


def _layer_norm(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    axis = n.attrs.get("axis", -1) % len(x.shape)
    outer, size = math.prod(x.shape[:axis]), math.prod(x.shape[axis:])
    for i in (1, 2):
        v = n.inputs[i] if i < len(n.inputs) else None
        _need(v is None or (v.type.numel == size and v.dtype == DType.F32), n,
              "a scale or bias broadcast over the normalised axes")
    if size == 0 or outer == 0:
        return "/* empty output: nothing to compute */"
    outs = [c.out(i) if i < len(n.outputs) else "NULL" for i in range(3)]
    return (f"slmc_layer_normalization_ort_f32({outs[0]}, {outs[1]}, {outs[2]}, {c.ref(0)}, {c.ref(1)}, "
            f"{c.ref(2)}, {outer}, {size}, {c_float(n.attrs.get('epsilon', 1e-5))});")


def _erf(n: Node, c: GraphCallContext) -> str:
    return f"slmc_erf_mlas_f32({c.out()}, {c.ref(0)}, {n.outputs[0].type.numel});"


def _gelu(n: Node, c: GraphCallContext) -> str:
    return f"slmc_gelu_mlas_f32({c.out()}, {c.ref(0)}, {n.outputs[0].type.numel});"


def _matmul(n: Node, c: GraphCallContext) -> str:
    m, k, nn, batch, sa, sb = _mm_dims(n)
    b = n.inputs[1]
    assert b is not None
    if len(b.shape) <= 2:  # onnxruntime's MatMulComputeHelper takes A's batch into m
        m, batch, sa, sb = m * math.prod(batch), [], [], []
    path, kb = mlas_sgemm_path(m, k, nn, bool(n.attrs.get(PACKED, 0)) and len(b.shape) == 2)
    so = contiguous(batch)
    sh, st = merge_axes(batch, [[s * m * nn for s in so], [s * m * k for s in sa], [s * k * nn for s in sb]])
    return (f"slmc_matmul_mlas_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {m}, {k}, {nn}, {path}, {kb}, {len(sh)}, "
            f"{c.ints(sh)}, {c.ints([x for s in st for x in s])});")


def _ort(n: Node) -> bool:
    return is_ort(n.attrs)


register(KernelSpec("LayerNormalization", DType.F32, "layer_normalization_ort_f32.c", _layer_norm,  # type: ignore[arg-type]
                    where=_ort, overlap=elementwise(0)))
register(KernelSpec("Erf", DType.F32, "erf_mlas_f32.c", _erf, where=_ort, overlap=elementwise(0)))  # type: ignore[arg-type]
register(KernelSpec("Gelu", DType.F32, "erf_mlas_f32.c", _gelu, where=_ort, overlap=elementwise(0)))  # type: ignore[arg-type]
register(KernelSpec("MatMul", DType.F32, "matmul_mlas_f32.c", _matmul, where=_ort, macs=_matmul_macs,  # type: ignore[arg-type]
                    deps=("nd.c",)))
