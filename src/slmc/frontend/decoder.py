"""A decoder-only Transformer as data: the meeting point of every language-model frontend.

llama2.c checkpoints, HuggingFace Llama folders and PyTorch-exported ONNX decoders all load into a
`DecoderModel` (configuration + numpy weights, matrices as (out, in) row-major like llama2.c and
torch.nn.Linear). `slmc.frontend.build.build_step_graph` turns one into the IR of a decode or prompt step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from slmc.frontend.safe_io import show as _show
from slmc.quant.q8 import Q8Tensor  # the decoder's quantized weights, defined beside q8's numerics


Weight = "np.ndarray | Q8Tensor"


@dataclass(frozen=True)
class RopeScaling:
    """RoPE frequency scaling as transformers' modeling_rope_utils defines it; frontend/rope.py computes the
    cos/sin tables from it. Only the kinds that are static tables at a fixed context are here (see rope.py)."""
    kind: str = "none"                    # none | linear | dynamic | llama3 | yarn | longrope
    factor: float = 1.0
    original_max_positions: int = 0       # the pretraining context (dynamic: max_position_embeddings)
    low_freq_factor: float = 1.0          # llama3
    high_freq_factor: float = 4.0         # llama3
    beta_fast: float = 32.0               # yarn
    beta_slow: float = 1.0                # yarn
    truncate: bool = True                 # yarn
    attention_factor: float = 1.0         # yarn, longrope: multiplies cos and sin
    short_factor: tuple[float, ...] = ()  # longrope: one divisor per frequency

    def validate(self, seq_len: int, head_dim: int) -> None:
        from slmc.errors import SlmcError

        fix = "the model configuration's rope_scaling is corrupt"
        if self.kind not in ROPE_SCALINGS:
            raise SlmcError(f"rope scaling {_show(self.kind)} is not one of {', '.join(ROPE_SCALINGS)}", fix)
        for name in ("factor", "low_freq_factor", "high_freq_factor", "beta_fast", "beta_slow", "attention_factor"):
            v = getattr(self, name)
            if not _is_real(v) or not (0 < float(v) < math.inf):
                raise SlmcError(f"rope scaling {name} is {_show(v)}, expected a positive finite number", fix)
        if not isinstance(self.truncate, (bool, np.bool_)):
            raise SlmcError(f"rope scaling truncate is {_show(self.truncate)}, not a boolean", fix)
        if self.kind == "llama3" and not self.high_freq_factor > self.low_freq_factor:
            raise SlmcError(f"llama3 rope scaling needs high_freq_factor > low_freq_factor, got "
                            f"{self.high_freq_factor} and {self.low_freq_factor}", fix)
        orig = self.original_max_positions
        low = 1 if self.kind in ("dynamic", "llama3", "yarn", "longrope") else 0
        if not _is_int(orig) or not low <= orig <= CAPS["seq_len"]:
            raise SlmcError(f"rope scaling original_max_positions is {_show(orig)} (expected {low}..{CAPS['seq_len']})",
                            fix)
        want = head_dim // 2 if self.kind == "longrope" else 0
        if not isinstance(self.short_factor, tuple) or len(self.short_factor) != want or not all(
                _is_real(v) and 0 < float(v) < math.inf for v in self.short_factor):
            raise SlmcError(f"rope scaling short_factor is {_show(self.short_factor)}, expected {want} positive "
                            "numbers (one per frequency)", fix)
        if self.kind in ("dynamic", "longrope") and seq_len > orig:
            # beyond that length transformers switches the frequencies with the sequence's length, so one
            # static table would be wrong for some prefix of every longer sequence
            raise SlmcError(f"{self.kind} rope scaling is static only up to {orig} positions, the context is {seq_len}",
                            f"compile with --context {orig} or less")


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
    # a dataclass, so kept out of report.json's config (which takes the fields without a trailing _);
    # loaders that set it say so in the model's notes
    rope_scaling_: RopeScaling = RopeScaling()
    sliding_window: int = 0      # 0: none; else each position attends to at most this many (exact while seq_len <= it)

    @property
    def rope_scaling(self) -> RopeScaling:
        return self.rope_scaling_

    @property
    def head_dim(self) -> int:
        return self.head_dim_ or self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    def param_count(self, tied: bool = True) -> int:
        """Parameters a model of this shape holds (Python ints: exact however large a corrupt header is)."""
        d, h, q, kv, v, n = self.dim, self.hidden_dim, self.q_dim, self.kv_dim, self.vocab_size, self.n_layers
        per_layer = 2 * d + 2 * d * q + 2 * kv * d + (3 if self.ffn == "swiglu" else 2) * h * d
        return v * d * (1 if tied else 2) + n * per_layer + d

    def validate(self) -> None:
        """Refuse a shape no real model has before anything is sized from it: each field a positive int
        under its cap (2**31 from a corrupt header must not reach an allocation), heads that divide the
        width, and at most MAX_PARAMS parameters."""
        from slmc.errors import SlmcError

        fix = "the file is not a model checkpoint, or its header/configuration is corrupt"
        for name, cap in CAPS.items():
            v = getattr(self, name)
            if not _is_int(v):
                raise SlmcError(f"{name} is {_show(v)}, not an integer", fix)
            if not 1 <= v <= cap:
                raise SlmcError(f"implausible {name} {v} (expected 1..{cap})", fix)
        if not _is_int(self.head_dim_) or not 0 <= self.head_dim_ <= MAX_HEAD_DIM:
            raise SlmcError(f"implausible head_dim {_show(self.head_dim_)} (expected 1..{MAX_HEAD_DIM})", fix)
        if not self.head_dim_ and self.dim % self.n_heads:
            # dim // n_heads would silently drop columns, or be 0 when n_heads > dim
            raise SlmcError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}", fix)
        if self.n_heads % self.n_kv_heads:
            raise SlmcError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}", fix)
        for name, allowed in (("norm", NORMS), ("ffn", FFNS), ("pos", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise SlmcError(f"{name} {_show(getattr(self, name))} is not one of {', '.join(allowed)}", fix)
        if not isinstance(self.rope_interleaved, (bool, np.bool_)):
            raise SlmcError(f"rope_interleaved is {_show(self.rope_interleaved)}, not a boolean", fix)
        for name, low in (("norm_eps", 0.0), ("rope_theta", 1e-30)):
            v = getattr(self, name)
            if not _is_real(v) or not (low <= float(v) < math.inf):
                raise SlmcError(f"{name} is {_show(v)}, expected a finite number >= {low:g}", fix)
        if self.pos == "rope" and self.head_dim % 2:
            raise SlmcError(f"head size {self.head_dim} is odd, RoPE needs pairs", "check the model configuration")
        if not isinstance(self.rope_scaling_, RopeScaling):
            raise SlmcError(f"rope_scaling is {_show(self.rope_scaling_)}, not a RopeScaling", fix)
        self.rope_scaling_.validate(self.seq_len, self.head_dim)
        if self.rope_scaling_.kind != "none" and self.pos != "rope":
            raise SlmcError(f"rope scaling {self.rope_scaling_.kind} is set on a model without RoPE", fix)
        if not _is_int(self.sliding_window) or not 0 <= self.sliding_window <= CAPS["seq_len"]:
            raise SlmcError(f"implausible sliding_window {_show(self.sliding_window)} (expected 0..{CAPS['seq_len']})",
                            fix)
        if self.sliding_window and self.seq_len > self.sliding_window:
            # no windowed attention in the builder: full causal attention equals the window's only this far
            raise SlmcError(f"sliding-window attention (window {self.sliding_window}) is not implemented, and the "
                            f"context {self.seq_len} is longer than the window",
                            f"compile with --context {self.sliding_window} or less")
        n = self.param_count(tied=False)
        if n > MAX_PARAMS:
            raise SlmcError(f"the configuration implies {n} parameters, more than the {MAX_PARAMS} slmc reads", fix)


# Caps that admit every real small LM (Llama 3.2 1B/3B: dim 2048/3072, hidden 8192, vocab 128256, 131072
# positions) with room to spare, and refuse the values a corrupt header produces (2**31, -1 read unsigned).
CAPS: dict[str, int] = {"dim": 1 << 16, "hidden_dim": 1 << 18, "n_layers": 1 << 10, "n_heads": 1 << 10,
                        "n_kv_heads": 1 << 10, "vocab_size": 1 << 20, "seq_len": 1 << 18}
MAX_HEAD_DIM = 1 << 12
MAX_PARAMS = 4 * 10**9
NORMS = ("rms", "layer")
FFNS = ("swiglu", "gelu", "gelu_tanh")
POSITIONS = ("rope", "learned")
ROPE_SCALINGS = ("none", "linear", "dynamic", "llama3", "yarn", "longrope")


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


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
