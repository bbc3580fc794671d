"""The NPU's weights (targets/engines.py Npu: a bit-serial matrix-product accelerator of the N-EUREKA
class): its bit-plane layout and the numpy twin of its arithmetic, shared by the weight pass
(passes/npu_weights.py), the numpy twin of linear_q8 (reference/llm_ops.py) and the accuracy study
(frontend/calibrate.py). Its cost model is sim/engine_cost.py; its kernel entry kernels/npu.py.

Arithmetic: activations are int8 (the q8 activation quantizer's output); weights are two's-complement
integers of `bits` bits (2..8), processed one bit-plane per pass:
    x . w = sum_{b < bits-1} 2^b (x . w_b)  -  2^(bits-1) (x . w_{bits-1})
where w_b in {0, 1} is bit b of w. Every pass is an exact integer dot product, so the int32 result
of each q8 group equals the cluster's, and with the same per-group float rescale the outputs are
bit-identical to linear_q8 at 8-bit weights. Lower weight precision changes the weights themselves
(`requantize`), not the arithmetic.
"""

from __future__ import annotations

import numpy as np

from slmc.quant.q8 import group_for


def bitplanes(w: np.ndarray, bits: int) -> np.ndarray:
    """Bit-planes of `bits`-bit two's-complement weights: shape (bits, *w.shape), values 0/1 (the
    NPU's weight layout: plane b of every weight of a row together)."""
    w = np.asarray(w).astype(np.int32)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if w.min(initial=0) < lo or w.max(initial=0) > hi:
        raise ValueError(f"weights outside the {bits}-bit range {lo}..{hi}")
    u = w & ((1 << bits) - 1)
    return np.stack([(u >> b) & 1 for b in range(bits)]).astype(np.uint8)


def bitserial_dot(x: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """x (..., k) int8 against bit-planes (bits, m, k): the int32 products (..., m), one pass per plane."""
    bits = planes.shape[0]
    x = np.asarray(x).astype(np.int64)
    acc = np.zeros(x.shape[:-1] + (planes.shape[1],), np.int64)
    for b in range(bits):
        part = x @ planes[b].astype(np.int64).T
        acc += (-(1 << b) if b == bits - 1 else (1 << b)) * part
    return acc.astype(np.int32)


def requantize(wq: np.ndarray, ws: np.ndarray, group: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """q8 weights (m, k) with per-group scales (m, k/group) re-quantized symmetrically to `bits` bits
    per group: the weights an NPU build at lower precision carries (int8 storage, scales in fp32)."""
    m, k = wq.shape
    w = wq.astype(np.float32).reshape(m, k // group, group) * ws.reshape(m, k // group, 1)
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(w).max(axis=-1, keepdims=True)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8)
    return q.reshape(m, k), scale.reshape(m, k // group)


def pack_npu(w: np.ndarray, bits: int) -> np.ndarray:
    """The NPU's weight layout: for each output row, its `bits` bit-planes one after the other, each
    plane ceil(k/8) bytes with weight j at bit j%8 of byte j//8 (the streamer fetches one plane of a
    row per pass). uint8 (m, bits, ceil(k/8))."""
    m, k = w.shape
    planes = bitplanes(w, bits)                                  # (bits, m, k)
    kb = -(-k // 8)
    padded = np.zeros((bits, m, kb * 8), np.uint8)
    padded[:, :, :k] = planes
    packed = np.packbits(padded.reshape(bits, m, kb, 8), axis=-1, bitorder="little").reshape(bits, m, kb)
    return np.ascontiguousarray(packed.transpose(1, 0, 2))


def unpack_npu(packed: np.ndarray, k: int) -> np.ndarray:
    """pack_npu's inverse: int8 (m, k) two's-complement weights of packed.shape[1] bits."""
    m, bits, kb = packed.shape
    planes = np.unpackbits(packed, axis=-1, bitorder="little")[:, :, :k].astype(np.int32)  # (m, bits, k)
    weights = (planes << np.arange(bits, dtype=np.int32)[None, :, None]).sum(axis=1)
    weights = np.where(weights >= 1 << (bits - 1), weights - (1 << bits), weights)
    return weights.astype(np.int8)


def fake_quant(w: np.ndarray, bits: int) -> np.ndarray:
    """w (m, k) float, rounded to `bits`-bit integers per group of its rows, and back."""
    m, k = w.shape
    g = group_for(k)
    x = w.astype(np.float32).reshape(m, k // g, g)
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(x).max(axis=-1, keepdims=True)
    s = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    return (np.clip(np.round(x / s), -qmax, qmax) * s).astype(np.float32).reshape(m, k)
