"""Cost of one matrix product (one job) on a target's compute engines (targets/engines.py): the NPU
and the core cluster. plan/engines.py compares them to place each operator; benchmarks read them too.

NPU: set-up + max(compute, data movement) where
    compute = ceil(n_tokens * k * m / macs_per_cycle(bits)) and
    data movement = (weight bytes at `bits` bits + activations in + outputs back) / DMA bytes per cycle
(the streamer overlaps transfer and compute). Energy = MACs x pJ/MAC x bits/8 + bytes moved x pJ/B.
Every parameter comes from the target's Npu record, each marked there as source or ASSUMED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
