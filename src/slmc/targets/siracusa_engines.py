"""The compute engines of `siracusa-like` (targets/siracusa.py): the 8-core RISC-V cluster and a
neural engine for matrix products of the N-EUREKA class (Siracusa's at-MRAM neural engine: 8-bit
activations, 2..8-bit weights processed bit-serially). As in siracusa.py, each figure says where it
comes from: "source" for a published or design-note figure, "ASSUMED" for an engineering guess
that nothing was fitted to, "derived" when it follows from figures marked elsewhere.
"""

from __future__ import annotations

from slmc.targets.system import ChipModel
from slmc.targets.engines import Cluster, Engines, Npu


def siracusa_engines(chip: ChipModel) -> Engines:
    cluster = Cluster(
        cores=chip.cores,                                       # source: DESIGN.md (8-core cluster)
        isa="rv32",                                             # source: DESIGN.md (RISC-V cluster)
        macs_per_cycle_per_core=chip.macs_per_cycle_per_core * chip.mac_efficiency_gemv,  # derived: 4 x 0.5 (siracusa.py)
        fork_join_cycles=100,                                   # ASSUMED: hardware event unit, tens of cycles to wake 7 cores + barrier
        l1_bytes_per_cycle=8 * 4.0,                             # ASSUMED: 8 cores x one 32-bit word (as siracusa.py's L1 level)
        pj_per_mac=chip.p_active_w / (chip.clock_hz * chip.cores * chip.macs_per_cycle_per_core
                                      * chip.mac_efficiency_gemv) * 1e12,  # derived: active power / MAC rate (~10 pJ)
    )
    npu = Npu(
        name="neureka-like",
        bit_macs_per_cycle=4096.0,      # ASSUMED: 512 8x8 MACs/cycle at 8-bit weights (same order as the few hundred
                                        # GOp/s reported for Siracusa's N-EUREKA, as recalled - verify)
        min_weight_bits=2,              # source: N-EUREKA takes 2..8-bit weights (bit-serial), as recalled - verify
        max_weight_bits=8,
        job_setup_cycles=200,           # ASSUMED: ~20 job registers written over the peripheral bus + start + done event
        dma_bytes_per_cycle=32.0,       # ASSUMED: a 256-bit streamer port on L1/L2
        pj_per_mac_8bit=0.3,            # ASSUMED: dedicated datapath, ~30x below a core's MAC
        pj_per_byte_moved=chip.e_l2_pj_per_byte,  # derived: an L2 access (siracusa.py, ASSUMED there)
        clock_hz=chip.clock_hz,         # ASSUMED: the cluster's clock
    )
    return Engines(cluster, npu)
