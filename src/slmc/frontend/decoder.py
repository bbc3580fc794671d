"""A decoder-only Transformer as data: the meeting point of every language-model frontend.

llama2.c checkpoints, HuggingFace Llama folders and PyTorch-exported ONNX decoders all load into a
`DecoderModel` (configuration + numpy weights, matrices as (out, in) row-major like llama2.c and
torch.nn.Linear). `slmc.frontend.build.build_step_graph` turns one into the IR of a decode or prompt step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Q8Tensor:
    """A matrix already quantized in groups along its rows (llama2.c's Q8_0): w ~= q * s per group."""

    q: np.ndarray  # int8 (rows, cols)
    s: np.ndarray  # float32 (rows, cols // group)
    group: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.q.shape)

    def dequantize(self) -> np.ndarray:
        rows, cols = self.q.shape
        g = self.q.reshape(rows, cols // self.group, self.group).astype(np.float32)
        return (g * self.s[:, :, None]).reshape(rows, cols).astype(np.float32)


Weight = "np.ndarray | Q8Tensor"


@dataclass(frozen=True)
class DecoderConfig:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    norm: str = "rms"            # "rms" (Llama) | "layer" (GPT-2)
    norm_eps: float = 1e-5
    ffn: str = "swiglu"          # "swiglu" | "gelu" (erf) | "gelu_tanh"
    pos: str = "rope"            # "rope" | "learned"
    rope_theta: float = 10000.0
    rope_interleaved: bool = True  # llama2.c pairs (2i, 2i+1); HF's rotate_half pairs (i, i + hd/2)
    head_dim_: int = 0           # 0: dim // n_heads

    @property
    def head_dim(self) -> int:
        return self.head_dim_ or self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    def validate(self) -> None:
        from slmc.errors import SlmcError

        vals = [self.dim, self.hidden_dim, self.n_layers, self.n_heads, self.n_kv_heads, self.vocab_size, self.seq_len]
        if min(vals) <= 0 or max(vals) > 1 << 20:
            raise SlmcError(f"implausible model header {vals}", "the file is not a model checkpoint, or it is corrupt")
        if self.n_heads % self.n_kv_heads:
            raise SlmcError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}",
                            "the checkpoint header is corrupt")
        if self.pos == "rope" and self.head_dim % 2:
            raise SlmcError(f"head size {self.head_dim} is odd, RoPE needs pairs", "check the model configuration")


@dataclass
class LayerWeights:
    attn_norm: np.ndarray
    wq: "np.ndarray | Q8Tensor"
    wk: "np.ndarray | Q8Tensor"
    wv: "np.ndarray | Q8Tensor"
    wo: "np.ndarray | Q8Tensor"
    ffn_norm: np.ndarray
    w1: "np.ndarray | Q8Tensor"            # gate (SwiGLU) or up-projection (GELU)
    w2: "np.ndarray | Q8Tensor"            # down-projection
    w3: "np.ndarray | Q8Tensor | None" = None  # up (SwiGLU only)
    attn_norm_b: np.ndarray | None = None
    ffn_norm_b: np.ndarray | None = None
    bq: np.ndarray | None = None
    bk: np.ndarray | None = None
    bv: np.ndarray | None = None
    bo: np.ndarray | None = None
    b1: np.ndarray | None = None
    b2: np.ndarray | None = None
    b3: np.ndarray | None = None


@dataclass
class DecoderModel:
    config: DecoderConfig
    tok_emb: "np.ndarray | Q8Tensor"        # (vocab, dim)
    layers: list[LayerWeights]
    final_norm: np.ndarray
    wcls: "np.ndarray | Q8Tensor | None" = None  # None: tied to tok_emb
    final_norm_b: np.ndarray | None = None
    bcls: np.ndarray | None = None
    pos_emb: np.ndarray | None = None      # (seq_len, dim) for learned positions
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def n_params(self) -> int:
        total = 0
        for v in self.__dict__.values():
            total += _count(v)
        for layer in self.layers:
            for v in layer.__dict__.values():
                total += _count(v)
        return total


def _count(v: object) -> int:
    if isinstance(v, np.ndarray):
        return int(v.size)
    if isinstance(v, Q8Tensor):
        return int(v.q.size)
    return 0
