"""How far a build on an MCU core is from what the ISA and the memories allow (issue 21), and llama2.c's
run.c estimated with the RP2350's PSRAM instead of flash (pico_llama's setting).

Roofline of one decode token, from the model's shape and where its weights live (nothing re-measured):

    MAC term     = MACs x cycles per MAC at the ISA's best sequence (BEST_MAC): the matrix products'
                   MACs + attention's 2 x layers x heads x head_dim x (position + 1), averaged over
                   the positions run; q8 and int8 at the integer rate (attention included: an integer
                   attention is within reach), fp32 at the float rate (none on a core without an FPU);
    memory term  = weights read once from flash at the flash bandwidth + weights and KV cache read once
                   from SRAM at one 32-bit word per cycle (ASSUMED);
    roofline     = MAC term + memory term, as the section-7 estimate adds a flash term read in place; for a
                   build that DMA-stages its flash reads (the estimate overlaps them: report.json's `staging`),
                   max(MAC term + SRAM term, flash term), the same overlap allowed to the bound.

A build's distance = its ESTIMATED cycles per token (its flash waits included) / the roofline's; and its exact
instructions / the MAC term's instructions.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmc.frontend.decoder import DecoderConfig

CLOCK_HZ = 150e6
SRAM_BYTES_PER_CYCLE = 4.0   # ASSUMED: one 32-bit word per cycle from the striped SRAM banks


@dataclass(frozen=True)
class BestMac:
    instructions_per_mac: float
    cycles_per_mac: float
    how: str


# (ISA, integer?) -> the ISA's best multiply-accumulate, costed with targets/cycles.py's tables
BEST_MAC = {
    ("cortex-m33", True): BestMac(0.5, 0.5, "SMLAD: 2 int8 MACs per instruction, 1 cycle (operands packed by SXTB16 "
                                            "off the MAC path)"),
    ("cortex-m33", False): BestMac(1.0, 2.0, "VFMA.F32: 1 MAC per instruction (3 cycles in the table); cycles: "
                                             "VMUL.F32 + VADD.F32, 1 cycle each"),
    ("rv32imac", True): BestMac(2.0, 2.0, "MUL + ADD, 1 cycle each (Hazard3)"),
}


def matmul_macs(cfg: DecoderConfig) -> int:
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    ffn = (3 if cfg.gated else 2) * cfg.dim * cfg.hidden_dim
    return cfg.n_layers * (cfg.dim * (2 * q + 2 * kv) + ffn) + cfg.vocab_size * cfg.dim


def attention_macs(cfg: DecoderConfig, positions: int) -> float:
    """Average over positions 0..positions-1 of 2 x layers x heads x head_dim x (position + 1)."""
    return 2 * cfg.n_layers * cfg.n_heads * cfg.head_dim * (positions + 1) / 2


def kv_bytes_read(cfg: DecoderConfig, positions: int, elem_bytes: int) -> float:
    return 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * (positions + 1) / 2 * elem_bytes


def _flash_wait(row: dict) -> float:
    """Seconds a token waits for flash: the whole read after the compute, or a DMA-staged build's waits."""
    wait = row.get("estimated_flash_stall_seconds_per_token")
    return (row.get("estimated_flash_seconds_per_token") or 0.0) if wait is None else wait


def roofline(row: dict, cfg: DecoderConfig, flash_bytes_per_s: float, positions: int | None = None) -> dict:
    """One section-7 row (benchmarks/results.json "mcu" rows) against its roofline."""
    positions = positions or row["positions"]
    integer = row["numerics"] != "fp32"
    best = BEST_MAC.get((row["isa"], integer))
    macs = matmul_macs(cfg) + attention_macs(cfg, positions)
    flash_s = row.get("estimated_flash_seconds_per_token") or 0.0
    flash_bytes = flash_s * flash_bytes_per_s
    kv_elem = 2 if row["program"] == "slmc" else 4       # slmc's fp16 KV cache on the RP2350; llama2.c fp32
    read = row.get("weights_read_per_step")             # what a token reads (tables one row), where a row says
    weights = read["flash"] + read["sram"] if read else row["weights_bytes"]
    sram = (weights - flash_bytes) + kv_bytes_read(cfg, positions, kv_elem)
    mem_cycles = sram / SRAM_BYTES_PER_CYCLE + flash_s * CLOCK_HZ
    mac_cycles = macs * best.cycles_per_mac if best else None
    wait_s = _flash_wait(row)
    roof = (max((mac_cycles or 0.0) + sram / SRAM_BYTES_PER_CYCLE, flash_s * CLOCK_HZ) if wait_s < flash_s
            else (mac_cycles or 0.0) + mem_cycles)
    build = (row.get("estimated_cycles_per_token") or 0.0) + wait_s * CLOCK_HZ
    return dict(program=row["program"], numerics=row["numerics"], isa=row["isa"], target=row["target"],
                weights=row.get("weights", ""), macs_per_token=macs, best_mac=best.how if best else "no FPU: no float MAC",
                mac_instructions=macs * best.instructions_per_mac if best else None, mac_cycles=mac_cycles,
                memory_cycles=mem_cycles, flash_cycles=flash_s * CLOCK_HZ, roofline_cycles=roof,
                roofline_tokens_per_s=CLOCK_HZ / roof, build_cycles=build,
                cycles_over_roofline=build / roof if best else None,
                instructions_over_mac_term=row["instructions_per_token"] / (macs * best.instructions_per_mac)
                if best else None)


# RP2350 PSRAM (pico_llama's fp32 weights): an APS6404L-class QSPI PSRAM on the QMI's second chip select.
PSRAM_MAX_SCK_HZ = 109e6      # source: APS6404L limit at 3.3 V, RP2350_PSRAM_MAX_SCK_HZ in arduino-pico's board
#                               headers (133 MHz at 3.0 V)
PSRAM_SCK_HZ = CLOCK_HZ / 2   # derived: QMI clock divider ceil(150 / 109) = 2 -> 75 MHz
PSRAM_PEAK_BYTES_PER_S = PSRAM_SCK_HZ * 4 / 8     # derived: quad I/O, 4 bits per SCK -> 37.5 MB/s
# as recalled, verify: the RP2350 XIP cache fills 8-byte lines; each miss is one quad read (0xEB): 2 SCK command
# (QPI), 6 address, 6 wait, 16 data -> 8 bytes per 30 SCK
PSRAM_LINE_BYTES_PER_S = PSRAM_SCK_HZ * 8 / (2 + 6 + 6 + 16)


def psram_estimate(row: dict, flash_bytes_per_s: float, psram_bytes_per_s: float) -> dict:
    """A section-7 row with its flash term replaced by all its weights read from PSRAM once per token, over
    the row's positions and over its whole story."""
    flash_s = _flash_wait(row)   # what the row's estimate adds for flash, replaced by the PSRAM read
    psram_s = row["weights_bytes"] / psram_bytes_per_s
    short = 1 / row["estimated_tokens_per_s"] - flash_s + psram_s
    story = row.get("story") or {}
    long = 1 / story["estimated_tokens_per_s"] - flash_s + psram_s if story.get("estimated_tokens_per_s") else None
    return dict(psram_bytes_per_s=psram_bytes_per_s, psram_seconds_per_token=psram_s, tokens_per_s=1 / short,
                positions=row["positions"], story_positions=story.get("positions"),
                story_tokens_per_s=1 / long if long else None)
