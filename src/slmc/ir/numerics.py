"""Whose float arithmetic a node follows where the result may differ in the last bit.

Graphs read by the ONNX frontend run LayerNormalization, Erf and Gelu as onnxruntime's CPU provider computes them
(MLAS's kernels, kernels/onnx_ort.py; Gelu in its exact form only), so that a QuantizeLinear after them rounds as onnxruntime's does: the
float islands of a QDQ or QOperator model (issue 20). The frontend marks such nodes with this attribute; the
decoder kernels of llama2.c and HuggingFace models are not affected.

A float MatMul is marked only in a quantized graph (one with a QuantizeLinear): there its sum order decides a
requantized output's rounding, while a float network keeps the tiled, register-blocked matmul_f32.c. MLAS sums
in one of three orders (sgemm.cpp, x86-64 kernels): `mlas_sgemm_path` says which, from the shape and whether
onnxruntime packs B at load time (B a constant it can fold, not one behind a DequantizeLinear, which its
QDQ-aware constant folding keeps: the frontend stores that as PACKED). Not reproduced: a MatMul whose B is a
DequantizeLinear of constant codes outside a QDQ group, which onnxruntime 1.32 rewrites into MatMulNBits, and
ONNX Gemm (onnxruntime preloads the bias and accumulates onto it)."""

from __future__ import annotations

from typing import Any

KEY, ORT = "numerics", "onnxruntime"
PACKED = "ort_packed_b"
ORT_OPS = frozenset({"LayerNormalization", "Erf", "Gelu", "MatMul"})
QUANTIZED_ONLY = frozenset({"MatMul"})


def mark(op: str, attrs: dict[str, Any], quantized: bool = True) -> dict[str, Any]:
    """attrs, with onnxruntime's numerics asked for where `op` has an onnxruntime-exact kernel."""
    if op not in ORT_OPS or (op == "Gelu" and attrs.get("approximate", "none") != "none"):
        return attrs
    if op in QUANTIZED_ONLY and not quantized:
        return attrs
    return dict(attrs, **{KEY: ORT})


def is_ort(attrs: dict[str, Any]) -> bool:
    return attrs.get(KEY) == ORT


# MLAS's sgemm.cpp strides (mlasi.h): MLAS_SGEMM_STRIDEN/K 128, MLAS_SGEMM_PACKED_STRIDEK 256
M1, N1, BLOCKED = 1, 2, 0


def mlas_sgemm_path(m: int, k: int, n: int, packed_b: bool) -> tuple[int, int]:
    """(path, K block) of onnxruntime 1.32's float MatMul on x86-64 for one (m x k) @ (k x n) product, run on
    one thread (MlasGemmBatch splits a product over threads above 65,536 multiply-adds; a split by N can
    change the K block where k > 128, a split by M the N1 path's row groups):
    - M1: MlasSgemmKernelM1Avx (m == 1, B not packed): products rounded, summed in groups of 4 along k;
    - N1: MlasSgemmKernelM1TransposeBAvx on (B^T, A) (n == 1, B not packed): 8 lanes along k, reduced by
      the row's place in groups of 4, 2, 1;
    - BLOCKED: the AVX512F/FMA3 kernel: one fused multiply-add chain per output and K block, the blocks added."""
    if k == 0:
        return BLOCKED, 1
    if not packed_b and m == 1:
        return M1, k
    if not packed_b and n == 1:
        return N1, k
    if packed_b:
        return BLOCKED, 256
    stride_n, stride_k = 128, 128
    if n >= k:
        while stride_k // 2 >= k:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    return BLOCKED, max(stride_k, 1)
