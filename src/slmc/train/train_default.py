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
import io
import json
import math
import time
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F

from slmc.frontend.tokenizer import write_llama2c_tokenizer
from slmc.train import evaluate
from slmc.train.stories import generate_stories
from slmc.train.torch_model import ModelArgs, Transformer, export_legacy

TRAIN_SEED, VAL_SEED = 0, 1
BOS, EOS = 1, 2
PROMPT = "Once upon a time"
SAMPLE_SEEDS = (42, 43)


def train_tokenizer(stories: list[str], out: Path, vocab_size: int) -> spm.SentencePieceProcessor:
    """BPE with llama2.c's train_vocab settings: byte fallback so any text encodes, identity
    normalisation so decode(encode(x)) == x, unk/bos/eos = 0/1/2 and no pad, as run.c expects."""
    proto = io.BytesIO()  # in memory: a file input would record its temporary path in the model
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(stories), model_writer=proto, model_type="bpe",
        vocab_size=vocab_size, self_test_sample_size=0, character_coverage=1.0, num_threads=1,
        split_digits=True, allow_whitespace_only_pieces=True, byte_fallback=True,
        unk_surface=r" \342\201\207 ", normalization_rule_name="identity", unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1, minloglevel=2)
    (out / "tokenizer.model").write_bytes(proto.getvalue())
    return spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))


def lr_at(step: int, steps: int, warmup: int, max_lr: float, min_lr: float) -> float:
    """Linear warmup, then cosine decay to min_lr at the last step."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - 1 - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * frac))


@torch.no_grad()
def story_loss(model: Transformer, sp: spm.SentencePieceProcessor, stories: list[str]) -> float:
    """Mean cross-entropy per story token, each story alone from BOS at position 0: the metric
    evaluate.validation_loss recomputes with numpy from the exported file."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(stories), 64):
        seqs = [evaluate.story_token_ids(sp, s, model.args.seq_len) for s in stories[i: i + 64]]
        width = max(len(s) for s in seqs)
        batch = torch.full((len(seqs), width), -100, dtype=torch.long)
        for j, s in enumerate(seqs):
            batch[j, : len(s)] = torch.tensor(s)
        # padding sits after every real token, so under the causal mask it changes nothing real
        logits = model(batch[:, :-1].clamp(min=0)).double()
        targets = batch[:, 1:]
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                 ignore_index=-100, reduction="sum").item()
        count += int((targets != -100).sum())
    model.train()
    return total / count


@torch.no_grad()
def generate(model: Transformer, sp: spm.SentencePieceProcessor, prompt: str, temperature: float,
             seed: int, max_tokens: int = 200) -> str:
    """Prompt plus continuation until BOS/EOS (the model starting a new story) or max_tokens."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    ids = [BOS] + sp.encode(prompt)
    for _ in range(max_tokens):
        if len(ids) >= model.args.seq_len:
            break
        logits = model(torch.tensor([ids]))[0, -1]
        if temperature == 0.0:
            nxt = int(torch.argmax(logits))
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        if nxt in (BOS, EOS):
            break
        ids.append(nxt)
    model.train()
    return sp.decode(ids[1:])


def train(model: Transformer, stream: torch.Tensor, steps: int, batch_size: int, max_lr: float,
          seed: int) -> list[float]:
    """AdamW on random seq_len+1 windows of the BOS-joined token stream (llama2.c's sampling)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=max_lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(seed)
    t_len = model.args.seq_len
    losses: list[float] = []
    start = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, warmup=steps // 15, max_lr=max_lr, min_lr=max_lr / 10)
        starts = torch.randint(0, stream.numel() - t_len - 1, (batch_size,), generator=gen)
        windows = torch.stack([stream[s: s + t_len + 1] for s in starts.tolist()])
        logits = model(windows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                  f"{time.time() - start:6.1f}s", flush=True)
    return losses


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
    stories = generate_stories(args.stories, TRAIN_SEED)
    val = generate_stories(args.val_stories, VAL_SEED)
    sp = train_tokenizer(stories, args.out, cfg.vocab_size)
    write_llama2c_tokenizer(args.out / "tokenizer.model", args.out / "tokenizer.bin")
    stream = torch.tensor([t for ids in sp.encode(stories) for t in [BOS] + ids], dtype=torch.long)
    print(f"corpus: {len(stories)} stories, {stream.numel()} tokens ({time.time() - t0:.1f}s)", flush=True)

    model = Transformer(cfg)
    t_train = time.time()
    losses = train(model, stream, args.steps, args.batch_size, args.lr, seed=0)
    train_s = time.time() - t_train
    export_legacy(model, args.out / "model.bin")

    val_loss = story_loss(model, sp, val)
    train_story_loss = story_loss(model, sp, stories[: args.val_stories])
    val_np = evaluate.validation_loss(args.out / "model.bin", args.out / "tokenizer.model",
                                      args.val_stories, VAL_SEED)
    if abs(val_np - val_loss) > 1e-4:
        raise RuntimeError(f"numpy validation loss {val_np} != torch {val_loss}: export layout is wrong")
    greedy = generate(model, sp, PROMPT, 0.0, 0)
    greedy_np = evaluate.greedy_continuation(args.out / "model.bin", args.out / "tokenizer.model", PROMPT, 200)
    samples = [("greedy (temperature 0)", greedy)]
    samples += [(f"temperature 0.8, torch.Generator seed {s}", generate(model, sp, PROMPT, 0.8, s))
                for s in SAMPLE_SEEDS]
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
    write_readme(args.out, meta, samples)
    print(f"val loss {val_loss:.4f} (numpy {val_np:.4f}), train loss {meta['train_loss']:.4f}, "
          f"wall {wall_s:.0f}s\ngreedy: {greedy}", flush=True)


if __name__ == "__main__":
    main()
