"""Evaluate a llama2.c-format checkpoint with a plain numpy forward pass.

Why a second forward pass: the validation loss written in models/default/README.md is computed by
the PyTorch model during training; recomputing it here from nothing but the exported `model.bin`
(independent code, float64, no torch) proves that the shipped file, its tensor order and the
published number all agree. The math is llama2.c's run.c over a whole causal sequence at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm

from slmc.train.stories import generate_stories

BOS, EOS = 1, 2


@dataclass(frozen=True)
class NpModel:
    """Weights of a legacy (version 0) llama2.c checkpoint; matrices are (out, in) like torch Linear."""

    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    tok: np.ndarray
    rms_att: np.ndarray
    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    rms_ffn: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    w3: np.ndarray
    rms_final: np.ndarray
    cls: np.ndarray


def load_model(path: str | Path) -> NpModel:
    """Read the 7-int32 header and the fp32 tensors in run.c's order (the RoPE tables are skipped:
    the forward recomputes them, so a file with wrong tables would still be caught by the logits)."""
    raw = Path(path).read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = (int(v) for v in np.frombuffer(raw[:28], "<i4"))
    shared = vocab > 0
    vocab = abs(vocab)
    kv_dim = dim * n_kv // n_heads
    data = np.frombuffer(raw[28:], "<f4").astype(np.float64)
    pos = 0

    def take(*shape: int) -> np.ndarray:
        nonlocal pos
        n = int(np.prod(shape))
        out = data[pos: pos + n].reshape(shape)
        pos += n
        return out

    tok = take(vocab, dim)
    w = dict(rms_att=take(n_layers, dim), wq=take(n_layers, dim, dim), wk=take(n_layers, kv_dim, dim),
             wv=take(n_layers, kv_dim, dim), wo=take(n_layers, dim, dim), rms_ffn=take(n_layers, dim),
             w1=take(n_layers, hidden, dim), w2=take(n_layers, dim, hidden), w3=take(n_layers, hidden, dim))
    rms_final = take(dim)
    take(seq_len, dim // n_heads // 2)  # freq_cis_real (seq_len, head_size/2)
    take(seq_len, dim // n_heads // 2)  # freq_cis_imag
    cls = tok if shared else take(vocab, dim)
    if pos != data.size:
        raise ValueError(f"{path}: {data.size - pos} trailing floats; not a legacy llama2.c checkpoint")
    return NpModel(dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len, tok=tok, rms_final=rms_final,
                   cls=cls, **w)


def _rmsnorm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * w


def _rope(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x: (T, heads, head_size); rotates the pairs (2i, 2i+1) by pos * 10000^(-2i/head_size)."""
    hs = x.shape[-1]
    freq = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)
    ang = pos[:, None, None] * freq[None, None, :]
    c, s = np.cos(ang), np.sin(ang)
    xr, xi = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = xr * c - xi * s
    out[..., 1::2] = xr * s + xi * c
    return out


def forward(m: NpModel, tokens: list[int] | np.ndarray) -> np.ndarray:
    """Logits (T, vocab) for a causal sequence starting at position 0."""
    ids = np.asarray(tokens, dtype=np.int64)
    t = ids.size
    hs = m.dim // m.n_heads
    rep = m.n_heads // m.n_kv_heads
    pos = np.arange(t, dtype=np.float64)
    mask = np.triu(np.full((t, t), -np.inf), k=1)
    x = m.tok[ids]
    for i in range(m.n_layers):
        h = _rmsnorm(x, m.rms_att[i])
        q = _rope((h @ m.wq[i].T).reshape(t, m.n_heads, hs), pos)
        k = _rope((h @ m.wk[i].T).reshape(t, m.n_kv_heads, hs), pos)
        v = (h @ m.wv[i].T).reshape(t, m.n_kv_heads, hs)
        q = q.transpose(1, 0, 2)  # (heads, T, hs); head h reads kv head h // rep, as run.c does
        k = np.repeat(k.transpose(1, 0, 2), rep, axis=0)
        v = np.repeat(v.transpose(1, 0, 2), rep, axis=0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hs) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + (att @ v).transpose(1, 0, 2).reshape(t, m.dim) @ m.wo[i].T
        h = _rmsnorm(x, m.rms_ffn[i])
        a = h @ m.w1[i].T
        x = x + ((a / (1.0 + np.exp(-a))) * (h @ m.w3[i].T)) @ m.w2[i].T
    return _rmsnorm(x, m.rms_final) @ m.cls.T


def story_token_ids(sp: spm.SentencePieceProcessor, story: str, seq_len: int) -> list[int]:
    """BOS + the story's pieces, as llama2.c's pretokenizer writes them, cut to seq_len + 1 ids
    (one window: seq_len inputs, seq_len targets)."""
    return ([BOS] + sp.encode(story.strip()))[: seq_len + 1]


def validation_loss(model_bin_path: str | Path, tokenizer_model_path: str | Path, n_stories: int,
                    seed: int) -> float:
    """Mean next-token cross-entropy (nats per token) over `n_stories` fresh stories of `seed`:
    each story is fed alone from BOS at position 0 and every story token is a target."""
    m = load_model(model_bin_path)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model_path))
    total, count = 0.0, 0
    for story in generate_stories(n_stories, seed):
        ids = story_token_ids(sp, story, m.seq_len)
        logits = forward(m, ids[:-1])
        mx = logits.max(-1, keepdims=True)
        logz = (mx + np.log(np.exp(logits - mx).sum(-1, keepdims=True)))[:, 0]
        targets = np.asarray(ids[1:])
        total += float((logz - logits[np.arange(targets.size), targets]).sum())
        count += targets.size
    return total / count


def greedy_ids(m: NpModel, prompt_ids: list[int], n_tokens: int) -> list[int]:
    """Prompt plus up to `n_tokens` argmax ids; stops before BOS/EOS (a new story), as run.c does."""
    ids = list(prompt_ids)
    for _ in range(n_tokens):
        if len(ids) >= m.seq_len:
            break
        nxt = int(np.argmax(forward(m, ids)[-1]))
        if nxt in (BOS, EOS):
            break
        ids.append(nxt)
    return ids


def greedy_continuation(model_bin: str | Path, tokenizer_model: str | Path, prompt: str, n_tokens: int) -> str:
    """The prompt and its greedy continuation, decoded together (so the text reads as one story)."""
    m = load_model(model_bin)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    return sp.decode(greedy_ids(m, [BOS] + sp.encode(prompt), n_tokens)[1:])
