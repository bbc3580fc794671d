"""Our siracusa-like estimates next to the published silicon figures (issue 21, "Fidelity").

Two published settings, each predicted with the same cost models `slmc simulate` and `slmc compile`
use (nothing here is fitted to the published numbers):

- the multi-chip paper (Bochem et al., "Distributed Inference with Minimal Off-Chip Traffic for
  Transformers on Low-Power MCUs", arXiv 2412.04372, DATE 2025; figures verified in its abstract):
  TinyLlama-42M, one decode step on 8 chips 0.54 ms and 0.64 mJ, 26.1x faster and 27.2x better EDP
  than one chip; the 64-head variant 60.1x at 64 chips. Predicted with `siracusa-mram` (weights
  stationary in each chip's on-chip MRAM when the share fits), classifier "none" (ASSUMED: the paper's
  0.54 ms is what the blocks alone take on one chip's share: 3.16M MACs at 8 cores x 4 MACs x 0.5
  at 360 MHz = 0.55 ms; with the 32000-row classifier split too, an 8-chip share no longer fits 4 MiB);
- Deeploy (Scherer et al., arXiv 2408.04413; abstract verified): a TinyStories-class Llama on
  Siracusa at 340 tokens/s and 490 uJ/token. The network is Deeploy's test model microLlama64
  (DeeployTest/Tests/Models/microLlama/INT8/microLlama64/network.onnx in pulp-platform/Deeploy,
  read here: dim 64, 8 layers, 16 heads of 4, FFN 256 gated, 64 cached positions + the new one, no
  classifier, int8). Its cycle counts (GVSoC) are in Deeploy's tutorial: 857 kcycles per autoregressive
  step with the NPU, 780 with the weights in the Neural Memory Subsystem (MRAM), ~1.04x faster than
  the cluster alone.

`sensitivity()` varies one ASSUMED or recalled parameter at a time by a factor and reports how far
each figure moves: which assumptions a disagreement can be blamed on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from slmc.frontend.decoder import DecoderConfig
from slmc.sim.engine_cost import npu_linear_cost
from slmc.sim.system import resolve_model, simulate_one
from slmc.targets.system import ChipModel, LinkModel

PAPER = dict(ms_8=0.54, mj_8=0.64, speedup_8=26.1, edp_8=27.2, speedup_64_heads64=60.1,
             source="Bochem et al., arXiv 2412.04372 (abstract; TinyLlama-42M, 8 chips; 64-head variant at 64 chips)")
DEEPLOY = dict(tokens_per_s=340.0, uj_per_token=490.0, kcycles_npu=857.0, kcycles_npu_nms=780.0, npu_speedup=1.04,
               source="Scherer et al., arXiv 2408.04413 (abstract: 340 tokens/s, 490 uJ/token)",
               cycles_source="Deeploy's tutorial (pulp-platform/Deeploy docs/tutorials/introduction.md, GVSoC, 8 cores, "
                             "64 kB of L1, default memory level L2): autoregressive microLlama64 with the NPU 857 kcycles, "
                             "with the weights in the Neural Memory Subsystem (MRAM) 780 kcycles, the NPU ~1.04x faster "
                             "than the cluster alone")
# the published cycles each of our engines is compared with
DEEPLOY_KCYCLES = {"cluster": DEEPLOY["kcycles_npu"] * DEEPLOY["npu_speedup"], "npu": DEEPLOY["kcycles_npu"],
                   "npu_mram": DEEPLOY["kcycles_npu_nms"]}
PAPER_CONTEXT = 256       # ASSUMED: the paper's KV-cache length is not in its abstract
PAPER_CLASSIFIER = "none"  # ASSUMED, see the module docstring

# Deeploy's microLlama64, read from its ONNX test network (module docstring)
MICRO_LLAMA64 = DecoderConfig(dim=64, hidden_dim=256, n_layers=8, n_heads=16, n_kv_heads=16, vocab_size=1, seq_len=65)
MICRO_LLAMA64_CONTEXT = 65
MICRO_LLAMA64_OPS = {"RequantShift": 200, "MatMul": 88, "Add": 80, "Transpose": 40, "Reshape": 32, "iRMSNorm": 17,
                     "Concat": 16, "TrueIntegerDiv": 8, "iSoftmax": 8, "iHardswish": 8, "Mul": 8}

FIGURES = ("ms_8", "mj_8", "speedup_8", "edp_8", "speedup_64_heads64")

# (object, field, what it is); every one marked ASSUMED or "as recalled" in targets/siracusa.py
SENSITIVE = (("chip", "clock_hz", "cluster clock (as recalled)"),
             ("chip", "mac_efficiency_gemv", "decode MAC efficiency"),
             ("chip", "cycles_per_elem_op", "cycles per element-wise op"),
             ("chip", "l2_l1_bytes_per_cycle", "L2->L1 DMA bandwidth"),
             ("chip", "l3_bytes_per_s", "off-chip L3 bandwidth"),
             ("chip", "mram_bytes", "MRAM size (as recalled)"),
             ("chip", "mram_bytes_per_cycle", "MRAM read bandwidth"),
             ("chip", "p_active_w", "active power"),
             ("chip", "p_idle_w", "idle power"),
             ("chip", "e_l3_pj_per_byte", "L3 energy per byte"),
             ("chip", "e_mram_pj_per_byte", "MRAM energy per byte"),
             ("link", "bytes_per_s", "link bandwidth"),
             ("link", "latency_s", "link latency per message"),
             ("link", "pj_per_bit", "link energy per bit"))


def paper_system() -> tuple[ChipModel, LinkModel]:
    from slmc.targets.siracusa import MIPI_LINK, SIRACUSA_MRAM_CHIP

    return SIRACUSA_MRAM_CHIP, MIPI_LINK


def reproduce(chip: ChipModel | None = None, link: LinkModel | None = None, context: int = PAPER_CONTEXT,
              classifier: str = PAPER_CLASSIFIER) -> dict:
    """The paper's five figures from our model, plus what they rest on (placement, dominant term)."""
    c0, l0 = paper_system()
    chip, link = chip or c0, link or l0
    base = resolve_model("tinyllama42M")
    heads = resolve_model("tinyllama42M", 64)
    kw = dict(classifier=classifier, context=context)
    one, eight = simulate_one(base, 1, chip, link, **kw), simulate_one(base, 8, chip, link, **kw)
    h1, h64 = simulate_one(heads, 1, chip, link, **kw), simulate_one(heads, 64, chip, link, **kw)
    return dict(ms_8=eight.time_per_token_s * 1e3, mj_8=eight.energy_per_token_j * 1e3,
                speedup_8=one.time_per_token_s / eight.time_per_token_s, edp_8=one.edp_js / eight.edp_js,
                speedup_64_heads64=h1.time_per_token_s / h64.time_per_token_s,
                ms_1=one.time_per_token_s * 1e3, mj_1=one.energy_per_token_j * 1e3,
                weights_in_1=one.weights_in, weights_in_8=eight.weights_in, weights_in_64_heads64=h64.weights_in,
                share_8_bytes=eight.max_weight_share_bytes, dominant_1=one.dominant, dominant_8=eight.dominant,
                time_breakdown_8_ms={k: v * 1e3 for k, v in eight.time_breakdown_s.items()},
                energy_breakdown_8_mj={k: v * 1e3 for k, v in eight.energy_breakdown_j.items()})


def _vary(chip: ChipModel, link: LinkModel, obj: str, field: str, factor: float) -> tuple[ChipModel, LinkModel]:
    if obj == "chip":
        v = getattr(chip, field) * factor
        return dataclasses.replace(chip, **{field: int(v) if isinstance(getattr(chip, field), int) else v}), link
    return chip, dataclasses.replace(link, **{field: getattr(link, field) * factor})


def sensitivity(factors: tuple[float, ...] = (0.5, 2.0)) -> list[dict]:
    """One row per parameter (and per setting choice): each figure's relative change at each factor."""
    chip, link = paper_system()
    ref = reproduce(chip, link)
    rows = []
    for obj, field, what in SENSITIVE:
        row = dict(parameter=f"{obj}.{field}", what=what, value=getattr(chip if obj == "chip" else link, field),
                   change={})
        for f in factors:
            got = reproduce(*_vary(chip, link, obj, field, f))
            row["change"][f"x{f:g}"] = {k: got[k] / ref[k] - 1 for k in FIGURES}
        rows.append(row)
    for label, kw in (("context 128 (ASSUMED 256)", dict(context=128)), ("context 512", dict(context=512)),
                      ("classifier split over the chips (ASSUMED none)", dict(classifier="split"))):
        got = reproduce(chip, link, **kw)
        rows.append(dict(parameter=label, what="setting", value=None,
                         change={"setting": {k: got[k] / ref[k] - 1 for k in FIGURES}}))
    return rows


@dataclass(frozen=True)
class MicroLlamaEstimate:
    key: str        # which published cycle count it stands next to (DEEPLOY_KCYCLES)
    engine: str
    cycles_per_token: float
    tokens_per_s: float
    uj_per_token: float


def micro_llama(chip: ChipModel | None = None, link: LinkModel | None = None) -> list[MicroLlamaEstimate]:
    """Deeploy's autoregressive microLlama64 step on one chip: (a) everything on the cluster, the cost model of
    `slmc simulate`; (b) the matrix products on the NPU (sim/engine_cost.py, one job per product), attention
    and element-wise work on the cluster at the same rates as (a)."""
    c0, l0 = paper_system()
    chip, link = chip or c0, link or l0
    cfg, ctx = MICRO_LLAMA64, MICRO_LLAMA64_CONTEXT
    p = simulate_one(cfg, 1, chip, link, classifier="none", context=ctx)
    out = [MicroLlamaEstimate("cluster", "cluster (slmc simulate)", p.time_per_token_s * chip.clock_hz,
                              1 / p.time_per_token_s, p.energy_per_token_j * 1e6)]
    from slmc.targets.siracusa_engines import siracusa_engines

    npu = siracusa_engines(chip).npu
    d, f, hd, h = cfg.dim, cfg.hidden_dim, cfg.head_dim, cfg.n_heads
    jobs = [(d, d)] * 4 + [(d, f), (d, f), (f, d)]                          # q, k, v, o; gate, up, down
    costs = [npu_linear_cost(npu, 1, k, m) for k, m in jobs]
    mac_rate = chip.cores * chip.macs_per_cycle_per_core * chip.mac_efficiency_gemv       # MACs per cycle
    att_macs = 2 * h * hd * ctx
    elems = (h + h) * hd + 4 * h * ctx + 3 * f + 4 * d                       # RoPE, softmax, gating, norms + residuals
    cluster = att_macs / mac_rate + elems * chip.cycles_per_elem_op / chip.cores
    for key, what, mram in (("npu", "NPU for the matrix products, weights in L2", False),
                            ("npu_mram", "NPU, weights in MRAM (Deeploy's NMS)", True)):
        if mram:  # weights stream over the MRAM port, activations over the L2 port, overlapped with compute
            job = [npu.job_setup_cycles + max(c.compute_cycles, k * m / chip.mram_bytes_per_cycle,
                                              (k + 4 * m) / npu.dma_bytes_per_cycle) for (k, m), c in zip(jobs, costs)]
            e_w = sum(k * m * (chip.e_mram_pj_per_byte - npu.pj_per_byte_moved) for k, m in jobs)
        else:
            job, e_w = [c.cycles for c in costs], 0.0
        cycles = cfg.n_layers * (sum(job) + cluster)
        energy_pj = cfg.n_layers * (sum(c.energy_pj for c in costs) + e_w) + chip.p_active_w * cycles / chip.clock_hz * 1e12
        out.append(MicroLlamaEstimate(key, what, cycles, chip.clock_hz / cycles, energy_pj * 1e-6))
    return out
