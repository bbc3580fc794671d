"""A target's compute engines, as data (DESIGN.md rule 7): a cluster of cores and an optional NPU,
each with the cost parameters the engine-assignment pass (plan/engines.py) and the reports read.

Every number is marked in the target module that fills these in: "source" when it is a published
figure, "ASSUMED" when it is an engineering guess nothing was fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cluster:
    """N identical cores sharing the L1 (or SRAM); kernels split their work over them (slmc_parallel_for)."""

    cores: int
    isa: str                          # the cores' ISA ("rv32")
    macs_per_cycle_per_core: float    # int8 MACs per cycle per core on a matrix product
    fork_join_cycles: int             # one slmc_parallel_for: wake the cores, wait for the last
    l1_bytes_per_cycle: float         # what all cores together load from L1 per cycle
    pj_per_mac: float                 # energy of one MAC on a core, operand loads included
    core_stack_bytes: int = 0         # each core but the first: its own stack, counted in the SRAM fit
    min_split_elements: int = 0       # RMSNorm and RoPE split only from this many elements a row (codegen/parallel.py)


@dataclass(frozen=True)
class Npu:
    """A bit-serial matrix-product engine: 8-bit activations, weights of 2..8 bits. One bit-plane
    of the weights is processed per pass, so a job's compute time grows with the weight bits."""

    name: str
    bit_macs_per_cycle: float         # MACs x weight bits per cycle: 8-bit weights get 1/8 of it
    min_weight_bits: int
    max_weight_bits: int
    job_setup_cycles: int             # program the job registers, start, wait for the done event
    dma_bytes_per_cycle: float        # L2 -> NPU weight/activation port
    pj_per_mac_8bit: float            # energy per 8x8 MAC (scales with the weight bits)
    pj_per_byte_moved: float          # L2 -> NPU transfer
    clock_hz: float

    def macs_per_cycle(self, weight_bits: int) -> float:
        return self.bit_macs_per_cycle / weight_bits


@dataclass(frozen=True)
class Engines:
    cluster: Cluster
    npu: Npu | None = None


def engine_rows(targets) -> list[tuple[str, str, str]]:
    """(target, engine, parameters) for `slmc targets`."""
    rows = []
    for t in targets:
        if t.engines is None:
            continue
        c, n = t.engines.cluster, t.engines.npu
        rows.append((t.name, f"cluster: {c.cores} x {c.isa}",
                     f"{c.macs_per_cycle_per_core:g} MAC/cycle/core, fork/join {c.fork_join_cycles} cycles, "
                     f"{c.pj_per_mac:.1f} pJ/MAC"))
        if n is not None:
            rows.append(("", f"NPU: {n.name}",
                         f"{n.min_weight_bits}..{n.max_weight_bits}-bit weights (bit-serial), "
                         f"{n.macs_per_cycle(8):g} MAC/cycle at 8 bits, set-up {n.job_setup_cycles} cycles, "
                         f"{n.dma_bytes_per_cycle:g} B/cycle, {n.pj_per_mac_8bit:g} pJ/MAC"))
    return rows
