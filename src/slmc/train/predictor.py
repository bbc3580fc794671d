"""Train the SiDA-style expert predictor of a Mixtral (issue 18 item 3, offline side).

SiDA (MLSys 2024) predicts, before a token's MoE layers run, which experts each of them will choose, so the
experts can be loaded into fast memory ahead of use. Here: run the trained model (torch) over calibration
stories, record every layer's router top-k, and fit a small network (linear, or two layers with a hidden
width) from one early hidden state (layer 0's output, or the token embedding) to the experts of every
later layer. The file format and its checked loader are slmc.frontend.expert_predictor; this module
writes what that loader reads and measures the hit rate on held-out stories.

    PYTHONPATH=src python -m slmc.train.predictor --model models/moe --input layer_output --hidden 0
    PYTHONPATH=src python -m slmc.train.predictor --model models/moe --sweep
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from slmc.frontend.expert_predictor import FORMAT, VERSION, router_fingerprint
from slmc.train.stories import generate_stories

BOS = 1
EPS = 1e-5
CALIB_SEED, HELDOUT_SEED = 0, 1      # calibration: training stories; held out: the validation stories
SWEEP = (("layer_output", 0), ("layer_output", 64), ("layer_output", 128), ("layer_output", 256),
         ("embedding", 0), ("embedding", 64), ("embedding", 128), ("embedding", 256))


@dataclass
class Routing:
    """One row per token of the stories (each fed alone from BOS at position 0)."""
    features: dict[str, torch.Tensor]   # "embedding" / "layer_output": (N, dim) float32
    experts: torch.Tensor               # (N, n_layers, top_k) the router's choice, best first
    tokens: torch.Tensor                # (N,) the token ids


def _padded(seqs: list[list[int]], with_next: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of token lists padded with 0 after their ends, and which positions are real (with_next: real
    and followed by a next token). Padding sits after every real token, so under the causal mask it changes
    nothing real."""
    ids = torch.zeros((len(seqs), max(len(s) for s in seqs)), dtype=torch.long)
    real = torch.zeros(ids.shape, dtype=torch.bool)
    for j, s in enumerate(seqs):
        ids[j, : len(s)] = torch.tensor(s)
        real[j, : len(s) - int(with_next)] = True
    return ids, real


@torch.no_grad()
def record(model: nn.Module, token_lists: list[list[int]], batch: int = 64) -> Routing:
    """The router's top-k of every layer and the predictor's candidate inputs, for every real token."""
    model.eval()
    k = model.config.num_experts_per_tok
    emb, l0, chosen, tokens = [], [], [], []
    for i in range(0, len(token_lists), batch):
        ids, real = _padded(token_lists[i: i + batch])
        # padding sits after every real token, so under the causal mask it changes nothing real
        out = model(ids, output_router_logits=True, output_hidden_states=True)
        mask = real.reshape(-1)
        dim = out.hidden_states[0].shape[-1]
        emb.append(out.hidden_states[0].reshape(-1, dim)[mask])      # the token embedding
        l0.append(out.hidden_states[1].reshape(-1, dim)[mask])       # the residual stream after layer 0
        layers = [torch.topk(r.float(), k, dim=-1).indices[mask] for r in out.router_logits]
        chosen.append(torch.stack(layers, dim=1))
        tokens.append(ids.reshape(-1)[mask])
    return Routing({"embedding": torch.cat(emb), "layer_output": torch.cat(l0)}, torch.cat(chosen), torch.cat(tokens))


def token_table(routing: Routing, layers: list[int], n_experts: int, vocab: int) -> torch.Tensor:
    """(vocab, len(layers), top_k): per token id, the experts each layer's router chose most often for it in
    `routing` (ties: the lower expert); a token never seen takes the layer's most frequent experts overall.
    What predicts a layer's experts from the token alone, before any layer has run."""
    k = routing.experts.shape[-1]
    counts = torch.zeros((vocab, len(layers), n_experts), dtype=torch.float64)
    for i, lay in enumerate(layers):
        for j in range(k):
            counts[:, i].index_put_((routing.tokens, routing.experts[:, lay, j]), torch.ones(len(routing.tokens),
                                    dtype=torch.float64), accumulate=True)
    unseen = counts.sum(dim=(1, 2)) == 0
    counts[unseen] = counts.sum(dim=0)
    # stable sort on -count: equal counts keep the lower expert first
    return torch.argsort(-counts, dim=-1, stable=True)[..., :k].to(torch.int32)


def token_hit_rate(table: torch.Tensor, routing: Routing, layers: list[int]) -> float:
    """The share of the router's top-k experts of `layers` that the token table names, over every token."""
    planned = table[routing.tokens].long()                                   # (N, L, k)
    actual = routing.experts[:, layers]
    return round(float((actual[..., :, None] == planned[..., None, :]).any(-1).float().mean()), 4)


def story_ids(sp, stories: list[str], seq_len: int) -> list[list[int]]:
    return [([BOS] + sp.encode(s.strip()))[:seq_len] for s in stories]


class Predictor(nn.Module):
    """rms-normalise (no weight), then linear, or linear-SiLU-linear: frontend/expert_predictor.py's math."""

    def __init__(self, dim: int, n_out: int, hidden: int) -> None:
        super().__init__()
        self.fc0 = nn.Linear(dim, hidden or n_out)
        self.fc1 = nn.Linear(hidden, n_out) if hidden else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS)
        y = self.fc0(x)
        return self.fc1(F.silu(y)) if self.fc1 is not None else y


def targets_for(layers: list[int], routing: Routing, n_experts: int) -> torch.Tensor:
    """(N, len(layers), n_experts): 1/k on each chosen expert, the distribution the scores are fitted to."""
    ch = routing.experts[:, layers]
    t = torch.zeros(*ch.shape[:2], n_experts)
    t.scatter_(-1, ch, 1.0 / ch.shape[-1])
    return t


def fit(routing: Routing, kind: str, layers: list[int], n_experts: int, hidden: int, epochs: int = 10,
        batch: int = 1024, lr: float = 5e-3, seed: int = 0) -> Predictor:
    """Listwise fit: per predicted layer, softmax over the experts against the router's top-k (1/k each).
    It ranks the experts, which is what a prefetcher reads (the best m of them)."""
    x = routing.features[kind]
    y = targets_for(layers, routing, n_experts)
    torch.manual_seed(seed)
    net = Predictor(x.shape[-1], len(layers) * n_experts, hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * ((x.shape[0] + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], batch):
            idx = order[i: i + batch]
            s = net(x[idx]).reshape(len(idx), len(layers), n_experts)
            loss = -(y[idx] * F.log_softmax(s, -1)).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def hit_rates(net: Predictor, routing: Routing, kind: str, layers: list[int], n_experts: int,
              extra: tuple[int, ...] = (0, 1, 2)) -> dict[str, dict[str, float]]:
    """Per m = top_k + e: the fraction of the router's actual top-k experts that are among the predictor's m
    best, over every token; "all" averages the predicted layers at or after layer 1, "layer N" one layer."""
    k = routing.experts.shape[-1]
    s = net(routing.features[kind]).reshape(-1, len(layers), n_experts)
    ranked = torch.argsort(s, dim=-1, descending=True, stable=True)
    actual = routing.experts[:, layers]                                     # (N, P, k)
    out: dict[str, dict[str, float]] = {}
    for e in extra:
        m = k + e
        hit = (actual[..., :, None] == ranked[..., None, :m]).any(-1).float()  # (N, P, k)
        per_layer = hit.mean(dim=(0, 2))
        row = {f"layer {lay}": round(float(per_layer[i]), 4) for i, lay in enumerate(layers)}
        later = [i for i, lay in enumerate(layers) if lay >= 1]
        row["all"] = round(float(per_layer[later].mean()), 4)
        out[f"top{m}"] = row
    return out


@torch.no_grad()
def predicted_routing(model: nn.Module, net: Predictor, kind: str, layers: list[int],
                      token_lists: list[list[int]], batch: int = 64) -> dict[str, float]:
    """SiDA's setting (`--expert-routing predicted`): in every predicted layer the predictor's top-k experts
    replace the router's, weighted by the router's softmax renormalised over them. Returns the next-token
    top-1 agreement with the full model and both models' loss per token, over every real position."""
    model.eval()
    k = model.config.num_experts_per_tok
    state: dict[str, torch.Tensor] = {}

    def grab_input(_m, _args, out):              # layer 0's output (a forward hook on the decoder layer)
        state["h"] = out[0] if isinstance(out, tuple) else out

    def route(layer_pos: int):
        def hook(_m, _args, out):
            logits, _scores, _idx = out
            s = net(state["h"].reshape(-1, state["h"].shape[-1])).reshape(-1, len(layers), logits.shape[-1])
            idx = torch.topk(s[:, layer_pos], k, dim=-1).indices
            w = torch.softmax(logits.float(), -1).gather(-1, idx)
            return logits, w / w.sum(-1, keepdim=True), idx
        return hook

    agree = total = 0
    loss_full = loss_pred = 0.0
    for i in range(0, len(token_lists), batch):
        ids, real = _padded(token_lists[i: i + batch], with_next=True)  # real: positions with a next token
        full = model(ids).logits
        src = model.model.embed_tokens if kind == "embedding" else model.model.layers[0]
        hooks = [src.register_forward_hook(grab_input)]
        hooks += [model.model.layers[lay].mlp.gate.register_forward_hook(route(p)) for p, lay in enumerate(layers)]
        try:
            pred = model(ids).logits
        finally:
            for h in hooks:
                h.remove()
        tgt = torch.roll(ids, -1, dims=1)
        agree += int(((full.argmax(-1) == pred.argmax(-1)) & real).sum())
        total += int(real.sum())
        for name, lg in (("full", full), ("pred", pred)):
            ce = F.cross_entropy(lg.double().reshape(-1, lg.shape[-1]), tgt.reshape(-1), reduction="none")
            v = float(ce[real.reshape(-1)].sum())
            if name == "full":
                loss_full += v
            else:
                loss_pred += v
    return {"top1_agreement": round(agree / total, 4), "loss_full": round(loss_full / total, 4),
            "loss_predicted": round(loss_pred / total, 4), "positions": total}


def save(net: Predictor, folder: Path, kind: str, input_layer: int, layers: list[int], model: nn.Module,
         extra: dict | None = None, tokens: torch.Tensor | None = None) -> Path:
    """predictor.safetensors and predictor.json, the pair frontend/expert_predictor.py loads (with `tokens`, the
    token table of layers 0..input_layer, stored as F32 expert indices)."""
    from safetensors.numpy import save_file

    cfg = model.config
    tensors = {n: p.detach().float().numpy().copy() for n, p in net.state_dict().items()}
    if tokens is not None:
        tensors["token_plan"] = tokens.float().numpy()
        extra = {**(extra or {}), "token_layers": list(range(input_layer + 1))}
    path = folder / "predictor.safetensors"
    save_file(tensors, str(path))
    routers = [lay.mlp.gate.weight.detach().float().numpy() for lay in model.model.layers]
    meta = {"format": FORMAT, "version": VERSION, "input": kind, "input_layer": input_layer,
            "layers": layers, "hidden": net.fc1.in_features if net.fc1 is not None else 0,
            "normalize": "rms", "eps": EPS, "dim": cfg.hidden_size, "n_layers": cfg.num_hidden_layers,
            "n_experts": cfg.num_local_experts, "top_k": cfg.num_experts_per_tok,
            "router_sha256": router_fingerprint(routers), **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def predicted_layers(kind: str, n_layers: int) -> tuple[int, list[int]]:
    """(input_layer, layers it predicts): the embedding predicts every layer, layer 0's output the later ones."""
    return (-1, list(range(n_layers))) if kind == "embedding" else (0, list(range(1, n_layers)))


def calibration(model: nn.Module, sp, n_calib: int, n_heldout: int) -> tuple[Routing, Routing, list[list[int]]]:
    """Routing over the calibration stories and over the held-out ones, and the held-out token ids."""
    seq_len = model.config.max_position_embeddings
    calib = record(model, story_ids(sp, generate_stories(n_calib, CALIB_SEED), seq_len))
    held_ids = story_ids(sp, generate_stories(n_heldout, HELDOUT_SEED), seq_len)
    return calib, record(model, held_ids), held_ids


def build(folder: Path, threads: int = 2, n_calib: int = 2000, n_heldout: int = 500) -> dict:
    """The sweep over input and size; the smallest predictor within one point of the best held-out top-k hit
    rate is saved beside the model. Returns the figures for meta.json and the README."""
    import sentencepiece as spm

    from slmc.train.train_moe import load_trained

    torch.set_num_threads(threads)
    t0 = time.time()
    model = load_trained(folder)
    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    calib, held, held_ids = calibration(model, sp, n_calib, n_heldout)
    n_layers, n_experts = model.config.num_hidden_layers, model.config.num_local_experts
    k = model.config.num_experts_per_tok
    print(f"predictor: recorded {calib.experts.shape[0]} calibration and {held.experts.shape[0]} held-out tokens "
          f"({time.time() - t0:.1f}s)", flush=True)
    rows, nets = [], {}
    for kind, hidden in SWEEP:
        t = time.time()
        src, layers = predicted_layers(kind, n_layers)
        net = fit(calib, kind, layers, n_experts, hidden)
        n_bytes = 4 * sum(p.numel() for p in net.parameters())
        row = {"input": kind, "input_layer": src, "hidden": hidden, "layers": layers, "bytes": n_bytes,
               "train": hit_rates(net, calib, kind, layers, n_experts),
               "heldout": hit_rates(net, held, kind, layers, n_experts), "fit_s": round(time.time() - t, 1)}
        rows.append(row)
        nets[(kind, hidden)] = net
        print(f"  {kind:12s} hidden {hidden:3d} ({n_bytes:6d} B): top{k} hit rate train "
              f"{row['train'][f'top{k}']['all']:.4f} held-out {row['heldout'][f'top{k}']['all']:.4f}, "
              f"top{k + 2} held-out {row['heldout'][f'top{k + 2}']['all']:.4f} ({row['fit_s']}s)", flush=True)
    best = max(r["heldout"][f"top{k}"]["all"] for r in rows)
    chosen = min((r for r in rows if r["heldout"][f"top{k}"]["all"] >= best - 0.01), key=lambda r: r["bytes"])
    net = nets[(chosen["input"], chosen["hidden"])]
    routed = predicted_routing(model, net, chosen["input"], chosen["layers"], held_ids)
    print(f"  predicted routing (shipped predictor): {routed}", flush=True)
    table, table_rate = _token_table(model, calib, held, chosen["input_layer"]) if chosen["input"] == "layer_output" \
        else (None, None)
    save(net, folder, chosen["input"], chosen["input_layer"], chosen["layers"], model,
         {"bytes": chosen["bytes"], "hit_rate_heldout": chosen["heldout"], "hit_rate_train": chosen["train"],
          "predicted_routing_heldout": routed,
          **({"token_hit_rate_heldout": table_rate} if table is not None else {}),
          "calibration": {"stories": n_calib, "seed": CALIB_SEED, "tokens": int(calib.experts.shape[0])},
          "heldout": {"stories": n_heldout, "seed": HELDOUT_SEED, "tokens": int(held.experts.shape[0])}}, table)
    chance = {f"top{k + e}": round((k + e) / n_experts, 4) for e in (0, 1, 2)}
    return {"sweep": rows, "chosen": {"input": chosen["input"], "hidden": chosen["hidden"]}, "chance": chance,
            "predicted_routing": routed, "token_table_hit_rate_heldout": table_rate,
            "calibration_tokens": int(calib.experts.shape[0]), "heldout_tokens": int(held.experts.shape[0]),
            "n_calib_stories": n_calib, "n_heldout_stories": n_heldout, "calib_seed": CALIB_SEED,
            "heldout_seed": HELDOUT_SEED, "expert_use_heldout": _expert_use(held, n_experts)}


def _token_table(model: nn.Module, calib: Routing, held: Routing, input_layer: int) -> tuple[torch.Tensor, float]:
    """The token table of layers 0..input_layer (those the predictor cannot see ahead) and its held-out hit rate."""
    layers = list(range(input_layer + 1))
    table = token_table(calib, layers, model.config.num_local_experts, model.config.vocab_size)
    rate = token_hit_rate(table, held, layers)
    print(f"  token table of layers {layers}: top{calib.experts.shape[-1]} hit rate held-out {rate:.4f}", flush=True)
    return table, rate


def add_token_table(folder: Path, threads: int = 2, n_calib: int = 2000, n_heldout: int = 500) -> float:
    """Add the token table to the predictor already beside the model (its network unchanged): predictor.safetensors
    gains token_plan, predictor.json token_layers and token_hit_rate_heldout. Returns that hit rate."""
    import sentencepiece as spm
    from safetensors.numpy import load_file, save_file

    from slmc.train.train_moe import load_trained

    torch.set_num_threads(threads)
    model = load_trained(folder)
    meta_path = folder / "predictor.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta["input"] != "layer_output":
        raise SystemExit("an embedding predictor already predicts every layer: no token table to add")
    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    calib, held, _ = calibration(model, sp, n_calib, n_heldout)
    table, rate = _token_table(model, calib, held, meta["input_layer"])
    tensors = load_file(str(folder / "predictor.safetensors"))
    tensors["token_plan"] = table.float().numpy()
    save_file(tensors, str(folder / "predictor.safetensors"))
    meta |= {"token_layers": list(range(meta["input_layer"] + 1)), "token_hit_rate_heldout": rate}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return rate


def _expert_use(r: Routing, n_experts: int) -> list[list[float]]:
    """Per layer, the share of top-k slots each expert takes: how balanced the router is (1/n_experts each)."""
    n, layers, k = r.experts.shape
    return [[round(float((r.experts[:, lay] == e).sum()) / (n * k), 4) for e in range(n_experts)]
            for lay in range(layers)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/moe"))
    ap.add_argument("--input", choices=("layer_output", "embedding"), default="layer_output")
    ap.add_argument("--hidden", type=int, default=0, help="0: linear; N: two layers with N hidden units")
    ap.add_argument("--sweep", action="store_true", help="every input and size; save the smallest near-best")
    ap.add_argument("--token-table", action="store_true",
                    help="only add the token table of the layers before the predictor's input to its files")
    ap.add_argument("--calib-stories", type=int, default=2000)
    ap.add_argument("--heldout-stories", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="where predictor.safetensors/.json go (default: the model folder)")
    args = ap.parse_args(argv)
    out = args.out or args.model
    if args.token_table:
        print(json.dumps({"token_hit_rate_heldout": add_token_table(args.model, args.threads, args.calib_stories,
                                                                      args.heldout_stories)}))
        return
    if args.sweep:  # writes into the model folder, as make train-moe does
        print(json.dumps(build(args.model, args.threads, args.calib_stories, args.heldout_stories)["chosen"]))
        return
    import sentencepiece as spm

    from slmc.train.train_moe import load_trained

    torch.set_num_threads(args.threads)
    model = load_trained(args.model)
    sp = spm.SentencePieceProcessor(model_file=str(args.model / "tokenizer.model"))
    calib, held, _ = calibration(model, sp, args.calib_stories, args.heldout_stories)
    src, layers = predicted_layers(args.input, model.config.num_hidden_layers)
    n_experts = model.config.num_local_experts
    net = fit(calib, args.input, layers, n_experts, args.hidden)
    rates = {"train": hit_rates(net, calib, args.input, layers, n_experts),
             "heldout": hit_rates(net, held, args.input, layers, n_experts)}
    out.mkdir(parents=True, exist_ok=True)
    save(net, out, args.input, src, layers, model,
         {"hit_rate_heldout": rates["heldout"], "hit_rate_train": rates["train"]})
    print(json.dumps(rates, indent=2))


if __name__ == "__main__":
    main()
