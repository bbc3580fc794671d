"""Mixture of experts on the RP2350 (issue 18): the bundled MoE (models/moe, `make train-moe`) with its experts
read in place from flash, and through an SRAM expert cache of a quarter of all experts under each policy:
on demand (none), lru, and the trained predictor (SiDA's idea) with the router deciding and with predicted
routing.

    python benchmarks/moe.py     # measures, stores results.json["moe"], rewrites docs/BENCHMARKS.md and
                                 # docs/moe_expert_loads.png

Each build is q8 for rp2350-arm with an fp16 KV cache (the cached builds need it to fit the SRAM; the same for
all, so the ids compare), run on the emulator over STEPS positions from the prompt, greedy: exact
instruction counts, the cache's hits, misses and bytes copied, and the estimated tokens/s at 150 MHz
(toolchain/profile.py's cycle model, flash at 37.5 MB/s; the loads at use not overlapped with compute, the
predictor's overlapped as sim/experts.py models it). Every router-routed build must print the same ids (the
cache changes no number). The per-token picture replays the slot table (sim/expert_replay.py) over the
routing of the numpy twin of the predictor build, checked against the C run's totals. Predicted routing's
top-1 agreement: the generated C on the host, teacher-forced over held-out stories, against the build with
every expert resident.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "moe"
PICTURE = ROOT / "docs" / "moe_expert_loads.png"
TARGET, STEPS, PROMPT = "rp2350-arm", 64, "Once upon a time"
AGREEMENT_STORIES = 8   # held-out stories (train/predictor.py's HELDOUT_SEED) for predicted routing's agreement


def _slmc(*args: object) -> str:
    r = subprocess.run([sys.executable, "-m", "slmc.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return r.stdout


def _configs(quarter: int) -> list[tuple[str, list]]:
    cache = ["--expert-slots", quarter, "--expert-prefetch"]
    return [("in place", []), (f"{quarter} slots, none", [*cache, "none"]), (f"{quarter} slots, lru", [*cache, "lru"]),
            (f"{quarter} slots, predictor", [*cache, "predictor"]),
            (f"{quarter} slots, predictor, predicted routing", [*cache, "predictor", "--expert-routing", "predicted"])]


def measure(log=print) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "probe"
        _slmc("compile", MODEL, "-t", TARGET, "-q", "q8", "-o", base, "--expert-slots", 2)
        ex = json.loads((base / "report.json").read_text())["experts"]
        quarter = max(ex["top_k"], ex["count"] * ex["layers"] // 4)
        for name, flags in _configs(quarter):
            out = Path(tmp) / name.replace(" ", "_").replace(",", "")
            _slmc("compile", MODEL, "-t", TARGET, "-q", "q8", "--kv-cache", "fp16", "-o", out, *flags)
            rep = json.loads((out / "report.json").read_text())
            run = json.loads(_slmc("run", out, "--steps", STEPS, "--prompt", PROMPT, "--json"))
            row = dict(config=name, ids=run["ids"], instructions_per_token=run["instructions_per_token"],
                       estimated_tokens_per_s=run["estimated_tokens_per_s"],
                       flash_s_per_token=run.get("estimated_flash_seconds_per_token"),
                       cache_bytes=rep["experts"]["cache_bytes"], all_experts_bytes=rep["experts"]["all_experts_bytes"],
                       predictor_bytes=rep["experts"]["predictor_bytes"],
                       predictor_hit_rate_heldout=rep["experts"]["predictor_hit_rate"],
                       routing=rep["experts"].get("routing"),
                       **{k: run.get(k) for k in ("expert_hits", "expert_misses", "expert_bytes_loaded",
                                                  "expert_stall_s_per_token", "expert_prefetches",
                                                  "expert_prefetch_hits", "expert_prefetch_planned",
                                                  "expert_prefetch_hit_rate", "expert_prefetch_hidden_s_per_token",
                                                  "expert_layer_compute_s", "expert_lead")})
            log(f"moe: {name}: {row['estimated_tokens_per_s']:.1f} tokens/s (ESTIMATE)")
            rows.append(row)
    router = [r for r in rows if r["routing"] != "predicted"]
    assert all(r["ids"] == rows[0]["ids"] for r in router), "the expert cache changed the ids"
    res = dict(model=str(MODEL.relative_to(ROOT)), target=TARGET, steps=STEPS, prompt=PROMPT, slots=quarter,
               rows=rows, agreement=agreement(log))
    res["per_token"] = per_token(res, log)
    picture(res)
    return res


def agreement(log=print) -> dict:
    """Predicted routing's next-token top-1 agreement with every expert resident: both host builds (q8, the
    generated C), teacher-forced over held-out stories."""
    import sentencepiece as spm

    from slmc.train.predictor import HELDOUT_SEED, story_ids
    from slmc.train.stories import generate_stories

    sp = spm.SentencePieceProcessor(model_file=str(MODEL / "tokenizer.model"))
    stories = story_ids(sp, generate_stories(AGREEMENT_STORIES, HELDOUT_SEED), 256)
    agree = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for name, flags in (("full", []), ("predicted", ["--expert-slots", 8, "--expert-prefetch", "predictor",
                                                         "--expert-routing", "predicted"])):
            outs[name] = Path(tmp) / name
            _slmc("compile", MODEL, "-t", "host", "-q", "q8", "--seq", 0, "-o", outs[name], *flags)
        for i, ids in enumerate(stories):
            top = {}
            for name, out in outs.items():
                dump = Path(tmp) / f"{name}{i}.f32"
                _slmc("run", out, "--steps", len(ids), "--prompt-ids", ",".join(map(str, ids)), "--ids",
                      "--dump-logits", dump)
                top[name] = np.fromfile(dump, np.float32).reshape(len(ids), -1).argmax(axis=1)[:-1]
            agree += int((top["full"] == top["predicted"]).sum())
            total += len(ids) - 1
    log(f"moe: predicted routing top-1 agreement {agree / total:.4f} over {total} positions")
    return dict(top1_agreement=agree / total, positions=total, stories=AGREEMENT_STORIES, seed=HELDOUT_SEED)


def per_token(res: dict, log=print) -> dict:
    """Per token: loads at use and ahead, and the estimated stall, for none / lru / predictor (router routing),
    from the slot table replayed over the numpy twin's routing of the predictor build; its totals must equal
    the C run's counters."""
    from slmc.frontend.build import build_step_graph
    from slmc.frontend.expert_predictor import find_predictor, load_predictor
    from slmc.frontend.load import load_model
    from slmc.frontend.tokenizer import find_tokenizer, load_tokenizer
    from slmc.passes import expert_cache, expert_predict
    from slmc.reference.interp import new_state, run
    from slmc.sim.experts import prefetch_wait
    from slmc.sim.expert_replay import replay

    model = load_model(MODEL)
    predictor = load_predictor(find_predictor(MODEL), model)  # type: ignore[arg-type]
    g = expert_cache.run(build_step_graph(model, 1, "q8", "fp16"), res["slots"], "predictor")
    g = expert_predict.run(g, predictor, "router")
    tok = load_tokenizer(find_tokenizer(MODEL))  # type: ignore[arg-type]
    seq = tok.encode(res["prompt"], bos=True)      # as `slmc run --prompt` encodes it
    seq = (seq + res["rows"][0]["ids"])[:res["steps"]]
    state, chosen, plans, token_plans = new_state(g), [], [], []
    n_layers = model.config.n_layers
    for p, t in enumerate(seq):
        env = run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state, keep=True)
        chosen.append([env[f"layers.{lay}.expert_ids"][0].tolist() for lay in range(n_layers)])
        plans.append(state["expert_plan"][0].tolist())
        if predictor.token_layers:
            token_plans.append(env["expert_token_plan"][0].tolist())
    first, n_tok = predictor.layers[0], len(predictor.token_layers)
    by = {r["config"].split(", ")[-1]: r for r in res["rows"] if r["routing"] != "predicted"}
    out: dict = {}
    for policy in ("none", "lru", "predictor"):
        row = by[policy]
        pred = policy == "predictor"
        loads = replay(chosen, res["slots"], policy, model.config.n_experts, plans if pred else None, first,
                       token_plans if pred and n_tok else None)
        totals = (sum(t.misses for t in loads), sum(t.hits for t in loads), sum(t.prefetches for t in loads))
        assert totals == (row["expert_misses"], row["expert_hits"], row["expert_prefetches"] or 0), (policy, totals)
        load_s = row["expert_bytes_loaded"] / (totals[0] + totals[2]) / 37.5e6
        n_pred = len(predictor.layers)
        stall = [t.misses * load_s + (prefetch_wait(load_s, t.prefetches / (n_pred + n_tok), n_pred,
                                                    row["expert_layer_compute_s"], row["expert_lead"], first, n_tok)
                                      if pred else 0.0) for t in loads]
        out[policy] = dict(misses=[t.misses for t in loads], prefetches=[t.prefetches for t in loads],
                           stall_ms=[1e3 * s for s in stall])
    log("moe: the slot table replayed per token matches the C runs' totals")
    return out


def picture(res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pt = res["per_token"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    colours = {"none": "#c0392b", "lru": "#e67e22", "predictor": "#2e86c1"}
    for policy, d in pt.items():
        x = np.arange(len(d["misses"]))
        a.step(x, d["misses"], where="mid", color=colours[policy], label=f"{policy}: loads at use")
        b.step(x, d["stall_ms"], where="mid", color=colours[policy], label=policy)
    a.step(np.arange(len(pt["predictor"]["prefetches"])), pt["predictor"]["prefetches"], where="mid",
           color=colours["predictor"], linestyle=":", label="predictor: loads ahead of use")
    a.set_ylabel("expert loads per token")
    a.legend(fontsize=8, ncol=2)
    b.set_ylabel("estimated stall per token (ms)")
    b.set_xlabel(f"position (\"{res['prompt']}\" then greedy), {res['target']} q8, {res['slots']} expert slots")
    b.legend(fontsize=8)
    fig.suptitle("Expert loads and stalls per token (ESTIMATE: flash at 37.5 MB/s, 150 MHz)", fontsize=10)
    fig.tight_layout()
    fig.savefig(PICTURE, dpi=110)
    plt.close(fig)


def render(res: dict | None) -> list[str]:
    if not res:
        return []
    out = ["## 16. Mixture of experts on the RP2350 (issue 18)", "",
           f"The bundled MoE ({res['model']}) as q8 for {res['target']} (fp16 KV cache), {res['steps']} positions from "
           f"\"{res['prompt']}\", greedy; every router-routed build prints the same ids. ESTIMATES at 150 MHz: exact "
           "instruction counts through the Cortex-M33 cycle model, the other weights read from flash at 37.5 MB/s once "
           "per token, not overlapped with compute; the experts in place: only the chosen ones read; through the cache: "
           "its copies (a load at use is a stall; the predictor's loads overlap compute, below). Reproduce: "
           "`python benchmarks/moe.py`.", "",
           "| experts | SRAM for experts | hits | loads at use | loads ahead | bytes copied per token | stall per token "
           "| instructions per token | tokens/s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        cached = r["expert_hits"] is not None
        hits, misses = (f"{r['expert_hits']:,}", f"{r['expert_misses']:,}") if cached else ("-", "-")
        ahead = f"{r['expert_prefetches']:,}" if cached and r.get("expert_prefetch_planned") else "-"
        copied = f"{r['expert_bytes_loaded'] / res['steps']:,.0f}" if cached else "-"
        stall = f"{1e3 * r['expert_stall_s_per_token']:.2f} ms" if cached else "-"
        out.append(f"| {r['config']} | {r['cache_bytes']:,} of {r['all_experts_bytes']:,} B | {hits} | {misses} | "
                   f"{ahead} | {copied} | {stall} | {r['instructions_per_token']:,.0f} | "
                   f"{r['estimated_tokens_per_s']:.1f} |")
    return out + [""] + _goals(res) + [""]


def _goals(res: dict) -> list[str]:
    if "agreement" not in res:
        return []
    rows = {r["config"].split(", ", 1)[-1]: r for r in res["rows"]}
    none, lru, pred, routed = rows["none"], rows["lru"], rows["predictor"], rows["predictor, predicted routing"]
    frac = pred["cache_bytes"] / pred["all_experts_bytes"]
    ratio = pred["expert_stall_s_per_token"] / none["expert_stall_s_per_token"]
    held, run_rate = pred["predictor_hit_rate_heldout"], pred["expert_prefetch_hit_rate"]
    agree = res["agreement"]
    meta = json.loads((MODEL / "predictor.json").read_text())
    table_rate = meta.get("token_hit_rate_heldout")

    def verdict(ok: bool) -> str:
        return "meets" if ok else "**misses**"

    return [
        f"The predictor: {pred['predictor_bytes']:,} B of fp32 weights (a two-layer MLP on the residual stream after "
        f"layer 0, predicting the top-2 experts of layers 1..3), run at the start of layer 1 in the generated C "
        f"(one `moe_predict` call per layer of the loop, active in one), its loads queued into slots marked for "
        f"their layer. "
        + (f"Layer 0, which the predictor cannot see ahead, has a token table beside it (per token id, the top-2 experts "
           f"layer 0's router chose most often for it in the trainer's calibration text: {100 * table_rate:.1f}% held-out "
           f"hit rate), whose experts load as the step starts (`moe_token_prefetch`, before the layer loop). "
           if table_rate is not None else "")
        + f"Predicted routing: in layers 1..3 the predicted experts replace the router's top-2, weighted by "
        f"the router's probabilities renormalised over them (as train/predictor.py measures it).", "",
        f"Overlap model (sim/experts.py; ASSUMED): one DMA channel at the flash's 37.5 MB/s works through the queue "
        f"(the token table's loads from the step's start, the predictor's from layer 1's), in layer order, while the "
        f"core computes; layer j's experts are needed after {pred['expert_lead']:.2f} "
        f"of a layer (the share of a layer's instructions before its experts) plus j layers of "
        f"{1e3 * pred['expert_layer_compute_s']:.2f} ms each (the run's estimated compute per token times the layers' "
        f"share of instructions, split evenly); only the part not done by then stalls, and later deadlines move by it; "
        f"the DMA does not run while the core stalls on flash for the other weights; a token's loads spread evenly "
        f"over its predicted layers; the emulated build's memcpy instructions count as compute (a DMA would not "
        f"cost them), so the layers look slower and hide more than a chip would; loads at use stall in full. "
        f"Hidden per token: {1e3 * pred['expert_prefetch_hidden_s_per_token']:.2f} ms.", "",
        "Goals (issue 18):", "",
        f"- Expert SRAM {pred['cache_bytes']:,} of {pred['all_experts_bytes']:,} B = {100 * frac:.1f}% of all experts "
        f"(goal at most 25%): {verdict(frac <= 0.25)}. The predictor needs (3 predicted layers + 1) x top-2 = 8 slots.",
        f"- Predictor hit rate (the router's top-2 among the predicted top-2, layers 1..3): {100 * held:.1f}% on the "
        f"trainer's 500 held-out stories (goal at least 90%): {verdict(held >= 0.9)}; {100 * run_rate:.1f}% on this "
        f"run's {res['steps']} positions.",
        f"- Stall per token with the predictor {1e3 * pred['expert_stall_s_per_token']:.2f} ms against "
        f"{1e3 * none['expert_stall_s_per_token']:.2f} ms on demand = {100 * ratio:.0f}% (goal at most 25%): "
        f"{verdict(ratio <= 0.25)}. What remains: the mispredictions, loaded at use, and layer 0's loads ahead, which "
        f"have only {pred['expert_lead']:.2f} of a layer to hide in.",
        f"- Predicted routing's next-token top-1 agreement with every expert resident: {100 * agree['top1_agreement']:.2f}% "
        f"(the generated C, q8, host, teacher-forced over {agree['positions']:,} positions of {agree['stories']} held-out "
        f"stories; the trainer's torch figure over 500 held-out stories: "
        f"{100 * meta['predicted_routing_heldout']['top1_agreement']:.2f}%) "
        f"(goal at least 95%): {verdict(agree['top1_agreement'] >= 0.95)}; it loads no expert at use in layers 1..3.",
        f"- Estimated tokens/s at 150 MHz: in place {rows['in place']['estimated_tokens_per_s']:.1f}, none "
        f"{none['estimated_tokens_per_s']:.1f}, lru {rows['lru']['estimated_tokens_per_s']:.1f}, predictor "
        f"{pred['estimated_tokens_per_s']:.1f}, predicted routing {routed['estimated_tokens_per_s']:.1f}. The predictor "
        f"build stalls less than lru yet estimates {'fewer' if pred['estimated_tokens_per_s'] < lru['estimated_tokens_per_s'] else 'more'} "
        f"tokens/s: the emulated build copies its loads ahead with memcpy on the core, counted as compute "
        f"({pred['instructions_per_token'] - lru['instructions_per_token']:+,.0f} instructions per token against lru), and "
        f"its predictor's weights are read from flash every token "
        f"({1e3 * (pred['flash_s_per_token'] - lru['flash_s_per_token']):+.2f} ms); with the loads on a DMA engine "
        f"the first would go.", "",
        "![expert loads and stalls per token](moe_expert_loads.png)",
        "",
        "Per token (the slot table replayed over the numpy twin's routing, sim/expert_replay.py; its totals equal the "
        "C runs' counters): loads at use and the predictor's loads ahead, and the estimated stall.",
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from render import store

    print(store("moe", measure()))
