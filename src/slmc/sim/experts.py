"""What an expert cache costs (passes/expert_cache.py): the counters a run prints, and the time its loads
take, estimated from the target's memory model.

ASSUMED, every policy: a load copies one expert from the slowest level (flash, or L3) at that level's sustained
bandwidth (targets/builtin.py) through one DMA channel; a load at use (a miss: policies none and lru, and the
predictor's mispredictions and the layers before its input) stalls the core for its whole copy.

ASSUMED, --expert-prefetch predictor (the overlap, `prefetch_wait`), from the run's averages per token:
- the predictor runs at the start of layer input_layer + 1 and queues its loads there, layer by layer, in the
  order of the layers they serve; with a token table (the layers before the predictor's input, predicted from
  the token id) those layers' loads are queued as the step starts; the DMA works through the queue while the
  core computes;
- the core needs layer j's experts when it reaches that layer's moe_experts, (j + lead) layers into the step;
  a layer's compute is the run's estimated compute cycles per token (exact instruction counts through the target's cycle model) times the
  share of the layers' instructions, split evenly over the layers; `lead` is the share of a predicted layer's
  instructions before its experts (attention, norms, router), from the same counts;
- the core waits for the part of a load not done by then (the only part counted as stall); later layers'
  deadlines move by that wait; the flash serves one reader at a time, so the DMA runs only while the core
  computes, never during the stalls that read the other weights from flash (toolchain/profile.py);
- the loads of a token spread evenly over its predicted layers (the run's totals divided by the positions);
- the emulated build copies with memcpy, whose instructions are counted as compute (a DMA would not cost
  them): the layers look slower than they are, which hides more of a load than a chip would.
"""

from __future__ import annotations

from slmc.targets import Target

COUNTERS = ("expert_hits", "expert_misses", "expert_bytes_loaded")
PREFETCH_COUNTERS = ("expert_prefetches", "expert_prefetch_hits", "expert_prefetch_planned")


def slow_bytes_per_s(target: Target) -> float | None:
    """Sustained bandwidth of the target's slowest memory level (where the experts stay), if it has levels."""
    if not target.levels or not target.clock_hz:
        return None
    return target.levels[-1].bytes_per_cycle * target.clock_hz


def prefetch_wait(load_s: float, loads_per_layer: float, n_pred: int, layer_s: float, lead: float,
                  first: int = 1, token_layers: int = 0) -> float:
    """Seconds per token the core waits for the predictor's loads (the module docstring's model): layers
    first .. first + n_pred - 1 queued when layer `first` starts, and with a token table the layers
    0 .. token_layers - 1 queued when the step starts; each layer served by loads_per_layer loads of load_s
    seconds, in layer order through one DMA channel; layer j's experts are needed at (j + lead) * layer_s,
    plus the waits before."""
    done = wait = 0.0
    at_issue = None                                    # the waits before the predictor runs delay its queue
    queued = [(j, 0) for j in range(token_layers)] + [(first + j, first) for j in range(n_pred)]
    for j, issued in queued:
        if issued and at_issue is None:
            at_issue = wait
        done = max(done, issued * layer_s + (at_issue if issued else 0.0)) + loads_per_layer * load_s
        w = max(0.0, done - ((j + lead) * layer_s + wait))
        wait += w
    return wait


def layer_times(counts: dict, target: Target, n_layers: int) -> tuple[float, float] | None:
    """(compute seconds of one layer, lead): from the run's per-operator instruction counts (toolchain/profile.py
    rows, in graph order, named layers.N.*) and its estimated cycles per token. None without them."""
    rows, cycles = counts.get("ops"), counts.get("estimated_cycles_per_token")
    if not rows or not cycles or not target.clock_hz:
        return None
    total = sum(r["instructions"] for r in rows) or 1.0
    layer, per_layer, before = None, {}, {}
    for r in rows:
        name = r["name"]
        if name.startswith("layers."):
            layer = int(name.split(".")[1])
        elif r["op"] not in ("quantize_q8", "moe_topk"):   # the unnamed kernels inside a layer
            layer = None
        if layer is None or r["op"] == "moe_predict":        # the predictor: before the window starts
            continue
        per_layer[layer] = per_layer.get(layer, 0.0) + r["instructions"]
        if r["op"] in ("moe_experts", "moe_experts_q8"):
            before.setdefault(layer, per_layer[layer] - r["instructions"])
    if not per_layer:
        return None
    layers_instr = sum(per_layer.values())
    layer_s = cycles / target.clock_hz * layers_instr / total / n_layers
    leads = [before[lay] / per_layer[lay] for lay in before if per_layer[lay]]
    return layer_s, sum(leads) / len(leads) if leads else 0.0


def expert_stats(stats: dict[str, float], rep: dict, target: Target, counts: dict) -> dict:
    """`slmc run --json`'s expert fields: the run's totals and the estimated stall per generated position,
    which an estimated tokens/s of the run (`counts`, toolchain/profile.py) then includes."""
    if "expert_hits" not in stats:
        return {}
    out: dict = {k: int(stats[k]) for k in COUNTERS + PREFETCH_COUNTERS if k in stats}
    ex = rep.get("experts") or {}
    bw, positions = slow_bytes_per_s(target), stats.get("positions", 0)
    loads = out["expert_misses"] + out.get("expert_prefetches", 0)
    if out.get("expert_prefetch_planned"):
        out["expert_prefetch_hit_rate"] = out["expert_prefetch_hits"] / out["expert_prefetch_planned"]
    stall = None
    if bw and positions:
        per_load = out["expert_bytes_loaded"] / loads / bw if loads else 0.0
        stall = out["expert_misses"] * per_load / positions
        pred = ex.get("predictor")
        if pred and out.get("expert_prefetches"):
            times = layer_times(counts, target, ex["layers"])
            n_pred, n_tok = len(pred["layers"]), len(pred.get("token_layers") or ())
            if times is None:  # no counts: nothing hidden
                hidden = 0.0
                stall += out["expert_prefetches"] * per_load / positions
            else:
                per_layer = out["expert_prefetches"] / positions / (n_pred + n_tok)
                wait = prefetch_wait(per_load, per_layer, n_pred, *times, first=pred["layers"][0], token_layers=n_tok)
                hidden = out["expert_prefetches"] * per_load / positions - wait
                stall += wait
                out["expert_layer_compute_s"], out["expert_lead"] = times
            out["expert_prefetch_hidden_s_per_token"] = hidden
    out["expert_stall_s_per_token"] = stall
    if stall is not None and counts.get("estimated_tokens_per_s"):
        out["estimated_tokens_per_s"] = 1.0 / (1.0 / counts["estimated_tokens_per_s"] + stall)
        out["estimate_basis"] = (f"{counts.get('estimate_basis')}, plus the expert cache's loads from flash"
                                 + (" (the predictor's overlapped with compute: sim/experts.py)"
                                    if "expert_prefetch_hidden_s_per_token" in out else ""))
    return out


def report_section(graphs: list, slots: int, policy: str, routing: str = "router",
                   predictor: dict | None = None) -> dict | None:
    """report.json's `experts`: the model's experts and what the cache holds of them; with the predictor its
    bytes (fp32 weights), its held-out hit rate (the trainer's, on stories it was not trained on), the layers
    it reads and predicts, and the routing."""
    from slmc.passes.expert_cache import slot_bytes

    nodes = [n for g in graphs[:1] for n in g.nodes if n.op in ("moe_experts", "moe_experts_q8")]
    if not nodes:
        return None
    n = nodes[0]
    per_expert = slot_bytes(n)
    pred = next((m for g in graphs[:1] for m in g.nodes if m.op == "moe_predict"), None)
    pbytes = sum(v.nbytes for v in pred.inputs[2:6] if v is not None) if pred is not None else 0
    return dict(count=n.attrs["n_experts"], top_k=n.attrs["k"], layers=len(nodes), slots=slots,
                slot_bytes=per_expert if slots else 0, cache_bytes=slots * per_expert,
                all_experts_bytes=per_expert * n.attrs["n_experts"] * len(nodes), prefetch=policy if slots else None,
                routing=routing if pred is not None else None, predictor_bytes=pbytes,
                predictor_hit_rate=(predictor or {}).get("hit_rate_heldout") if pred is not None else None,
                predictor=predictor if pred is not None else None)
