"""Small seeded PyTorch decoders and their ONNX exports, for the ONNX-decoder tests.

Two families written the way their reference implementations are, so the exported graphs carry the
patterns real exports carry: a Llama-style model (HF LlamaRMSNorm, rotate_half RoPE, SwiGLU,
grouped-query attention through repeat_kv and scaled_dot_product_attention) and a GPT-2-style one
(LayerNorm with bias, fused qkv projection, causal mask buffer, tanh GELU, learned positions, tied head).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

DIM, LAYERS, HEADS, KV_HEADS, HIDDEN, VOCAB, MAX_SEQ = 64, 2, 4, 2, 128, 96, 128


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(1 + 0.3 * torch.randn(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        hd = DIM // HEADS
        self.attn_norm, self.ffn_norm = RMSNorm(DIM), RMSNorm(DIM)
        self.q_proj = nn.Linear(DIM, HEADS * hd, bias=False)
        self.k_proj = nn.Linear(DIM, KV_HEADS * hd, bias=False)
        self.v_proj = nn.Linear(DIM, KV_HEADS * hd, bias=False)
        self.o_proj = nn.Linear(HEADS * hd, DIM, bias=False)
        self.gate = nn.Linear(DIM, HIDDEN, bias=False)
        self.up = nn.Linear(DIM, HIDDEN, bias=False)
        self.down = nn.Linear(HIDDEN, DIM, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        hd = DIM // HEADS
        h = self.attn_norm(x)
        q = self.q_proj(h).view(b, s, HEADS, hd).transpose(1, 2)
        k = self.k_proj(h).view(b, s, KV_HEADS, hd).transpose(1, 2)
        v = self.v_proj(h).view(b, s, KV_HEADS, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = HEADS // KV_HEADS  # HF repeat_kv
        k = k[:, :, None].expand(b, KV_HEADS, rep, s, hd).reshape(b, HEADS, s, hd)
        v = v[:, :, None].expand(b, KV_HEADS, rep, s, hd).reshape(b, HEADS, s, hd)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, s, HEADS * hd))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class LlamaStyle(nn.Module):
    def __init__(self, theta: float = 10000.0) -> None:
        super().__init__()
        hd = DIM // HEADS
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList(LlamaBlock() for _ in range(LAYERS))
        self.norm = RMSNorm(DIM)
        self.lm_head = nn.Linear(DIM, VOCAB, bias=False)
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        s = input_ids.shape[1]
        pos = torch.arange(s, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.embed(input_ids)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.lm_head(self.norm(x))


class Gpt2Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.c_attn = nn.Linear(DIM, 3 * DIM)
        self.c_proj = nn.Linear(DIM, DIM)
        self.c_fc = nn.Linear(DIM, HIDDEN)
        self.mlp_proj = nn.Linear(HIDDEN, DIM)
        self.register_buffer("bias", torch.tril(torch.ones(MAX_SEQ, MAX_SEQ, dtype=torch.bool))[None, None],
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        hd = DIM // HEADS
        q, k, v = self.c_attn(self.ln_1(x)).split(DIM, dim=2)
        q, k, v = (t.view(b, s, HEADS, hd).transpose(1, 2) for t in (q, k, v))
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        w = torch.where(self.bias[:, :, :s, :s], w, torch.finfo(w.dtype).min)
        a = torch.matmul(F.softmax(w, dim=-1), v).transpose(1, 2).reshape(b, s, DIM)
        x = x + self.c_proj(a)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2Style(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, DIM)
        self.wpe = nn.Embedding(MAX_SEQ, DIM)
        self.blocks = nn.ModuleList(Gpt2Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(DIM)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        s = input_ids.shape[1]
        x = self.wte(input_ids) + self.wpe(torch.arange(s))[None]
        for blk in self.blocks:
            x = blk(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied head


def make(style: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = LlamaStyle() if style == "llama" else Gpt2Style()
    with torch.no_grad():  # norms away from 1 and biases away from 0 so a misread weight shows in the logits
        for name, p in m.named_parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn_like(p))
            elif name.endswith(("wte.weight", "wpe.weight")):
                p.mul_(0.3)  # the tied classifier then gives logits of a few units, not tens
    return m.eval()


def export(model: nn.Module, path: Path, dynamo: bool) -> Path:
    ids = torch.randint(0, VOCAB, (1, 8))
    kw = dict(input_names=["input_ids"], output_names=["logits"])
    with torch.no_grad():
        if dynamo:
            seq = torch.export.Dim("seq", min=2, max=MAX_SEQ)
            torch.onnx.export(model, (ids,), str(path), dynamo=True, opset_version=18,
                              dynamic_shapes={"input_ids": {1: seq}}, **kw)
        else:
            torch.onnx.export(model, (ids,), str(path), dynamo=False, opset_version=17,
                              dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"}}, **kw)
    return path
