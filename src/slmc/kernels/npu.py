"""The NPU engine of a target (targets/engines.py Npu): a bit-serial matrix-product accelerator of
the N-EUREKA class, as a cost model and a numpy twin of its arithmetic.

Arithmetic (the functional model): activations are int8 (the q8 activation quantizer's output);
weights are two's-complement integers of `bits` bits (2..8), processed one bit-plane per pass:
    x . w = sum_{b < bits-1} 2^b (x . w_b)  -  2^(bits-1) (x . w_{bits-1})
where w_b in {0, 1} is bit b of w. Every pass is an exact integer dot product, so the int32 result
of each q8 group equals the cluster's, and with the same per-group float rescale the outputs are
bit-identical to linear_q8 at 8-bit weights. Lower weight precision changes the weights themselves
(`requantize`), not the arithmetic.

Cost (per job = one linear operator call): set-up + max(compute, data movement) where
    compute = ceil(n_tokens * k * m / macs_per_cycle(bits)) and
    data movement = (weight bytes at `bits` bits + activations in + outputs back) / DMA bytes per cycle
(the streamer overlaps transfer and compute). Energy = MACs x pJ/MAC x bits/8 + bytes moved x pJ/B.
Every parameter comes from the target's Npu record, each marked there as source or ASSUMED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from slmc.targets.engines import Cluster, Npu


@dataclass(frozen=True)
class JobCost:
    engine: str
    cycles: float
    energy_pj: float
    compute_cycles: float
    transfer_cycles: float
    setup_cycles: float


def npu_linear_cost(npu: Npu, n: int, k: int, m: int, bits: int = 8, out_bytes: int = 4) -> JobCost:
    if not npu.min_weight_bits <= bits <= npu.max_weight_bits:
        raise ValueError(f"{npu.name} takes {npu.min_weight_bits}..{npu.max_weight_bits}-bit weights, not {bits}")
    macs = n * k * m
    compute = math.ceil(macs / npu.macs_per_cycle(bits))
    moved = math.ceil(k * m * bits / 8) + n * k + n * m * out_bytes
    transfer = moved / npu.dma_bytes_per_cycle
    cycles = npu.job_setup_cycles + max(compute, transfer)
    energy = macs * npu.pj_per_mac_8bit * bits / 8 + moved * npu.pj_per_byte_moved
    return JobCost("npu", cycles, energy, compute, transfer, npu.job_setup_cycles)


def cluster_linear_cost(cl: Cluster, n: int, k: int, m: int, cores: int | None = None) -> JobCost:
    """The same product on the cluster: MACs over cores x MACs/cycle, weights read from L1/L2 at the
    cluster's port, plus one fork/join."""
    cores = cores or cl.cores
    macs = n * k * m
    compute = macs / (cores * cl.macs_per_cycle_per_core)
    transfer = (k * m + n * k) / cl.l1_bytes_per_cycle
    cycles = cl.fork_join_cycles + max(compute, transfer)
    return JobCost("cluster", cycles, macs * cl.pj_per_mac, compute, transfer, cl.fork_join_cycles)


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


def _register() -> None:
    from slmc.ir import DType
    from slmc.kernels.registry import KernelSpec, register

    register(KernelSpec(
        "linear_q8", DType.I8, "npu_linear.c",
        lambda n, c: (f"slmc_npu_linear_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.ref(4)}, "
                      f"{c.rows}, {n.inputs[0].shape[-1]}, {n.outputs[0].shape[-1]}, {n.attrs['group']}, "
                      f"{n.attrs['npu_bits']});"),
        macs=lambda n: n.inputs[0].shape[-1] * n.outputs[0].shape[-1] * n.outputs[0].shape[0],
        where=lambda n: n.attrs.get("layout") == "npu"))  # weights in the NPU's layout (passes/npu_weights.py)


_register()
