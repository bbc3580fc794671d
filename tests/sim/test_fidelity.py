"""Issue 21 (fidelity): the MRAM weights level, the published-setting reproductions, the roofline and the PSRAM
estimate, each checked against a hand computation from the stated parameters."""

from __future__ import annotations

import dataclasses

import pytest

from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import SHAPES
from slmc.sim import roofline as rl
from slmc.sim.fidelity import MICRO_LLAMA64, PAPER, reproduce, sensitivity
from slmc.sim.system import placements, simulate_one
from slmc.sim.partition_model import partition
from slmc.targets import TARGETS
from slmc.targets.levels import levels_of, with_mem
from slmc.targets.siracusa import MIPI_LINK, SIRACUSA_CHIP, SIRACUSA_MRAM_CHIP

TINY = DecoderConfig(dim=64, hidden_dim=128, n_layers=3, n_heads=4, n_kv_heads=4, vocab_size=32, seq_len=64)


def _weights_per_layer(c: DecoderConfig) -> int:
    return 4 * c.dim * c.dim + 3 * c.dim * c.hidden_dim  # q, k, v, o + gate, up, down (n_heads == n_kv_heads)


def test_mram_resident_weights_are_read_at_the_stated_bandwidth():
    """Compute made free and L2 too small for the weights: one step is exactly the weight bytes over the
    MRAM port (bytes per cycle x clock), and the MRAM energy is those bytes at the stated pJ/B."""
    kv = TINY.n_layers * 2 * TINY.dim * 16  # context 16, int8
    chip = dataclasses.replace(SIRACUSA_MRAM_CHIP, macs_per_cycle_per_core=1e12, cycles_per_elem_op=1e-12,
                               l2_bytes=kv + 1024, l2_reserved_bytes=0, l2_l1_bytes_per_cycle=1e12,
                               mram_bytes=1 << 20, mram_bytes_per_cycle=16.0, e_mram_pj_per_byte=7.0)
    p = simulate_one(TINY, 1, chip, MIPI_LINK, classifier="none", context=16)
    assert p.weights_in == "MRAM" and p.kv_in == "L2"
    w = TINY.n_layers * _weights_per_layer(TINY)
    assert p.time_per_token_s == pytest.approx(w / (16.0 * chip.clock_hz), rel=1e-6)
    assert p.energy_breakdown_j["mram"] == pytest.approx(w * 7.0e-12, rel=1e-9)
    assert p.dominant == "mram"


def test_weights_go_to_l2_then_mram_then_l3_by_size():
    chip = dataclasses.replace(SIRACUSA_MRAM_CHIP, l2_bytes=64 * 1024, l2_reserved_bytes=0)
    w = TINY.n_layers * _weights_per_layer(TINY) + (2 * TINY.n_layers + 1) * TINY.dim   # blocks + the root's norms
    for mram, want in ((w, "MRAM"), (w - 1, "L3")):
        got = placements(TINY, partition(TINY, 1, 2, "none"), dataclasses.replace(chip, mram_bytes=mram), context=16)
        assert got[0].weight_bytes == w and got[0].weights_in == want
    big = dataclasses.replace(chip, l2_bytes=1 << 22)
    assert placements(TINY, partition(TINY, 1, 2, "none"), big, context=16)[0].weights_in == "L2"


def test_a_chip_without_mram_is_unchanged():
    assert SIRACUSA_CHIP.mram_bytes == 0
    p = simulate_one(SHAPES["tinyllama42M"], 8, SIRACUSA_CHIP, MIPI_LINK, classifier="none")
    assert p.weights_in == "L3" and "mram" not in p.time_breakdown_s and "mram" not in p.energy_breakdown_j


def test_paper_setting_holds_the_8_chip_share_in_mram_and_is_compute_bound():
    """TinyLlama-42M's blocks over 8 chips: 3.16 MB per chip fits 4 MiB of MRAM, not the 1.9 MB L2 budget; at a
    32 B/cycle MRAM port the cluster's 16 MACs/cycle (1 B of weight per MAC) bound the phase."""
    r = reproduce()
    c = SHAPES["tinyllama42M"]
    share = c.n_layers * (4 * c.dim * c.dim + 3 * c.dim * c.hidden_dim) // 8
    assert SIRACUSA_CHIP.l2_budget < share < SIRACUSA_MRAM_CHIP.mram_bytes
    assert r["weights_in_8"] == "MRAM" and r["weights_in_1"] == "L3" and r["dominant_8"] == "compute"
    # the MAC part of the compute term by hand: share MACs at cores x MACs/cycle x efficiency x clock
    macs = SIRACUSA_CHIP.cores * SIRACUSA_CHIP.macs_per_cycle_per_core * SIRACUSA_CHIP.mac_efficiency_gemv
    assert r["time_breakdown_8_ms"]["compute"] > share / (macs * SIRACUSA_CHIP.clock_hz) * 1e3
    # one chip streams 25.3 MB from L3 at the stated bandwidth
    assert r["ms_1"] >= c.n_layers * (4 * c.dim ** 2 + 3 * c.dim * c.hidden_dim) / SIRACUSA_CHIP.l3_bytes_per_s * 1e3
    assert set(PAPER) >= {"ms_8", "mj_8", "speedup_8", "edp_8", "speedup_64_heads64"}


def test_sensitivity_of_the_speedup_to_l3_bandwidth_follows_the_one_chip_time():
    """One chip is L3-bound in every phase: doubling L3 bandwidth halves its time; the 8-chip point (weights in
    MRAM, KV in L2) does not move, so the 8-chip speedup halves."""
    row = next(s for s in sensitivity() if s["parameter"] == "chip.l3_bytes_per_s")
    assert row["change"]["x2"]["speedup_8"] == pytest.approx(-0.5, abs=1e-3)
    assert row["change"]["x2"]["ms_8"] == pytest.approx(0.0, abs=1e-9)


def test_micro_llama64_shape_matches_deeploys_onnx_weights():
    """Deeploy's microLlama64 ONNX holds 56 weight matrices: per layer four 64x64 and three 64x256 / 256x64."""
    c = MICRO_LLAMA64
    assert rl.matmul_macs(c) - c.vocab_size * c.dim == 8 * (4 * 64 * 64 + 2 * 64 * 256 + 256 * 64) == 524_288


def test_roofline_by_hand_for_stories260k():
    c = SHAPES["stories260K"]
    macs = 5 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 172) + 512 * 64      # 259,328 (DESIGN.md)
    att = 640 * sum(p + 1 for p in range(16)) / 16                         # 640 MACs per position, 16 positions
    row = dict(program="slmc", numerics="q8", isa="cortex-m33", target="rp2350-arm", positions=16,
               weights_bytes=300_000, estimated_flash_seconds_per_token=0.004, estimated_cycles_per_token=1_000_000,
               instructions_per_token=700_000)
    r = rl.roofline(row, c, 37.5e6)
    assert macs == 259_328 and r["macs_per_token"] == pytest.approx(macs + att)
    assert r["mac_cycles"] == pytest.approx((macs + att) / 2)              # SMLAD: 2 MACs per cycle
    flash_bytes = 0.004 * 37.5e6
    kv = 2 * 5 * 32 * 2 * sum(p + 1 for p in range(16)) / 16               # K and V, 5 layers, kv_dim 32, fp16
    mem = (300_000 - flash_bytes + kv) / 4 + 0.004 * 150e6
    assert r["memory_cycles"] == pytest.approx(mem)
    assert r["cycles_over_roofline"] == pytest.approx((1_000_000 + 0.004 * 150e6) / ((macs + att) / 2 + mem))
    fp = rl.roofline(dict(row, numerics="fp32", isa="rv32imac"), c, 37.5e6)
    assert fp["mac_cycles"] is None and fp["cycles_over_roofline"] is None   # no FPU: no float MAC
    # a DMA-staged build waits 0.0005 s of its 0.004 s of flash reads: the bound overlaps them too
    st = rl.roofline(dict(row, estimated_flash_stall_seconds_per_token=0.0005), c, 37.5e6)
    sram_cycles = (300_000 - flash_bytes + kv) / 4
    assert st["roofline_cycles"] == pytest.approx(max((macs + att) / 2 + sram_cycles, 0.004 * 150e6))
    assert st["build_cycles"] == pytest.approx(1_000_000 + 0.0005 * 150e6)


def test_psram_estimate_by_hand():
    assert rl.PSRAM_SCK_HZ == 75e6 and rl.PSRAM_PEAK_BYTES_PER_S == 37.5e6
    assert rl.PSRAM_LINE_BYTES_PER_S == pytest.approx(75e6 * 8 / 30)
    row = dict(positions=16, weights_bytes=1_000_000, estimated_tokens_per_s=20.0,
               estimated_flash_seconds_per_token=0.02, story=dict(positions=256, estimated_tokens_per_s=10.0))
    e = rl.psram_estimate(row, 37.5e6, 20e6)
    assert e["tokens_per_s"] == pytest.approx(1 / (0.05 - 0.02 + 0.05))
    assert e["story_tokens_per_s"] == pytest.approx(1 / (0.1 - 0.02 + 0.05))


def test_siracusa_mram_target_puts_weights_in_its_mram_level():
    t = TARGETS["siracusa-mram"]
    lv = levels_of(t)
    assert [x.name for x in lv] == ["L1", "L2", "MRAM"] and lv[-1].size == SIRACUSA_MRAM_CHIP.mram_bytes
    assert lv[-1].memory == "flash" and t.flash.size == lv[-1].size
    bigger = with_mem(t, "MRAM=8MiB")
    assert levels_of(bigger)[-1].size == 8 << 20 and bigger.flash.size == 8 << 20


def test_micro_llama_npu_with_weights_in_mram_by_hand():
    """One layer of microLlama64 on the NPU with weights in MRAM: each product costs the job set-up plus the
    slowest of its MACs (512 8-bit MACs per cycle), its weights over the MRAM port and its activations (int8 in,
    int32 out) over the streamer; attention's MACs and the element-wise work stay on the cluster."""
    from slmc.sim.fidelity import micro_llama
    from slmc.targets.siracusa_engines import siracusa_engines

    chip = SIRACUSA_MRAM_CHIP
    npu = siracusa_engines(chip).npu
    per_cycle = npu.bit_macs_per_cycle / 8
    layer = 0.0
    for k, m in [(64, 64)] * 4 + [(64, 256), (64, 256), (256, 64)]:
        layer += npu.job_setup_cycles + max(-(-k * m // per_cycle), k * m / chip.mram_bytes_per_cycle,
                                            (k + 4 * m) / npu.dma_bytes_per_cycle)
    cluster_macs = chip.cores * chip.macs_per_cycle_per_core * chip.mac_efficiency_gemv
    layer += 2 * 16 * 4 * 65 / cluster_macs                                     # q.k and p.v over 65 positions
    layer += (2 * 16 * 4 + 4 * 16 * 65 + 3 * 256 + 4 * 64) * chip.cycles_per_elem_op / chip.cores
    got = next(e for e in micro_llama() if e.key == "npu_mram")
    assert got.cycles_per_token == pytest.approx(8 * layer)
