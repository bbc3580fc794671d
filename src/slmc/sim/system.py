"""Multi-chip system simulator: time, energy and energy-delay product per token for a decoder
partitioned over N chips (issue 7, item 4; the scheme of arXiv 2412.04372).

It reads a `Partition` (sim/partition_model.py: what each chip owns, the reduction tree) and a
chip and link model (targets/siracusa.py), and walks one step (a decode token, or a prompt chunk)
event by event along the critical path:

    broadcast of the embedded, normed input from the root
    per block: attention phase | reduce + broadcast | FFN phase | reduce + broadcast
    classifier phase | argmax reduction            (classifier "split"; "root": root only)

Cost model, per chip and phase (all stated, nothing fitted):
- compute: MACs / (cores x MACs per cycle x efficiency) / clock, plus element-wise operations
  (RoPE, softmax, activation) at a fixed cycles-per-element;
- weight movement: weights are read from where they live every step. A chip's weights live in L2
  when its whole share (weights + its KV cache + a reserve) fits L2 - all or nothing - and are
  then moved L2->L1 by the cluster DMA; else, on a chip with on-chip MRAM (siracusa-mram), in MRAM
  when its weight share fits there (all or nothing), read into L1 at the MRAM port's bandwidth;
  otherwise they are streamed from off-chip L3 every step.
  The KV cache gets L2 first; if it alone does not fit, it lives in L3 too;
- DMA and compute overlap (double buffering): a phase takes max(compute, L2->L1, L3);
- prefill: one chunk of T tokens reads each weight once (tiles reused in L1), so weight movement
  is amortised over T tokens;
- links: a message costs latency + bytes / bandwidth; a parent receives its children's partial
  sums one after the other (one receive DMA), adds them, and sends its sum up; the root adds the
  residual, applies the next norm and broadcasts down the same tree, one child after the other;
- energy per chip: active power while its phases run, idle power while it waits (including syncs),
  plus energy per byte for every byte read from L2 and L3 and per bit sent on a link.

The speedup is time(1 chip) / time(N chips) with the same model; the EDP gain likewise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig
from slmc.sim.partition_model import ChipShare, Partition, partition
from slmc.targets.system import ChipModel, LinkModel

MODES = ("decode", "prefill")


@dataclass
class ChipPlacement:
    chip: int
    weight_bytes: int        # everything this chip stores (blocks, classifier slice, root's norms)
    kv_bytes: int
    weights_in: str          # "L2" | "MRAM" | "L3"
    kv_in: str


@dataclass
class Point:
    n_chips: int
    time_per_token_s: float
    energy_per_token_j: float
    edp_js: float
    speedup: float = 1.0
    edp_gain: float = 1.0
    bytes_per_link_per_token: float = 0.0       # one direction (child -> parent) on one tree link
    bytes_down_per_link_per_token: float = 0.0  # parent -> child (broadcasts)
    link_bytes_total_per_token: float = 0.0     # all links, both directions
    time_breakdown_s: dict = field(default_factory=dict)   # critical path: compute, l2_l1, l3, link
    energy_breakdown_j: dict = field(default_factory=dict)  # active, idle, l2, l3, link
    dominant: str = ""
    max_weight_share_bytes: int = 0
    l2_budget_bytes: int = 0
    weights_in: str = ""      # "L2", "L3" or "mixed"
    kv_in: str = ""
    partition_notes: list = field(default_factory=list)
    reduction_depth: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def system_for(target: str) -> tuple[ChipModel, LinkModel]:
    from slmc.targets import TARGETS  # noqa: F401  (registers siracusa-like)
    from slmc.targets.siracusa import SYSTEMS

    if target not in SYSTEMS:
        raise SlmcError(f"target '{target}' has no multi-chip system model",
                        f"use -t one of: {', '.join(sorted(SYSTEMS))}")
    return SYSTEMS[target]


@dataclass
class _Work:
    """What one chip does in one phase of one step."""
    macs: float = 0.0
    elem: float = 0.0
    w_bytes: float = 0.0     # weights read this phase
    kv_bytes: float = 0.0    # KV cache read + written this phase


def _ffn_mats(cfg: DecoderConfig) -> int:
    return 3 if cfg.gated else 2


def _layer_work(cfg: DecoderConfig, c: ChipShare, T: int, mode: str, context: int, chip: ChipModel
                ) -> tuple[_Work, _Work, int, int]:
    """(attention work, FFN work, weight elements per layer, KV bytes stored per layer) of chip c."""
    d, hd, h, g, f = cfg.dim, cfg.head_dim, c.n_heads, len(c.kv_heads), c.n_ffn
    w_attn = (h * hd + 2 * g * hd) * d + d * h * hd
    w_ffn = _ffn_mats(cfg) * f * d
    if mode == "decode":
        scores, kv_read = T * context, context       # one token attending `context` positions
    else:
        scores, kv_read = T * (T + 1) // 2, T        # causal chunk; chunk's K/V tiled once
    attn = _Work(macs=T * w_attn + 2 * h * hd * scores,
                 elem=T * (h + g) * hd + 4 * h * scores,   # RoPE, softmax (max, exp, sum, scale)
                 w_bytes=w_attn * chip.weight_bytes,
                 kv_bytes=2 * g * hd * (kv_read + T) * chip.kv_bytes)
    ffn = _Work(macs=T * w_ffn, elem=T * f * (3 if cfg.gated else 2), w_bytes=w_ffn * chip.weight_bytes)
    kv_store = 2 * g * hd * max(context, T) * chip.kv_bytes
    return attn, ffn, w_attn + w_ffn, kv_store


def placements(cfg: DecoderConfig, part: Partition, chip: ChipModel, mode: str = "decode", context: int = 256,
               prompt: int = 64) -> list[ChipPlacement]:
    T = 1 if mode == "decode" else prompt
    out = []
    for c in part.chips:
        _, _, w_layer, kv_layer = _layer_work(cfg, c, T, mode, context, chip)
        w = (cfg.n_layers * w_layer + c.n_vocab * cfg.dim) * chip.weight_bytes
        if c.chip == 0:
            w += (2 * cfg.n_layers + 1) * cfg.dim * chip.weight_bytes  # norms on the root
        kv = cfg.n_layers * kv_layer
        resident = w + kv <= chip.l2_budget
        w_in = "L2" if resident else "MRAM" if w <= chip.mram_bytes else "L3"
        out.append(ChipPlacement(c.chip, w, kv, w_in, "L2" if kv <= chip.l2_budget else "L3"))
    return out


def simulate_one(cfg: DecoderConfig, n_chips: int, chip: ChipModel, link: LinkModel, mode: str = "decode",
                 fanin: int = 2, classifier: str = "split", context: int = 256, prompt: int = 64,
                 part: Partition | None = None) -> Point:
    if mode not in MODES:
        raise SlmcError(f"unknown mode '{mode}'", "use --mode decode or --mode prefill")
    if context < 1 or prompt < 1:
        raise SlmcError("context and prompt must be at least 1 position", "check --context and --prompt")
    part = part or partition(cfg, n_chips, fanin, classifier)
    T = 1 if mode == "decode" else prompt
    place = placements(cfg, part, chip, mode, context, prompt)
    N = part.n_chips
    eff = chip.mac_efficiency_gemv if mode == "decode" else chip.mac_efficiency_gemm
    mac_rate = chip.cores * chip.macs_per_cycle_per_core * eff * chip.clock_hz
    elem_rate = chip.cores * chip.clock_hz / chip.cycles_per_elem_op
    l2l1_rate = chip.l2_l1_bytes_per_cycle * chip.clock_hz

    total = {"compute": 0.0, "l2_l1": 0.0, "l3": 0.0, "link": 0.0} | ({"mram": 0.0} if chip.mram_bytes else {})
    mram_rate = chip.mram_bytes_per_cycle * chip.clock_hz
    busy = [0.0] * N
    l2_bytes = [0.0] * N
    l3_bytes = [0.0] * N
    mram_bytes = [0.0] * N
    sent_bytes = [0.0] * N   # upward, by the sending chip
    down_bytes = [0.0]       # broadcasts, all links
    clock = 0.0

    def phase(works: list[_Work]) -> None:
        """All chips work in parallel; the phase ends with the slowest. Critical-path time goes to
        the slowest chip's largest term."""
        nonlocal clock
        worst, worst_terms = 0.0, None
        for i, w in enumerate(works):
            pl = place[i]
            t_c = w.macs / mac_rate + w.elem / elem_rate
            from_l3 = (w.w_bytes if pl.weights_in == "L3" else 0.0) + (w.kv_bytes if pl.kv_in == "L3" else 0.0)
            from_mram = w.w_bytes if pl.weights_in == "MRAM" else 0.0
            via_l2 = w.w_bytes + w.kv_bytes - from_l3 - from_mram  # L3 and MRAM data go to L1 directly by DMA
            terms = {"compute": t_c, "l2_l1": via_l2 / l2l1_rate, "l3": from_l3 / chip.l3_bytes_per_s}
            if from_mram:
                terms["mram"] = from_mram / mram_rate
            t = max(terms.values())
            busy[i] += t
            l2_bytes[i] += via_l2
            l3_bytes[i] += from_l3
            mram_bytes[i] += from_mram
            if t > worst:
                worst, worst_terms = t, terms
        if worst_terms is not None:
            total[max(worst_terms, key=worst_terms.get)] += worst
        clock += worst

    msg = cfg.dim * chip.act_bytes * T
    add_time = lambda k: k * cfg.dim * T / (chip.cores * chip.clock_hz)  # one add per element per core-cycle
    root_post = (2 * cfg.dim * T) / elem_rate  # residual add + norm on the root

    def root_work() -> None:
        """The root adds the residual and applies the next norm between reduction and broadcast."""
        nonlocal clock
        if N > 1:
            total["compute"] += root_post
            clock += root_post
            busy[0] += root_post

    def tree_pass(nbytes: float, up: bool) -> None:
        """Reduction (up) or broadcast (down) over the tree; every non-root chip sends (up) or receives
        (down) exactly one message of `nbytes` per pass."""
        nonlocal clock
        if N == 1:
            return
        t = sum(max(level) * link.msg_time(nbytes) + (add_time(max(level)) if up else 0.0) for level in part.tree)
        if up:
            for i in range(1, N):
                sent_bytes[i] += nbytes
        else:
            down_bytes[0] += nbytes * (N - 1)  # one message into every non-root chip
        total["link"] += t
        clock += t

    # token input: embedding row read from the root's L3, first norm, broadcast
    l3_bytes[0] += cfg.dim * chip.weight_bytes * T
    tree_pass(msg, up=False)
    works = [_layer_work(cfg, c, T, mode, context, chip)[:2] for c in part.chips]
    for layer in range(cfg.n_layers):
        phase([w[0] for w in works])
        tree_pass(msg, up=True)
        root_work()
        tree_pass(msg, up=False)
        phase([w[1] for w in works])
        tree_pass(msg, up=True)
        root_work()
        if layer < cfg.n_layers - 1 or classifier == "split":
            tree_pass(msg, up=False)
    if classifier != "none":
        t_cls = 1  # logits only for the last token of a prompt chunk
        phase([_Work(macs=t_cls * c.n_vocab * cfg.dim, elem=t_cls * c.n_vocab,
                     w_bytes=c.n_vocab * cfg.dim * chip.weight_bytes) for c in part.chips])
        if classifier == "split":
            tree_pass(8.0, up=True)  # (max logit, index) per chip, reduced to the root

    energy = {"active": 0.0, "idle": 0.0, "l2": 0.0, "l3": 0.0, "link": 0.0} | ({"mram": 0.0} if chip.mram_bytes else {})
    for i in range(N):
        if chip.mram_bytes:
            energy["mram"] += mram_bytes[i] * chip.e_mram_pj_per_byte * 1e-12
        energy["active"] += chip.p_active_w * busy[i]
        energy["idle"] += chip.p_idle_w * max(clock - busy[i], 0.0)
        energy["l2"] += l2_bytes[i] * chip.e_l2_pj_per_byte * 1e-12
        energy["l3"] += l3_bytes[i] * chip.e_l3_pj_per_byte * 1e-12
    link_total = sum(sent_bytes) + down_bytes[0]
    energy["link"] = link_total * 8 * link.pj_per_bit * 1e-12
    e_tok = sum(energy.values()) / T
    t_tok = clock / T
    tb = {k: v / T for k, v in total.items()}
    ws = sorted({p.weights_in for p in place})
    ks = sorted({p.kv_in for p in place})
    return Point(
        n_chips=N, time_per_token_s=t_tok, energy_per_token_j=e_tok, edp_js=t_tok * e_tok,
        bytes_per_link_per_token=(sent_bytes[1] / T) if N > 1 else 0.0,
        bytes_down_per_link_per_token=(down_bytes[0] / (N - 1) / T) if N > 1 else 0.0,
        link_bytes_total_per_token=link_total / T,
        time_breakdown_s=tb, energy_breakdown_j={k: v / T for k, v in energy.items()},
        dominant=max(tb, key=tb.get), max_weight_share_bytes=max(p.weight_bytes for p in place),
        l2_budget_bytes=chip.l2_budget, weights_in=ws[0] if len(ws) == 1 else "mixed",
        kv_in=ks[0] if len(ks) == 1 else "mixed", partition_notes=part.notes(), reduction_depth=part.depth)


def simulate(cfg: DecoderConfig, chips: list[int], target: str = "siracusa-like", mode: str = "decode",
             fanin: int = 2, classifier: str = "split", context: int = 256, prompt: int = 64,
             chip: ChipModel | None = None, link: LinkModel | None = None) -> dict:
    """Points for every chip count, speedups and EDP gains against one chip, and where scaling stops."""
    if not chips or min(chips) < 1:
        raise SlmcError(f"chip counts {chips}", "give positive chip counts, e.g. --chips 1,2,4,8")
    base_chip, base_link = system_for(target)
    chip, link = chip or base_chip, link or base_link
    kw = dict(mode=mode, fanin=fanin, classifier=classifier, context=context, prompt=prompt)
    one = simulate_one(cfg, 1, chip, link, **kw)
    points = []
    for n in sorted(set(chips)):
        p = one if n == 1 else simulate_one(cfg, n, chip, link, **kw)
        p.speedup = one.time_per_token_s / p.time_per_token_s
        p.edp_gain = one.edp_js / p.edp_js
        points.append(p)
    return {"target": target, "mode": mode, "fanin": fanin, "classifier": classifier, "context": context,
            "prompt": prompt if mode == "prefill" else None, "model": asdict(cfg),
            "chip": asdict(chip), "link": asdict(link), "points": [p.to_dict() for p in points],
            "scaling": scaling_summary(points)}


def scaling_summary(points: list[Point]) -> dict:
    """Where adding chips stops paying: the first count whose speedup is less than 1.1x that of the
    previous count (or lower), and which term dominates its critical path."""
    superlinear = [p.n_chips for p in points if p.n_chips > 1 and p.speedup > p.n_chips]
    stop = None
    for prev, p in zip(points, points[1:]):
        if p.speedup < 1.1 * prev.speedup:
            stop = p
            break
    last = points[-1]
    out = {"superlinear_at": superlinear, "stops_at": stop.n_chips if stop else None,
           "dominant_at_stop": stop.dominant if stop else None, "dominant_at_max": last.dominant,
           "link_share_at_max": last.time_breakdown_s.get("link", 0.0) / last.time_per_token_s}
    first_l2 = next((p.n_chips for p in points if p.weights_in == "L2"), None)
    out["weights_fit_l2_from"] = first_l2
    first_mram = next((p.n_chips for p in points if p.weights_in in ("MRAM", "L2")), None)
    if any(p.weights_in == "MRAM" for p in points):
        out["weights_on_chip_from"] = first_mram
    return out


def explain(result: dict) -> list[str]:
    s, pts = result["scaling"], result["points"]
    lines = []
    if s["weights_fit_l2_from"] is not None:
        lines.append(f"every chip's weights fit L2 from {s['weights_fit_l2_from']} chips "
                     f"(budget {pts[0]['l2_budget_bytes']:,} B); below that they stream from L3 every token")
    else:
        lines.append("no chip count in the list keeps every chip's weights in L2: weights stream from L3")
    if s.get("weights_on_chip_from") is not None:
        lines.append(f"every chip's weights are on chip (MRAM or L2) from {s['weights_on_chip_from']} chips; "
                     "below that they stream from L3")
    if s["superlinear_at"]:
        lines.append(f"super-linear speedup at {', '.join(map(str, s['superlinear_at']))} chips")
        kv_only = [p["n_chips"] for p in pts if p["n_chips"] in s["superlinear_at"] and p["weights_in"] == "L3"]
        if kv_only and pts[0]["kv_in"] == "L3":
            lines.append(f"  at {', '.join(map(str, kv_only))} chips only because the KV cache, in L3 on one chip, "
                         "fits L2 once split (weights still stream from L3)")
    if s["stops_at"]:
        lines.append(f"scaling stops at {s['stops_at']} chips (less than 1.1x over the previous count): "
                     f"{s['dominant_at_stop']} dominates the critical path")
    else:
        lines.append(f"still scaling at {pts[-1]['n_chips']} chips; {s['dominant_at_max']} dominates there")
    lines.append(f"links take {100 * s['link_share_at_max']:.0f}% of the time at {pts[-1]['n_chips']} chips")
    return lines


def plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["points"]
    n = [p["n_chips"] for p in pts]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.loglog(n, [p["speedup"] for p in pts], "o-", label="speedup")
    a.loglog(n, [p["edp_gain"] for p in pts], "s-", label="EDP gain")
    a.loglog(n, n, "k--", lw=0.8, label="linear")
    a.set_xlabel("chips")
    a.set_ylabel("x over one chip")
    a.set_xticks(n, [str(x) for x in n])
    a.legend()
    a.set_title(f"{result['mode']}, fan-in {result['fanin']}, classifier {result['classifier']}")
    bottom = [0.0] * len(pts)
    for k in ("compute", "l2_l1", "l3", "mram", "link"):
        if k not in pts[0]["time_breakdown_s"]:
            continue
        v = [p["time_breakdown_s"][k] * 1e3 for p in pts]
        b.bar([str(x) for x in n], v, bottom=bottom, label=k)
        bottom = [x + y for x, y in zip(bottom, v)]
    b.set_yscale("log")
    small = [p["time_breakdown_s"][k] * 1e3 for p in pts for k in p["time_breakdown_s"] if p["time_breakdown_s"][k] > 0]
    b.set_ylim(bottom=min(small) / 2)
    b.set_xlabel("chips")
    b.set_ylabel("ms per token (critical path)")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def resolve_model(model: str, heads: int | None = None) -> DecoderConfig:
    """A shape name from frontend.random_model.SHAPES or a model file (only its header is used).
    `heads` makes the many-head variant: same dim, `heads` query and KV heads."""
    import dataclasses
    from pathlib import Path

    from slmc.frontend.random_model import SHAPES

    if model in SHAPES:
        cfg = SHAPES[model]
    else:
        p = Path(model)
        if not p.exists():
            raise SlmcError(f"'{model}' is neither a file nor a shape name",
                            f"give a model path or one of: {', '.join(SHAPES)}")
        from slmc.frontend.load import load_model

        m = load_model(p)
        cfg = getattr(m, "config", None)
        if not isinstance(cfg, DecoderConfig):
            raise SlmcError(f"{model} is not a decoder model", "simulate takes llama2.c or HuggingFace Llama models")
    if heads:
        if cfg.dim % heads:
            raise SlmcError(f"dim {cfg.dim} is not divisible by {heads} heads", "choose --heads dividing the dim")
        cfg = dataclasses.replace(cfg, n_heads=heads, n_kv_heads=heads, head_dim_=0)
        if cfg.pos == "rope" and cfg.head_dim % 2:
            raise SlmcError(f"head size {cfg.head_dim} is odd", "choose fewer --heads")
    return cfg

