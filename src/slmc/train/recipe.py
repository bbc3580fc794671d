"""What slmc's bundled models share: corpus, tokenizer, schedule, training loop, loss and sampling.

Why one module: models/default (train_default.py, a llama2.c checkpoint) and models/moe (train_moe.py,
a HuggingFace Mixtral folder) are trained on the same story corpus with the same tokenizer, schedule and
metric, so their validation losses are comparable; the scripts differ only in the model and its files.
Everything here takes any torch module whose forward maps token ids (B, T) to logits (B, T, vocab)
or to an output with `.logits` (transformers' models).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn

from slmc.frontend.tokenizer import write_llama2c_tokenizer
from slmc.train import evaluate
from slmc.train.stories import generate_stories

TRAIN_SEED, VAL_SEED = 0, 1
BOS, EOS = 1, 2
PROMPT = "Once upon a time"
SAMPLE_SEEDS = (42, 43)

# (model, windows (B, T+1)) -> (loss to minimise, next-token cross-entropy to log)
LossFn = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Corpus:
    stories: list[str]                 # training stories (seed TRAIN_SEED)
    val: list[str]                     # held-out stories (seed VAL_SEED)
    sp: spm.SentencePieceProcessor
    stream: torch.Tensor               # BOS + story ids, concatenated, as llama2.c pretokenizes


def prepare_corpus(out: Path, n_stories: int, n_val: int, vocab_size: int) -> Corpus:
    """Stories, the tokenizer trained on them (written to out/tokenizer.model and out/tokenizer.bin)
    and the training token stream. Deterministic: the same arguments give the same bytes."""
    stories = generate_stories(n_stories, TRAIN_SEED)
    val = generate_stories(n_val, VAL_SEED)
    sp = train_tokenizer(stories, out, vocab_size)
    write_llama2c_tokenizer(out / "tokenizer.model", out / "tokenizer.bin")
    stream = torch.tensor([t for ids in sp.encode(stories) for t in [BOS] + ids], dtype=torch.long)
    return Corpus(stories, val, sp, stream)


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


def logits_of(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    return out.logits if hasattr(out, "logits") else out


def next_token_loss(model: nn.Module, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain cross-entropy of every next token in the windows (the default model's loss)."""
    logits = logits_of(model, windows[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
    return loss, loss


@torch.no_grad()
def story_loss(model: nn.Module, sp: spm.SentencePieceProcessor, stories: list[str], seq_len: int) -> float:
    """Mean cross-entropy per story token, each story alone from BOS at position 0: the metric
    evaluate.validation_loss recomputes with numpy from the exported file."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(stories), 64):
        seqs = [evaluate.story_token_ids(sp, s, seq_len) for s in stories[i: i + 64]]
        width = max(len(s) for s in seqs)
        batch = torch.full((len(seqs), width), -100, dtype=torch.long)
        for j, s in enumerate(seqs):
            batch[j, : len(s)] = torch.tensor(s)
        # padding sits after every real token, so under the causal mask it changes nothing real
        logits = logits_of(model, batch[:, :-1].clamp(min=0)).double()
        targets = batch[:, 1:]
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                 ignore_index=-100, reduction="sum").item()
        count += int((targets != -100).sum())
    model.train()
    return total / count


@torch.no_grad()
def generate(model: nn.Module, sp: spm.SentencePieceProcessor, prompt: str, temperature: float,
             seed: int, seq_len: int, max_tokens: int = 200) -> str:
    """Prompt plus continuation until BOS/EOS (the model starting a new story) or max_tokens."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    ids = [BOS] + sp.encode(prompt)
    for _ in range(max_tokens):
        if len(ids) >= seq_len:
            break
        logits = logits_of(model, torch.tensor([ids]))[0, -1]
        if temperature == 0.0:
            nxt = int(torch.argmax(logits))
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        if nxt in (BOS, EOS):
            break
        ids.append(nxt)
    model.train()
    return sp.decode(ids[1:])


def samples(model: nn.Module, sp: spm.SentencePieceProcessor, seq_len: int) -> list[tuple[str, str]]:
    """The README's samples: greedy, then temperature 0.8 under each of SAMPLE_SEEDS."""
    out = [("greedy (temperature 0)", generate(model, sp, PROMPT, 0.0, 0, seq_len))]
    out += [(f"temperature 0.8, torch.Generator seed {s}", generate(model, sp, PROMPT, 0.8, s, seq_len))
            for s in SAMPLE_SEEDS]
    return out


def train(model: nn.Module, stream: torch.Tensor, steps: int, batch_size: int, max_lr: float,
          seed: int, seq_len: int, loss_fn: LossFn = next_token_loss) -> list[float]:
    """AdamW on random seq_len+1 windows of the BOS-joined token stream (llama2.c's sampling).
    Returns each step's next-token cross-entropy."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=max_lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    start = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, warmup=steps // 15, max_lr=max_lr, min_lr=max_lr / 10)
        starts = torch.randint(0, stream.numel() - seq_len - 1, (batch_size,), generator=gen)
        windows = torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])
        loss, ce = loss_fn(model, windows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(ce.item())
        if step % 50 == 0 or step == steps - 1:
            extra = f"  (with aux {loss.item():.4f})" if loss is not ce else ""
            print(f"step {step:5d}  loss {ce.item():.4f}{extra}  lr {opt.param_groups[0]['lr']:.2e}  "
                  f"{time.time() - start:6.1f}s", flush=True)
    return losses
