"""A chip and the link between chips of a multi-chip system, as data (DESIGN.md rule 7): what
sim/system.py simulates and targets/siracusa.py fills in, each figure marked there as source or ASSUMED."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChipModel:
    name: str
    clock_hz: float
    cores: int
    macs_per_cycle_per_core: float
    mac_efficiency_gemv: float
    mac_efficiency_gemm: float
    cycles_per_elem_op: float
    l1_bytes: int
    l2_bytes: int
    l3_bytes: int
    l2_reserved_bytes: int
    l2_l1_bytes_per_cycle: float
    l3_bytes_per_s: float
    e_l1_pj_per_byte: float
    e_l2_pj_per_byte: float
    e_l3_pj_per_byte: float
    p_active_w: float
    p_idle_w: float
    weight_bytes: int = 1
    act_bytes: int = 1
    kv_bytes: int = 1
    # on-chip non-volatile weight memory (Siracusa's at-MRAM neural engine); 0 bytes: the chip has none
    mram_bytes: int = 0
    mram_bytes_per_cycle: float = 0.0   # read port into L1 (cluster DMA / NPU streamer)
    e_mram_pj_per_byte: float = 0.0

    @property
    def l2_budget(self) -> int:
        return self.l2_bytes - self.l2_reserved_bytes


@dataclass(frozen=True)
class LinkModel:
    bytes_per_s: float
    latency_s: float
    pj_per_bit: float

    def msg_time(self, nbytes: float) -> float:
        return self.latency_s + nbytes / self.bytes_per_s
