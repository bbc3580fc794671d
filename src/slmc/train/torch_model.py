"""The PyTorch twin of llama2.c's model.py, used only to train and export slmc's bundled model.

Why a separate module: the training script, the README sampler and the layout test all need the
same module definition and the same export; keeping them here keeps train_default.py a recipe.
The math is llama2.c's exactly (RMSNorm eps 1e-5, interleaved-pair RoPE with theta 10000,
grouped-query attention, SwiGLU, no biases, classifier tied to the embedding) so the exported
file runs unchanged in run.c and in slmc's frontend.
"""

from __future__ import annotations

import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelArgs:
    """Architecture hyperparameters; field names match llama2.c's header order where they appear there."""

    dim: int = 128
    hidden_dim: int = 384
    n_layers: int = 4
    n_heads: int = 8
    n_kv_heads: int = 4
    vocab_size: int = 512
    seq_len: int = 256
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def rope_tables(head_size: int, seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape (seq_len, head_size/2), computed as llama2.c's precompute_freqs_cis does."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_size, 2)[: head_size // 2].float() / head_size))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), freqs)
    return torch.cos(angles), torch.sin(angles)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs (2i, 2i+1) of every head: llama2.c's interleaved convention, not HF's halves."""
    xr, xi = x.reshape(x.shape[:-1] + (-1, 2)).unbind(-1)
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([xr * c - xi * s, xr * s + xi * c], dim=-1).flatten(3)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    """One pre-norm decoder layer: x + attn(norm(x)), then h + ffn(norm(h))."""

    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_size = a.n_heads, a.n_kv_heads, a.dim // a.n_heads
        kv_dim = a.n_kv_heads * self.head_size
        self.attention_norm = RMSNorm(a.dim, a.norm_eps)
        self.wq = nn.Linear(a.dim, a.dim, bias=False)
        self.wk = nn.Linear(a.dim, kv_dim, bias=False)
        self.wv = nn.Linear(a.dim, kv_dim, bias=False)
        self.wo = nn.Linear(a.dim, a.dim, bias=False)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)
        self.w1 = nn.Linear(a.dim, a.hidden_dim, bias=False)
        self.w2 = nn.Linear(a.hidden_dim, a.dim, bias=False)
        self.w3 = nn.Linear(a.dim, a.hidden_dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.attention_norm(x)
        q = _rope(self.wq(h).view(b, t, self.n_heads, self.head_size), cos, sin)
        k = _rope(self.wk(h).view(b, t, self.n_kv_heads, self.head_size), cos, sin)
        v = self.wv(h).view(b, t, self.n_kv_heads, self.head_size)
        rep = self.n_heads // self.n_kv_heads  # query head i reads kv head i // rep, as run.c does
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             is_causal=True)
        x = x + self.wo(att.transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Transformer(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.args = a
        self.tok_embeddings = nn.Embedding(a.vocab_size, a.dim)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.n_layers))
        self.norm = RMSNorm(a.dim, a.norm_eps)
        self.output = nn.Linear(a.dim, a.vocab_size, bias=False)
        self.output.weight = self.tok_embeddings.weight  # tied: positive vocab_size in the header
        cos, sin = rope_tables(a.dim // a.n_heads, a.seq_len, a.rope_theta)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # llama2.c's residual-branch scaling (GPT-2 style)
            if name.endswith("w3.weight") or name.endswith("wo.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * a.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) for every position of a causal sequence."""
        t = tokens.shape[1]
        x = self.tok_embeddings(tokens)
        cos, sin = self.freqs_cos[:t], self.freqs_sin[:t]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.output(self.norm(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix counts once


def export_legacy(model: Transformer, path: Path) -> None:
    """Write llama2.c's version-0 checkpoint: 7 int32 header, then fp32 tensors in run.c's order,
    including the (unused by run.c) RoPE tables, so the file is byte-compatible with legacy_export."""
    a = model.args
    ls = model.layers
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", a.dim, a.hidden_dim, a.n_layers, a.n_heads, a.n_kv_heads,
                            a.vocab_size, a.seq_len))
        tensors = [model.tok_embeddings.weight]
        for attr in ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"):
            tensors += [getattr(layer, attr).weight for layer in ls]
        tensors += [model.norm.weight, model.freqs_cos[: a.seq_len], model.freqs_sin[: a.seq_len]]
        for t in tensors:
            f.write(t.detach().cpu().contiguous().to(torch.float32).numpy().astype("<f4").tobytes())
