"""`siracusa-like`: one chip of the distributed-inference study (arXiv 2412.04372), as data.

DESIGN.md "Target facts": a RISC-V cluster of 8 cores, L1 256 KB, L2 2 MiB, L3 off-chip (16 MB in
Deeploy's tutorial), DMA between levels, chips linked by MIPI-class serial links. Those four facts
are the only ones taken from the design notes. Every other number in `SIRACUSA_CHIP` and
`MIPI_LINK` is marked in its comment: "source" when it comes from a published document,
"ASSUMED" when it is an order-of-magnitude engineering guess that nothing here was fitted to.
No parameter was tuned to reproduce the paper's speedups.

For compiling, the target reuses the rv32imac recipe (cross gcc + QEMU virt, Hazard3 cycle table as
a stand-in for the cluster's RI5CY-class cores): L2 is the `sram` level and L3 the `flash` level,
limited to 4 MB by the emulator's memory map (the simulator uses the full 16 MB).

Importing this module registers the target in `slmc.targets.TARGETS`.
"""

from __future__ import annotations

import dataclasses

from slmc.targets import TARGETS, Level, MemoryLevel
from slmc.targets.builtin import RV32IMAC
from slmc.targets.system import ChipModel, LinkModel
from slmc.targets.siracusa_engines import siracusa_engines

KB, MB = 1024, 1024 * 1024

SIRACUSA_CHIP = ChipModel(
    name="siracusa-like",
    clock_hz=360e6,              # source: Siracusa cluster up to 360 MHz (Prasad et al., IEEE JSSC 2024) - as recalled, verify
    cores=8,                     # source: DESIGN.md
    macs_per_cycle_per_core=4,   # source: XpulpV2 8-bit SIMD dot product (4 int8 MACs per instruction)
    mac_efficiency_gemv=0.5,     # ASSUMED: decode (matrix-vector) keeps half the SIMD issue slots busy
    mac_efficiency_gemm=0.8,     # ASSUMED: prefill (matrix-matrix) reuses operands in L1
    cycles_per_elem_op=8.0,      # ASSUMED: softmax/exp, norms, RoPE, SiLU per element per core
    l1_bytes=256 * KB,           # source: DESIGN.md
    l2_bytes=2 * MB,             # source: DESIGN.md
    l3_bytes=16 * MB,            # source: DESIGN.md (Deeploy's tutorial)
    l2_reserved_bytes=128 * KB,  # ASSUMED: code, activations, DMA double buffers kept out of the weight budget
    l2_l1_bytes_per_cycle=8.0,   # ASSUMED: 64-bit cluster DMA port
    l3_bytes_per_s=300e6,        # ASSUMED: HyperBus-class x8 DDR interface, ~400 MB/s peak at 75 % efficiency
    e_l1_pj_per_byte=0.5,        # ASSUMED
    e_l2_pj_per_byte=2.0,        # ASSUMED: 16 nm SRAM, a few pJ per byte
    e_l3_pj_per_byte=150.0,      # ASSUMED: HyperRAM-class, ~30 mA at 1.8 V for ~330 MB/s -> ~160 pJ/B
    p_active_w=60e-3,            # ASSUMED: cluster + SoC running at 360 MHz, 0.8 V
    p_idle_w=6e-3,               # ASSUMED: clock-gated cluster waiting on a link (leakage + SoC domain)
    weight_bytes=1,              # int8 weights (the paper's setting)
    act_bytes=1,                 # int8 activations on the links
    kv_bytes=1,                  # int8 KV cache
)

MIPI_LINK = LinkModel(
    bytes_per_s=2.5e9 / 8,       # source: MIPI D-PHY v1.2, 2.5 Gbit/s per lane; one lane assumed
    latency_s=1e-6,              # ASSUMED: per message (DMA setup, packet header, handshake)
    pj_per_bit=10.0,             # ASSUMED: published D-PHY/C-PHY transceivers are a few to ~10 pJ/bit
)

SIRACUSA_LIKE = dataclasses.replace(
    RV32IMAC,
    name="siracusa-like",
    description="one chip of the multi-chip study: 8-core RISC-V cluster, L2 2 MiB, off-chip L3; "
                "compiled as rv32imac, simulated with `slmc simulate`",
    sram=MemoryLevel("sram", RV32IMAC.sram.origin, 2 * MB),
    flash=MemoryLevel("flash", RV32IMAC.flash.origin, 4 * MB, SIRACUSA_CHIP.l3_bytes_per_s),
    clock_hz=int(SIRACUSA_CHIP.clock_hz),
    engines=siracusa_engines(SIRACUSA_CHIP),  # 8-core cluster + NPU (targets/siracusa_engines.py)
    notes=("L3 is emulated as 4 MB flash (QEMU virt memory map); the simulator models 16 MB",
           "L1 is emulated as a static array in SRAM; DMA transfers are memcpy on the emulator"),
    # fastest first; L1 and L2 from DESIGN.md, bandwidths from SIRACUSA_CHIP (ASSUMED there), latencies ASSUMED
    levels=(Level("L1", 256 * KB, 8 * 4.0, 1),                                    # 8 cores x one word per cycle
            Level("L2", 2 * MB, SIRACUSA_CHIP.l2_l1_bytes_per_cycle, 10, dma=True, memory="sram"),
            Level("L3", SIRACUSA_CHIP.l3_bytes, SIRACUSA_CHIP.l3_bytes_per_s / SIRACUSA_CHIP.clock_hz, 100, dma=True)),
)

# Siracusa's at-MRAM neural engine (Prasad et al., "Siracusa: A 16 nm Heterogenous RISC-V SoC for Extended
# Reality with At-MRAM Neural Engine", IEEE JSSC 59(7), 2024, arXiv 2312.14750): its abstract (verified) says the
# N-EUREKA engine is tightly coupled to on-chip MRAM that holds the network's weights ("all weights on chip"),
# doubling weight-transfer bandwidth over an L3-based SoC. Weights stay there across tokens (non-volatile):
# nothing is streamed from off-chip. Siracusa's GVSoC configuration (siracusa-soc/pulp-sdk) maps that weight
# memory ("wmem", 4 MiB) into the cluster's address space, so the cluster's DMA reaches it as well as the engine.
# `siracusa-mram` is the siracusa-like chip with that level.
SIRACUSA_MRAM_CHIP = dataclasses.replace(
    SIRACUSA_CHIP,
    name="siracusa-mram",
    mram_bytes=4 * MB,           # source: siracusa-soc/pulp-sdk gap-configs siracusa.json "wmem" 0x10400000 size 0x400000, MRAM at offset 0 (tests/wmem_range_test); 4 MiB in Prasad et al. as recalled
    mram_bytes_per_cycle=32.0,   # ASSUMED: a 256-bit port at the cluster clock, as the NPU streamer (siracusa_engines.py); GVSoC's N-EUREKA reads wmem through its own port (wmem_out)
    e_mram_pj_per_byte=10.0,     # ASSUMED: embedded STT-MRAM read ~1 pJ/bit plus the interconnect
)

SIRACUSA_MRAM = dataclasses.replace(
    SIRACUSA_LIKE,
    name="siracusa-mram",
    description="siracusa-like with Siracusa's 4 MiB on-chip MRAM as the weights level (JSSC 2024); "
                "compiled as rv32imac, simulated with `slmc simulate -t siracusa-mram`",
    flash=MemoryLevel("flash", RV32IMAC.flash.origin, SIRACUSA_MRAM_CHIP.mram_bytes),
    notes=("MRAM is emulated as the 4 MB flash region (read in place by the emulator)",
           "L1 is emulated as a static array in SRAM; DMA transfers are memcpy on the emulator"),
    # weights live in the slowest level (plan/levels.py): here the on-chip MRAM instead of off-chip L3
    levels=(SIRACUSA_LIKE.levels[0], SIRACUSA_LIKE.levels[1],
            Level("MRAM", SIRACUSA_MRAM_CHIP.mram_bytes, SIRACUSA_MRAM_CHIP.mram_bytes_per_cycle, 20, dma=True,
                  memory="flash")),  # latency ASSUMED
)

SYSTEMS: dict[str, tuple[ChipModel, LinkModel]] = {SIRACUSA_LIKE.name: (SIRACUSA_CHIP, MIPI_LINK),
                                                   SIRACUSA_MRAM.name: (SIRACUSA_MRAM_CHIP, MIPI_LINK)}

TARGETS.setdefault(SIRACUSA_LIKE.name, SIRACUSA_LIKE)
TARGETS.setdefault(SIRACUSA_MRAM.name, SIRACUSA_MRAM)
