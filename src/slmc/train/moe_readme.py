"""models/moe/README.md from meta.json: what train_moe.py measured, as prose and tables."""

from __future__ import annotations

from pathlib import Path


def _kb(n: int) -> str:
    return f"{n:,} B = {n / 1024:.0f} KiB"


def _predictor_md(p: dict, k: int) -> str:
    ms = [f"top{k}", f"top{k + 1}", f"top{k + 2}"]
    head = ("| input | hidden | bytes (fp32) | " + " | ".join(f"train {m}" for m in ms) + " | "
            + " | ".join(f"**held-out {m}**" for m in ms) + " |")
    lines = [head, "|" + "---|" * (3 + 2 * len(ms))]
    for r in p["sweep"]:
        src = "token embedding" if r["input"] == "embedding" else f"layer {r['input_layer']} output"
        cells = [f"{r['train'][m]['all']:.3f}" for m in ms] + [f"{r['heldout'][m]['all']:.3f}" for m in ms]
        mark = " (shipped)" if (r["input"], r["hidden"]) == (p["chosen"]["input"], p["chosen"]["hidden"]) else ""
        lines.append(f"| {src}{mark} | {r['hidden'] or 'linear'} | {r['bytes']:,} | " + " | ".join(cells) + " |")
    chosen = next(r for r in p["sweep"] if (r["input"], r["hidden"]) == (p["chosen"]["input"], p["chosen"]["hidden"]))
    per_layer = "\n".join(
        f"| {m} | " + " | ".join(f"{chosen['heldout'][m][f'layer {lay}']:.3f}" for lay in chosen["layers"])
        + f" | {p['chance'][m]:.3f} |" for m in ms)
    layer_head = "| m | " + " | ".join(f"layer {lay}" for lay in chosen["layers"]) + " | chance (m / experts) |"
    use = "\n".join(f"| {i} | " + " | ".join(f"{u:.2f}" for u in row) + " |"
                    for i, row in enumerate(p["expert_use_heldout"]))
    n_e = len(p["expert_use_heldout"][0])
    return f"""## Expert predictor (SiDA-style): `predictor.safetensors`, `predictor.json`
A small network reads one early hidden state and scores, for every later layer, the experts its router
will choose, so an expert cache can start loading them layers ahead (issue 18; format and checked loader:
`src/slmc/frontend/expert_predictor.py`). Inputs tried: the residual stream after layer 0 (what the model
has computed when layer 1 starts; it predicts layers 1..{len(p['expert_use_heldout']) - 1}) and the token embedding (known before
layer 0; it predicts every layer). Each is rms-normalised (no weight), then a linear layer or two layers with
a SiLU between; fitted listwise (per layer, softmax over the experts against 1/k on each chosen one), AdamW,
10 epochs of batches of 1024, seed 0, on {p['calibration_tokens']:,} tokens of {p['n_calib_stories']:,} training stories (seed {p['calib_seed']}),
each fed alone from BOS.

**Hit rate** = the fraction of the router's actual top-{k} experts, over every token and the layers 1..L-1, that
are among the predictor's m best (m = {k}: a prefetch of exactly the experts used; m = {k + 1}, {k + 2}: prefetching
more). Held out: {p['heldout_tokens']:,} tokens of the {p['n_heldout_stories']} validation stories (seed {p['heldout_seed']}), text
neither the model nor the predictor was trained on. Chance: m / {n_e}.

{chr(10).join(lines)}

The shipped predictor is the smallest whose held-out top-{k} hit rate is within 0.01 of the best. Its held-out
hit rate per layer:

{layer_head}
|{'---|' * (len(chosen['layers']) + 2)}
{per_layer}

With the shipped predictor's choice replacing the router's in layers {', '.join(map(str, chosen['layers']))} (SiDA's setting,
issue 18's `--expert-routing predicted`; each chosen expert weighted by the router's softmax renormalised over
the predicted ones), over the {p['predicted_routing']['positions']:,} held-out next-token positions: **top-1 agreement with
the full model {p['predicted_routing']['top1_agreement']:.3f}**, loss {p['predicted_routing']['loss_predicted']:.4f} nats per token against the
full model's {p['predicted_routing']['loss_full']:.4f}.

{_token_table_md(p, k)}Router balance on the held-out tokens (share of top-{k} choices per expert; {1 / n_e:.3f} is perfectly even):

| layer | {' | '.join(f'e{e}' for e in range(n_e))} |
|{'---|' * (n_e + 1)}
{use}

Measured in {p['wall_s']:.0f} s wall ({p['cpu_s']:.0f} s CPU) for the whole sweep, recording included.
"""


def _token_table_md(p: dict, k: int) -> str:
    """The token table of layer 0 (the layers before the predictor's input), where the predictor file has one."""
    rate = p.get("token_table_hit_rate_heldout")
    if rate is None:
        return ""
    return (f"Layer 0 runs before the predictor's input, so the predictor file also holds a token table "
            f"(`token_plan`): per token id, the top-{k} experts layer 0's router chose most often for it in the "
            f"calibration stories (a token never seen: the layer's most frequent overall). The generated C loads them "
            f"as the step starts. Held-out top-{k} hit rate of layer 0: **{rate:.3f}** (`python -m slmc.train.predictor "
            f"--token-table` adds it to a trained predictor).\n\n")


def write_readme(out: Path, meta: dict) -> None:
    a, r, z = meta["architecture"], meta["recipe"], meta["sizes"]
    sample_md = "\n".join(f"**{s['title']}**\n\n> {s['text']}\n" for s in meta["samples"])
    pred = _predictor_md(meta["predictor"], a["top_k"]) if "predictor" in meta else ""
    text = f"""# slmc mixture-of-experts model

A {z['n_params']:,}-parameter Mixtral-architecture decoder ({a['n_experts']} experts per layer, {a['top_k']} used per
token) trained from scratch with transformers' `MixtralForCausalLM` on the story corpus of models/default
(`src/slmc/train/stories.py`, seed {r['train_seed']}, same tokenizer). It is the model of slmc's expert cache
(issue 18): its q8 experts ({_kb(z['experts_q8_bytes'])}) do not fit the RP2350's {_kb(z['rp2350_sram_bytes'])} SRAM,
while the whole model in q8 (about {_kb(z['model_q8_bytes_estimate'])}) fits its 4 MiB flash. One expert in q8 is
{_kb(z['expert_q8_bytes'])}: 8 SRAM slots hold 25% of all experts.

## Files
| file | what |
|---|---|
| `config.json`, `model.safetensors` | the HuggingFace folder (`save_pretrained`, fp32, {meta['safetensors_bytes']:,} bytes; the classifier is tied to the embedding) |
| `tokenizer.model`, `tokenizer.bin` | models/default's tokenizer: the sentencepiece model, and llama2.c's export of it |
| `predictor.safetensors`, `predictor.json` | the expert predictor and its description (below) |
| `meta.json` | architecture, recipe, losses, predictor figures, as data |

## Recipe
- Architecture: dim {a['dim']}, {a['n_layers']} layers, {a['n_heads']} heads, {a['n_kv_heads']} kv heads (head size
  {a['dim'] // a['n_heads']}), {a['n_experts']} SwiGLU experts of hidden {a['expert_hidden_dim']} per layer, top-{a['top_k']} routing with the chosen
  weights renormalised (Mixtral), vocab {a['vocab_size']}, {a['seq_len']} positions, RMSNorm eps {a['norm_eps']}, RoPE theta
  {a['rope_theta']:g} (HF's rotate-half layout), no biases, no sliding window.
- Corpus and tokenizer: as models/default (`src/slmc/train/recipe.py`): {r['n_train_stories']:,} stories, {r['train_tokens']:,}
  tokens, BOS before every story; sentencepiece BPE, {a['vocab_size']} pieces.
- Loss: next-token cross-entropy + {r['router_aux_loss_coef']} x Mixtral's load-balancing loss (keeps every expert in use).
- Optimiser: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices and expert stacks), peak lr {r['max_lr']}, linear
  warmup {r['warmup_steps']} steps then cosine to {r['max_lr'] / 10:g}, grad clip 1.0, batch {r['batch_size']} x {a['seq_len']} tokens of
  random windows, {r['steps']} steps ({r['steps'] * r['batch_size'] * a['seq_len']:,} tokens seen, about
  {r['steps'] * r['batch_size'] * a['seq_len'] / r['train_tokens']:.1f} epochs).
- Seeds: corpus {r['train_seed']}, torch {r['torch_seed']}; torch deterministic algorithms, {r['threads']} CPU threads; torch
  {r['torch']}, transformers {r['transformers']} (experts through its `grouped_mm` path, attention through sdpa).
- Wall time (corpus, tokenizer, training, evaluation, samples; predictor below): {r['wall_s']:.0f} s (training
  {r['train_s']:.0f} s) on {r['threads']} threads of a CPU shared with other work; process CPU time {r['cpu_s']:.0f} s.

## Results
- Final training loss (next-token cross-entropy, mean of the last 50 batches): {meta['train_loss']:.4f}
- Training-set loss on {meta['n_val_stories']} training stories, same metric as validation: {meta['train_story_loss']:.4f}
- **Validation loss: {meta['val_loss']:.4f}** nats per token over {meta['n_val_stories']} held-out stories (seed
  {meta['val_seed']}), each fed alone from BOS at position 0 (models/default, dense, 0.85 M parameters: 0.3331).
  slmc's numpy reference, reading this folder as `slmc compile` does, gives {meta['val_loss_numpy']:.6f} on the first
  {meta['n_val_stories_numpy']} of them (torch: {meta['val_loss_torch_same_stories']:.6f}):
  `slmc.train.evaluate.validation_loss("models/moe", "models/moe/tokenizer.model", {meta['n_val_stories_numpy']}, {meta['val_seed']})`.

## Samples (torch model, prompt "{meta['greedy_prompt']}")
{sample_md}
{pred}
## Regenerate
```
make train-moe            # = PYTHONPATH=src python -m slmc.train.train_moe --out models/moe
```
The weights are a deterministic function of the recipe on a given torch build and thread count;
the wall times above are not.
"""
    (out / "README.md").write_text(text, encoding="utf-8")
