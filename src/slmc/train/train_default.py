"""Train slmc's bundled default model from nothing but this repository: `make train-default`.

Why this exists: slmc must compile, run and test a real trained model without downloading one.
This script is the whole recipe, seeded end to end: a grammar corpus (stories.py, seed 0), a
512-piece sentencepiece tokenizer in llama2.c's id convention, a ~0.85 M-parameter Llama-style
decoder trained on two CPU threads in about ten minutes, and the llama2.c files run.c reads
(model.bin, tokenizer.bin) plus tokenizer.model, README.md and meta.json with the held-out loss.

    PYTHONPATH=src python -m slmc.train.train_default --out models/default
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from slmc.train import evaluate
from slmc.train.recipe import PROMPT, TRAIN_SEED, VAL_SEED, prepare_corpus, samples, story_loss, train
from slmc.train.torch_model import ModelArgs, Transformer, export_legacy


def write_readme(out: Path, meta: dict, samples: list[tuple[str, str]]) -> None:
    a = meta["architecture"]
    r = meta["recipe"]
    sample_md = "\n".join(f"**{title}**\n\n> {text}\n" for title, text in samples)
    text = f"""# slmc default model

A {meta['n_params']:,}-parameter Llama-architecture decoder (llama2.c layout) trained from scratch on
{r['n_train_stories']:,} children's stories produced by slmc's own story grammar
(`src/slmc/train/stories.py`, seed {r['train_seed']}). It is the model slmc compiles, runs and tests
by default, so nothing has to be downloaded. It writes grammatical stories in that small world;
it knows nothing outside it.

## Files
| file | what |
|---|---|
| `model.bin` | llama2.c legacy (version 0) checkpoint: 7 int32 header, fp32 tensors, RoPE tables |
| `tokenizer.bin` | llama2.c `run.c` tokenizer (same export as llama2.c's `tokenizer.py`) |
| `tokenizer.model` | the sentencepiece model itself |
| `meta.json` | architecture, recipe, losses, as data |

## Recipe
- Architecture: dim {a['dim']}, {a['n_layers']} layers, {a['n_heads']} heads, {a['n_kv_heads']} kv heads
  (grouped-query attention), hidden {a['hidden_dim']} (SwiGLU `w2(silu(w1 x) * w3 x)`), vocab {a['vocab_size']},
  seq_len {a['seq_len']}, RMSNorm eps 1e-5, RoPE theta 10000 on interleaved pairs, no biases, classifier
  tied to the token embedding. Parameters: {meta['n_params']:,} ({meta['model_bin_bytes']:,} bytes as fp32).
- Corpus: {r['n_train_stories']:,} stories (seed {r['train_seed']}), {r['train_tokens']:,} tokens, BOS (id 1)
  before every story, concatenated, as llama2.c pretokenizes TinyStories.
- Tokenizer: sentencepiece BPE, vocab {a['vocab_size']} (3 specials, 256 byte-fallback pieces, the rest
  merges), unk 0 / bos 1 / eos 2 / no pad, identity normalisation, trained on the same corpus.
- Optimiser: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), peak lr {r['max_lr']}, linear warmup
  {r['warmup_steps']} steps then cosine to {r['max_lr'] / 10}, grad clip 1.0, batch {r['batch_size']} x
  {a['seq_len']} tokens of random windows, {r['steps']} steps ({r['steps'] * r['batch_size'] * a['seq_len']:,}
  tokens seen, about {r['steps'] * r['batch_size'] * a['seq_len'] / r['train_tokens']:.1f} epochs).
- Seeds: corpus {r['train_seed']}, torch {r['torch_seed']}; torch deterministic algorithms, {r['threads']} CPU threads.
- Wall time of the whole run (corpus, tokenizer, training, evaluation, samples), measured: {r['wall_s']:.0f} s
  (training alone {r['train_s']:.0f} s) on {r['threads']} threads of a CPU shared with other work; process CPU
  time {r['cpu_s']:.0f} s, i.e. about {r['cpu_s'] / r['threads']:.0f} s of wall time on {r['threads']} dedicated cores.

## Results
- Final training loss (mean of the last 50 batches): {meta['train_loss']:.4f}
- Training-set loss on {meta['n_val_stories']} training stories, same metric as validation: {meta['train_story_loss']:.4f}
- **Validation loss: {meta['val_loss']:.4f}** nats per token: mean next-token cross-entropy over
  {meta['n_val_stories']} held-out stories (seed {meta['val_seed']}), each fed alone from BOS at position 0.
  `slmc.train.evaluate.validation_loss("models/default/model.bin", "models/default/tokenizer.model",
  {meta['n_val_stories']}, {meta['val_seed']})` recomputes it with numpy from the shipped file
  ({meta['val_loss_numpy']:.6f}); `tests/test_default_model.py` checks it.

## Samples (torch model, prompt "{PROMPT}")
{sample_md}
## Regenerate
```
make train-default        # = PYTHONPATH=src python -m slmc.train.train_default --out models/default
```
The weights are a deterministic function of the recipe on a given torch build and thread count;
the wall time above is not.
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("models/default"))
    ap.add_argument("--stories", type=int, default=30000)
    ap.add_argument("--val-stories", type=int, default=500)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)

    cfg = ModelArgs()
    corpus = prepare_corpus(args.out, args.stories, args.val_stories, cfg.vocab_size)
    sp, stories, val, stream = corpus.sp, corpus.stories, corpus.val, corpus.stream
    print(f"corpus: {len(stories)} stories, {stream.numel()} tokens ({time.time() - t0:.1f}s)", flush=True)

    model = Transformer(cfg)
    t_train = time.time()
    losses = train(model, stream, args.steps, args.batch_size, args.lr, seed=0, seq_len=cfg.seq_len)
    train_s = time.time() - t_train
    export_legacy(model, args.out / "model.bin")

    val_loss = story_loss(model, sp, val, cfg.seq_len)
    train_story_loss = story_loss(model, sp, stories[: args.val_stories], cfg.seq_len)
    val_np = evaluate.validation_loss(args.out / "model.bin", args.out / "tokenizer.model",
                                      args.val_stories, VAL_SEED)
    if abs(val_np - val_loss) > 1e-4:
        raise RuntimeError(f"numpy validation loss {val_np} != torch {val_loss}: export layout is wrong")
    greedy_np = evaluate.greedy_continuation(args.out / "model.bin", args.out / "tokenizer.model", PROMPT, 200)
    shown = samples(model, sp, cfg.seq_len)
    greedy = shown[0][1]
    wall_s = time.time() - t0
    cpu_s = time.process_time()  # unlike wall time, barely moved by other work on a shared machine

    meta = {
        "val_loss": val_loss, "val_loss_numpy": val_np, "val_seed": VAL_SEED,
        "n_val_stories": args.val_stories, "train_loss": sum(losses[-50:]) / len(losses[-50:]),
        "train_story_loss": train_story_loss, "n_params": model.n_params(),
        "model_bin_bytes": (args.out / "model.bin").stat().st_size,
        "architecture": cfg.to_dict(),
        "recipe": {"train_seed": TRAIN_SEED, "torch_seed": 0, "n_train_stories": args.stories,
                   "train_tokens": stream.numel(), "steps": args.steps, "batch_size": args.batch_size,
                   "max_lr": args.lr, "warmup_steps": args.steps // 15, "threads": args.threads,
                   "train_s": round(train_s, 1), "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1), "torch": torch.__version__},
        "greedy_prompt": PROMPT, "greedy_text": greedy, "greedy_text_numpy": greedy_np,
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    write_readme(args.out, meta, shown)
    print(f"val loss {val_loss:.4f} (numpy {val_np:.4f}), train loss {meta['train_loss']:.4f}, "
          f"wall {wall_s:.0f}s\ngreedy: {greedy}", flush=True)


if __name__ == "__main__":
    main()
